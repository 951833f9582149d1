// AArch64 Advanced SIMD attention inner loops (aarch64 builds only; plain armv8-a, so the
// neon and neon_dotprod variants share this table). The plan of attention_avx2.cpp with 4
// lanes: cache rows to f32 once per block, dots with the head dimension in the lanes, a
// polynomial exp, value rows accumulated into 4 query rows x 16 lanes of registers; an f16
// cache can also be read directly by the same loops. NEON has no masked loads: partial
// vectors go through small zero-padded buffers.
#include "kernels/cpu/attention_kernels.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/quant_blocks.h"

namespace osprey::kernels::neon {
namespace {

// Four floats at p, or the n < 4 there followed by `pad`.
inline float32x4_t load_part(const float* p, int64_t n, float pad = 0.f) {
  if (n >= 4) return vld1q_f32(p);
  float buf[4] = {pad, pad, pad, pad};
  std::memcpy(buf, p, (size_t)n * 4);
  return vld1q_f32(buf);
}

inline void store_part(float* p, int64_t n, float32x4_t v) {
  if (n >= 4) return vst1q_f32(p, v);
  float buf[4];
  vst1q_f32(buf, v);
  std::memcpy(p, buf, (size_t)n * 4);
}

// e^x as in attention_avx2.cpp (Cody-Waite reduction, Taylor series to r^7), with 2^k put
// together in the exponent bits: results below the smallest normal float (x < ln(FLT_MIN), and
// -inf) are 0. FMAXNM / FMINNM clamp a NaN to the bound, as the x86 max/min do.
inline float32x4_t exp_ps(float32x4_t x) {
  const float32x4_t lo = vdupq_n_f32(-87.33654f);  // ln(FLT_MIN)
  const uint32x4_t tiny = vcltq_f32(x, lo);         // also catches -inf
  x = vminnmq_f32(vmaxnmq_f32(x, lo), vdupq_n_f32(88.37f));
  const float32x4_t k = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
  float32x4_t r = vfmsq_f32(x, k, vdupq_n_f32(0.693359375f));
  r = vfmsq_f32(r, k, vdupq_n_f32(-2.12194440e-4f));
  float32x4_t p = vdupq_n_f32(1.0f / 5040);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 720), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 120), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 24), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 6), p, r);
  p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(k), vdupq_n_s32(127)), 23);
  const float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(e));
  return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), tiny));
}

inline float32x4_t widen_f16(uint16x4_t h) { return vcvt_f32_f16(vreinterpret_f16_u16(h)); }
inline float32x4_t widen_bf16(uint16x4_t h) { return vreinterpretq_f32_u32(vshll_n_u16(h, 16)); }

// 16-bit rows widened four at a time; the tail goes through a zero-padded buffer.
template <float32x4_t (*Widen)(uint16x4_t)>
void half_rows(const uint8_t* src, size_t stride, int64_t n, int64_t D, float* out) {
  for (int64_t j = 0; j < n; ++j) {
    const uint16_t* h = (const uint16_t*)(src + (size_t)j * stride);
    float* o = out + j * D;
    int64_t i = 0;
    for (; i + 4 <= D; i += 4) vst1q_f32(o + i, Widen(vld1_u16(h + i)));
    if (i < D) {
      uint16_t buf[4] = {};
      std::memcpy(buf, h + i, (size_t)(D - i) * 2);
      store_part(o + i, D - i, Widen(vld1_u16(buf)));
    }
  }
}

inline float f16_scale(uint16_t d) { return vgetq_lane_f32(widen_f16(vdup_n_u16(d)), 0); }

// Eight signed bytes times d, stored as eight floats (the product rounds once, as in
// dequantize_row's d * q).
inline void store_scaled(float* o, int8x8_t q, float d) {
  const int16x8_t w = vmovl_s8(q);
  vst1q_f32(o, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(w))), d));
  vst1q_f32(o + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(w)), d));
}

void q8_0_rows(const uint8_t* src, size_t stride, int64_t n, int64_t D, float* out) {
  for (int64_t j = 0; j < n; ++j) {
    const block_q8_0* b = (const block_q8_0*)(src + (size_t)j * stride);
    float* o = out + j * D;
    for (int64_t i = 0; i < D / 32; ++i) {
      const float d = f16_scale(b[i].d);
      const int8x16_t q0 = vld1q_s8(b[i].qs), q1 = vld1q_s8(b[i].qs + 16);
      store_scaled(o + 32 * i, vget_low_s8(q0), d);
      store_scaled(o + 32 * i + 8, vget_high_s8(q0), d);
      store_scaled(o + 32 * i + 16, vget_low_s8(q1), d);
      store_scaled(o + 32 * i + 24, vget_high_s8(q1), d);
    }
  }
}

