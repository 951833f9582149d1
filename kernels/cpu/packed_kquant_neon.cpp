// K-quant (and IQ4_XS) packed products (packed_kquant.h), AArch64 Advanced SIMD. A 16-byte
// quarter of a 64-byte quant line is 4 rows x 4 columns, so one lane product
// (neon_helpers.h) against the activations gives a sub-block's partial sums for 4 rows
// with no horizontal step; a vector multiply-add applies the 4 rows' sub-block scales. A tile
// takes the 16 rows as four quarters, each over all super-blocks, by up to 4 columns; a
// quarter's codes are decoded once per sub-block for all of them.
//
// Compiled twice, like packed_q32_neon.cpp: baseline (namespace neon) and, through
// packed_kquant_neon_dotprod.cpp, with +dotprod (neon_dotprod). The integer sums are the
// scalar order's (packed_kquant_scalar.cpp) exactly, whatever order they are added in; the
// offsets of Q6_K (32) and Q3_K (4) are taken off each sub-block's sum before its scale,
// which is the same integer. The float chain is the scalar one: the same bits.
#include "kernels/cpu/packed_kquant.h"

#include "kernels/cpu/neon_variant.h"

#if OSPREY_NEON_BUILD

#include <cstring>
#include <type_traits>

#include "kernels/cpu/neon_helpers.h"

namespace osprey::kernels::OSPREY_NEON_NS {
namespace {

using lanes::dot16;
using lanes::dot32;

// 4 bytes (rows 4q..4q+3 of a [sub-block][row] scale line) widened to int32 lanes.
inline int32x4_t widen4_u8(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(v))))));
}
inline int32x4_t widen4_s8(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return vmovl_s16(vget_low_s16(vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(v)))));
}

// Each type: sums(b, q, x, isum, msum) adds quarter q's integer sums of super-block b against
// C activation super-blocks; kMin: the msum term (- dmin d_x msum) follows.
template <class P>
struct Kind;

// Q4_K / Q5_K / IQ4_XS: sub-block s is qs[s][0..3], low nibbles columns 32 s + 4 t + j, high
// ones 32 s + 16 + 4 t + j (packed_kquant.h); Q5_K's fifth bits in qh[s], bit t and bit 4 + t;
// IQ4_XS's nibbles index the levels, under signed scales and no minimums.
template <class P>
struct Kind32 {
  static constexpr bool kQ5 = std::is_same_v<P, PackedQ5K>, kIQ4 = std::is_same_v<P, PackedIQ4XS>, kMin = !kIQ4;
  template <int C>
  static void sums(const P& b, int q, const block_q8_K* const x[C], int32x4_t isum[C], int32x4_t msum[C]) {
    const uint8x16_t bit4 = vdupq_n_u8(0x10);
    for (int s = 0; s < 8; ++s) {
      int8x16_t w[8];
      quarter_nibbles(b.qs[s][0], q, w);
      if constexpr (kQ5) {
        const uint8x16_t h = vld1q_u8(b.qh[s] + 16 * q);
        for (int t = 0; t < 4; ++t) {
          w[t] = s8(vorrq_u8(vreinterpretq_u8_s8(w[t]), vandq_u8(vshlq_u8(h, vdupq_n_s8((int8_t)(4 - t))), bit4)));
          w[t + 4] = s8(vorrq_u8(vreinterpretq_u8_s8(w[t + 4]), vandq_u8(vshlq_u8(h, vdupq_n_s8((int8_t)-t)), bit4)));
        }
      }
      if constexpr (kIQ4)
        for (int k = 0; k < 8; ++k) w[k] = iq4_levels_of(vreinterpretq_u8_s8(w[k]));
      const int32x4_t sc = kIQ4 ? widen4_s8((const int8_t*)b.scales[s] + 4 * q) : widen4_u8((const uint8_t*)b.scales[s] + 4 * q);
      for (int c = 0; c < C; ++c) isum[c] = vmlaq_s32(isum[c], dot32(w, x[c]->qs + 32 * s), sc);
    }
    if constexpr (kMin) {
      // mins[p] bytes 8q..8q+7: rows 4q..4q+3, each sub-blocks 2p and 2p + 1; against the
      // activation sums of those sub-blocks, pairs of products added per row.
      for (int c = 0; c < C; ++c) {
        int16_t bs[8];
        bsums_of_32(*x[c], bs);
        for (int p = 0; p < 4; ++p) {
          const int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(b.mins[p] + 8 * q)));
          const int16x8_t v =
              vreinterpretq_s16_u32(vdupq_n_u32((uint16_t)bs[2 * p] | (uint32_t)(uint16_t)bs[2 * p + 1] << 16));
          msum[c] = vaddq_s32(msum[c], vpaddq_s32(vmull_s16(vget_low_s16(m), vget_low_s16(v)), vmull_high_s16(m, v)));
        }
      }
    }
  }
};
template <>
struct Kind<PackedQ4K> : Kind32<PackedQ4K> {};
template <>
struct Kind<PackedQ5K> : Kind32<PackedQ5K> {};
template <>
struct Kind<PackedIQ4XS> : Kind32<PackedIQ4XS> {};

