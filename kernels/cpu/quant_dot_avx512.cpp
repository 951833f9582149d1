// AVX-512 (F, BW, VL) + VNNI integer dot products; this file alone is built with those flags
// and the dispatcher only calls it on CPUs that have all four. Each kernel reproduces
// quant_dot_scalar.cpp exactly in integers (same per-block integer sums), accumulating the
// scaled block sums in float.
//
// The 32-element formats take two blocks per 512-bit step. vpdpbusd multiplies unsigned by
// signed bytes without saturating, so the weights are fed unsigned (nibble, nibble + 16,
// q8 + 128) and the offset is taken back out as offset * sum(x), itself one vpdpbusd of a
// constant with x: exact for every input. The K-quants multiply pairs with vpmaddubsw (no
// saturation possible: weights are at most 6 bits) and apply the per-sub-block scales with
// vpdpwssd.
#include <cstring>

#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/quant_dot.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
// GCC 12's own AVX-512 headers (their _mm512_undefined_* self-initialisations) trip these.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

namespace osprey::kernels::avx512 {
namespace {

inline float f16(uint16_t h) { return _cvtsh_ss(h); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// The 32 activation bytes of blocks x[0] and x[1], in that order.
inline __m512i load_x2(const block_q8_act* x0, const block_q8_act* x1) {
  const __m256i a = _mm256_loadu_si256((const __m256i*)x0->qs);
  const __m256i b = _mm256_loadu_si256((const __m256i*)x1->qs);
  return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

// 2 x 32 nibbles: bytes 0..15 = low nibbles of p0's 16 bytes (elements 0..15), 16..31 their
// high nibbles (elements 16..31), then the same for p1.
inline __m512i nibbles2(const uint8_t* p0, const uint8_t* p1) {
  const __m256i v = _mm256_set_m128i(_mm_loadu_si128((const __m128i*)p1), _mm_loadu_si128((const __m128i*)p0));
  const __m512i vv = _mm512_castsi256_si512(v);
  const __m512i dup = _mm512_shuffle_i64x2(vv, vv, 0x50);  // 128-bit lanes [p0, p0, p1, p1]
  const __m512i shifted = _mm512_srlv_epi64(dup, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0));
  return _mm512_and_si512(shifted, _mm512_set1_epi8(0x0F));
}

inline __mmask64 qh_mask2(const uint8_t* qh0, const uint8_t* qh1) {
  uint32_t a, b;
  std::memcpy(&a, qh0, 4);
  std::memcpy(&b, qh1, 4);
  return (__mmask64)a | ((__mmask64)b << 32);
}

// Two blocks' weights as unsigned bytes (lanes 0..31 block b0, 32..63 b1) and the offset
// to take back out (step2 subtracts offset * sum(x) per dword).
struct Decoded2 {
  __m512i u;
  uint8_t offset;
};
inline Decoded2 decode2(const block_q4_0& b0, const block_q4_0& b1) { return {nibbles2(b0.qs, b1.qs), 8}; }
inline Decoded2 decode2(const block_q4_1& b0, const block_q4_1& b1) { return {nibbles2(b0.qs, b1.qs), 0}; }
inline Decoded2 decode2(const block_q5_0& b0, const block_q5_0& b1) {
  const __m512i q = nibbles2(b0.qs, b1.qs);
  return {_mm512_mask_add_epi8(q, qh_mask2(b0.qh, b1.qh), q, _mm512_set1_epi8(16)), 16};
}
inline Decoded2 decode2(const block_q5_1& b0, const block_q5_1& b1) {
  const __m512i q = nibbles2(b0.qs, b1.qs);
  return {_mm512_mask_add_epi8(q, qh_mask2(b0.qh, b1.qh), q, _mm512_set1_epi8(16)), 0};
}
inline Decoded2 decode2(const block_q8_0& b0, const block_q8_0& b1) {
  const __m256i a = _mm256_loadu_si256((const __m256i*)b0.qs);
  const __m256i b = _mm256_loadu_si256((const __m256i*)b1.qs);
  const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
  return {_mm512_xor_si512(q, _mm512_set1_epi8((char)0x80)), 0x80};  // q + 128
}

template <class B>
constexpr bool kHasMin = requires(const B& b) { b.m; };

// Two f16 values converted together: lanes 0, 1 (2, 3 zero).
inline __m128 f16x2(uint16_t a, uint16_t b) {
  return _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)a | (uint32_t)b << 16)));
}

