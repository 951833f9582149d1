// qfit::fit_symmetric's candidate search in AVX2 intrinsics (this file alone is built with
// -mavx2; quantize_fit.cpp calls it only where the CPU has AVX2 and the active kernel variant
// is avx2). The values are the portable search's, bit for bit: every candidate's two double
// sums add the same products in element order, and the choice is the first candidate of
// highest score. What differs is where the sums live: the auto-vectorised loop kept all 40 in
// memory (a load, add and store per element), and here 16 candidates' sums at a time stay in
// eight registers while the elements stream past.
#include "kernels/quantize_fit.h"

#if defined(__AVX2__)
#include <immintrin.h>

namespace osprey::kernels::qfit::avx2 {
namespace {

// round_clamp_flat on 8 values: clamp (a NaN fails v > lo and becomes lo, as maxps returns its
// second operand then), add 0.5 carrying the value's sign, truncate.
inline __m256 round_clamp8(__m256 v, __m256 lo, __m256 hi) {
  const __m256 c = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
  const __m256 half = _mm256_or_ps(_mm256_and_ps(c, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(0.5f));
  return _mm256_cvtepi32_ps(_mm256_cvttps_epi32(_mm256_add_ps(c, half)));
}

// Adds element i's terms to four candidates' sums: slx += wx * l, sll += (wi * l) * l.
inline void accumulate4(__m128 l, __m256d wx, __m256d wi, __m256d& slx, __m256d& sll) {
  const __m256d ld = _mm256_cvtps_pd(l);
  slx = _mm256_add_pd(slx, _mm256_mul_pd(wx, ld));
  sll = _mm256_add_pd(sll, _mm256_mul_pd(_mm256_mul_pd(wi, ld), ld));
}

// The sums of candidates iscale[0..16) over all n elements, into slx[0..16), sll[0..16).
void sums16(const float* x, const float* w, int n, const float* iscale, __m256 lo, __m256 hi, double* slx,
            double* sll) {
  const __m256 is0 = _mm256_loadu_ps(iscale), is1 = _mm256_loadu_ps(iscale + 8);
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  for (int i = 0; i < n; ++i) {
    const __m256 xi = _mm256_set1_ps(x[i]);
    const __m256d wx = _mm256_set1_pd((double)w[i] * x[i]), wi = _mm256_set1_pd(w[i]);
    const __m256 l0 = round_clamp8(_mm256_mul_ps(is0, xi), lo, hi);
    const __m256 l1 = round_clamp8(_mm256_mul_ps(is1, xi), lo, hi);
    accumulate4(_mm256_castps256_ps128(l0), wx, wi, a0, b0);
    accumulate4(_mm256_extractf128_ps(l0, 1), wx, wi, a1, b1);
    accumulate4(_mm256_castps256_ps128(l1), wx, wi, a2, b2);
    accumulate4(_mm256_extractf128_ps(l1, 1), wx, wi, a3, b3);
  }
  _mm256_storeu_pd(slx, a0), _mm256_storeu_pd(slx + 4, a1), _mm256_storeu_pd(slx + 8, a2);
  _mm256_storeu_pd(slx + 12, a3);
  _mm256_storeu_pd(sll, b0), _mm256_storeu_pd(sll + 4, b1), _mm256_storeu_pd(sll + 8, b2);
  _mm256_storeu_pd(sll + 12, b3);
}

// The same for four candidates iscale[0..4).
void sums4(const float* x, const float* w, int n, const float* iscale, __m256 lo, __m256 hi, double* slx,
           double* sll) {
  const __m128 is = _mm_loadu_ps(iscale);
  __m256d a = _mm256_setzero_pd(), b = a;
  for (int i = 0; i < n; ++i) {
    const __m256d wx = _mm256_set1_pd((double)w[i] * x[i]), wi = _mm256_set1_pd(w[i]);
    const __m256 v = _mm256_castps128_ps256(_mm_mul_ps(is, _mm_set1_ps(x[i])));
    accumulate4(_mm256_castps256_ps128(round_clamp8(v, lo, hi)), wx, wi, a, b);
  }
  _mm256_storeu_pd(slx, a), _mm256_storeu_pd(sll, b);
}

}  // namespace

bool built() { return true; }

int best_candidate(const float* x, const float* w, int n, int qmin, int qmax, const float* iscale,
                   int n_candidates) {
  constexpr int kMax = kSymmetricCandidates;
  if (n_candidates < 1 || n_candidates > kMax) return -1;  // callers pass kSymmetricCandidates
  alignas(32) double slx[kMax + 4], sll[kMax + 4];
  const __m256 lo = _mm256_set1_ps((float)qmin), hi = _mm256_set1_ps((float)qmax);
  int k = 0;
  for (; k + 16 <= n_candidates; k += 16) sums16(x, w, n, iscale + k, lo, hi, slx + k, sll + k);
  for (; k < n_candidates; k += 4) sums4(x, w, n, iscale + k, lo, hi, slx + k, sll + k);
  // Score slx^2 / sll where sll > 0, else -1 (a NaN score, which never wins, and the padding
  // also -1); then the first candidate whose score is the highest, if that is above -1.
  const int nv = (n_candidates + 3) / 4;
  __m256d score[(kMax + 4) / 4], best = _mm256_set1_pd(-1.0);
  for (int v = 0; v < nv; ++v) {
    const __m256d sx = _mm256_load_pd(slx + 4 * v), sl = _mm256_load_pd(sll + 4 * v);
    const __m256d s = _mm256_div_pd(_mm256_mul_pd(sx, sx), sl);
    const __m256d ok = _mm256_and_pd(_mm256_cmp_pd(sl, _mm256_setzero_pd(), _CMP_GT_OQ), _mm256_cmp_pd(s, s, _CMP_ORD_Q));
    const __m256d lane = _mm256_add_pd(_mm256_set1_pd(4.0 * v), _mm256_set_pd(3, 2, 1, 0));
    const __m256d real = _mm256_cmp_pd(lane, _mm256_set1_pd(n_candidates), _CMP_LT_OQ);  // not padding
    score[v] = _mm256_blendv_pd(_mm256_set1_pd(-1.0), s, _mm256_and_pd(ok, real));
    best = _mm256_max_pd(best, score[v]);
  }
  __m128d m = _mm_max_pd(_mm256_castpd256_pd128(best), _mm256_extractf128_pd(best, 1));
  m = _mm_max_sd(m, _mm_unpackhi_pd(m, m));
  const double top = _mm_cvtsd_f64(m);
  if (!(top > -1.0)) return -1;
  const __m256d topv = _mm256_set1_pd(top);
  for (int v = 0; v < nv; ++v)
    if (const int hit = _mm256_movemask_pd(_mm256_cmp_pd(score[v], topv, _CMP_EQ_OQ)))
      return 4 * v + __builtin_ctz(hit);
  return -1;
}

}  // namespace osprey::kernels::qfit::avx2

#else

namespace osprey::kernels::qfit::avx2 {
bool built() { return false; }
int best_candidate(const float*, const float*, int, int, int, const float*, int) { return -1; }
}  // namespace osprey::kernels::qfit::avx2

#endif