// Q6_K: sub-block s of 16 columns, line t: low four bits in ql[s][t % 2] (high nibble for
// t >= 2), top two bits of qh[s] at 2t; stored + 32.
template <>
struct Kind<PackedQ6K> {
  static constexpr bool kMin = false;
  template <int C>
  static void sums(const PackedQ6K& b, int q, const block_q8_K* const x[C], int32x4_t isum[C], int32x4_t*) {
    const uint8x16_t low4 = vdupq_n_u8(0x0F), top2 = vdupq_n_u8(0x30);
    for (int s = 0; s < 16; ++s) {
      const uint8x16_t l0 = vld1q_u8(b.ql[s][0] + 16 * q), l1 = vld1q_u8(b.ql[s][1] + 16 * q),
                       h = vld1q_u8(b.qh[s] + 16 * q);
      const uint8x16_t lo[4] = {vandq_u8(l0, low4), vandq_u8(l1, low4), vshrq_n_u8(l0, 4), vshrq_n_u8(l1, 4)};
      int8x16_t w[4];
      for (int t = 0; t < 4; ++t) w[t] = s8(vorrq_u8(lo[t], vandq_u8(vshlq_u8(h, vdupq_n_s8((int8_t)(4 - 2 * t))), top2)));
      const int32x4_t sc = widen4_s8(b.scales[s] + 4 * q);
      for (int c = 0; c < C; ++c) {
        const int32x4_t sub = vsubq_s32(dot16(w, vld1q_s8(x[c]->qs + 16 * s)), vdupq_n_s32(32 * x[c]->bsums[s]));
        isum[c] = vmlaq_s32(isum[c], sub, sc);
      }
    }
  }
};

