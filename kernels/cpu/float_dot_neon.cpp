// AArch64 Advanced SIMD f32 / f16 / bf16 vector primitives and the F16/BF16 GEMM (aarch64
// builds only; plain armv8-a, so one copy serves both the neon and neon_dotprod variants).
// F16 weights are widened to f32 exactly (FCVTL), bf16 by a 16-bit shift (it is the top half
// of an f32), and FMA'd in f32.
#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "kernels/cpu/float_gemm.h"
#include "kernels/cpu/quant_dot.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>

namespace osprey::kernels::neon {
namespace {

inline float32x4_t widen_f16(uint16x4_t h) { return vcvt_f32_f16(vreinterpret_f16_u16(h)); }
inline float32x4_t widen_bf16(uint16x4_t h) { return vreinterpretq_f32_u32(vshll_n_u16(h, 16)); }

// Four floats at p, or the n < 4 there followed by zeros.
inline float32x4_t load_part(const float* p, int64_t n) {
  if (n >= 4) return vld1q_f32(p);
  float buf[4] = {};
  std::memcpy(buf, p, (size_t)n * 4);
  return vld1q_f32(buf);
}

// Four halves at h, or the n < 4 there followed by zeros.
inline uint16x4_t load_u16x4(const uint16_t* h, int64_t n) {
  if (n >= 4) return vld1_u16(h);
  uint16_t buf[4] = {};
  std::memcpy(buf, h, (size_t)n * 2);
  return vld1_u16(buf);
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

void f16_row(const uint16_t* h, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, widen_f16(vld1_u16(h + i)));
  if (i < n) {
    float f[4];
    vst1q_f32(f, widen_f16(load_u16x4(h + i, n - i)));
    std::memcpy(out + i, f, (size_t)(n - i) * 4);
  }
}

// dot(16-bit weights, f32 activations), two chains of four lanes; the tail is zero-padded
// (0 * x adds nothing), so no scalar conversion is needed.
template <float32x4_t (*Widen)(uint16x4_t)>
float dot_half(const uint16_t* w, const float* x, int64_t n) {
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    acc0 = vfmaq_f32(acc0, Widen(vld1_u16(w + i)), vld1q_f32(x + i));
    acc1 = vfmaq_f32(acc1, Widen(vld1_u16(w + i + 4)), vld1q_f32(x + i + 4));
  }
  for (; i + 4 <= n; i += 4) acc0 = vfmaq_f32(acc0, Widen(vld1_u16(w + i)), vld1q_f32(x + i));
  if (i < n) {
    float xt[4] = {};
    std::memcpy(xt, x + i, (size_t)(n - i) * 4);
    acc1 = vfmaq_f32(acc1, Widen(load_u16x4(w + i, n - i)), vld1q_f32(xt));
  }
  return vaddvq_f32(vaddq_f32(acc0, acc1));
}

// The GEMM for 16-bit float weights against f32 activations: every result is the plain chain
// acc = fma(w[k], x[k], acc) for k = 0..K-1 from 0 (gemm_float_reference's order), whatever
// tile, panel or K-block it falls in. A panel of 16 weight rows is widened once per K-block
// and stored k-major (panel[k * 16 + r]); a tile of 16 rows x 5 tokens keeps 20 sums in
// registers, and takes each token's activations four k at a time into one register whose
// lanes are the FMA multipliers (FMLA by element), in k order: 16 panel loads + 5 activation
// loads per 80 four-lane FMAs, 29 of the 32 vector registers. (The unroll pragmas keep GCC
// from leaving the accumulator arrays in memory.)
constexpr int kPanelRows = 16;
constexpr int kTileCols = 5;
constexpr int64_t kBlockK = 256;  // 16 KiB panel

// Rows [0, nr) of the weight block (row stride ws bytes, columns k0 .. k0 + kb) as f32,
// k-major; rows nr..15 are zero. Four rows x four k at a time, transposed in registers.
template <float32x4_t (*Widen)(uint16x4_t)>
void pack_panel(const uint8_t* w, size_t ws, int nr, int64_t k0, int64_t kb, float* panel) {
  for (int r0 = 0; r0 < kPanelRows; r0 += 4)
    for (int64_t k = 0; k < kb; k += 4) {
      const int64_t n = std::min<int64_t>(4, kb - k);
      float32x4_t v[4];
      for (int i = 0; i < 4; ++i)
        v[i] = r0 + i < nr ? Widen(load_u16x4((const uint16_t*)(w + (size_t)(r0 + i) * ws) + k0 + k, n))
                           : vdupq_n_f32(0);
      const float32x4_t t0 = vtrn1q_f32(v[0], v[1]), t1 = vtrn2q_f32(v[0], v[1]);
      const float32x4_t t2 = vtrn1q_f32(v[2], v[3]), t3 = vtrn2q_f32(v[2], v[3]);
      auto pair = [](float32x4_t a, float32x4_t b, bool hi) {
        const float64x2_t da = vreinterpretq_f64_f32(a), db = vreinterpretq_f64_f32(b);
        return vreinterpretq_f32_f64(hi ? vtrn2q_f64(da, db) : vtrn1q_f64(da, db));
      };
      const float32x4_t col[4] = {pair(t0, t2, false), pair(t1, t3, false), pair(t0, t2, true), pair(t1, t3, true)};
      for (int j = 0; j < 4; ++j) vst1q_f32(panel + (k + j) * kPanelRows + r0, col[j]);  // zeros past kb
    }
}

// acc[c][v] (rows 4v..4v+3, token c) += panel row-vectors at k times lane L of xv[c].
template <int C, int L>
inline void fma_lane(float32x4_t (&acc)[C][4], const float* pk, const float32x4_t (&xv)[C]) {
  const float32x4_t w0 = vld1q_f32(pk), w1 = vld1q_f32(pk + 4), w2 = vld1q_f32(pk + 8), w3 = vld1q_f32(pk + 12);
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    acc[c][0] = vfmaq_laneq_f32(acc[c][0], w0, xv[c], L);
    acc[c][1] = vfmaq_laneq_f32(acc[c][1], w1, xv[c], L);
    acc[c][2] = vfmaq_laneq_f32(acc[c][2], w2, xv[c], L);
    acc[c][3] = vfmaq_laneq_f32(acc[c][3], w3, xv[c], L);
  }
}