// Float lanes 0..7 = lane 0 of v, 8..15 = lane 1.
inline __m512 halves(__m128 v) {
  return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                               _mm512_castps128_ps512(v));
}

// Blocks i and j (j == i for an odd tail, with its activation scale zeroed) of R weight rows
// against C activation rows, each pair into its own accumulator. Weights are decoded once per
// row, activations loaded once per column; every (row, column) pair sees the same float
// operations whatever R and C are, so a register tile gives each pair bit for bit what the
// one-row kernel gives. The weight-min terms m * s of Q4_1/Q5_1 go to lanes 0, 1 of mins.
template <class B, int R, int C>
inline __attribute__((always_inline)) void step2(__m512 (&acc)[R][C], __m128 (&mins)[R][C], const B* const* b,
                                                 const block_q8_act* const* xs, int64_t i, int64_t j, bool pair) {
  Decoded2 w[R];
  __m512 dw[R];  // lanes 0..7 block i's weight scale, 8..15 block j's
  __m128 mw[R];
  for (int r = 0; r < R; ++r) {
    w[r] = decode2(b[r][i], b[r][j]);
    dw[r] = halves(f16x2(b[r][i].d, b[r][j].d));
    if constexpr (kHasMin<B>) mw[r] = f16x2(b[r][i].m, b[r][j].m);
  }
  const __m512i zero = _mm512_setzero_si512();
  for (int c = 0; c < C; ++c) {
    const block_q8_act* x = xs[c];
    const __m512 dx = halves(_mm_unpacklo_ps(_mm_set_ss(x[i].d), _mm_set_ss(pair ? x[j].d : 0.f)));
    const __m512i y = load_x2(x + i, x + j);
    // -offset * sum(y) per dword, shared by the R rows (offset is the same for every block).
    const __m512i base = w[0].offset ? _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8((char)w[0].offset), y))
                                     : zero;
    __m128 xsum;
    if constexpr (kHasMin<B>) xsum = _mm_unpacklo_ps(_mm_set_ss(x[i].s), _mm_set_ss(pair ? x[j].s : 0.f));
    for (int r = 0; r < R; ++r) {
      const __m512i s = _mm512_dpbusd_epi32(base, w[r].u, y);
      if constexpr (kHasMin<B>) mins[r][c] = _mm_fmadd_ps(mw[r], xsum, mins[r][c]);
      acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(dw[r], dx), _mm512_cvtepi32_ps(s), acc[r][c]);
    }
  }
}

// out[r * C + c] = dot of weight row b[r] with activation row xs[c].
template <class B, int R, int C>
void tile32(const B* const* b, const block_q8_act* const* xs, int64_t K, float* out) {
  const int64_t nb = K / 32;
  __m512 acc0[R][C], acc1[R][C];
  __m128 mins[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      acc0[r][c] = acc1[r][c] = _mm512_setzero_ps();
      mins[r][c] = _mm_setzero_ps();
    }
  int64_t i = 0;
  for (; i + 4 <= nb; i += 4) {  // two independent chains
    step2<B, R, C>(acc0, mins, b, xs, i, i + 1, true);
    step2<B, R, C>(acc1, mins, b, xs, i + 2, i + 3, true);
  }
  for (; i + 2 <= nb; i += 2) step2<B, R, C>(acc0, mins, b, xs, i, i + 1, true);
  if (i < nb) step2<B, R, C>(acc1, mins, b, xs, i, i, false);
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      __m512 a0 = acc0[r][c];
      if constexpr (kHasMin<B>) a0 = _mm512_add_ps(a0, _mm512_zextps128_ps512(mins[r][c]));
      out[r * C + c] = _mm512_reduce_add_ps(_mm512_add_ps(a0, acc1[r][c]));
    }
}

template <class B>
float dot32(const void* w, const void* x, int64_t K) {
  const B* b = (const B*)w;
  const block_q8_act* xs = (const block_q8_act*)x;
  float out;
  tile32<B, 1, 1>(&b, &xs, K, &out);
  return out;
}

template <class B>
void dot32x4(const void* w, const void* x, size_t stride, int64_t K, float* out) {
  const B* b = (const B*)w;
  const block_q8_act* xs[4];
  for (int c = 0; c < 4; ++c) xs[c] = (const block_q8_act*)((const uint8_t*)x + c * stride);
  tile32<B, 1, 4>(&b, xs, K, out);
}

