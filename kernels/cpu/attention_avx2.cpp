// AVX2 + FMA + F16C attention inner loops (built with the flags of quant_dot_avx2.cpp), the
// same plan as attention_avx512.cpp with 8 lanes: f32 rows from a widened block or f16 rows
// widened as used, scores in register tiles of 2 rows x 4 keys folded by one shuffle tree
// (reduce8), a polynomial exp, values accumulated into 2 rows x 32 lanes of registers.
// Partial vectors go through maskload / maskstore.
#include "kernels/cpu/attention_kernels.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include "kernels/cpu/x86_helpers.h"

#include <algorithm>
#include <cmath>

#include "kernels/quant_blocks.h"

namespace osprey::kernels::avx2 {
namespace {

// Lanes [0, n) set, n <= 8.
inline __m256i tail_mask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// exp as in attention_avx512.cpp (Cody-Waite reduction, Taylor series to r^7), with 2^k put
// together in the exponent bits: results below the smallest normal float (x < ln(FLT_MIN), and
// -inf) are 0.
inline __m256 exp_ps(__m256 x) {
  const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ);  // ln(FLT_MIN); also catches -inf
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.37f));
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

// 16-bit rows widened by `widen` (8 halves -> 8 floats); the tail goes through a buffer.
template <class Widen>
void half_rows(const uint8_t* src, size_t stride, int64_t n, int64_t D, float* out, Widen widen) {
  const int64_t D8 = D - D % 8;
  for (int64_t j = 0; j < n; ++j) {
    const uint16_t* h = (const uint16_t*)(src + (size_t)j * stride);
    float* o = out + j * D;
    for (int64_t i = 0; i < D8; i += 8) _mm256_storeu_ps(o + i, widen(_mm_loadu_si128((const __m128i*)(h + i))));
    if (D8 < D) {
      uint16_t buf[8] = {};
      float f[8];
      for (int64_t i = D8; i < D; ++i) buf[i - D8] = h[i];
      _mm256_storeu_ps(f, widen(_mm_loadu_si128((const __m128i*)buf)));
      for (int64_t i = D8; i < D; ++i) o[i] = f[i - D8];
    }
  }
}

inline __m256 f16_scale(uint16_t d) { return _mm256_set1_ps(_cvtsh_ss(d)); }

void q8_0_rows(const uint8_t* src, size_t stride, int64_t n, int64_t D, float* out) {
  for (int64_t j = 0; j < n; ++j) {
    const block_q8_0* b = (const block_q8_0*)(src + (size_t)j * stride);
    float* o = out + j * D;
    for (int64_t i = 0; i < D / 32; ++i) {
      const __m256 d = f16_scale(b[i].d);
      for (int c = 0; c < 4; ++c) {
        const __m128i q = _mm_loadl_epi64((const __m128i*)(b[i].qs + 8 * c));
        _mm256_storeu_ps(o + 32 * i + 8 * c, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))));
      }
    }
  }
}

void q4_0_rows(const uint8_t* src, size_t stride, int64_t n, int64_t D, float* out) {
  const __m256i eight = _mm256_set1_epi32(8), low = _mm256_set1_epi32(15);
  for (int64_t j = 0; j < n; ++j) {
    const block_q4_0* b = (const block_q4_0*)(src + (size_t)j * stride);
    float* o = out + j * D;
    for (int64_t i = 0; i < D / 32; ++i) {
      const __m256 d = f16_scale(b[i].d);
      for (int c = 0; c < 2; ++c) {
        const __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(b[i].qs + 8 * c)));
        const __m256i lo = _mm256_sub_epi32(_mm256_and_si256(q, low), eight);
        const __m256i hi = _mm256_sub_epi32(_mm256_srli_epi32(q, 4), eight);
        _mm256_storeu_ps(o + 32 * i + 8 * c, _mm256_mul_ps(d, _mm256_cvtepi32_ps(lo)));
        _mm256_storeu_ps(o + 32 * i + 16 + 8 * c, _mm256_mul_ps(d, _mm256_cvtepi32_ps(hi)));
      }
    }
  }
}