// Rows 0..15 of the panel against C activation rows x[c] + k0 over kb values of k, adding to
// y[c * ldy + r] for r < nr (or starting from zero on the first K-block). A last partial
// group of four k meets zero activations and zero panel rows: fma(0, 0, acc) is acc, since a
// chain that starts from +0 never holds -0.
template <int C>
void tile(const float* panel, int64_t kb, const float* const* x, bool first, float* y, int64_t ldy, int nr) {
  float32x4_t acc[C][4];
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    float in[kPanelRows] = {};
    if (!first) std::memcpy(in, y + c * ldy, (size_t)nr * 4);
    for (int v = 0; v < 4; ++v) acc[c][v] = vld1q_f32(in + 4 * v);
  }
  for (int64_t k = 0; k < kb; k += 4) {
    float32x4_t xv[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) xv[c] = k + 4 <= kb ? vld1q_f32(x[c] + k) : load_part(x[c] + k, kb - k);
    const float* pk = panel + k * kPanelRows;
    fma_lane<C, 0>(acc, pk, xv);
    fma_lane<C, 1>(acc, pk + kPanelRows, xv);
    fma_lane<C, 2>(acc, pk + 2 * kPanelRows, xv);
    fma_lane<C, 3>(acc, pk + 3 * kPanelRows, xv);
  }
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    float out[kPanelRows];
    for (int v = 0; v < 4; ++v) vst1q_f32(out + 4 * v, acc[c][v]);
    std::memcpy(y + c * ldy, out, (size_t)nr * 4);
  }
}

using TileFn = void (*)(const float*, int64_t, const float* const*, bool, float*, int64_t, int);
template <int... C>
constexpr std::array<TileFn, sizeof...(C)> make_tiles(std::integer_sequence<int, C...>) {
  return {tile<C + 1>...};
}
constexpr auto kTiles = make_tiles(std::make_integer_sequence<int, kTileCols>{});

template <float32x4_t (*Widen)(uint16x4_t)>
void gemm_float(const void* w, size_t ws, int64_t rows, const void* x, size_t xs, int64_t cols, int64_t K, float* y,
                int64_t ldy) {
  alignas(64) float panel[kBlockK * kPanelRows];
  gemm_float_blocked<kPanelRows, kTileCols, kBlockK>(w, ws, rows, x, xs, cols, K, y, ldy, panel, pack_panel<Widen>,
                                                     kTiles);
}

}  // namespace

GemmFn float_gemm_for(DType w) {
  switch (w) {
    case DType::F16: return gemm_float<widen_f16>;
    case DType::BF16: return gemm_float<widen_bf16>;
    default: return nullptr;
  }
}

const VecF32* vec_f32() {
  static const VecF32 v{dot_f32, axpy, f16_row, dot_half<widen_f16>, dot_half<widen_bf16>};
  return &v;
}

}  // namespace osprey::kernels::neon

#else  // not an Advanced SIMD target: the dispatcher skips it

namespace osprey::kernels::neon {
GemmFn float_gemm_for(DType) { return nullptr; }
const VecF32* vec_f32() { return nullptr; }
}  // namespace osprey::kernels::neon

#endif
