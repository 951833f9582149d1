// AVX-512 attention inner loops (built with the flags of quant_dot_avx512.cpp; the
// dispatcher uses them only where those instructions exist). Cache rows are read as f32 from
// a widened block (vcvtph2ps for f16, a shift for bf16, the q8_0 / q4_0 blocks widened and
// scaled) or, for an f16 cache, widened straight from the cache as they are used. Scores are
// register tiles of up to 4 query rows x 16 / rows keys, each dot with the head dimension in
// the lanes, all of a tile's dots folded into one vector by one shuffle tree (reduce16);
// exp is a polynomial (below); values are accumulated into 4 rows x 64 lanes of registers
// per pass over the block. The loops over a tile's registers are unrolled by pragma: left
// to itself GCC kept the accumulator arrays on the stack, which cost more than half the time.
#include "kernels/cpu/attention_kernels.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include "kernels/cpu/avx512_intrin.h"

#include <algorithm>
#include <cmath>

#include "kernels/quant_blocks.h"

namespace osprey::kernels::avx512 {
namespace {

inline __mmask16 tail_mask(int64_t n) { return (__mmask16)((1u << n) - 1u); }

// exp(x) = 2^k * e^r with k = round(x / ln 2) and r = x - k ln 2 (ln 2 in two parts, so r is
// exact), |r| <= ln2 / 2; e^r by its Taylor series to r^7 (truncation < 1e-8 relative) and
// 2^k by vscalefps, which also rounds the tiny results gradually. Within a few ulp of
// std::exp; x below -104 (and -inf) gives 0.
inline __m512 exp_ps(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.72f));
  const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, k);
}

void f16_rows(const uint8_t* src, size_t stride, int64_t n, int64_t D, float* out) {
  const int64_t D16 = D - D % 16;
  const __mmask16 tail = tail_mask(D % 16);
  for (int64_t j = 0; j < n; ++j) {
    const uint16_t* h = (const uint16_t*)(src + (size_t)j * stride);
    float* o = out + j * D;
    for (int64_t i = 0; i < D16; i += 16)
      _mm512_storeu_ps(o + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(h + i))));
    if (tail) _mm512_mask_storeu_ps(o + D16, tail, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail, h + D16)));
  }
}

void bf16_rows(const uint8_t* src, size_t stride, int64_t n, int64_t D, float* out) {
  const int64_t D16 = D - D % 16;
  const __mmask16 tail = tail_mask(D % 16);
  auto widen = [](__m256i b) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16)); };
  for (int64_t j = 0; j < n; ++j) {
    const uint16_t* h = (const uint16_t*)(src + (size_t)j * stride);
    float* o = out + j * D;
    for (int64_t i = 0; i < D16; i += 16) _mm512_storeu_ps(o + i, widen(_mm256_loadu_si256((const __m256i*)(h + i))));
    if (tail) _mm512_mask_storeu_ps(o + D16, tail, widen(_mm256_maskz_loadu_epi16(tail, h + D16)));
  }
}

inline __m512 f16_scale(uint16_t d) { return _mm512_set1_ps(_cvtsh_ss(d)); }

void q8_0_rows(const uint8_t* src, size_t stride, int64_t n, int64_t D, float* out) {
  for (int64_t j = 0; j < n; ++j) {
    const block_q8_0* b = (const block_q8_0*)(src + (size_t)j * stride);
    float* o = out + j * D;
    for (int64_t i = 0; i < D / 32; ++i) {
      const __m512 d = f16_scale(b[i].d);
      const __m256i q = _mm256_loadu_si256((const __m256i*)b[i].qs);
      _mm512_storeu_ps(o + 32 * i,
                       _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q)))));
      _mm512_storeu_ps(o + 32 * i + 16,
                       _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1)))));
    }
  }
}

void q4_0_rows(const uint8_t* src, size_t stride, int64_t n, int64_t D, float* out) {
  const __m512i eight = _mm512_set1_epi32(8), low = _mm512_set1_epi32(15);
  for (int64_t j = 0; j < n; ++j) {
    const block_q4_0* b = (const block_q4_0*)(src + (size_t)j * stride);
    float* o = out + j * D;
    for (int64_t i = 0; i < D / 32; ++i) {
      const __m512 d = f16_scale(b[i].d);
      const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)b[i].qs));
      const __m512i lo = _mm512_sub_epi32(_mm512_and_si512(q, low), eight);
      const __m512i hi = _mm512_sub_epi32(_mm512_srli_epi32(q, 4), eight);
      _mm512_storeu_ps(o + 32 * i, _mm512_mul_ps(d, _mm512_cvtepi32_ps(lo)));
      _mm512_storeu_ps(o + 32 * i + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(hi)));
    }
  }
}

