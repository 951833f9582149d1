// AVX2 + FMA + F16C f32 / f16 vector primitives and the F16 GEMM tile (this file alone is
// built with those flags; the dispatcher only calls it on CPUs that have them). F16 weights
// are widened to f32 exactly (vcvtph2ps) and FMA'd in f32.
#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "kernels/cpu/float_gemm.h"
#include "kernels/cpu/quant_dot.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include "kernels/cpu/x86_helpers.h"

namespace osprey::kernels::avx2 {
namespace {

// a * b + c rounded once, written out so dot_f32's scalar tail rounds the same whatever the
// compiler would contract.
inline float fma1(float a, float b, float c) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

float dot_f32(const float* a, const float* b, int64_t n) {
  int64_t i = 0;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
         acc3 = _mm256_setzero_ps();
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) sum = fma1(a[i], b[i], sum);
  return sum;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  const __m256 va = _mm256_set1_ps(a);
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

void f16_row(const uint16_t* h, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(h + i))));
  for (; i < n; ++i) out[i] = _cvtsh_ss(h[i]);
}

float dot_f16(const uint16_t* w, const float* x, int64_t n) {
  int64_t i = 0;
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(w + i))), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(w + i + 8))), _mm256_loadu_ps(x + i + 8), a1);
  }
  float sum = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) sum += _cvtsh_ss(w[i]) * x[i];
  return sum;
}

inline __m256 widen_f16(__m128i h) { return _mm256_cvtph_ps(h); }
// bf16 is the top half of an f32: widening is exact.
inline __m256 widen_bf16(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }

float dot_bf16(const uint16_t* w, const float* x, int64_t n) {
  int64_t i = 0;
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(widen_bf16(_mm_loadu_si128((const __m128i*)(w + i))), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(widen_bf16(_mm_loadu_si128((const __m128i*)(w + i + 8))), _mm256_loadu_ps(x + i + 8), a1);
  }
  float sum = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) {
    const uint32_t bits = (uint32_t)w[i] << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    sum += f * x[i];
  }
  return sum;
}

// The GEMM for 16-bit float weights (F16, BF16) against f32 activations: every result is the
// fma chain over k = 0..K-1 from 0 that gemm_float_reference() defines (see
// float_dot_avx512.cpp for the layout: a k-major f32 panel of 16 rows per K-block, two ymm of
// rows x 6 tokens in 12 registers, broadcast activations).
constexpr int kPanelRows = 16;
constexpr int kTileCols = 6;
constexpr int64_t kBlockK = 1024;  // long K-blocks: fewer reloads of the sums (+20% on Zen 4)

