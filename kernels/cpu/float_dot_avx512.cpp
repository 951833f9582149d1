// AVX-512 f32 / f16 vector primitives and the F16 GEMM tile; this file alone is built with
// the AVX-512 flags (see quant_dot_avx512.cpp) and the dispatcher only calls it on CPUs that
// have them. F16 weights are widened to f32 exactly (vcvtph2ps) and FMA'd in f32.
#include <algorithm>
#include <array>
#include <utility>

#include "kernels/cpu/float_gemm.h"
#include "kernels/cpu/quant_dot.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#include "kernels/cpu/avx512_intrin.h"

namespace osprey::kernels::avx512 {
namespace {

inline __mmask16 tail16(int64_t r) { return (__mmask16)((1u << r) - 1); }  // r < 16

// bf16 is the top half of an f32: widening is exact.
inline __m512 widen_bf16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }

float dot_f32(const float* a, const float* b, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(),
         acc3 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), acc2);
    acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), acc3);
  }
  for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
  if (i < n) {
    const __mmask16 m = tail16(n - i);
    acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

void axpy(float a, const float* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  if (i < n) {
    const __mmask16 m = tail16(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

void f16_row(const uint16_t* h, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(h + i))));
  if (i < n) {
    const __mmask16 m = tail16(n - i);
    _mm512_mask_storeu_ps(out + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, h + i)));
  }
}

float dot_f16(const uint16_t* w, const float* x, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(w + i))), _mm512_loadu_ps(x + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(w + i + 16))), _mm512_loadu_ps(x + i + 16),
                           acc1);
  }
  for (; i + 16 <= n; i += 16)
    acc0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(w + i))), _mm512_loadu_ps(x + i), acc0);
  if (i < n) {
    const __mmask16 m = tail16(n - i);
    acc1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + i)), _mm512_maskz_loadu_ps(m, x + i), acc1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

float dot_bf16(const uint16_t* w, const float* x, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(widen_bf16(_mm256_loadu_si256((const __m256i*)(w + i))), _mm512_loadu_ps(x + i), acc0);
    acc1 = _mm512_fmadd_ps(widen_bf16(_mm256_loadu_si256((const __m256i*)(w + i + 16))), _mm512_loadu_ps(x + i + 16),
                           acc1);
  }
  for (; i + 16 <= n; i += 16)
    acc0 = _mm512_fmadd_ps(widen_bf16(_mm256_loadu_si256((const __m256i*)(w + i))), _mm512_loadu_ps(x + i), acc0);
  if (i < n) {
    const __mmask16 m = tail16(n - i);
    acc1 = _mm512_fmadd_ps(widen_bf16(_mm256_maskz_loadu_epi16(m, w + i)), _mm512_maskz_loadu_ps(m, x + i), acc1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

// The GEMM for 16-bit float weights (F16, BF16) against f32 activations. Every result is the
// plain chain acc = fma(w[k], x[k], acc) for k = 0, 1, ..., K-1 from acc = 0 — the order of
// gemm_float_reference() in float_dot_scalar.cpp — whatever the tile, panel or K-block it
// falls in, so every ISA agrees bit for bit and a token's logits do not depend on the other
// tokens of a batch. (A one-token step is not a GEMM: the matmul streams dot_f16/dot_bf16,
// whose lane-parallel sum is within tolerance of this chain but not bit-equal to it.)
// That order is what makes the fast layout possible: a panel of kPanelRows weight rows is
// widened to f32 once per K-block and stored k-major (panel[k * 64 + r]), then each k costs
// four aligned loads and one broadcast per token for 64 rows x up to 6 tokens (24 of the 32
// zmm registers hold sums). Measured on Zen 4 (f16 helper, session 10): a 64 x 6 tile runs at
// ~98% of the FMA peak where 32 x 12 reaches ~92% (its 12 broadcasts per k compete with the
// FMAs); and each K-block reloads and stores every sum once, so long K-blocks (1024: the
// 256 KiB panel lives in L2) cut that traffic 8x against 128. Together: the GEMM on the
// 1.1B model's shapes with 512 tokens went from ~71% to ~92% of the FMA peak.
constexpr int kPanelRows = 64;
constexpr int kTileCols = 6;
constexpr int64_t kBlockK = 1024;

// out[c] (c < 16) = column c of the 16 x 16 block whose rows are r[0..15].
inline void transpose16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // r[4i + j], 128-bit lane L: rows 4i..4i+3 of column 4L + j
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
    t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xDD);
    t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
    t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xDD);
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);
    r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xDD);
  }
}

