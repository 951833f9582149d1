// AArch64 Advanced SIMD integer dot products (aarch64 builds only). Each kernel reproduces
// quant_dot_scalar.cpp exactly in integers (same per-block integer sums), accumulating the
// scaled block sums in float.
//
// This file is compiled twice: as itself (namespace neon, baseline armv8-a, products by
// widening multiply-adds, always usable on aarch64) and through quant_dot_neon_dotprod.cpp
// with -march=armv8.2-a+dotprod (namespace neon_dotprod, SDOT via vdotq_s32), which the
// dispatcher calls only where the kernel reports HWCAP_ASIMDDP.
#include <cstring>

#include "kernels/cpu/quant_dot.h"

#ifndef OSPREY_NEON_NS
#define OSPREY_NEON_NS neon
#endif

#if defined(__aarch64__) && defined(__ARM_NEON) && \
    (!defined(OSPREY_NEON_REQUIRE_DOTPROD) || defined(__ARM_FEATURE_DOTPROD))
#include <arm_neon.h>

namespace osprey::kernels::OSPREY_NEON_NS {
namespace {

inline float f16(uint16_t h) {
  __fp16 v;
  std::memcpy(&v, &h, 2);
  return (float)v;
}

// Sum of the 16 products a[i] * b[i], spread over 4 int32 lanes (which lane holds which
// products differs between the two paths; callers only use the lane total). Exact for every
// int8 input.
inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_s32(acc, a, b);
#else
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
  return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

inline int8x16_t s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }

// Byte j = 0x10 where bit (16 * half + j) of qh is set.
inline uint8x16_t fifth_bits(const uint8_t* qhp, int half) {
  static const uint8_t kIdx[2][16] = {{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
                                      {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3}};
  static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  uint32_t qh;
  std::memcpy(&qh, qhp, 4);
  const uint8x16_t bytes = vqtbl1q_u8(vreinterpretq_u8_u32(vdupq_n_u32(qh)), vld1q_u8(kIdx[half]));
  return vandq_u8(vtstq_u8(bytes, vld1q_u8(kBit)), vdupq_n_u8(0x10));
}

// The 32 weights of block b as two signed byte vectors (elements 0..15, 16..31).
struct Quants {
  int8x16_t lo, hi;
};
inline Quants quants(const block_q4_0& b) {
  const uint8x16_t v = vld1q_u8(b.qs);
  const int8x16_t eight = vdupq_n_s8(8);
  return {vsubq_s8(s8(vandq_u8(v, vdupq_n_u8(15))), eight), vsubq_s8(s8(vshrq_n_u8(v, 4)), eight)};
}
inline Quants quants(const block_q4_1& b) {
  const uint8x16_t v = vld1q_u8(b.qs);
  return {s8(vandq_u8(v, vdupq_n_u8(15))), s8(vshrq_n_u8(v, 4))};
}
inline Quants quants(const block_q5_1& b) {
  const uint8x16_t v = vld1q_u8(b.qs);
  return {s8(vorrq_u8(vandq_u8(v, vdupq_n_u8(15)), fifth_bits(b.qh, 0))),
          s8(vorrq_u8(vshrq_n_u8(v, 4), fifth_bits(b.qh, 1)))};
}
inline Quants quants(const block_q5_0& b) {
  const uint8x16_t v = vld1q_u8(b.qs);
  const int8x16_t sixteen = vdupq_n_s8(16);
  return {vsubq_s8(s8(vorrq_u8(vandq_u8(v, vdupq_n_u8(15)), fifth_bits(b.qh, 0))), sixteen),
          vsubq_s8(s8(vorrq_u8(vshrq_n_u8(v, 4), fifth_bits(b.qh, 1))), sixteen)};
}
inline Quants quants(const block_q8_0& b) { return {vld1q_s8(b.qs), vld1q_s8(b.qs + 16)}; }

template <class B>
constexpr bool kHasMin = requires(const B& b) { b.m; };

template <class B>
inline float32x4_t step(float32x4_t acc, float* mins, const B& b, const block_q8_act& x) {
  const Quants q = quants(b);
  const int32x4_t s = dot16(dot16(vdupq_n_s32(0), q.lo, vld1q_s8(x.qs)), q.hi, vld1q_s8(x.qs + 16));
  if constexpr (kHasMin<B>) *mins += f16(b.m) * x.s;
  return vfmaq_n_f32(acc, vcvtq_f32_s32(s), f16(b.d) * x.d);
}

template <class B>
float dot32(const void* w, const void* xv, int64_t K) {
  const auto* b = (const B*)w;
  const auto* x = (const block_q8_act*)xv;
  const int64_t nb = K / 32;
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
  float mins = 0;
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {  // two independent chains
    acc0 = step(acc0, &mins, b[i], x[i]);
    acc1 = step(acc1, &mins, b[i + 1], x[i + 1]);
  }
  if (i < nb) acc0 = step(acc0, &mins, b[i], x[i]);
  return vaddvq_f32(vaddq_f32(acc0, acc1)) + mins;
}

float dot_q4_K(const void* w, const void* xv, int64_t K) {
  const auto* b = (const block_q4_K*)w;
  const auto* x = (const block_q8_K*)xv;
  const uint8x16_t low4 = vdupq_n_u8(15);
  float32x4_t acc = vdupq_n_f32(0);
  float mins = 0;
  for (int64_t i = 0; i < K / 256; ++i) {
    int sc[8], msum = 0;
    for (int s = 0; s < 8; ++s) {
      int m;
      osprey_k4_scale_min(s, b[i].scales, &sc[s], &m);
      msum += m * (x[i].bsums[2 * s] + x[i].bsums[2 * s + 1]);
    }
    int32x4_t sumi = vdupq_n_s32(0);
    for (int j = 0; j < 4; ++j) {  // 32 bytes of qs: sub-block 2j (low nibbles), 2j+1 (high)
      const uint8x16_t q0 = vld1q_u8(b[i].qs + 32 * j), q1 = vld1q_u8(b[i].qs + 32 * j + 16);
      const int8_t* y = x[i].qs + 64 * j;
      const int32x4_t plo =
          dot16(dot16(vdupq_n_s32(0), s8(vandq_u8(q0, low4)), vld1q_s8(y)), s8(vandq_u8(q1, low4)), vld1q_s8(y + 16));
      const int32x4_t phi =
          dot16(dot16(vdupq_n_s32(0), s8(vshrq_n_u8(q0, 4)), vld1q_s8(y + 32)), s8(vshrq_n_u8(q1, 4)), vld1q_s8(y + 48));
      sumi = vmlaq_n_s32(sumi, plo, sc[2 * j]);
      sumi = vmlaq_n_s32(sumi, phi, sc[2 * j + 1]);
    }
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(sumi), x[i].d * f16(b[i].d));
    mins += x[i].d * f16(b[i].dmin) * (float)msum;
  }
  return vaddvq_f32(acc) - mins;
}

float dot_q6_K(const void* w, const void* xv, int64_t K) {
  const auto* b = (const block_q6_K*)w;
  const auto* x = (const block_q8_K*)xv;
  const uint8x16_t low4 = vdupq_n_u8(15), two_bits = vdupq_n_u8(0x30);
  const int8x16_t off = vdupq_n_s8(32);
  float32x4_t acc = vdupq_n_f32(0);
  for (int64_t i = 0; i < K / 256; ++i) {
    int32x4_t sumi = vdupq_n_s32(0);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = b[i].ql + 64 * h;
      const uint8_t* qh = b[i].qh + 32 * h;
      const int8_t* sc = b[i].scales + 8 * h;
      const int8_t* y = x[i].qs + 128 * h;
      for (int l = 0; l < 2; ++l) {  // elements 16l..16l+15 of each 32-element group g
        const uint8x16_t a = vld1q_u8(ql + 16 * l), c = vld1q_u8(ql + 32 + 16 * l), hb = vld1q_u8(qh + 16 * l);
        const int8x16_t q[4] = {
            vsubq_s8(s8(vorrq_u8(vandq_u8(a, low4), vandq_u8(vshlq_n_u8(hb, 4), two_bits))), off),
            vsubq_s8(s8(vorrq_u8(vandq_u8(c, low4), vandq_u8(vshlq_n_u8(hb, 2), two_bits))), off),
            vsubq_s8(s8(vorrq_u8(vshrq_n_u8(a, 4), vandq_u8(hb, two_bits))), off),
            vsubq_s8(s8(vorrq_u8(vshrq_n_u8(c, 4), vandq_u8(vshrq_n_u8(hb, 2), two_bits))), off),
        };
        for (int g = 0; g < 4; ++g)  // scale of element 32g + 16l + k (k < 16): sc[2g + l]
          sumi = vmlaq_n_s32(sumi, dot16(vdupq_n_s32(0), q[g], vld1q_s8(y + 32 * g + 16 * l)), sc[2 * g + l]);
      }
    }
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(sumi), x[i].d * f16(b[i].d));
  }
  return vaddvq_f32(acc);
}

