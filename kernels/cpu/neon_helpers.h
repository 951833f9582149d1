// Small helpers the NEON kernel files share (quant_dot_neon.cpp, kquant_dot_neon.cpp,
// kquant_low_dot_neon.cpp, packed_q32_neon.cpp, packed_kquant_neon.cpp). Like x86_helpers.h they sit in an anonymous namespace, here inside
// the build's own namespace (OSPREY_NEON_NS, neon_variant.h): each translation unit keeps its
// own copy, compiled with its own flags, so the linker can never hand the +dotprod copy to
// code that runs on a CPU without SDOT.
#pragma once
#include "kernels/cpu/neon_variant.h"

#if OSPREY_NEON_BUILD
#include <cstdint>
#include <cstring>

#include "kernels/quant_blocks.h"

namespace osprey::kernels::OSPREY_NEON_NS {
namespace {

inline int8x16_t s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }

// A block's half-precision scale as float.
inline float f16(uint16_t h) {
  __fp16 v;
  std::memcpy(&v, &h, 2);
  return (float)v;
}

// Sum of the 16 products a[i] * b[i], spread over 4 int32 lanes (which lane holds which
// products differs between the two builds; the row kernels only use the lane total). Exact
// for every int8 input. (The packed kernels' four-row products are lanes::dot16 below.)
inline int32x4_t row_dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_s32(acc, a, b);
#else
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
  return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

// Byte j = 0x10 where bit (16 * half + j) of the 32-bit little-endian word at qhp is set
// (Q5_0 / Q5_1 fifth bits).
inline uint8x16_t fifth_bits(const uint8_t* qhp, int half) {
  static const uint8_t kIdx[2][16] = {{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
                                      {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3}};
  static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  uint32_t qh;
  std::memcpy(&qh, qhp, 4);
  const uint8x16_t bytes = vqtbl1q_u8(vreinterpretq_u8_u32(vdupq_n_u32(qh)), vld1q_u8(kIdx[half]));
  return vandq_u8(vtstq_u8(bytes, vld1q_u8(kBit)), vdupq_n_u8(0x10));
}

// 16 IQ4 nibbles (0..15) as their signed levels.
inline int8x16_t iq4_levels_of(uint8x16_t nibbles) { return vqtbl1q_s8(vld1q_s8(osprey_iq4nl_values), nibbles); }

inline float32x4_t f16x4(const void* p) { return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8((const uint8_t*)p))); }

// Rows 4q..4q+3 of four consecutive 64-byte packed lines (16 rows x 4 bytes each): w[t] the
// low nibbles of line t, w[t + 4] its high nibbles.
inline void quarter_nibbles(const uint8_t* lines, int q, int8x16_t w[8]) {
  const uint8x16_t low4 = vdupq_n_u8(0x0F);
  for (int t = 0; t < 4; ++t) {
    const uint8x16_t raw = vld1q_u8(lines + 64 * t + 16 * q);
    w[t] = s8(vandq_u8(raw, low4));
    w[t + 4] = s8(vshrq_n_u8(raw, 4));
  }
}

// The lane products of the packed kernels: a 16-byte register of 4 rows x 4 consecutive
// codes against one 32-bit lane (4 activation bytes) of another register gives the 4 rows'
// partial sums. With +dotprod that is SDOT by element (vdotq_laneq_s32); without it, byte
// products widen to 16 bits, neighbours pair up (|a b + c d| <= 2 * 128 * 127 < 2^15 for
// every int8 operand that is not -128 on both sides, which the layouts' codes and 8-bit
// activations never are), and the pairs add into 32 bits.
namespace lanes {

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

}  // namespace lanes
}  // namespace
}  // namespace osprey::kernels::OSPREY_NEON_NS
#endif