template <class B>
void gemm32(const void* w, size_t ws, int64_t rows, const void* x, size_t xs, int64_t cols, int64_t K, float* y,
            int64_t ldy) {
  walk_tiles<B, block_q8_act, 4, 2>(w, ws, rows, x, xs, cols, K, y, ldy, tile32<B, 4, 2>);
}

inline __m512i words_split(short lo, short hi) {  // int16 lanes 0..15 = lo, 16..31 = hi
  return _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16(lo), _mm512_set1_epi16(hi));
}

// K-quant dot of weight row b with activation rows xs[0..kRows): the weights of each
// super-block are decoded once; every row sees the one-row kernel's exact sequence.
template <int kRows>
void q4_K_cols(const block_q4_K* b, const block_q8_K* const* xs, int64_t K, float* out) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  // 32-byte chunk c of qs holds sub-block 2c (low nibbles) and 2c+1 (high nibbles).
  const __m512i pick[4] = {words_split(0, 1), words_split(2, 3), words_split(4, 5), words_split(6, 7)};
  __m512 acc[kRows];
  __m256 macc[kRows];
  for (int r = 0; r < kRows; ++r) {
    acc[r] = _mm512_setzero_ps();
    macc[r] = _mm256_setzero_ps();
  }
  for (int64_t i = 0; i < K / 256; ++i) {
    // 6-bit scales and mins: bytes 0..3 hold sc[0..3] (+ top bits of sc[4..7]), 4..7 the
    // same for the mins, 8..11 the low 4 bits of sc[4..7] | m[4..7] << 4.
    uint32_t s0, s1, s2;
    std::memcpy(&s0, b[i].scales, 4);
    std::memcpy(&s1, b[i].scales + 4, 4);
    std::memcpy(&s2, b[i].scales + 8, 4);
    const uint64_t sc8 =
        (s0 & 0x3F3F3F3Fu) | ((uint64_t)((s2 & 0x0F0F0F0Fu) | ((s0 >> 2) & 0x30303030u)) << 32);
    const uint64_t m8 =
        (s1 & 0x3F3F3F3Fu) | ((uint64_t)(((s2 >> 4) & 0x0F0F0F0Fu) | ((s1 >> 2) & 0x30303030u)) << 32);
    const __m512i scw = _mm512_zextsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc8)));
    const __m128i mv = _mm_cvtsi64_si128((long long)m8);
    const __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mv, mv));  // m0 m0 m1 m1 ...
    __m512i c[4], sc[4];
    for (int h = 0; h < 2; ++h) {
      const __m512i q = _mm512_loadu_si512(b[i].qs + 64 * h);  // chunks 2h, 2h+1
      const __m512i lo = _mm512_and_si512(q, low4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
      c[2 * h] = _mm512_shuffle_i64x2(lo, hi, 0x44);      // sub-blocks 4h, 4h+1
      c[2 * h + 1] = _mm512_shuffle_i64x2(lo, hi, 0xEE);  // sub-blocks 4h+2, 4h+3
      sc[2 * h] = _mm512_permutexvar_epi16(pick[2 * h], scw);
      sc[2 * h + 1] = _mm512_permutexvar_epi16(pick[2 * h + 1], scw);
    }
    const float dw = f16(b[i].d), dmin = f16(b[i].dmin);
    for (int r = 0; r < kRows; ++r) {
      const block_q8_K& x = xs[r][i];
      const __m256i bs = _mm256_loadu_si256((const __m256i*)x.bsums);
      macc[r] = _mm256_fmadd_ps(_mm256_set1_ps(x.d * dmin), _mm256_cvtepi32_ps(_mm256_madd_epi16(m16, bs)), macc[r]);
      __m512i sumi = _mm512_setzero_si512();
      for (int k = 0; k < 4; ++k)
        sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(c[k], _mm512_loadu_si512(x.qs + 64 * k)), sc[k]);
      acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(x.d * dw), _mm512_cvtepi32_ps(sumi), acc[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = _mm512_reduce_add_ps(acc[r]) - hsum(macc[r]);
}

template <int kRows>
void q6_K_cols(const block_q6_K* b, const block_q8_K* const* xs, int64_t K, float* out) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), two_bits = _mm512_set1_epi8(0x30);
  // Where the two high bits of groups 0/1 and 2/3 sit in qh: bits 0-1 / 2-3, 4-5 / 6-7.
  const __m512i shl01 = words_split(4, 2), shr23 = words_split(0, 2);
  // 64 elements use 4 consecutive 16-element scales, one per 128-bit lane.
  __m512i pick[4];
  for (int m = 0; m < 4; ++m) {  // int16 lane l -> scale 4m + l / 8
    __m512i idx = _mm512_set1_epi16((short)(4 * m));
    idx = _mm512_mask_add_epi16(idx, 0xFF00FF00u, idx, _mm512_set1_epi16(1));
    pick[m] = _mm512_mask_add_epi16(idx, 0xFFFF0000u, idx, _mm512_set1_epi16(2));
  }
  __m512 acc[kRows];
  for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t i = 0; i < K / 256; ++i) {
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)b[i].scales));
    const __m512i scw = _mm512_zextsi256_si512(sc16);
    __m512i q[4], sc[4];
    for (int h = 0; h < 2; ++h) {
      const __m512i a = _mm512_loadu_si512(b[i].ql + 64 * h);
      const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(b[i].qh + 32 * h)));
      q[2 * h] = _mm512_or_si512(_mm512_and_si512(a, low4), _mm512_and_si512(_mm512_sllv_epi16(qh, shl01), two_bits));
      q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(a, 4), low4),
                                     _mm512_and_si512(_mm512_srlv_epi16(qh, shr23), two_bits));
      sc[2 * h] = _mm512_permutexvar_epi16(pick[2 * h], scw);
      sc[2 * h + 1] = _mm512_permutexvar_epi16(pick[2 * h + 1], scw);
    }
    const float dw = f16(b[i].d);
    for (int r = 0; r < kRows; ++r) {
      const block_q8_K& x = xs[r][i];
      // Quants are stored + 32: take 32 * sum(scale * bsum) back out at the end.
      const __m256i offset = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i*)x.bsums));
      __m512i sumi = _mm512_setzero_si512();
      for (int k = 0; k < 4; ++k)
        sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(q[k], _mm512_loadu_si512(x.qs + 64 * k)), sc[k]);
      sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(_mm256_slli_epi32(offset, 5)));
      acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(x.d * dw), _mm512_cvtepi32_ps(sumi), acc[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

template <int kRows, class B, void (*Cols)(const B*, const block_q8_K* const*, int64_t, float*)>
void k_rows(const void* w, const void* xv, size_t stride, int64_t K, float* out) {
  const block_q8_K* xs[kRows];
  for (int r = 0; r < kRows; ++r) xs[r] = (const block_q8_K*)((const uint8_t*)xv + r * stride);
  Cols((const B*)w, xs, K, out);
}
template <int kRows>
void dot_q4_K_rows(const void* w, const void* x, size_t stride, int64_t K, float* out) {
  k_rows<kRows, block_q4_K, q4_K_cols<kRows>>(w, x, stride, K, out);
}
template <int kRows>
void dot_q6_K_rows(const void* w, const void* x, size_t stride, int64_t K, float* out) {
  k_rows<kRows, block_q6_K, q6_K_cols<kRows>>(w, x, stride, K, out);
}

// The K-quant GEMM: one weight row against four tokens per tile (the four-row kernel), the
// token panel held in L2 by the caller.
template <class B, void (*Cols)(const B*, const block_q8_K* const*, int64_t, float*)>
void gemm_k(const void* w, size_t ws, int64_t rows, const void* x, size_t xs, int64_t cols, int64_t K, float* y,
            int64_t ldy) {
  walk_tiles<B, block_q8_K, 1, 4>(w, ws, rows, x, xs, cols, K, y, ldy,
                                  [](const B* const* b, const block_q8_K* const* xr, int64_t k, float* out) {
                                    Cols(b[0], xr, k, out);
                                  });
}

template <void (*Rows)(const void*, const void*, size_t, int64_t, float*)>
float one_row(const void* w, const void* x, int64_t K) {
  float out;
  Rows(w, x, 0, K, &out);
  return out;
}


inline __mmask16 tail16(int64_t r) { return (__mmask16)((1u << r) - 1); }  // r < 16

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

// R f16 weight rows against C f32 activation rows; each pair goes through exactly the
// operations of dot_f32(x row, f32 copy of the weight row) (four chains of 16 lanes, a
// 16-step tail into the first, a masked tail into the second), which is what the matmul
// for more than one token computed before this tile existed.
template <int R, int C>
void tile_f16(const uint16_t* const* w, const float* const* x, int64_t n, float* out) {
  __m512 acc[4][R][C];
  for (int q = 0; q < 4; ++q)
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) acc[q][r][c] = _mm512_setzero_ps();
  auto step = [&](int q, int64_t i, __mmask16 m) __attribute__((always_inline)) {
    __m512 wv[R];
    const bool full = m == 0xFFFF;  // a constant after inlining: plain loads
    for (int r = 0; r < R; ++r)
      wv[r] = _mm512_cvtph_ps(full ? _mm256_loadu_si256((const __m256i*)(w[r] + i)) : _mm256_maskz_loadu_epi16(m, w[r] + i));
    for (int c = 0; c < C; ++c) {
      const __m512 xv = full ? _mm512_loadu_ps(x[c] + i) : _mm512_maskz_loadu_ps(m, x[c] + i);
      for (int r = 0; r < R; ++r) acc[q][r][c] = _mm512_fmadd_ps(xv, wv[r], acc[q][r][c]);
    }
  };
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int q = 0; q < 4; ++q) step(q, i + 16 * q, 0xFFFF);
  for (; i + 16 <= n; i += 16) step(0, i, 0xFFFF);
  if (i < n) step(1, i, tail16(n - i));
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      out[r * C + c] = _mm512_reduce_add_ps(
          _mm512_add_ps(_mm512_add_ps(acc[0][r][c], acc[1][r][c]), _mm512_add_ps(acc[2][r][c], acc[3][r][c])));
}