// Q2_K / Q3_K: sub-block s of 16 columns, line t at bits 2t of qs[s]; Q3_K's third bit at
// bit 4 (s % 2) + t of qh[s / 2], stored + 4. Q2_K's scale byte is scale | min << 4.
template <class P>
struct Kind23 {
  static constexpr bool kQ3 = std::is_same_v<P, PackedQ3K>, kMin = !kQ3;
  template <int C>
  static void sums(const P& b, int q, const block_q8_K* const x[C], int32x4_t isum[C], int32x4_t msum[C]) {
    const uint8x16_t two = vdupq_n_u8(3), bit2 = vdupq_n_u8(4);
    for (int s = 0; s < 16; ++s) {
      const uint8x16_t v = vld1q_u8(b.qs[s] + 16 * q);
      int8x16_t w[4];
      for (int t = 0; t < 4; ++t) {
        uint8x16_t code = vandq_u8(vshlq_u8(v, vdupq_n_s8((int8_t)(-2 * t))), two);
        if constexpr (kQ3) {
          const uint8x16_t h = vld1q_u8(b.qh[s / 2] + 16 * q);
          code = vorrq_u8(code, vandq_u8(vshlq_u8(h, vdupq_n_s8((int8_t)(2 - 4 * (s % 2) - t))), bit2));
        }
        w[t] = s8(code);
      }
      if constexpr (kQ3) {
        const int32x4_t sc = widen4_s8(b.scales[s] + 4 * q);
        for (int c = 0; c < C; ++c) {
          const int32x4_t sub = vsubq_s32(dot16(w, vld1q_s8(x[c]->qs + 16 * s)), vdupq_n_s32(4 * x[c]->bsums[s]));
          isum[c] = vmlaq_s32(isum[c], sub, sc);
        }
      } else {
        const int32x4_t both = widen4_u8(b.scales[s] + 4 * q);
        const int32x4_t sc = vandq_s32(both, vdupq_n_s32(15)), mn = vshrq_n_s32(both, 4);
        for (int c = 0; c < C; ++c) {
          isum[c] = vmlaq_s32(isum[c], dot16(w, vld1q_s8(x[c]->qs + 16 * s)), sc);
          msum[c] = vmlaq_n_s32(msum[c], mn, x[c]->bsums[s]);
        }
      }
    }
  }
};
template <>
struct Kind<PackedQ2K> : Kind23<PackedQ2K> {};
template <>
struct Kind<PackedQ3K> : Kind23<PackedQ3K> {};

// 16 rows x C columns, y[c * ldy + r]: rows 4q..4q+3 over all super-blocks, q = 0..3 (the
// group's lines are in cache after the first quarter).
template <class P, int C>
void tile(const P* w, int64_t nsb, const block_q8_K* const* xs, float* y, int64_t ldy, bool stream) {
  for (int q = 0; q < 4; ++q) {
    float32x4_t acc[C];
    for (int c = 0; c < C; ++c) acc[c] = vdupq_n_f32(0.f);
    for (int64_t i = 0; i < nsb; ++i) {
      const P& b = w[i];
      if (stream && q == 0) prefetch_ahead<sizeof(P)>(&b);
      const block_q8_K* x[C];
      int32x4_t isum[C], msum[C];
      for (int c = 0; c < C; ++c) {
        x[c] = xs[c] + i;
        isum[c] = msum[c] = vdupq_n_s32(0);
      }
      Kind<P>::template sums<C>(b, q, x, isum, msum);
      const float32x4_t d = f16x4(b.d + 4 * q);
      for (int c = 0; c < C; ++c) {
        acc[c] = vfmaq_f32(acc[c], vmulq_n_f32(d, x[c]->d), vcvtq_f32_s32(isum[c]));
        if constexpr (Kind<P>::kMin)
          acc[c] = vfmaq_f32(acc[c], vnegq_f32(vmulq_n_f32(f16x4(b.dmin + 4 * q), x[c]->d)), vcvtq_f32_s32(msum[c]));
      }
    }
    for (int c = 0; c < C; ++c) vst1q_f32(y + c * ldy + 4 * q, acc[c]);
  }
}

template <class P>
constexpr PackedTileFn<P> kTiles[] = {tile<P, 1>, tile<P, 2>, tile<P, 3>, tile<P, 4>};

}  // namespace

const PackedFormat* packed_kquant_format(DType w) {
  return packed_kquant_table<4, kTiles<PackedQ2K>, 4, kTiles<PackedQ3K>, 4, kTiles<PackedQ4K>, 4, kTiles<PackedQ5K>, 4,
                             kTiles<PackedQ6K>, 4, kTiles<PackedIQ4XS>>(w);
}

}  // namespace osprey::kernels::OSPREY_NEON_NS

#else  // not aarch64, or the dotprod copy without +dotprod

namespace osprey::kernels::OSPREY_NEON_NS {
const PackedFormat* packed_kquant_format(DType) { return nullptr; }
}  // namespace osprey::kernels::OSPREY_NEON_NS

#endif
