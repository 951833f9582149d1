// The K-quant (Q2_K .. Q6_K) and IQ4_XS packed products (kernels/cpu/packed_kquant.h) alone,
// against the row kernels they replace (gemm_for for a batch, vec_dot_for for one token), on
// TinyLlama 1.1B's matmul shapes, one thread. Rates are by the thread's own CPU time, which
// stays meaningful on a busy machine; the packing rate is what loading a model pays once.
//   osprey-packed-kquant [-i avx2|avx512] [-m TOKENS] [-r REPS]   (with -i avx2, set
// OSPREY_CPU_ISA=avx2 too, so that the row kernels compared are AVX2 as well)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/base/fp16.h"
#include "kernels/cpu/packed_kquant.h"
#include "bench_util.h"

namespace {
using namespace osprey;
using namespace osprey::kernels;

// Best of reps runs of f, in thread CPU seconds.
template <class F>
double best(int reps, F f) {
  double b = 1e30;
  for (int i = 0; i < reps; ++i) {
    const double t0 = thread_cpu_seconds();
    f();
    b = std::min(b, thread_cpu_seconds() - t0);
  }
  return b;
}

// Random super-blocks with a small finite f16 scale (and min) in each.
std::vector<uint8_t> weights(DType t, int64_t N, int64_t K, std::mt19937& rng) {
  const size_t rb = (size_t)dtype_row_bytes(t, K), bb = (size_t)dtype_row_bytes(t, 256);
  std::vector<uint8_t> w(rb * (size_t)N);
  for (uint8_t& b : w) b = (uint8_t)rng();
  const uint16_t d = f32_to_f16(0.01f);
  const size_t d_at = t == DType::Q2_K     ? offsetof(block_q2_K, d)
                      : t == DType::Q3_K   ? offsetof(block_q3_K, d)
                      : t == DType::Q6_K   ? offsetof(block_q6_K, d)
                      : t == DType::IQ4_XS ? offsetof(block_iq4_xs, d)
                                           : offsetof(block_q4_K, d);
  const size_t dmin_at = t == DType::Q2_K                       ? offsetof(block_q2_K, dmin)
                         : t == DType::Q4_K || t == DType::Q5_K ? offsetof(block_q4_K, dmin)
                                                                : 0;  // none
  for (size_t at = 0; at < w.size(); at += bb) {
    std::memcpy(w.data() + at + d_at, &d, 2);
    if (dmin_at) std::memcpy(w.data() + at + dmin_at, &d, 2);
  }
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  std::string isa = "avx512";
  int64_t M = 512;
  int reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "-i")) isa = argv[i + 1];
    else if (!std::strcmp(argv[i], "-m")) M = positive_int("packed-kquant", "-m", argv[i + 1], 1 << 16);
    else if (!std::strcmp(argv[i], "-r")) reps = positive_int("packed-kquant", "-r", argv[i + 1]);
  }
  const struct {
    const char* name;
    int64_t N, K;
  } shapes[] = {{"attn_q/o", 2048, 2048}, {"attn_k/v", 256, 2048}, {"ffn_up", 5632, 2048}, {"ffn_down", 2048, 5632}};
  std::mt19937 rng(1);
  std::printf("one thread, %s; GMAC/s by thread CPU time (best of %d)\n", isa.c_str(), reps);
  for (DType t : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_XS}) {
    const PackedFormat* f = isa == "avx2" ? avx2::packed_kquant_format(t) : avx512::packed_kquant_format(t);
    const GemmFn gemm = gemm_for(t);
    const VecDotFn dot = vec_dot_for(t);
    if (!f || !gemm || !dot) {
      std::printf("%s: no %s kernels here\n", dtype_name(t), isa.c_str());
      continue;
    }
    for (const auto& s : shapes) {
      const auto w = weights(t, s.N, s.K, rng);
      const size_t rb = (size_t)dtype_row_bytes(t, s.K), xs = act_row_bytes(ActQuant::Q8_K, s.K);
      std::vector<uint8_t> xq(xs * (size_t)M), packed(f->group_bytes(s.K) * (size_t)(s.N / 16));
      std::normal_distribution<float> nd;
      std::vector<float> x((size_t)s.K), y((size_t)(s.N * M));
      for (int64_t m = 0; m < M; ++m) {
        for (float& v : x) v = nd(rng);
        quantize_act_row(ActQuant::Q8_K, x.data(), xq.data() + (size_t)m * xs, s.K);
      }
      const double pack_s = best(1, [&] {
        for (int64_t g = 0; g < s.N / 16; ++g)
          f->pack(w.data() + (size_t)(16 * g) * rb, rb, s.K, packed.data() + (size_t)g * f->group_bytes(s.K));
      });
      const double macs = (double)s.N * (double)s.K;
      const double old_pp = best(reps, [&] { gemm(w.data(), rb, s.N, xq.data(), xs, M, s.K, y.data(), s.N); });
      const double new_pp = best(reps, [&] { f->gemm(packed.data(), s.N / 16, xq.data(), xs, M, s.K, y.data(), s.N); });
      const double old_tg = best(reps * 4, [&] {
        for (int64_t r = 0; r < s.N; ++r) y[(size_t)r] = dot(w.data() + (size_t)r * rb, xq.data(), s.K);
      });
      const double new_tg = best(reps * 4, [&] { f->gemm(packed.data(), s.N / 16, xq.data(), xs, 1, s.K, y.data(), s.N); });
      std::printf("%s %-8s N %5lld K %5lld | %lld tokens: rows %6.1f packed %6.1f GMAC/s (x%.2f) | 1 token: rows %5.1f "
                  "packed %5.1f (x%.2f) | pack %.2f GB/s\n",
                  dtype_name(t), s.name, (long long)s.N, (long long)s.K, (long long)M, macs * (double)M / old_pp * 1e-9,
                  macs * (double)M / new_pp * 1e-9, old_pp / new_pp, macs / old_tg * 1e-9, macs / new_tg * 1e-9,
                  old_tg / new_tg, (double)w.size() / pack_s * 1e-9);
    }
  }
  return 0;
}