// out[c] (c < 8) = column c of the 8 x 8 block whose rows are r[0..7].
inline void transpose8(__m256 (&r)[8]) {
  __m256 t[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {  // r[4i + j], 128-bit lane L: rows 4i..4i+3 of column 4L + j
    r[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x20);
    t[4 + j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x31);
  }
  for (int j = 0; j < 8; ++j) r[j] = t[j];
}

// Rows [0, nr) of the weight block (row stride ws bytes, columns k0 .. k0 + kb) as f32,
// k-major: panel[k * 16 + r]; rows nr..15 are zero.
template <__m256 (*Widen)(__m128i)>
void pack_panel(const uint8_t* w, size_t ws, int nr, int64_t k0, int64_t kb, float* panel) {
  for (int half = 0; half < 2; ++half)
    for (int64_t kk = 0; kk < kb; kk += 8) {
      const int64_t n = std::min<int64_t>(8, kb - kk);
      __m256 r[8];
      for (int i = 0; i < 8; ++i) {
        const int row = 8 * half + i;
        const uint16_t* src = (const uint16_t*)(w + row * ws) + k0 + kk;
        if (row >= nr) {
          r[i] = _mm256_setzero_ps();
        } else if (n == 8) {
          r[i] = Widen(_mm_loadu_si128((const __m128i*)src));
        } else {
          uint16_t tmp[8] = {};
          std::memcpy(tmp, src, (size_t)n * 2);
          r[i] = Widen(_mm_loadu_si128((const __m128i*)tmp));
        }
      }
      transpose8(r);
      for (int64_t j = 0; j < n; ++j) _mm256_store_ps(panel + (kk + j) * kPanelRows + 8 * half, r[j]);
    }
}

// Rows 0..15 of the panel against nc <= 6 activation rows x[c] + k0 over kb values of k,
// adding to y[c * ldy + r] for r < nr (or starting from zero on the first K-block). The six
// columns' sums are named variables, not arrays: GCC 12 keeps an array of these ymm sums in
// memory and stores every one of them at every k, which halved this tile's speed (measured
// on Zen 4: 24 -> 53 GFMA/s per core). Columns c >= nc repeat column 0 and are not stored.
void tile6(const float* panel, int64_t kb, const float* const* x, bool first, float* y, int64_t ldy, int nr, int nc) {
  const float* xc[kTileCols];
  for (int c = 0; c < kTileCols; ++c) xc[c] = x[c < nc ? c : 0];
  alignas(32) float edge[kPanelRows] = {};
  // y's rows for column c as two ymm (zero on the first K-block or past nc).
  const auto load = [&](int c, __m256& lo, __m256& hi) {
    lo = hi = _mm256_setzero_ps();
    if (first || c >= nc) return;
    const float* yc = y + c * ldy;
    if (nr < kPanelRows) {  // a ragged last panel: copy the rows that exist
      std::memcpy(edge, yc, (size_t)nr * 4);
      yc = edge;
    }
    lo = _mm256_loadu_ps(yc);
    hi = _mm256_loadu_ps(yc + 8);
  };
  __m256 a00, a01, a10, a11, a20, a21, a30, a31, a40, a41, a50, a51;
  load(0, a00, a01), load(1, a10, a11), load(2, a20, a21), load(3, a30, a31), load(4, a40, a41), load(5, a50, a51);
  const float *x0 = xc[0], *x1 = xc[1], *x2 = xc[2], *x3 = xc[3], *x4 = xc[4], *x5 = xc[5];
  for (int64_t k = 0; k < kb; ++k) {
    const __m256 w0 = _mm256_load_ps(panel + k * kPanelRows), w1 = _mm256_load_ps(panel + k * kPanelRows + 8);
    __m256 b = _mm256_broadcast_ss(x0 + k);
    a00 = _mm256_fmadd_ps(w0, b, a00), a01 = _mm256_fmadd_ps(w1, b, a01);
    b = _mm256_broadcast_ss(x1 + k);
    a10 = _mm256_fmadd_ps(w0, b, a10), a11 = _mm256_fmadd_ps(w1, b, a11);
    b = _mm256_broadcast_ss(x2 + k);
    a20 = _mm256_fmadd_ps(w0, b, a20), a21 = _mm256_fmadd_ps(w1, b, a21);
    b = _mm256_broadcast_ss(x3 + k);
    a30 = _mm256_fmadd_ps(w0, b, a30), a31 = _mm256_fmadd_ps(w1, b, a31);
    b = _mm256_broadcast_ss(x4 + k);
    a40 = _mm256_fmadd_ps(w0, b, a40), a41 = _mm256_fmadd_ps(w1, b, a41);
    b = _mm256_broadcast_ss(x5 + k);
    a50 = _mm256_fmadd_ps(w0, b, a50), a51 = _mm256_fmadd_ps(w1, b, a51);
  }
  const auto store = [&](int c, __m256 lo, __m256 hi) {
    if (c >= nc) return;
    float* yc = y + c * ldy;
    if (nr < kPanelRows) {
      _mm256_store_ps(edge, lo);
      _mm256_store_ps(edge + 8, hi);
      std::memcpy(yc, edge, (size_t)nr * 4);
    } else {
      _mm256_storeu_ps(yc, lo);
      _mm256_storeu_ps(yc + 8, hi);
    }
  };
  store(0, a00, a01), store(1, a10, a11), store(2, a20, a21), store(3, a30, a31), store(4, a40, a41), store(5, a50, a51);
}

template <int C>
void tile(const float* panel, int64_t kb, const float* const* x, bool first, float* y, int64_t ldy, int nr) {
  tile6(panel, kb, x, first, y, ldy, nr, C);
}

using TileFn = void (*)(const float*, int64_t, const float* const*, bool, float*, int64_t, int);
template <int... C>
constexpr std::array<TileFn, sizeof...(C)> make_tiles(std::integer_sequence<int, C...>) {
  return {tile<C + 1>...};
}
constexpr auto kTiles = make_tiles(std::make_integer_sequence<int, kTileCols>{});

template <__m256 (*Widen)(__m128i)>
void gemm_float(const void* w, size_t ws, int64_t rows, const void* x, size_t xs, int64_t cols, int64_t K, float* y,
                int64_t ldy) {
  const AlignedFloats panel(kBlockK * kPanelRows);
  gemm_float_blocked<kPanelRows, kTileCols, kBlockK>(w, ws, rows, x, xs, cols, K, y, ldy, panel.get(), pack_panel<Widen>,
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
  static const VecF32 v{dot_f32, axpy, f16_row, dot_f16, dot_bf16};
  return &v;
}

}  // namespace osprey::kernels::avx2

#else  // this compiler or target cannot build AVX2: the dispatcher falls back to scalar

namespace osprey::kernels::avx2 {
GemmFn float_gemm_for(DType) { return nullptr; }
const VecF32* vec_f32() { return nullptr; }
}  // namespace osprey::kernels::avx2

#endif
