// The lane products the NEON packed kernels share (packed_q32_neon.cpp,
// packed_kquant_neon.cpp): a 16-byte register of 4 rows x 4 consecutive codes against one
// 32-bit lane (4 activation bytes) of another register gives the 4 rows' partial sums. With
// +dotprod that is SDOT by element (vdotq_laneq_s32); without it, byte products widen to
// 16 bits, neighbours pair up (|a b + c d| <= 2 * 128 * 127 < 2^15 for every int8 operand
// that is not -128 on both sides, which the layouts' codes and 8-bit activations never are),
// and the pairs add into 32 bits. The functions live in the build's namespace (OSPREY_NEON_NS:
// neon or neon_dotprod, neon_variant.h), so each build has its own form and neither can
// stand in for the other at link time.
#pragma once
#include "kernels/cpu/neon_variant.h"

#if OSPREY_NEON_BUILD
#include <cstdint>

namespace osprey::kernels::OSPREY_NEON_NS::lanes {

template <int L>
inline int32x4_t dot_lane(int32x4_t acc, int8x16_t w, int8x16_t x) {
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_laneq_s32(acc, w, x, L);
#else
  const int8x16_t xl = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x), L));
  return vpadalq_s16(acc, vpaddq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(xl)), vmull_high_s8(w, xl)));
#endif
}

// Sum over t of w[t] against activation lane t of x: 16 consecutive activations, 4 rows.
inline int32x4_t dot16(const int8x16_t w[4], int8x16_t x) {
  int32x4_t a = dot_lane<0>(vdupq_n_s32(0), w[0], x), b = dot_lane<1>(vdupq_n_s32(0), w[1], x);
  a = dot_lane<2>(a, w[2], x);
  b = dot_lane<3>(b, w[3], x);
  return vaddq_s32(a, b);
}

// 32 consecutive activations qs[0..31]: w[0..3] against the first 16, w[4..7] the last 16.
inline int32x4_t dot32(const int8x16_t w[8], const int8_t* qs) {
  return vaddq_s32(dot16(w, vld1q_s8(qs)), dot16(w + 4, vld1q_s8(qs + 16)));
}

inline float32x4_t f16x4(const void* p) { return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8((const uint8_t*)p))); }

}  // namespace osprey::kernels::OSPREY_NEON_NS::lanes
#endif