bool rows_to_f32(DType t, const uint8_t* src, size_t stride, int64_t n, int64_t D, float* out) {
  switch (t) {
    case DType::F16: f16_rows(src, stride, n, D, out); return true;
    case DType::BF16: bf16_rows(src, stride, n, D, out); return true;
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

// Cache rows as the score and value loops read them: f32 rows (`ld` floats apart), or f16
// rows of the cache itself (`stride` bytes apart) widened on the fly, giving the same values
// as rows_to_f32 so either source gives the same results bit for bit.
struct F32Rows {
  const float* p;
  int64_t ld;
  __m512 load(int64_t j, int64_t i) const { return _mm512_loadu_ps(p + j * ld + i); }
  __m512 load(int64_t j, int64_t i, __mmask16 m) const { return _mm512_maskz_loadu_ps(m, p + j * ld + i); }
};
struct F16Rows {
  const uint8_t* p;
  size_t stride;
  const uint16_t* row(int64_t j) const { return (const uint16_t*)(p + (size_t)j * stride); }
  __m512 load(int64_t j, int64_t i) const { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(row(j) + i))); }
  __m512 load(int64_t j, int64_t i, __mmask16 m) const {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row(j) + i));
  }
};

// Lane k of the result is the sum of the 16 lanes of acc[k], always by the same tree (lanes
// l and l + 8, then l and l + 4, l + 2, l + 1), so a dot's value does not depend on which
// others were reduced beside it. Four rounds of two shuffles and an add fold the 16 vectors
// into one, instead of a horizontal sum per vector.
#define OSPREY_INLINE inline __attribute__((always_inline))
OSPREY_INLINE __m512 reduce16(const __m512* acc) {
  __m512 a[16];  // the last round leaves lane 4q + e holding a[4e + q]
  #pragma GCC unroll 16
  for (int q = 0; q < 4; ++q)
    #pragma GCC unroll 16
    for (int e = 0; e < 4; ++e) a[4 * e + q] = acc[4 * q + e];
  __m512 b[8], c[4], d[2];
  #pragma GCC unroll 16
  for (int m = 0; m < 8; ++m)
    b[m] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * m], a[2 * m + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f32x4(a[2 * m], a[2 * m + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  #pragma GCC unroll 16
  for (int m = 0; m < 4; ++m)
    c[m] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * m], b[2 * m + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(b[2 * m], b[2 * m + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  #pragma GCC unroll 16
  for (int m = 0; m < 2; ++m)
    d[m] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * m], c[2 * m + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(c[2 * m], c[2 * m + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// Scores of NR query rows x NK keys (NR * NK <= 16) in registers: each accumulator holds 16
// lanes of one dot, the head dimension walked 16 lanes at a time; then one reduce16.
template <int NR, int NK, class Rows>
OSPREY_INLINE void score_tile(const float* q, int64_t D, const Rows& k, int64_t j0, float scale, float* s,
                              int64_t lds) {
  static_assert(NR * NK <= 16);
  const int64_t D16 = D - D % 16;
  __m512 acc[16];
  #pragma GCC unroll 16
  for (int x = 0; x < 16; ++x) acc[x] = _mm512_setzero_ps();
  for (int64_t i = 0; i < D16; i += 16) {
    __m512 qv[NR];
    #pragma GCC unroll 16
    for (int r = 0; r < NR; ++r) qv[r] = _mm512_loadu_ps(q + r * D + i);
    #pragma GCC unroll 16
    for (int c = 0; c < NK; ++c) {
      const __m512 kv = k.load(j0 + c, i);
      #pragma GCC unroll 16
      for (int r = 0; r < NR; ++r) acc[r * NK + c] = _mm512_fmadd_ps(qv[r], kv, acc[r * NK + c]);
    }
  }
  if (D16 < D) {
    const __mmask16 tail = tail_mask(D % 16);
    __m512 qv[NR];
    #pragma GCC unroll 16
    for (int r = 0; r < NR; ++r) qv[r] = _mm512_maskz_loadu_ps(tail, q + r * D + D16);
    #pragma GCC unroll 16
    for (int c = 0; c < NK; ++c) {
      const __m512 kv = k.load(j0 + c, D16, tail);
      #pragma GCC unroll 16
      for (int r = 0; r < NR; ++r) acc[r * NK + c] = _mm512_fmadd_ps(qv[r], kv, acc[r * NK + c]);
    }
  }
  const __m512 out = _mm512_mul_ps(reduce16(acc), _mm512_set1_ps(scale));
  // Row r's scores are lanes [r NK, r NK + NK): a masked store puts them at s + r lds + j0
  // (from a base r NK floats earlier, still inside the rows since lds >= NK).
  #pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
    _mm512_mask_storeu_ps(s + r * (lds - NK) + j0, (__mmask16)(((1u << NK) - 1u) << (r * NK)), out);
}

// Rows [0, NR) against all n keys: tiles of 16 / NR keys, then the remainder.
template <int NR, class Rows>
void score_rows(const float* q, int64_t D, const Rows& k, int64_t n, float scale, float* s, int64_t lds) {
  constexpr int NK = 16 / NR;
  int64_t j = 0;
  for (; j + NK <= n; j += NK) score_tile<NR, NK>(q, D, k, j, scale, s, lds);
  while (j < n) {  // the remainder of up to NK - 1 keys by narrower tiles
    const int64_t left = n - j;
    if constexpr (NR <= 2) {
      if (left >= 8) {
        score_tile<NR, 8>(q, D, k, j, scale, s, lds);
        j += 8;
        continue;
      }
    }
    if (left >= 4) {
      score_tile<NR, 4>(q, D, k, j, scale, s, lds);
      j += 4;
    } else if (left >= 2) {
      score_tile<NR, 2>(q, D, k, j, scale, s, lds);
      j += 2;
    } else {
      score_tile<NR, 1>(q, D, k, j, scale, s, lds);
      j += 1;
    }
  }
}

template <class Rows>
void scores(const float* q, int64_t R, const Rows& k, int64_t n, int64_t D, float scale, float* s, int64_t lds) {
  for_row_tiles<4>(R, [&]<int NR>(int64_t r) { score_rows<NR>(q + r * D, D, k, n, scale, s + r * lds, lds); });
}

float max_of(const float* s, int64_t n) {
  __m512 m = _mm512_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(s + j));
  if (j < n) m = _mm512_mask_max_ps(m, tail_mask(n - j), m, _mm512_maskz_loadu_ps(tail_mask(n - j), s + j));
  return _mm512_reduce_max_ps(m);
}

float exp_sum(float* s, int64_t n, float m) {
  const __m512 mv = _mm512_set1_ps(m);
  __m512 sum = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(s + j), mv));
    _mm512_storeu_ps(s + j, e);
    sum = _mm512_add_ps(sum, e);
  }
  if (j < n) {
    const __mmask16 tail = tail_mask(n - j);
    const __m512 e = _mm512_maskz_mov_ps(tail, exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, s + j), mv)));
    _mm512_mask_storeu_ps(s + j, tail, e);
    sum = _mm512_add_ps(sum, e);
  }
  return _mm512_reduce_add_ps(sum);
}