void q4_0_rows(const uint8_t* src, size_t stride, int64_t n, int64_t D, float* out) {
  const int8x16_t eight = vdupq_n_s8(8);
  for (int64_t j = 0; j < n; ++j) {
    const block_q4_0* b = (const block_q4_0*)(src + (size_t)j * stride);
    float* o = out + j * D;
    for (int64_t i = 0; i < D / 32; ++i) {
      const float d = f16_scale(b[i].d);
      const uint8x16_t v = vld1q_u8(b[i].qs);  // element j low nibble, j + 16 high nibble
      const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15))), eight);
      const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
      store_scaled(o + 32 * i, vget_low_s8(lo), d);
      store_scaled(o + 32 * i + 8, vget_high_s8(lo), d);
      store_scaled(o + 32 * i + 16, vget_low_s8(hi), d);
      store_scaled(o + 32 * i + 24, vget_high_s8(hi), d);
    }
  }
}

bool rows_to_f32(DType t, const uint8_t* src, size_t stride, int64_t n, int64_t D, float* out) {
  switch (t) {
    case DType::F16: half_rows<widen_f16>(src, stride, n, D, out); return true;
    case DType::BF16: half_rows<widen_bf16>(src, stride, n, D, out); return true;
    case DType::Q8_0:
      if (D % 32) return false;
      q8_0_rows(src, stride, n, D, out);
      return true;
    case DType::Q4_0:
      if (D % 32) return false;
      q4_0_rows(src, stride, n, D, out);
      return true;
    default: return false;
  }
}

// Where scores / accumulate read cache rows: f32 rows (converted blocks), or f16 cache rows
// widened as they are used (generation, where converting a whole block first costs more than
// it saves). A partial vector is zero-padded either way, so both give the same bits.
struct F32Rows {
  const float* base;
  int64_t ld;
  float32x4_t load(int64_t j, int64_t i) const { return vld1q_f32(base + j * ld + i); }
  float32x4_t load_part(int64_t j, int64_t i, int64_t n) const { return neon::load_part(base + j * ld + i, n); }
};
struct F16Rows {
  const uint8_t* base;
  size_t stride;
  const uint16_t* row(int64_t j) const { return (const uint16_t*)(base + (size_t)j * stride); }
  float32x4_t load(int64_t j, int64_t i) const { return widen_f16(vld1_u16(row(j) + i)); }
  float32x4_t load_part(int64_t j, int64_t i, int64_t n) const {
    if (n >= 4) return load(j, i);
    uint16_t buf[4] = {};
    std::memcpy(buf, row(j) + i, (size_t)n * 2);
    return widen_f16(vld1_u16(buf));
  }
};

// N query rows against key row j: two chains of four lanes per row (even and odd groups of
// four), the zero-padded tail into the first. The same sequence for every N.
template <int N, class Rows>
inline void dots(const float* q, int64_t D, const Rows& k, int64_t j, float scale, float* s, int64_t lds) {
  float32x4_t a[N][2];
  for (int r = 0; r < N; ++r) a[r][0] = a[r][1] = vdupq_n_f32(0);
  int64_t i = 0;
  for (; i + 8 <= D; i += 8) {
    const float32x4_t k0 = k.load(j, i), k1 = k.load(j, i + 4);
    for (int r = 0; r < N; ++r) {
      a[r][0] = vfmaq_f32(a[r][0], vld1q_f32(q + r * D + i), k0);
      a[r][1] = vfmaq_f32(a[r][1], vld1q_f32(q + r * D + i + 4), k1);
    }
  }
  for (; i < D; i += 4) {
    const float32x4_t kv = k.load_part(j, i, D - i);
    for (int r = 0; r < N; ++r) a[r][0] = vfmaq_f32(a[r][0], load_part(q + r * D + i, D - i), kv);
  }
  for (int r = 0; r < N; ++r) s[r * lds] = vaddvq_f32(vaddq_f32(a[r][0], a[r][1])) * scale;
}

