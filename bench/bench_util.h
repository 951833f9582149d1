// Helpers the micro-benchmarks share.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

// CPU time of the calling thread: kernels are timed by it, so a loaded machine (other
// programs taking the cores) does not count against the kernel.
inline double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// An option's value as an integer in [1, max]; anything else is reported as
// "<tool>: <flag> needs a positive integer, got '<text>'" and the program exits with 2.
inline int positive_int(const char* tool, const char* flag, const char* text, long max = 1 << 20) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end || v <= 0 || v > max) {
    std::fprintf(stderr, "%s: %s needs a positive integer up to %ld, got '%s'\n", tool, flag, max, text);
    std::exit(2);
  }
  return (int)v;
}

// The value of `flag` (checked as positive_int does), or dflt when argv does not have it.
inline int arg_int(const char* tool, int argc, char** argv, const char* flag, int dflt, long max = 1 << 20) {
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], flag)) return positive_int(tool, flag, argv[i + 1], max);
  return dflt;
}
