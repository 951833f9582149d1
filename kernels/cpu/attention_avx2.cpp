// AVX2 + FMA + F16C attention inner loops (built with the flags of quant_dot_avx2.cpp), the
// same plan as attention_avx512.cpp with 8 lanes: cache rows to f32 once per block, dots
// with the head dimension in the lanes, a polynomial exp, values accumulated into 2 rows x 32
// lanes of registers. Partial vectors go through maskload / maskstore.
#include "kernels/cpu/attention_kernels.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include "kernels/cpu/x86_helpers.h"

#include <algorithm>

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

template <int N>
inline void dots(const float* q, int64_t D, const float* k, float scale, float* s, int64_t lds) {
  const int64_t D8 = D - D % 8;
  __m256 a[N];
  for (int r = 0; r < N; ++r) a[r] = _mm256_setzero_ps();
  for (int64_t i = 0; i < D8; i += 8) {
    const __m256 kv = _mm256_loadu_ps(k + i);
    for (int r = 0; r < N; ++r) a[r] = _mm256_fmadd_ps(_mm256_loadu_ps(q + r * D + i), kv, a[r]);
  }
  if (D8 < D) {
    const __m256i m = tail_mask(D - D8);
    const __m256 kv = _mm256_maskload_ps(k + D8, m);
    for (int r = 0; r < N; ++r) a[r] = _mm256_fmadd_ps(_mm256_maskload_ps(q + r * D + D8, m), kv, a[r]);
  }
  for (int r = 0; r < N; ++r) s[r * lds] = hsum(a[r]) * scale;
}

void scores(const float* q, int64_t R, const float* k, int64_t ldk, int64_t n, int64_t D, float scale, float* s,
            int64_t lds) {
  for (int64_t j = 0; j < n; ++j) {
    const float* kr = k + j * ldk;
    int64_t r = 0;
    for (; r + 4 <= R; r += 4) dots<4>(q + r * D, D, kr, scale, s + r * lds + j, lds);
    switch (R - r) {
      case 1: dots<1>(q + r * D, D, kr, scale, s + r * lds + j, lds); break;
      case 2: dots<2>(q + r * D, D, kr, scale, s + r * lds + j, lds); break;
      case 3: dots<3>(q + r * D, D, kr, scale, s + r * lds + j, lds); break;
      default: break;
    }
  }
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

// Rows r0..r0+NR of acc, lanes [i, i + 8 * NV), the last vector masked by `last`.
template <int NR, int NV>
inline void axpy_tile(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t n, int64_t Dv, int64_t i,
                      __m256i last, float* acc) {
  const __m256i all = _mm256_set1_epi32(-1);
  __m256 a[NR][NV];
  auto mask = [&](int c) { return c == NV - 1 ? last : all; };
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NV; ++c) a[r][c] = _mm256_maskload_ps(acc + r * Dv + i + 8 * c, mask(c));
  for (int64_t j = 0; j < n; ++j) {
    __m256 vv[NV];
    for (int c = 0; c < NV; ++c) vv[c] = _mm256_maskload_ps(v + j * ldv + i + 8 * c, mask(c));
    for (int r = 0; r < NR; ++r) {
      const __m256 w = _mm256_set1_ps(p[r * ldp + j]);
      for (int c = 0; c < NV; ++c) a[r][c] = _mm256_fmadd_ps(w, vv[c], a[r][c]);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NV; ++c) _mm256_maskstore_ps(acc + r * Dv + i + 8 * c, mask(c), a[r][c]);
}

template <int NR>
inline void axpy_rows(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t n, int64_t Dv, float* acc) {
  for (int64_t i = 0; i < Dv; i += 32) {
    const int64_t left = Dv - i;
    const int nv = (int)std::min<int64_t>(4, (left + 7) / 8);
    const __m256i last = tail_mask(std::min<int64_t>(8, left - 8 * (nv - 1)));
    switch (nv) {
      case 4: axpy_tile<NR, 4>(p, ldp, v, ldv, n, Dv, i, last, acc); break;
      case 3: axpy_tile<NR, 3>(p, ldp, v, ldv, n, Dv, i, last, acc); break;
      case 2: axpy_tile<NR, 2>(p, ldp, v, ldv, n, Dv, i, last, acc); break;
      default: axpy_tile<NR, 1>(p, ldp, v, ldv, n, Dv, i, last, acc); break;
    }
  }
}

void accumulate(const float* p, int64_t ldp, int64_t R, const float* v, int64_t ldv, int64_t n, int64_t Dv,
                float* acc) {
  int64_t r = 0;
  for (; r + 2 <= R; r += 2) axpy_rows<2>(p + r * ldp, ldp, v, ldv, n, Dv, acc + r * Dv);
  if (r < R) axpy_rows<1>(p + r * ldp, ldp, v, ldv, n, Dv, acc + r * Dv);
}

}  // namespace

const AttnKernels* attn_kernels() {
  static const AttnKernels k{"avx2", rows_to_f32, scores, exp_sum, accumulate};
  return &k;
}

}  // namespace osprey::kernels::avx2

#else

namespace osprey::kernels::avx2 {
const AttnKernels* attn_kernels() { return nullptr; }
}  // namespace osprey::kernels::avx2

#endif
