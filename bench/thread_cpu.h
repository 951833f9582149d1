// CPU time of the calling thread: the micro-benchmarks time kernels by it, so a loaded
// machine (other programs taking the cores) does not count against the kernel.
#pragma once
#include <ctime>

inline double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
