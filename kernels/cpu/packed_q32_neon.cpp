// AArch64 Advanced SIMD products over the 32-element-block packed layouts (packed_q32.h).
// A 16-byte quarter of a 64-byte slice is 4 rows x 4 consecutive codes, so one lane product
// (neon_helpers.h) against the activation block gives 4 rows' partial sums with no
// horizontal step and no broadcast. Each group is taken as four quarters of 4
// rows, by up to 4 activation columns; a block's codes are decoded once per quarter.
//
// This file is compiled twice, like quant_dot_neon.cpp: as itself (namespace neon, baseline
// armv8-a) and through packed_q32_neon_dotprod.cpp with +dotprod
// (namespace neon_dotprod, SDOT). Same integers, same float chain as the scalar gemm
// (packed_q32_scalar.cpp): the same bits.
#include "kernels/cpu/packed_gemm.h"
#include "kernels/cpu/packed_kquant.h"
#include "kernels/cpu/packed_q32.h"

#include "kernels/cpu/neon_variant.h"

#if OSPREY_NEON_BUILD

#include "kernels/cpu/neon_helpers.h"

namespace osprey::kernels::OSPREY_NEON_NS {
namespace {

// Each type decodes quarter q's codes; the block's integer sum for a column is then
// dot(codes, x) - kOffset * sum(x), the scalar gemm's sum u . x - offset * sum(x) however it
// is reached (kOffset 0: signed codes, or a minimum term instead).
struct Q4_0 {
  static constexpr size_t kBlockBytes = q32::kQ4Bytes;
  static constexpr int kOffset = q32::kQ4Offset;
  static void decode(const uint8_t* blk, int q, int8x16_t w[8]) { quarter_nibbles(blk + q32::kScaleBytes, q, w); }
};
// Adds 16 where the fifth bit is set: bits 16q..16q+15 of mask m, one per byte of w[m].
struct Q5_0 {
  static constexpr size_t kBlockBytes = q32::kQ5Bytes;
  static constexpr int kOffset = q32::kQ5Offset;
  static void decode(const uint8_t* blk, int q, int8x16_t w[8]) {
    quarter_nibbles(blk + q32::kScaleBytes, q, w);
    for (int m = 0; m < 8; ++m)
      w[m] = s8(vorrq_u8(vreinterpretq_u8_s8(w[m]), fifth_bits(blk + q32::kQ4Bytes + 8 * m + 4 * (q / 2), q % 2)));
  }
};
// Q8_0's stored code is q + 128 (q XOR 0x80): flipping it back gives the signed q, and
// sum q x is the sum the offset form defines. IQ4_NL likewise multiplies the signed level.
struct Q8_0 {
  static constexpr size_t kBlockBytes = q32::kQ8Bytes;
  static constexpr int kOffset = 0;
  static void decode(const uint8_t* blk, int q, int8x16_t w[8]) {
    const uint8x16_t flip = vdupq_n_u8(0x80);
    for (int m = 0; m < 8; ++m) w[m] = s8(veorq_u8(vld1q_u8(blk + q32::kScaleBytes + 64 * m + 16 * q), flip));
  }
};
struct IQ4_NL {
  static constexpr size_t kBlockBytes = q32::kQ4Bytes;
  static constexpr int kOffset = 0;
  static void decode(const uint8_t* blk, int q, int8x16_t w[8]) {
    quarter_nibbles(blk + q32::kScaleBytes, q, w);
    for (int k = 0; k < 8; ++k) w[k] = iq4_levels_of(vreinterpretq_u8_s8(w[k]));
  }
};
// Q4_1 / Q5_1: the unsigned codes with no offset, the rows' minimums at kMinAt.
struct Q4_1 : Q4_0 {
  static constexpr size_t kBlockBytes = q32::kQ41Bytes, kMinAt = q32::kQ4Bytes;
  static constexpr int kOffset = 0;
};
struct Q5_1 : Q5_0 {
  static constexpr size_t kBlockBytes = q32::kQ51Bytes, kMinAt = q32::kQ5Bytes;
  static constexpr int kOffset = 0;
};

// Rows 4q..4q+3 of one group by C columns over all nb blocks; y[c * ldy + r].
template <class T, int C>
void tile(const uint8_t* grp, int q, int64_t nb, const uint8_t* x, size_t x_stride, float* y, int64_t ldy,
          bool stream) {
  float32x4_t acc[C];
  for (int c = 0; c < C; ++c) acc[c] = vdupq_n_f32(0.f);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = grp + (size_t)b * T::kBlockBytes;
    if (stream) prefetch_ahead<T::kBlockBytes>(blk);
    int8x16_t w[8];
    T::decode(blk, q, w);
    const float32x4_t dw = f16x4(blk + 8 * q);
    for (int c = 0; c < C; ++c) {
      const auto& xb = *((const block_q8_act_isum*)(x + (size_t)c * x_stride) + b);
      int32x4_t s = lanes::dot32(w, xb.qs);
      if constexpr (T::kOffset != 0) s = vaddq_s32(s, vdupq_n_s32(-T::kOffset * xb.isum));
      acc[c] = vfmaq_f32(acc[c], vmulq_n_f32(dw, xb.d), vcvtq_f32_s32(s));
      if constexpr (q32::min_at<T> != 0)
        acc[c] = vfmaq_f32(acc[c], vmulq_n_f32(f16x4(blk + q32::min_at<T> + 8 * q), xb.d), vdupq_n_f32((float)xb.isum));
    }
  }
  for (int c = 0; c < C; ++c) vst1q_f32(y + c * ldy + 4 * q, acc[c]);
}

// Four columns a tile; the quarters in turn (the group's lines are in cache after the first).
template <class T>
constexpr q32::TileFn kTiles[] = {tile<T, 1>, tile<T, 2>, tile<T, 3>, tile<T, 4>};
template <class T>
constexpr auto gemm = q32::gemm_tiles<T::kBlockBytes, 4, 4, kTiles<T>>;

}  // namespace

const PackedFormat* packed_format_for(DType w) {
  if (const PackedFormat* f = q32::format_for<gemm<Q4_0>, gemm<Q5_0>, gemm<Q8_0>, gemm<IQ4_NL>, gemm<Q4_1>, gemm<Q5_1>>(w))
    return f;
  return packed_kquant_format(w);  // packed_kquant_neon.cpp
}

}  // namespace osprey::kernels::OSPREY_NEON_NS

#else  // not aarch64, or the dotprod copy without +dotprod

namespace osprey::kernels::OSPREY_NEON_NS {
const PackedFormat* packed_format_for(DType) { return nullptr; }
}  // namespace osprey::kernels::OSPREY_NEON_NS

#endif