float dot_f32(const float* a, const float* b, int64_t n) {
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0), acc2 = vdupq_n_f32(0), acc3 = vdupq_n_f32(0);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
    acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    acc2 = vfmaq_f32(acc2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
    acc3 = vfmaq_f32(acc3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
  }
  for (; i + 4 <= n; i += 4) acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
  float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
  for (; i < n; ++i) y[i] += a * x[i];
}

inline float32x4_t load_f16x4(const uint16_t* h) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h))); }

void f16_row(const uint16_t* h, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, load_f16x4(h + i));
  for (; i < n; ++i) out[i] = f16(h[i]);
}

float dot_f16(const uint16_t* w, const float* x, int64_t n) {
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    acc0 = vfmaq_f32(acc0, load_f16x4(w + i), vld1q_f32(x + i));
    acc1 = vfmaq_f32(acc1, load_f16x4(w + i + 4), vld1q_f32(x + i + 4));
  }
  for (; i + 4 <= n; i += 4) acc0 = vfmaq_f32(acc0, load_f16x4(w + i), vld1q_f32(x + i));
  float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
  for (; i < n; ++i) sum += f16(w[i]) * x[i];
  return sum;
}

}  // namespace

bool built() { return true; }

const VecF32* vec_f32() {
  static const VecF32 v{dot_f32, axpy, f16_row, dot_f16};
  return &v;
}

VecDotFn vec_dot_for(DType w) {
  switch (w) {
    case DType::Q4_0: return dot32<block_q4_0>;
    case DType::Q4_1: return dot32<block_q4_1>;
    case DType::Q5_0: return dot32<block_q5_0>;
    case DType::Q5_1: return dot32<block_q5_1>;
    case DType::Q8_0: return dot32<block_q8_0>;
    case DType::Q4_K: return dot_q4_K;
    case DType::Q6_K: return dot_q6_K;
    default: return nullptr;
  }
}

}  // namespace osprey::kernels::OSPREY_NEON_NS

#else  // not aarch64, or the dotprod copy without +dotprod: the dispatcher skips it

namespace osprey::kernels::OSPREY_NEON_NS {
bool built() { return false; }
VecDotFn vec_dot_for(DType) { return nullptr; }
const VecF32* vec_f32() { return nullptr; }
}  // namespace osprey::kernels::OSPREY_NEON_NS

#endif
