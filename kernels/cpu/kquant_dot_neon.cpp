// AArch64 Advanced SIMD Q5_K kernels (aarch64 builds only; Q4_K and Q6_K are in
// quant_dot_neon.cpp, whose tables delegate Q5_K here). Compiled twice like that file: as
// itself (namespace neon, widening multiply-adds) and through kquant_dot_neon_dotprod.cpp
// with +dotprod (namespace neon_dotprod, SDOT). Each reproduces quant_dot_scalar.cpp exactly
// in integers, accumulating the scaled super-block sums in float.
#include <cstring>

#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/kquant_dot.h"

#include "kernels/cpu/neon_helpers.h"

#if OSPREY_NEON_BUILD

namespace osprey::kernels::OSPREY_NEON_NS {
namespace {

// Weight row b against activation rows xs[0..kCols): each super-block's weights are decoded
// once; every column goes through exactly the one-column kernel's (kCols = 1) sequence.
template <int kCols>
void q5_K_cols(const block_q5_K* b, const block_q8_K* const* xs, int64_t K, float* out) {
  const uint8x16_t low4 = vdupq_n_u8(15), five = vdupq_n_u8(16);
  float32x4_t acc[kCols];
  float mins[kCols];
  for (int c = 0; c < kCols; ++c) {
    acc[c] = vdupq_n_f32(0);
    mins[c] = 0;
  }
  for (int64_t i = 0; i < K / 256; ++i) {
    uint64_t sc8, m8;
    k4_scales_mins(b[i].scales, &sc8, &m8);
    uint8_t sc[8], m[8];
    std::memcpy(sc, &sc8, 8);
    std::memcpy(m, &m8, 8);
    // 32 bytes of qs per j: sub-block 2j in the low nibbles, 2j+1 in the high ones; bit s of
    // qh[l] is element l of sub-block s's fifth bit.
    const uint8x16_t qh[2] = {vld1q_u8(b[i].qh), vld1q_u8(b[i].qh + 16)};
    int8x16_t lo[4][2], hi[4][2];
    for (int j = 0; j < 4; ++j)
      for (int h = 0; h < 2; ++h) {
        const uint8x16_t q = vld1q_u8(b[i].qs + 32 * j + 16 * h);
        const uint8x16_t b_lo = vandq_u8(vtstq_u8(qh[h], vdupq_n_u8((uint8_t)(1u << (2 * j)))), five);
        const uint8x16_t b_hi = vandq_u8(vtstq_u8(qh[h], vdupq_n_u8((uint8_t)(1u << (2 * j + 1)))), five);
        lo[j][h] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(q, low4), b_lo));
        hi[j][h] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(q, 4), b_hi));
      }
    const float dw = f16(b[i].d), dmin = f16(b[i].dmin);
    for (int c = 0; c < kCols; ++c) {
      const block_q8_K& x = xs[c][i];
      int msum = 0;
      for (int s = 0; s < 8; ++s) msum += m[s] * (x.bsums[2 * s] + x.bsums[2 * s + 1]);
      int32x4_t sumi = vdupq_n_s32(0);
      for (int j = 0; j < 4; ++j) {
        const int8_t* y = x.qs + 64 * j;
        const int32x4_t plo = row_dot16(row_dot16(vdupq_n_s32(0), lo[j][0], vld1q_s8(y)), lo[j][1], vld1q_s8(y + 16));
        const int32x4_t phi = row_dot16(row_dot16(vdupq_n_s32(0), hi[j][0], vld1q_s8(y + 32)), hi[j][1], vld1q_s8(y + 48));
        sumi = vmlaq_n_s32(sumi, plo, sc[2 * j]);
        sumi = vmlaq_n_s32(sumi, phi, sc[2 * j + 1]);
      }
      acc[c] = vfmaq_n_f32(acc[c], vcvtq_f32_s32(sumi), x.d * dw);
      mins[c] += x.d * dmin * (float)msum;
    }
  }
  for (int c = 0; c < kCols; ++c) out[c] = vaddvq_f32(acc[c]) - mins[c];
}

}  // namespace

VecDotFn kquant_vec_dot_for(DType w) { return w == DType::Q5_K ? cols_dot1<block_q5_K, block_q8_K, q5_K_cols<1>> : nullptr; }
VecDot4Fn kquant_vec_dot4_for(DType w) { return w == DType::Q5_K ? cols_dot4<block_q5_K, block_q8_K, q5_K_cols<4>> : nullptr; }
GemmFn kquant_gemm_for(DType w) { return w == DType::Q5_K ? cols_gemm<block_q5_K, block_q8_K, q5_K_cols<4>> : nullptr; }

}  // namespace osprey::kernels::OSPREY_NEON_NS

#else  // not aarch64, or the dotprod copy without +dotprod: the dispatcher skips it

namespace osprey::kernels::OSPREY_NEON_NS {
VecDotFn kquant_vec_dot_for(DType) { return nullptr; }
VecDot4Fn kquant_vec_dot4_for(DType) { return nullptr; }
GemmFn kquant_gemm_for(DType) { return nullptr; }
}  // namespace osprey::kernels::OSPREY_NEON_NS

#endif