void gemm_f16(const void* w, size_t ws, int64_t rows, const void* x, size_t xs, int64_t cols, int64_t K, float* y,
              int64_t ldy) {
  walk_tiles<uint16_t, float, 2, 3>(w, ws, rows, x, xs, cols, K, y, ldy, tile_f16<2, 3>);
}

}  // namespace

GemmFn gemm_for(DType w) {
  switch (w) {
    case DType::Q4_0: return gemm32<block_q4_0>;
    case DType::Q4_1: return gemm32<block_q4_1>;
    case DType::Q5_0: return gemm32<block_q5_0>;
    case DType::Q5_1: return gemm32<block_q5_1>;
    case DType::Q8_0: return gemm32<block_q8_0>;
    case DType::Q4_K: return gemm_k<block_q4_K, q4_K_cols<4>>;
    case DType::Q6_K: return gemm_k<block_q6_K, q6_K_cols<4>>;
    case DType::F16: return gemm_f16;
    default: return nullptr;
  }
}

bool built() { return true; }

const VecF32* vec_f32() {
  static const VecF32 v{dot_f32, axpy, f16_row, dot_f16};
  return &v;
}

VecDot4Fn vec_dot4_for(DType w) {
  switch (w) {
    case DType::Q4_0: return dot32x4<block_q4_0>;
    case DType::Q4_1: return dot32x4<block_q4_1>;
    case DType::Q5_0: return dot32x4<block_q5_0>;
    case DType::Q5_1: return dot32x4<block_q5_1>;
    case DType::Q8_0: return dot32x4<block_q8_0>;
    case DType::Q4_K: return dot_q4_K_rows<4>;
    case DType::Q6_K: return dot_q6_K_rows<4>;
    default: return nullptr;
  }
}

VecDotFn vec_dot_for(DType w) {
  switch (w) {
    case DType::Q4_0: return dot32<block_q4_0>;
    case DType::Q4_1: return dot32<block_q4_1>;
    case DType::Q5_0: return dot32<block_q5_0>;
    case DType::Q5_1: return dot32<block_q5_1>;
    case DType::Q8_0: return dot32<block_q8_0>;
    case DType::Q4_K: return one_row<dot_q4_K_rows<1>>;
    case DType::Q6_K: return one_row<dot_q6_K_rows<1>>;
    default: return nullptr;
  }
}

}  // namespace osprey::kernels::avx512

#else  // this compiler or target cannot build AVX-512 VNNI: the dispatcher skips it

namespace osprey::kernels::avx512 {
bool built() { return false; }
VecDotFn vec_dot_for(DType) { return nullptr; }
VecDot4Fn vec_dot4_for(DType) { return nullptr; }
GemmFn gemm_for(DType) { return nullptr; }
const VecF32* vec_f32() { return nullptr; }
}  // namespace osprey::kernels::avx512

#endif