bool rows_to_f32(DType t, const uint8_t* src, size_t stride, int64_t n, int64_t D, float* out) {
  switch (t) {
    case DType::F16: half_rows(src, stride, n, D, out, [](__m128i h) { return _mm256_cvtph_ps(h); }); return true;
    case DType::BF16:
      half_rows(src, stride, n, D, out,
                [](__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); });
      return true;
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

#define OSPREY_INLINE inline __attribute__((always_inline))

// Cache rows as the score and value loops read them: f32 rows (`ld` floats apart), or f16
// rows of the cache (`stride` bytes apart) widened on the fly to the values rows_to_f32
// gives, so either source gives the same results bit for bit. load(j, i, m, n) reads the n < 8
// lanes of a tail (mask m), zero above.
struct F32Rows {
  const float* p;
  int64_t ld;
  __m256 load(int64_t j, int64_t i) const { return _mm256_loadu_ps(p + j * ld + i); }
  __m256 load(int64_t j, int64_t i, __m256i m, int64_t) const { return _mm256_maskload_ps(p + j * ld + i, m); }
};
struct F16Rows {
  const uint8_t* p;
  size_t stride;
  const uint16_t* row(int64_t j) const { return (const uint16_t*)(p + (size_t)j * stride); }
  __m256 load(int64_t j, int64_t i) const { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(row(j) + i))); }
  __m256 load(int64_t j, int64_t i, __m256i, int64_t n) const {
    uint16_t buf[8] = {};
    for (int64_t e = 0; e < n; ++e) buf[e] = row(j)[i + e];
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)buf));
  }
};

