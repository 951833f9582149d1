// Scalar attention inner loops (the reference the SIMD tables are tested against), and the
// choice of table for the running CPU.
#include <cmath>
#include <cstring>

#include "kernels/cpu/attention_kernels.h"
#include "kernels/cpu/quant_dot.h"
#include "kernels/dequant.h"

namespace osprey::kernels {
namespace scalar {
namespace {

bool rows_to_f32(DType t, const uint8_t* src, size_t stride, int64_t n, int64_t D, float* out) {
  for (int64_t j = 0; j < n; ++j)
    if (!dequantize_row(t, src + (size_t)j * stride, out + j * D, D)) return false;
  return true;
}

void scores(const float* q, int64_t R, const float* k, int64_t ldk, int64_t n, int64_t D, float scale, float* s,
            int64_t lds) {
  for (int64_t r = 0; r < R; ++r)
    for (int64_t j = 0; j < n; ++j) {
      float d = 0;
      for (int64_t i = 0; i < D; ++i) d += q[r * D + i] * k[j * ldk + i];
      s[r * lds + j] = d * scale;
    }
}

float exp_sum(float* s, int64_t n, float m) {
  float sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += (s[j] = std::exp(s[j] - m));
  return sum;
}

void accumulate(const float* p, int64_t ldp, int64_t R, const float* v, int64_t ldv, int64_t n, int64_t Dv,
                float* acc) {
  for (int64_t r = 0; r < R; ++r)
    for (int64_t j = 0; j < n; ++j) {
      const float w = p[r * ldp + j];
      for (int64_t i = 0; i < Dv; ++i) acc[r * Dv + i] += w * v[j * ldv + i];
    }
}

}  // namespace

const AttnKernels& attn_kernels() {
  static const AttnKernels k{"scalar", rows_to_f32, scores, exp_sum, accumulate};
  return k;
}
}  // namespace scalar

const AttnKernels& attn_kernels_for(const char* isa_name) {
  const AttnKernels* k = nullptr;
#if defined(__x86_64__) || defined(__i386__)
  if (std::strcmp(isa_name, "avx2") == 0) k = avx2::attn_kernels();
  if (std::strcmp(isa_name, "avx512") == 0) k = avx512::attn_kernels();
#elif defined(__aarch64__)
  if (std::strcmp(isa_name, "neon") == 0 || std::strcmp(isa_name, "neon_dotprod") == 0) k = neon::attn_kernels();
#endif
  return k ? *k : scalar::attn_kernels();
}

const AttnKernels& attn_kernels() {
  static const AttnKernels& k = attn_kernels_for(active_isa().name);
  return k;
}

}  // namespace osprey::kernels