// Rows r0..r0+NR of acc, lanes [i, i + 16 * NV) (the last vector masked by `last`).
template <int NR, int NV, class Rows>
OSPREY_INLINE void axpy_tile(const float* p, int64_t ldp, const Rows& v, int64_t n, int64_t Dv, int64_t i,
                             __mmask16 last, float* acc) {
  __m512 a[NR][NV];
  auto mask = [&](int c) { return c == NV - 1 ? last : (__mmask16)0xffff; };
  #pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
    #pragma GCC unroll 16
    for (int c = 0; c < NV; ++c) a[r][c] = _mm512_maskz_loadu_ps(mask(c), acc + r * Dv + i + 16 * c);
  for (int64_t j = 0; j < n; ++j) {
    __m512 vv[NV];
    #pragma GCC unroll 16
    for (int c = 0; c < NV; ++c) vv[c] = c == NV - 1 ? v.load(j, i + 16 * c, last) : v.load(j, i + 16 * c);
    #pragma GCC unroll 16
    for (int r = 0; r < NR; ++r) {
      const __m512 w = _mm512_set1_ps(p[r * ldp + j]);
      #pragma GCC unroll 16
      for (int c = 0; c < NV; ++c) a[r][c] = _mm512_fmadd_ps(w, vv[c], a[r][c]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
    #pragma GCC unroll 16
    for (int c = 0; c < NV; ++c) _mm512_mask_storeu_ps(acc + r * Dv + i + 16 * c, mask(c), a[r][c]);
}

template <int NR, class Rows>
inline void axpy_rows(const float* p, int64_t ldp, const Rows& v, int64_t n, int64_t Dv, float* acc) {
  for (int64_t i = 0; i < Dv; i += 64) {
    const int64_t left = Dv - i;  // lanes still to do, in up to 4 vectors
    const int nv = (int)std::min<int64_t>(4, (left + 15) / 16);
    const __mmask16 last = left >= 16 * nv ? (__mmask16)0xffff : tail_mask(left - 16 * (nv - 1));
    switch (nv) {
      case 4: axpy_tile<NR, 4>(p, ldp, v, n, Dv, i, last, acc); break;
      case 3: axpy_tile<NR, 3>(p, ldp, v, n, Dv, i, last, acc); break;
      case 2: axpy_tile<NR, 2>(p, ldp, v, n, Dv, i, last, acc); break;
      default: axpy_tile<NR, 1>(p, ldp, v, n, Dv, i, last, acc); break;
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
      "avx512", rows_to_f32, exp_sum, max_of,
      [](auto&&... a) { scores(a...); }, [](auto&&... a) { accumulate(a...); });
  return &k;
}

}  // namespace osprey::kernels::avx512

#else

namespace osprey::kernels::avx512 {
const AttnKernels* attn_kernels() { return nullptr; }
}  // namespace osprey::kernels::avx512

#endif