// Lane k of the result is hsum(acc[k]) (same tree: lanes l and l + 4, then l + 2, l + 1),
// three rounds of two shuffles and an add for all 8 instead of a horizontal sum each.
OSPREY_INLINE __m256 reduce8(const __m256* acc) {
  __m256 a[8];  // the last round leaves lane 4h + e holding a[2e + h]
#pragma GCC unroll 8
  for (int h = 0; h < 2; ++h)
#pragma GCC unroll 8
    for (int e = 0; e < 4; ++e) a[2 * e + h] = acc[4 * h + e];
  __m256 b[4], c[2];
#pragma GCC unroll 8
  for (int m = 0; m < 4; ++m)
    b[m] = _mm256_add_ps(_mm256_permute2f128_ps(a[2 * m], a[2 * m + 1], 0x20),
                         _mm256_permute2f128_ps(a[2 * m], a[2 * m + 1], 0x31));
#pragma GCC unroll 8
  for (int m = 0; m < 2; ++m)
    c[m] = _mm256_add_ps(_mm256_shuffle_ps(b[2 * m], b[2 * m + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm256_shuffle_ps(b[2 * m], b[2 * m + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm256_add_ps(_mm256_shuffle_ps(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm256_shuffle_ps(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// Scores of NR query rows x NK keys (NR * NK <= 8) in registers, then one reduce8.
template <int NR, int NK, class Rows>
OSPREY_INLINE void score_tile(const float* q, int64_t D, const Rows& k, int64_t j0, float scale, float* s,
                              int64_t lds) {
  static_assert(NR * NK <= 8);
  const int64_t D8 = D - D % 8;
  __m256 acc[8];
#pragma GCC unroll 8
  for (int x = 0; x < 8; ++x) acc[x] = _mm256_setzero_ps();
  for (int64_t i = 0; i < D8; i += 8) {
    __m256 qv[NR];
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) qv[r] = _mm256_loadu_ps(q + r * D + i);
#pragma GCC unroll 8
    for (int c = 0; c < NK; ++c) {
      const __m256 kv = k.load(j0 + c, i);
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) acc[r * NK + c] = _mm256_fmadd_ps(qv[r], kv, acc[r * NK + c]);
    }
  }
  if (D8 < D) {
    const __m256i m = tail_mask(D - D8);
    __m256 qv[NR];
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) qv[r] = _mm256_maskload_ps(q + r * D + D8, m);
#pragma GCC unroll 8
    for (int c = 0; c < NK; ++c) {
      const __m256 kv = k.load(j0 + c, D8, m, D - D8);
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) acc[r * NK + c] = _mm256_fmadd_ps(qv[r], kv, acc[r * NK + c]);
    }
  }
  alignas(32) float out[8];
  _mm256_store_ps(out, _mm256_mul_ps(reduce8(acc), _mm256_set1_ps(scale)));
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < NK; ++c) s[r * lds + j0 + c] = out[r * NK + c];
}

// Rows [0, NR) against all n keys: tiles of 8 / NR keys, then narrower ones for the rest.
template <int NR, class Rows>
void score_rows(const float* q, int64_t D, const Rows& k, int64_t n, float scale, float* s, int64_t lds) {
  constexpr int NK = 8 / NR;
  int64_t j = 0;
  for (; j + NK <= n; j += NK) score_tile<NR, NK>(q, D, k, j, scale, s, lds);
  while (j < n) {
    const int64_t left = n - j;
    if constexpr (NR == 1) {
      if (left >= 4) {
        score_tile<NR, 4>(q, D, k, j, scale, s, lds);
        j += 4;
        continue;
      }
    }
    if (left >= 2) {
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
  for_row_tiles<2>(R, [&]<int NR>(int64_t r) { score_rows<NR>(q + r * D, D, k, n, scale, s + r * lds, lds); });
}

float max_of(const float* s, int64_t n) {
  __m256 m = _mm256_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(s + j));
  float best = -INFINITY;
  for (; j < n; ++j) best = std::max(best, s[j]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  for (float v : lanes) best = std::max(best, v);
  return best;
}

float exp_sum(float* s, int64_t n, float m) {
  const __m256 mv = _mm256_set1_ps(m);
  __m256 sum = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(s + j), mv));
    _mm256_storeu_ps(s + j, e);
    sum = _mm256_add_ps(sum, e);
  }
  if (j < n) {
    const __m256i m = tail_mask(n - j);
    const __m256 e = _mm256_and_ps(_mm256_castsi256_ps(m), exp_ps(_mm256_sub_ps(_mm256_maskload_ps(s + j, m), mv)));
    _mm256_maskstore_ps(s + j, m, e);
    sum = _mm256_add_ps(sum, e);
  }
  return hsum(sum);
}

// Rows r0..r0+NR of acc, lanes [i, i + 8 * NV), the last vector masked by `last` (n_last
// lanes).
template <int NR, int NV, class Rows>
OSPREY_INLINE void axpy_tile(const float* p, int64_t ldp, const Rows& v, int64_t n, int64_t Dv, int64_t i,
                             __m256i last, int64_t n_last, float* acc) {
  const __m256i all = _mm256_set1_epi32(-1);
  __m256 a[NR][NV];
  auto mask = [&](int c) { return c == NV - 1 ? last : all; };
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) a[r][c] = _mm256_maskload_ps(acc + r * Dv + i + 8 * c, mask(c));
  for (int64_t j = 0; j < n; ++j) {
    __m256 vv[NV];
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c)
      vv[c] = c == NV - 1 && n_last < 8 ? v.load(j, i + 8 * c, last, n_last) : v.load(j, i + 8 * c);
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) {
      const __m256 w = _mm256_set1_ps(p[r * ldp + j]);
#pragma GCC unroll 8
      for (int c = 0; c < NV; ++c) a[r][c] = _mm256_fmadd_ps(w, vv[c], a[r][c]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) _mm256_maskstore_ps(acc + r * Dv + i + 8 * c, mask(c), a[r][c]);
}

template <int NR, class Rows>
void axpy_rows(const float* p, int64_t ldp, const Rows& v, int64_t n, int64_t Dv, float* acc) {
  for (int64_t i = 0; i < Dv; i += 32) {
    const int64_t left = Dv - i;
    const int nv = (int)std::min<int64_t>(4, (left + 7) / 8);
    const int64_t n_last = std::min<int64_t>(8, left - 8 * (nv - 1));
    const __m256i last = tail_mask(n_last);
    switch (nv) {
      case 4: axpy_tile<NR, 4>(p, ldp, v, n, Dv, i, last, n_last, acc); break;
      case 3: axpy_tile<NR, 3>(p, ldp, v, n, Dv, i, last, n_last, acc); break;
      case 2: axpy_tile<NR, 2>(p, ldp, v, n, Dv, i, last, n_last, acc); break;
      default: axpy_tile<NR, 1>(p, ldp, v, n, Dv, i, last, n_last, acc); break;
    }
  }
}

template <class Rows>
void accumulate(const float* p, int64_t ldp, int64_t R, const Rows& v, int64_t n, int64_t Dv, float* acc) {
  for_row_tiles<2>(R, [&]<int NR>(int64_t r) { axpy_rows<NR>(p + r * ldp, ldp, v, n, Dv, acc + r * Dv); });
}

}  // namespace

const AttnKernels* attn_kernels() {
  static const AttnKernels k = attn_table<F32Rows, F16Rows>(
      "avx2", rows_to_f32, exp_sum, max_of,
      [](auto&&... a) { scores(a...); }, [](auto&&... a) { accumulate(a...); });
  return &k;
}

}  // namespace osprey::kernels::avx2

#else

namespace osprey::kernels::avx2 {
const AttnKernels* attn_kernels() { return nullptr; }
}  // namespace osprey::kernels::avx2

#endif
