// AArch64 Advanced SIMD Q2_K / Q3_K kernels (aarch64 builds only; quant_dot_neon.cpp's tables
// delegate these two types here). Compiled twice like that file: as itself (namespace neon,
// widening multiply-adds) and through kquant_low_dot_neon_dotprod.cpp with +dotprod
// (namespace neon_dotprod, SDOT). Each reproduces quant_dot_scalar.cpp's integer sums
// exactly, accumulating the scaled super-block sums in float.
#include <cstring>

#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/kquant_low_dot.h"

#include "kernels/cpu/neon_helpers.h"

#if OSPREY_NEON_BUILD

namespace osprey::kernels::OSPREY_NEON_NS {
namespace {

// q[s]: the 2-bit low parts of sub-block s (elements 16s..16s+15), which sit at bit shift
// 2 * ((s % 8) / 2) of qs[32 * (s / 8) + 16 * (s % 2) ..].
inline void low_planes(const uint8_t* qs, uint8x16_t (&q)[16]) {
  const uint8x16_t three = vdupq_n_u8(3);
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 2; ++l) {
      const uint8x16_t v = vld1q_u8(qs + 32 * h + 16 * l);
      q[8 * h + l] = vandq_u8(v, three);
      q[8 * h + 2 + l] = vandq_u8(vshrq_n_u8(v, 2), three);
      q[8 * h + 4 + l] = vandq_u8(vshrq_n_u8(v, 4), three);
      q[8 * h + 6 + l] = vshrq_n_u8(v, 6);
    }
}

// Weight row b against activation rows xs[0..kCols): each super-block's weights are decoded
// once; every column goes through exactly the one-column kernel's (kCols = 1) sequence.
template <int kCols>
void q2_K_cols(const block_q2_K* b, const block_q8_K* const* xs, int64_t K, float* out) {
  float32x4_t acc[kCols];
  float mins[kCols];
  for (int c = 0; c < kCols; ++c) {
    acc[c] = vdupq_n_f32(0);
    mins[c] = 0;
  }
  for (int64_t i = 0; i < K / 256; ++i) {
    uint8x16_t q[16];
    low_planes(b[i].qs, q);
    const float dw = f16(b[i].d), dmin = f16(b[i].dmin);
    for (int c = 0; c < kCols; ++c) {
      const block_q8_K& x = xs[c][i];
      int msum = 0;
      for (int s = 0; s < 16; ++s) msum += (b[i].scales[s] >> 4) * x.bsums[s];
      int32x4_t sumi = vdupq_n_s32(0);
      for (int s = 0; s < 16; ++s)
        sumi = vmlaq_n_s32(sumi, row_dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(q[s]), vld1q_s8(x.qs + 16 * s)),
                           b[i].scales[s] & 15);
      acc[c] = vfmaq_n_f32(acc[c], vcvtq_f32_s32(sumi), x.d * dw);
      mins[c] += x.d * dmin * (float)msum;
    }
  }
  for (int c = 0; c < kCols; ++c) out[c] = vaddvq_f32(acc[c]) - mins[c];
}

template <int kCols>
void q3_K_cols(const block_q3_K* b, const block_q8_K* const* xs, int64_t K, float* out) {
  float32x4_t acc[kCols];
  for (int c = 0; c < kCols; ++c) acc[c] = vdupq_n_f32(0);
  const uint8x16_t four = vdupq_n_u8(4);
  for (int64_t i = 0; i < K / 256; ++i) {
    uint8x16_t low[16];
    low_planes(b[i].qs, low);
    // Element 16s + t's third bit: bit s / 2 of hmask[16 * (s % 2) + t]; clear means q - 4.
    const uint8x16_t hm[2] = {vld1q_u8(b[i].hmask), vld1q_u8(b[i].hmask + 16)};
    int8x16_t q[16];
    for (int s = 0; s < 16; ++s) {
      const uint8x16_t set = vtstq_u8(hm[s % 2], vdupq_n_u8((uint8_t)(1u << (s / 2))));
      q[s] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(low[s], vandq_u8(set, four))), vreinterpretq_s8_u8(four));
    }
    int sc[16];
    osprey_q3k_scales(b[i].scales, sc);
    const float dw = f16(b[i].d);
    for (int c = 0; c < kCols; ++c) {
      const block_q8_K& x = xs[c][i];
      int32x4_t sumi = vdupq_n_s32(0);
      for (int s = 0; s < 16; ++s)
        sumi = vmlaq_n_s32(sumi, row_dot16(vdupq_n_s32(0), q[s], vld1q_s8(x.qs + 16 * s)), sc[s]);
      acc[c] = vfmaq_n_f32(acc[c], vcvtq_f32_s32(sumi), x.d * dw);
    }
  }
  for (int c = 0; c < kCols; ++c) out[c] = vaddvq_f32(acc[c]);
}

}  // namespace

VecDotFn low_kquant_vec_dot_for(DType w) {
  switch (w) {
    case DType::Q2_K: return cols_dot1<block_q2_K, block_q8_K, q2_K_cols<1>>;
    case DType::Q3_K: return cols_dot1<block_q3_K, block_q8_K, q3_K_cols<1>>;
    default: return nullptr;
  }
}

VecDot4Fn low_kquant_vec_dot4_for(DType w) {
  switch (w) {
    case DType::Q2_K: return cols_dot4<block_q2_K, block_q8_K, q2_K_cols<4>>;
    case DType::Q3_K: return cols_dot4<block_q3_K, block_q8_K, q3_K_cols<4>>;
    default: return nullptr;
  }
}

GemmFn low_kquant_gemm_for(DType w) {
  switch (w) {
    case DType::Q2_K: return cols_gemm<block_q2_K, block_q8_K, q2_K_cols<4>>;
    case DType::Q3_K: return cols_gemm<block_q3_K, block_q8_K, q3_K_cols<4>>;
    default: return nullptr;
  }
}

}  // namespace osprey::kernels::OSPREY_NEON_NS

#else  // not aarch64, or the dotprod copy without +dotprod: the dispatcher skips it

namespace osprey::kernels::OSPREY_NEON_NS {
VecDotFn low_kquant_vec_dot_for(DType) { return nullptr; }
VecDot4Fn low_kquant_vec_dot4_for(DType) { return nullptr; }
GemmFn low_kquant_gemm_for(DType) { return nullptr; }
}  // namespace osprey::kernels::OSPREY_NEON_NS

#endif
