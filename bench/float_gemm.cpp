// Speed of the F16 matmul kernels on a 1.1B Llama's shapes (TinyLlama: q/o 2048x2048, k/v
// 256x2048, gate/up 5632x2048, down 2048x5632), split over threads the way the CPU backend
// splits them (contiguous halves of the weight rows):
//   osprey-float-gemm [-m TOKENS] [-t THREADS] [-r REPS]
// prints, per shape, the prompt-processing GEMM (gemm_for(F16), TOKENS activation rows) in
// GFMA/s by wall clock and by the threads' own CPU time (the second stays meaningful on a
// loaded machine), then the one-token path (vec_f32().dot_f16 over ~0.5 GB of rows) in GB/s.
// OSPREY_CPU_ISA=avx2|scalar caps the ISA as for the engine.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "kernels/base/fp16.h"
#include "kernels/cpu/quant_dot.h"
#include "bench_util.h"

namespace {

using namespace osprey;
using namespace osprey::kernels;

double wall_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
// Runs body(thread, row begin, row end) on `threads` threads over [0, n); returns the best
// (wall seconds, slowest thread's CPU seconds) over reps.
template <class Body>
std::pair<double, double> timed(int threads, int reps, int64_t n, Body body) {
  double best_wall = 1e30, best_cpu = 1e30;
  for (int r = 0; r < reps; ++r) {
    std::vector<double> cpu((size_t)threads);
    std::vector<std::thread> pool;
    const double w0 = wall_s();
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const double c0 = thread_cpu_seconds();
        body(n * t / threads, n * (t + 1) / threads);
        cpu[(size_t)t] = thread_cpu_seconds() - c0;
      });
    for (auto& th : pool) th.join();
    best_wall = std::min(best_wall, wall_s() - w0);
    best_cpu = std::min(best_cpu, *std::max_element(cpu.begin(), cpu.end()));
  }
  return {best_wall, best_cpu};
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t M = arg_int("float-gemm", argc, argv, "-m", 512, 1 << 16);
  const int threads = arg_int("float-gemm", argc, argv, "-t", 2, 1 << 16);
  const int reps = arg_int("float-gemm", argc, argv, "-r", 3, 1 << 16);
  std::printf("isa %s, %d threads, %lld tokens\n", active_isa().name, threads, (long long)M);
  const GemmFn gemm = gemm_for(DType::F16);
  if (!gemm) std::printf("no F16 GEMM for this CPU (or OSPREY_GEMM=0): skipping the GEMM\n");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  struct Shape {
    int64_t rows, K, per_layer;
  };
  double layer_fma = 0, layer_wall = 0, layer_cpu = 0;
  for (const Shape s : {Shape{2048, 2048, 2}, Shape{256, 2048, 2}, Shape{5632, 2048, 2}, Shape{2048, 5632, 1}}) {
    if (!gemm) break;
    std::vector<uint16_t> w((size_t)(s.rows * s.K));
    for (auto& e : w) e = f32_to_f16(u(rng));
    std::vector<float> x((size_t)(M * s.K)), y((size_t)(M * s.rows));
    for (float& e : x) e = u(rng);
    const auto [wall, cpu] = timed(threads, reps, s.rows, [&](int64_t r0, int64_t r1) {
      gemm(w.data() + r0 * s.K, (size_t)s.K * 2, r1 - r0, x.data(), (size_t)s.K * 4, M, s.K, y.data() + r0, s.rows);
    });
    const double fma = (double)s.rows * (double)s.K * (double)M;
    std::printf("gemm %5lld x %5lld: %8.2f ms  %6.1f GFMA/s wall  %6.1f GFMA/s by cpu time\n", (long long)s.rows,
                (long long)s.K, wall * 1e3, fma / wall / 1e9, fma / cpu / 1e9);
    layer_fma += fma * (double)s.per_layer;
    layer_wall += wall * (double)s.per_layer;
    layer_cpu += cpu * (double)s.per_layer;
  }
  if (gemm)
    std::printf("gemm, one layer's mix: %.1f GFMA/s wall, %.1f by cpu time (%.1f per thread)\n", layer_fma / layer_wall / 1e9,
                layer_fma / layer_cpu / 1e9, layer_fma / layer_cpu / 1e9 / threads);
  // One token: every weight row read once, as generation does.
  const int64_t K = 2048, rows = 5632 * 22;
  std::vector<uint16_t> w((size_t)(rows * K));
  timed(threads, 1, rows, [&](int64_t r0, int64_t r1) {  // first touch by the reading thread
    std::fill(w.begin() + r0 * K, w.begin() + r1 * K, f32_to_f16(0.5f));
  });
  std::vector<float> x((size_t)K, 1.f), y((size_t)rows);
  const auto dot = vec_f32().dot_f16;
  const auto [wall, cpu] = timed(threads, reps, rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) y[(size_t)r] = dot(w.data() + r * K, x.data(), K);
  });
  const double bytes = (double)rows * (double)K * 2;
  std::printf("dot_f16 over %.0f MB: %.1f GB/s wall, %.1f by cpu time\n", bytes / 1e6, bytes / wall / 1e9, bytes / cpu / 1e9);
  return 0;
}
