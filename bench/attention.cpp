// Speed of the CPU attention (kernels/cpu_attention.cpp) alone, on the shapes of the models
// the issue measures: prompt processing of 512 tokens (Gemma 3 270M: 4 query heads x 256, one
// kv head; TinyLlama 1.1B: 32 x 64, 4 kv heads; Qwen2.5 0.5B: 14 x 64, 2 kv heads) and one
// generated token deep in the cache (SmolLM2 at 4096: 9 x 64, 3 kv heads; Gemma at 512;
// TinyLlama at 4096), with the chunk count the backend would use for 2 threads:
//   osprey-attention [-i ISA] [-c f16|bf16|q8_0|q4_0] [-t THREADS] [-r REPS] [NAME_FILTER]
// The units are split over THREADS (default 1) in contiguous ranges as the backend's pool
// splits them; the time is the longest any thread spent in its own CPU time (what the wall
// clock would show on a quiet machine, and still meaningful on a loaded one), best of REPS.
// GMAC/s counts the unmasked multiply-adds of QK^T and PV.
// OSPREY_ATTN_F16_DIRECT=0 makes an f16 cache go through widened block copies (A/B).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cpu/attention_kernels.h"
#include "kernels/cpu/quant_dot.h"
#include "kernels/ops.h"
#include "kernels/quantize.h"
#include "bench_util.h"

namespace {

using namespace osprey;
using namespace osprey::kernels;

struct Shape {
  const char* name;
  int64_t D, Hq, Hkv, T, depth;
};

}  // namespace

int main(int argc, char** argv) {
  const char* isa = active_isa().name;
  DType cache = DType::F16;
  int reps = 3, threads = 1;
  const char* filter = "";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-i" && i + 1 < argc) isa = argv[++i];
    else if (arg == "-t" && i + 1 < argc) threads = positive_int("attention", "-t", argv[++i], 1024);
    else if (arg == "-r" && i + 1 < argc) reps = positive_int("attention", "-r", argv[++i]);
    else if (arg == "-c" && i + 1 < argc) {
      const std::string c = argv[++i];
      if (c != "f16" && c != "bf16" && c != "q8_0" && c != "q4_0") {
        std::fprintf(stderr, "attention: -c takes f16, bf16, q8_0 or q4_0, got '%s'\n", c.c_str());
        return 2;
      }
      cache = c == "bf16" ? DType::BF16 : c == "q8_0" ? DType::Q8_0 : c == "q4_0" ? DType::Q4_0 : DType::F16;
    } else filter = argv[i];
  }
  const AttnKernels& k = attn_kernels_for(isa);
  const Shape shapes[] = {{"gemma3-pp512", 256, 4, 1, 512, 0},    {"tinyllama-pp512", 64, 32, 4, 512, 0},
                          {"qwen0.5b-pp512", 64, 14, 2, 512, 0},  {"smollm2-tg@4096", 64, 9, 3, 1, 4096},
                          {"gemma3-tg@512", 256, 4, 1, 1, 512},   {"tinyllama-tg@4096", 64, 32, 4, 1, 4096}};
  std::printf("table %s, cache %s, %d thread(s)\n", k.name, dtype_name(cache), threads);
  for (const Shape& sh : shapes) {
    if (!std::strstr(sh.name, filter)) continue;
    const int64_t cells = sh.depth + sh.T;
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> x((size_t)(sh.D * sh.Hkv * cells)), q((size_t)(sh.D * sh.Hq * sh.T));
    for (float& v : q) v = u(rng);
    std::vector<uint8_t> kc((size_t)(dtype_row_bytes(cache, sh.D) * sh.Hkv * cells)), vc = kc;
    for (float& v : x) v = u(rng);
    if (!quantize_row(cache, x.data(), kc.data(), (int64_t)x.size())) return 1;
    for (float& v : x) v = u(rng);
    if (!quantize_row(cache, x.data(), vc.data(), (int64_t)x.size())) return 1;
    std::vector<int32_t> meta;
    for (int64_t t = 0; t < sh.T; ++t) meta.insert(meta.end(), {0, (int32_t)(sh.depth + t)});
    std::vector<float> out((size_t)(sh.T * sh.Hq * sh.D));
    AttentionArgs a{};
    a.q = q.data(); a.D = sh.D; a.Hq = sh.Hq; a.T = sh.T;
    a.k_type = cache; a.k = kc.data(); a.v_type = cache; a.v = vc.data();
    a.Dv = sh.D; a.Hkv = sh.Hkv; a.meta = meta.data(); a.cells_per_seq = cells; a.n_cells = cells;
    a.scale = 1.0f / std::sqrt((float)sh.D); a.out = out.data();
    const int64_t chunks = cpu::attention_chunks(a, std::max(2, threads)), units = cpu::attention_units(a, chunks);
    std::vector<std::vector<float>> scratch((size_t)threads);
    for (auto& v : scratch) v.resize((size_t)cpu::attention_scratch_floats(a));
    std::vector<float> partials((size_t)cpu::attention_partial_floats(a, chunks) + 1);
    double macs = 0;
    for (int64_t t = 0; t < sh.T; ++t) macs += 2.0 * (double)(sh.depth + t + 1) * (double)(sh.Hq * sh.D);
    const int inner = sh.T == 1 ? 200 : 1;
    double best = 1e30;
    bool ok = true;
    for (int r = 0; r < reps; ++r) {
      std::vector<double> spent((size_t)threads);
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
          const double t0 = thread_cpu_seconds();
          const int64_t b = units * t / threads, e = units * (t + 1) / threads;
          for (int it = 0; it < inner; ++it)
            if (b < e && !cpu::attention_with(k, a, chunks, b, e, scratch[(size_t)t].data(), partials.data()))
              ok = false;
          spent[(size_t)t] = thread_cpu_seconds() - t0;
        });
      for (auto& th : pool) th.join();
      const double t0 = thread_cpu_seconds();
      if (chunks > 1)
        for (int it = 0; it < inner; ++it) cpu::attention_merge(a, chunks, partials.data());
      const double merge = thread_cpu_seconds() - t0;
      best = std::min(best, (*std::max_element(spent.begin(), spent.end()) + merge) / inner);
    }
    if (!ok) return 1;
    std::printf("%-18s chunks %2lld  %8.3f ms  %6.1f GMAC/s\n", sh.name, (long long)chunks, best * 1e3,
                macs / best * 1e-9);
  }
  return 0;
}
