// AVX-512 attention inner loops (built with the flags of quant_dot_avx512.cpp; the
// dispatcher uses them only where those instructions exist). Cache rows become f32 once per
// block (vcvtph2ps for f16, a shift for bf16, the q8_0 / q4_0 blocks widened and scaled);
// scores are dots with the head dimension in the lanes, up to 8 query rows per pass over a
// key row; exp is a polynomial (below); values are accumulated into 4 rows x 64 lanes of
// registers per pass over the block.
#include "kernels/cpu/attention_kernels.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>

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

// N query rows against key row k: one accumulator per row, 16 lanes of D per step.
template <int N>
inline void dots(const float* q, int64_t D, const float* k, float scale, float* s, int64_t lds) {
  const int64_t D16 = D - D % 16;
  const __mmask16 tail = tail_mask(D % 16);
  __m512 a[N];
  for (int r = 0; r < N; ++r) a[r] = _mm512_setzero_ps();
  for (int64_t i = 0; i < D16; i += 16) {
    const __m512 kv = _mm512_loadu_ps(k + i);
    for (int r = 0; r < N; ++r) a[r] = _mm512_fmadd_ps(_mm512_loadu_ps(q + r * D + i), kv, a[r]);
  }
  if (tail) {
    const __m512 kv = _mm512_maskz_loadu_ps(tail, k + D16);
    for (int r = 0; r < N; ++r) a[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, q + r * D + D16), kv, a[r]);
  }
  for (int r = 0; r < N; ++r) s[r * lds] = _mm512_reduce_add_ps(a[r]) * scale;
}

void scores(const float* q, int64_t R, const float* k, int64_t ldk, int64_t n, int64_t D, float scale, float* s,
            int64_t lds) {
  for (int64_t j = 0; j < n; ++j) {
    const float* kr = k + j * ldk;
    int64_t r = 0;
    for (; r + 8 <= R; r += 8) dots<8>(q + r * D, D, kr, scale, s + r * lds + j, lds);
    switch (R - r) {
      case 1: dots<1>(q + r * D, D, kr, scale, s + r * lds + j, lds); break;
      case 2: dots<2>(q + r * D, D, kr, scale, s + r * lds + j, lds); break;
      case 3: dots<3>(q + r * D, D, kr, scale, s + r * lds + j, lds); break;
      case 4: dots<4>(q + r * D, D, kr, scale, s + r * lds + j, lds); break;
      case 5: dots<5>(q + r * D, D, kr, scale, s + r * lds + j, lds); break;
      case 6: dots<6>(q + r * D, D, kr, scale, s + r * lds + j, lds); break;
      case 7: dots<7>(q + r * D, D, kr, scale, s + r * lds + j, lds); break;
      default: break;
    }
  }
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
template <int NR, int NV>
inline void axpy_tile(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t n, int64_t Dv, int64_t i,
                      __mmask16 last, float* acc) {
  __m512 a[NR][NV];
  auto mask = [&](int c) { return c == NV - 1 ? last : (__mmask16)0xffff; };
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NV; ++c) a[r][c] = _mm512_maskz_loadu_ps(mask(c), acc + r * Dv + i + 16 * c);
  for (int64_t j = 0; j < n; ++j) {
    __m512 vv[NV];
    for (int c = 0; c < NV; ++c) vv[c] = _mm512_maskz_loadu_ps(mask(c), v + j * ldv + i + 16 * c);
    for (int r = 0; r < NR; ++r) {
      const __m512 w = _mm512_set1_ps(p[r * ldp + j]);
      for (int c = 0; c < NV; ++c) a[r][c] = _mm512_fmadd_ps(w, vv[c], a[r][c]);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NV; ++c) _mm512_mask_storeu_ps(acc + r * Dv + i + 16 * c, mask(c), a[r][c]);
}

template <int NR>
inline void axpy_rows(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t n, int64_t Dv, float* acc) {
  for (int64_t i = 0; i < Dv; i += 64) {
    const int64_t left = Dv - i;  // lanes still to do, in up to 4 vectors
    const int nv = (int)std::min<int64_t>(4, (left + 15) / 16);
    const __mmask16 last = left >= 16 * nv ? (__mmask16)0xffff : tail_mask(left - 16 * (nv - 1));
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
  for (; r + 4 <= R; r += 4) axpy_rows<4>(p + r * ldp, ldp, v, ldv, n, Dv, acc + r * Dv);
  switch (R - r) {
    case 1: axpy_rows<1>(p + r * ldp, ldp, v, ldv, n, Dv, acc + r * Dv); break;
    case 2: axpy_rows<2>(p + r * ldp, ldp, v, ldv, n, Dv, acc + r * Dv); break;
    case 3: axpy_rows<3>(p + r * ldp, ldp, v, ldv, n, Dv, acc + r * Dv); break;
    default: break;
  }
}

}  // namespace

const AttnKernels* attn_kernels() {
  static const AttnKernels k{"avx512", rows_to_f32, scores, exp_sum, accumulate};
  return &k;
}

}  // namespace osprey::kernels::avx512

#else

namespace osprey::kernels::avx512 {
const AttnKernels* attn_kernels() { return nullptr; }
}  // namespace osprey::kernels::avx512

#endif