inline __m512 widen_f16(__m256i h) { return _mm512_cvtph_ps(h); }

// Rows [0, nr) of the weight block (row stride ws bytes, columns k0 .. k0 + kb) as f32,
// k-major: panel[k * 64 + r]. Only the groups of 16 rows that hold a row < nr are written
// (rows nr.. of the last one as zeros): the tile reads no further.
template <__m512 (*Widen)(__m256i)>
void pack_panel(const uint8_t* w, size_t ws, int nr, int64_t k0, int64_t kb, float* panel) {
  for (int g = 0; 16 * g < nr; ++g)
    for (int64_t kk = 0; kk < kb; kk += 16) {
      const int64_t n = std::min<int64_t>(16, kb - kk);
      const __mmask16 m = n == 16 ? (__mmask16)0xFFFF : tail16(n);
      __m512 r[16];
      for (int i = 0; i < 16; ++i) {
        const int row = 16 * g + i;
        r[i] = row < nr ? Widen(_mm256_maskz_loadu_epi16(m, (const uint16_t*)(w + row * ws) + k0 + kk))
                        : _mm512_setzero_ps();
      }
      transpose16(r);
      for (int64_t j = 0; j < n; ++j) _mm512_store_ps(panel + (kk + j) * kPanelRows + 16 * g, r[j]);
    }
}

// The first 16 * G rows of the panel against C activation rows x[c] + k0 over kb values of
// k, adding to y[c * ldy + r] for r < nr (or starting from zero on the first K-block).
template <int G, int C>
void tile_rows(const float* panel, int64_t kb, const float* const* x, bool first, float* y, int64_t ldy, int nr) {
  __mmask16 mask[G];
  for (int g = 0; g < G; ++g) mask[g] = nr >= 16 * (g + 1) ? (__mmask16)0xFFFF : tail16(nr - 16 * g);
  __m512 acc[G][C];
  for (int c = 0; c < C; ++c)
    for (int g = 0; g < G; ++g)
      acc[g][c] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask[g], y + c * ldy + 16 * g);
  for (int64_t k = 0; k < kb; ++k) {
    __m512 wv[G];
    for (int g = 0; g < G; ++g) wv[g] = _mm512_load_ps(panel + k * kPanelRows + 16 * g);
    for (int c = 0; c < C; ++c) {
      const __m512 xb = _mm512_set1_ps(x[c][k]);
      for (int g = 0; g < G; ++g) acc[g][c] = _mm512_fmadd_ps(wv[g], xb, acc[g][c]);
    }
  }
  for (int c = 0; c < C; ++c)
    for (int g = 0; g < G; ++g) _mm512_mask_storeu_ps(y + c * ldy + 16 * g, mask[g], acc[g][c]);
}

// Rows 0..nr-1 of the panel (a ragged last panel runs only the 16-row groups it has).
template <int C>
void tile(const float* panel, int64_t kb, const float* const* x, bool first, float* y, int64_t ldy, int nr) {
  switch ((nr + 15) / 16) {
    case 1: return tile_rows<1, C>(panel, kb, x, first, y, ldy, nr);
    case 2: return tile_rows<2, C>(panel, kb, x, first, y, ldy, nr);
    case 3: return tile_rows<3, C>(panel, kb, x, first, y, ldy, nr);
    default: return tile_rows<4, C>(panel, kb, x, first, y, ldy, nr);
  }
}

using TileFn = void (*)(const float*, int64_t, const float* const*, bool, float*, int64_t, int);
template <int... C>
constexpr std::array<TileFn, sizeof...(C)> make_tiles(std::integer_sequence<int, C...>) {
  return {tile<C + 1>...};
}
constexpr auto kTiles = make_tiles(std::make_integer_sequence<int, kTileCols>{});

template <__m512 (*Widen)(__m256i)>
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

}  // namespace osprey::kernels::avx512

#else  // this compiler or target cannot build AVX-512: the dispatcher skips it

namespace osprey::kernels::avx512 {
GemmFn float_gemm_for(DType) { return nullptr; }
const VecF32* vec_f32() { return nullptr; }
}  // namespace osprey::kernels::avx512

#endif