template <class Rows>
void scores(const float* q, int64_t R, const Rows& k, int64_t n, int64_t D, float scale, float* s, int64_t lds) {
  for (int64_t j = 0; j < n; ++j)
    for_row_tiles<4>(R, [&]<int NR>(int64_t r) { dots<NR>(q + r * D, D, k, j, scale, s + r * lds + j, lds); });
}

float exp_sum(float* s, int64_t n, float m) {
  const float32x4_t mv = vdupq_n_f32(m);
  float32x4_t sum = vdupq_n_f32(0);
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float32x4_t e = exp_ps(vsubq_f32(vld1q_f32(s + j), mv));
    vst1q_f32(s + j, e);
    sum = vaddq_f32(sum, e);
  }
  if (j < n) {  // the tail padded with -inf, whose exp is 0
    const float32x4_t e = exp_ps(vsubq_f32(load_part(s + j, n - j, -INFINITY), mv));
    store_part(s + j, n - j, e);
    sum = vaddq_f32(sum, e);
  }
  return vaddvq_f32(sum);
}

// Rows 0..NR of acc, lanes [i, i + 4 * NV) of which `left` are inside Dv (all of them unless
// Partial): for each cell j in order, acc += p * v by FMA, so a row's result does not depend
// on NR.
template <int NR, int NV, bool Partial, class Rows>
inline void axpy_tile(const float* p, int64_t ldp, const Rows& v, int64_t n, int64_t Dv, int64_t i, int64_t left,
                      float* acc) {
  auto part = [&](int c) { return Partial ? std::min<int64_t>(4, left - 4 * c) : 4; };
  float32x4_t a[NR][NV];
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NV; ++c) a[r][c] = load_part(acc + r * Dv + i + 4 * c, part(c));
  for (int64_t j = 0; j < n; ++j) {
    float32x4_t vv[NV];
    for (int c = 0; c < NV; ++c) vv[c] = Partial ? v.load_part(j, i + 4 * c, part(c)) : v.load(j, i + 4 * c);
    for (int r = 0; r < NR; ++r) {
      const float w = p[r * ldp + j];
      for (int c = 0; c < NV; ++c) a[r][c] = vfmaq_n_f32(a[r][c], vv[c], w);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NV; ++c) store_part(acc + r * Dv + i + 4 * c, part(c), a[r][c]);
}

template <int NR, class Rows>
inline void axpy_rows(const float* p, int64_t ldp, const Rows& v, int64_t n, int64_t Dv, float* acc) {
  int64_t i = 0;
  for (; i + 16 <= Dv; i += 16) axpy_tile<NR, 4, false>(p, ldp, v, n, Dv, i, 16, acc);
  const int64_t left = Dv - i;  // < 16
  if (left % 4 == 0) {
    switch (left / 4) {
      case 3: axpy_tile<NR, 3, false>(p, ldp, v, n, Dv, i, left, acc); break;
      case 2: axpy_tile<NR, 2, false>(p, ldp, v, n, Dv, i, left, acc); break;
      case 1: axpy_tile<NR, 1, false>(p, ldp, v, n, Dv, i, left, acc); break;
      default: break;
    }
  } else {  // a head size that is not a multiple of 4: rare, so one slow partial tile
    switch ((left + 3) / 4) {
      case 4: axpy_tile<NR, 4, true>(p, ldp, v, n, Dv, i, left, acc); break;
      case 3: axpy_tile<NR, 3, true>(p, ldp, v, n, Dv, i, left, acc); break;
      case 2: axpy_tile<NR, 2, true>(p, ldp, v, n, Dv, i, left, acc); break;
      default: axpy_tile<NR, 1, true>(p, ldp, v, n, Dv, i, left, acc); break;
    }
  }
}

template <class Rows>
void accumulate(const float* p, int64_t ldp, int64_t R, const Rows& v, int64_t n, int64_t Dv, float* acc) {
  for_row_tiles<4>(R, [&]<int NR>(int64_t r) { axpy_rows<NR>(p + r * ldp, ldp, v, n, Dv, acc + r * Dv); });
}

}  // namespace

const AttnKernels* attn_kernels() {
  static const AttnKernels k = attn_table<F32Rows, F16Rows>(
      "neon", rows_to_f32, exp_sum, nullptr,
      [](auto&&... a) { scores(a...); }, [](auto&&... a) { accumulate(a...); });
  return &k;
}

}  // namespace osprey::kernels::neon

#else

namespace osprey::kernels::neon {
const AttnKernels* attn_kernels() { return nullptr; }
}  // namespace osprey::kernels::neon

#endif
