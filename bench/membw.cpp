// Memory read bandwidth, the roof for generation: token generation reads every weight once
// per token, so tokens/s can not exceed bandwidth / bytes-per-token.
//   osprey-membw [-t THREADS] [-m MIB] [-r REPS]   -> prints {"threads":T,"gbps":X} (best rep)
// Each thread sums its own slice of a buffer much larger than the last-level cache; the
// pages are first touched by the thread that reads them, as a model's weights are after load,
// and are transparent huge pages where the kernel gives them (as Osprey's packed weights
// are; 4 KiB pages read ~10% slower here). On a shared cloud machine the number drifts with
// the neighbours' load (33-60 GB/s on the 2-core Zen 4 VM within an hour): compare runs taken
// together only.
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace {

// Cloned per ISA (picked at load time) so the loads are as wide as the CPU allows: narrow
// SSE2 loads on one core fall short of what the memory system delivers.
__attribute__((target_clones("avx512f", "avx2", "default")))
uint64_t sum_slice(const uint64_t* p, size_t n) {
  // Four independent accumulators so the loop is bound by loads, not by the add chain.
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a += p[i];
    b += p[i + 1];
    c += p[i + 2];
    d += p[i + 3];
  }
  for (; i < n; ++i) a += p[i];
  return a ^ b ^ c ^ d;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = arg_int("membw", argc, argv, "-t", (int)std::max(1u, std::thread::hardware_concurrency()));
  const size_t mib = (size_t)arg_int("membw", argc, argv, "-m", 1024);
  const int reps = arg_int("membw", argc, argv, "-r", 7);
  const size_t n = mib * (1 << 20) / sizeof(uint64_t);
  std::unique_ptr<uint64_t, decltype(&std::free)> buf((uint64_t*)std::aligned_alloc(2 << 20, n * sizeof(uint64_t)),
                                                       &std::free);  // n * 8 is a multiple of 2 MiB
  if (!buf) {
    std::fprintf(stderr, "membw: cannot allocate %zu MiB\n", mib);
    return 1;
  }
#ifdef MADV_HUGEPAGE
  madvise(buf.get(), n * sizeof(uint64_t), MADV_HUGEPAGE);
#endif
  const size_t per = (n + threads - 1) / threads;
  auto run = [&](bool init) {
    std::vector<std::thread> ts;
    std::vector<uint64_t> sink(threads);
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        size_t lo = std::min(n, t * per), hi = std::min(n, lo + per);
        if (init)
          for (size_t i = lo; i < hi; ++i) buf.get()[i] = i;
        else
          sink[t] = sum_slice(buf.get() + lo, hi - lo);
      });
    for (auto& th : ts) th.join();
    uint64_t x = 0;
    for (uint64_t s : sink) x ^= s;
    return x;
  };
  run(true);
  double best = 0;
  volatile uint64_t keep = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    keep = keep ^ run(false);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, n * sizeof(uint64_t) / s / 1e9);
  }
  std::printf("{\"threads\": %d, \"mib\": %zu, \"gbps\": %.2f}\n", threads, mib, best);
  return 0;
}
