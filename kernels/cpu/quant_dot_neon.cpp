// AArch64 Advanced SIMD integer dot products (aarch64 builds only). Each kernel reproduces
// quant_dot_scalar.cpp exactly in integers (same per-block integer sums), accumulating the
// scaled block sums in float.
//
// This file is compiled twice: as itself (namespace neon, baseline armv8-a, products by
// widening multiply-adds, always usable on aarch64) and through quant_dot_neon_dotprod.cpp
// with -march=armv8.2-a+dotprod (namespace neon_dotprod, SDOT via vdotq_s32), which the
// dispatcher calls only where the kernel reports HWCAP_ASIMDDP. The f32 / f16 / bf16
// primitives and the F16/BF16 GEMM need no SDOT and live once, in float_dot_neon.cpp.
#include <cmath>
#include <cstring>

#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/kquant_dot.h"
#include "kernels/cpu/kquant_low_dot.h"
#include "kernels/cpu/quant_dot.h"

#include "kernels/cpu/neon_helpers.h"

#if OSPREY_NEON_BUILD

namespace osprey::kernels::OSPREY_NEON_NS {
namespace {

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
// IQ4_NL / IQ4_XS: 16 bytes of nibbles as their signed levels (low nibbles, high nibbles).
inline Quants iq4_levels(const uint8_t* qs) {
  const uint8x16_t v = vld1q_u8(qs);
  return {iq4_levels_of(vandq_u8(v, vdupq_n_u8(15))), iq4_levels_of(vshrq_n_u8(v, 4))};
}
inline Quants quants(const block_iq4_nl& b) { return iq4_levels(b.qs); }

template <class B>
constexpr bool kHasMin = requires(const B& b) { b.m; };

// R weight rows against C activation rows, out[r * C + c] = dot(b[r], xs[c]). Each block is
// decoded once per row and each activation block loaded once per column; every (row, column)
// pair goes through the same operations whatever R and C are (blocks alternating between two
// chains, a trailing odd block into the first; the minimums summed block by block), so the
// one-row kernel (1 x 1), the four-row kernel (1 x 4) and the GEMM tiles agree bit for bit.
template <class B, int R, int C>
void tile32(const B* const* b, const block_q8_act* const* xs, int64_t K, float* out) {
  float32x4_t acc[2][R][C];
  float mins[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      acc[0][r][c] = acc[1][r][c] = vdupq_n_f32(0);
      mins[r][c] = 0;
    }
  auto step = [&](int chain, int64_t i) __attribute__((always_inline)) {
    Quants q[R];
    float dw[R];
    for (int r = 0; r < R; ++r) {
      q[r] = quants(b[r][i]);
      dw[r] = f16(b[r][i].d);
    }
    for (int c = 0; c < C; ++c) {
      const block_q8_act& x = xs[c][i];
      const int8x16_t ylo = vld1q_s8(x.qs), yhi = vld1q_s8(x.qs + 16);
      for (int r = 0; r < R; ++r) {
        const int32x4_t s = row_dot16(row_dot16(vdupq_n_s32(0), q[r].lo, ylo), q[r].hi, yhi);
        // Written as one fused multiply-add so no kernel depends on the compiler contracting.
        if constexpr (kHasMin<B>) mins[r][c] = std::fma(f16(b[r][i].m), x.s, mins[r][c]);
        acc[chain][r][c] = vfmaq_n_f32(acc[chain][r][c], vcvtq_f32_s32(s), dw[r] * x.d);
      }
    }
  };
  const int64_t nb = K / 32;
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {  // two independent chains
    step(0, i);
    step(1, i + 1);
  }
  if (i < nb) step(0, i);
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) out[r * C + c] = vaddvq_f32(vaddq_f32(acc[0][r][c], acc[1][r][c])) + mins[r][c];
}

template <class B>
constexpr VecDotFn dot32 = tile_dot1<B, block_q8_act, tile32<B, 1, 1>>;
template <class B>
constexpr VecDot4Fn dot32x4 = tile_dot4<B, block_q8_act, tile32<B, 1, 4>>;

// 2 x 4 tiles: 16 accumulators, 4 decoded weight vectors and 2 activation vectors leave room
// in the 32 registers for the widening products of the path without SDOT.
template <class B>
constexpr GemmFn gemm32 = tile_gemm<B, block_q8_act, 2, 4, tile32<B, 2, 4>>;

// K-quant dot of weight row b with activation rows xs[0..kRows): each super-block's weights
// are decoded once; every row goes through exactly the one-row kernel's (kRows = 1) sequence.
template <int kRows>
void q4_K_cols(const block_q4_K* b, const block_q8_K* const* xs, int64_t K, float* out) {
  const uint8x16_t low4 = vdupq_n_u8(15);
  float32x4_t acc[kRows];
  float mins[kRows];
  for (int r = 0; r < kRows; ++r) {
    acc[r] = vdupq_n_f32(0);
    mins[r] = 0;
  }
  for (int64_t i = 0; i < K / 256; ++i) {
    int sc[8], m[8];
    for (int s = 0; s < 8; ++s) osprey_k4_scale_min(s, b[i].scales, &sc[s], &m[s]);
    // 32 bytes of qs per j: sub-block 2j in the low nibbles, 2j+1 in the high ones.
    int8x16_t lo[4][2], hi[4][2];
    for (int j = 0; j < 4; ++j)
      for (int h = 0; h < 2; ++h) {
        const uint8x16_t q = vld1q_u8(b[i].qs + 32 * j + 16 * h);
        lo[j][h] = s8(vandq_u8(q, low4));
        hi[j][h] = s8(vshrq_n_u8(q, 4));
      }
    const float dw = f16(b[i].d), dmin = f16(b[i].dmin);
    for (int r = 0; r < kRows; ++r) {
      const block_q8_K& x = xs[r][i];
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
      acc[r] = vfmaq_n_f32(acc[r], vcvtq_f32_s32(sumi), x.d * dw);
      mins[r] += x.d * dmin * (float)msum;
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = vaddvq_f32(acc[r]) - mins[r];
}

template <int kRows>
void q6_K_cols(const block_q6_K* b, const block_q8_K* const* xs, int64_t K, float* out) {
  const uint8x16_t low4 = vdupq_n_u8(15), two_bits = vdupq_n_u8(0x30);
  const int8x16_t off = vdupq_n_s8(32);
  float32x4_t acc[kRows];
  for (int r = 0; r < kRows; ++r) acc[r] = vdupq_n_f32(0);
  for (int64_t i = 0; i < K / 256; ++i) {
    // q[h][l][g]: elements 128h + 32g + 16l .. + 15, with scale scales[8h + 2g + l].
    int8x16_t q[2][2][4];
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 2; ++l) {
        const uint8_t* ql = b[i].ql + 64 * h;
        const uint8x16_t a = vld1q_u8(ql + 16 * l), c = vld1q_u8(ql + 32 + 16 * l),
                         hb = vld1q_u8(b[i].qh + 32 * h + 16 * l);
        q[h][l][0] = vsubq_s8(s8(vorrq_u8(vandq_u8(a, low4), vandq_u8(vshlq_n_u8(hb, 4), two_bits))), off);
        q[h][l][1] = vsubq_s8(s8(vorrq_u8(vandq_u8(c, low4), vandq_u8(vshlq_n_u8(hb, 2), two_bits))), off);
        q[h][l][2] = vsubq_s8(s8(vorrq_u8(vshrq_n_u8(a, 4), vandq_u8(hb, two_bits))), off);
        q[h][l][3] = vsubq_s8(s8(vorrq_u8(vshrq_n_u8(c, 4), vandq_u8(vshrq_n_u8(hb, 2), two_bits))), off);
      }
    const float dw = f16(b[i].d);
    for (int r = 0; r < kRows; ++r) {
      const block_q8_K& x = xs[r][i];
      int32x4_t sumi = vdupq_n_s32(0);
      for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 2; ++l)
          for (int g = 0; g < 4; ++g)
            sumi = vmlaq_n_s32(sumi, row_dot16(vdupq_n_s32(0), q[h][l][g], vld1q_s8(x.qs + 128 * h + 32 * g + 16 * l)),
                               b[i].scales[8 * h + 2 * g + l]);
      acc[r] = vfmaq_n_f32(acc[r], vcvtq_f32_s32(sumi), x.d * dw);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = vaddvq_f32(acc[r]);
}

template <int kRows>
void iq4_xs_cols(const block_iq4_xs* b, const block_q8_K* const* xs, int64_t K, float* out) {
  float32x4_t acc[kRows];
  for (int r = 0; r < kRows; ++r) acc[r] = vdupq_n_f32(0);
  for (int64_t i = 0; i < K / 256; ++i) {
    Quants q[8];  // sub-block s: elements 32s..32s+15, 32s+16..32s+31
    int sc[8];
    for (int s = 0; s < 8; ++s) {
      q[s] = iq4_levels(b[i].qs + 16 * s);
      sc[s] = osprey_iq4xs_scale(&b[i], s);
    }
    const float dw = f16(b[i].d);
    for (int r = 0; r < kRows; ++r) {
      const block_q8_K& x = xs[r][i];
      int32x4_t sumi = vdupq_n_s32(0);
      for (int s = 0; s < 8; ++s) {
        const int8_t* y = x.qs + 32 * s;
        sumi = vmlaq_n_s32(sumi, row_dot16(row_dot16(vdupq_n_s32(0), q[s].lo, vld1q_s8(y)), q[s].hi, vld1q_s8(y + 16)), sc[s]);
      }
      acc[r] = vfmaq_n_f32(acc[r], vcvtq_f32_s32(sumi), x.d * dw);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = vaddvq_f32(acc[r]);
}

}  // namespace

bool built() { return true; }

#if defined(OSPREY_NEON_REQUIRE_DOTPROD)
// The float kernels (float_dot_neon.cpp) need no SDOT: this variant shares neon's.
const VecF32* vec_f32() { return neon::vec_f32(); }
GemmFn float_gemm_for(DType w) { return neon::float_gemm_for(w); }
#endif

VecDotFn vec_dot_for(DType w) {
  switch (w) {
    case DType::Q4_0: return dot32<block_q4_0>;
    case DType::Q4_1: return dot32<block_q4_1>;
    case DType::Q5_0: return dot32<block_q5_0>;
    case DType::Q5_1: return dot32<block_q5_1>;
    case DType::Q8_0: return dot32<block_q8_0>;
    case DType::IQ4_NL: return dot32<block_iq4_nl>;
    case DType::IQ4_XS: return cols_dot1<block_iq4_xs, block_q8_K, iq4_xs_cols<1>>;
    case DType::Q4_K: return cols_dot1<block_q4_K, block_q8_K, q4_K_cols<1>>;
    case DType::Q6_K: return cols_dot1<block_q6_K, block_q8_K, q6_K_cols<1>>;
    case DType::Q5_K: return kquant_vec_dot_for(w);  // kquant_dot_neon.cpp
    case DType::Q2_K: case DType::Q3_K: return low_kquant_vec_dot_for(w);  // kquant_low_dot_neon.cpp
    default: return nullptr;
  }
}

VecDot4Fn vec_dot4_for(DType w) {
  switch (w) {
    case DType::Q4_0: return dot32x4<block_q4_0>;
    case DType::Q4_1: return dot32x4<block_q4_1>;
    case DType::Q5_0: return dot32x4<block_q5_0>;
    case DType::Q5_1: return dot32x4<block_q5_1>;
    case DType::Q8_0: return dot32x4<block_q8_0>;
    case DType::IQ4_NL: return dot32x4<block_iq4_nl>;
    case DType::IQ4_XS: return cols_dot4<block_iq4_xs, block_q8_K, iq4_xs_cols<4>>;
    case DType::Q4_K: return cols_dot4<block_q4_K, block_q8_K, q4_K_cols<4>>;
    case DType::Q6_K: return cols_dot4<block_q6_K, block_q8_K, q6_K_cols<4>>;
    case DType::Q5_K: return kquant_vec_dot4_for(w);  // kquant_dot_neon.cpp
    case DType::Q2_K: case DType::Q3_K: return low_kquant_vec_dot4_for(w);  // kquant_low_dot_neon.cpp
    default: return nullptr;
  }
}

GemmFn gemm_for(DType w) {
  switch (w) {
    case DType::Q4_0: return gemm32<block_q4_0>;
    case DType::Q4_1: return gemm32<block_q4_1>;
    case DType::Q5_0: return gemm32<block_q5_0>;
    case DType::Q5_1: return gemm32<block_q5_1>;
    case DType::Q8_0: return gemm32<block_q8_0>;
    case DType::IQ4_NL: return gemm32<block_iq4_nl>;
    case DType::IQ4_XS: return cols_gemm<block_iq4_xs, block_q8_K, iq4_xs_cols<4>>;
    case DType::Q4_K: return cols_gemm<block_q4_K, block_q8_K, q4_K_cols<4>>;
    case DType::Q6_K: return cols_gemm<block_q6_K, block_q8_K, q6_K_cols<4>>;
    case DType::Q5_K: return kquant_gemm_for(w);  // kquant_dot_neon.cpp
    case DType::Q2_K: case DType::Q3_K: return low_kquant_gemm_for(w);  // kquant_low_dot_neon.cpp
    default: return nullptr;
  }
}

}  // namespace osprey::kernels::OSPREY_NEON_NS

#else  // not aarch64, or the dotprod copy without +dotprod: the dispatcher skips it

namespace osprey::kernels::OSPREY_NEON_NS {
bool built() { return false; }
VecDotFn vec_dot_for(DType) { return nullptr; }
VecDot4Fn vec_dot4_for(DType) { return nullptr; }
GemmFn gemm_for(DType) { return nullptr; }
#if defined(OSPREY_NEON_REQUIRE_DOTPROD)  // neon's own stubs are in float_dot_neon.cpp
const VecF32* vec_f32() { return nullptr; }
GemmFn float_gemm_for(DType) { return nullptr; }
#endif
}  // namespace osprey::kernels::OSPREY_NEON_NS

#endif
