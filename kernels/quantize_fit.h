// Weighted least-squares fits shared by the K-quant and IQ4 quantizers (private to kernels/).
//
// Every format here stores x ~ d * q (symmetric) or x ~ d * q - m (affine) per small group,
// with q from a fixed integer range or, for IQ4, a fixed table of levels. Rounding with the
// obvious scale (max / qmax) is rarely the best choice: the fits below try a fan of candidate
// scales around it, round with each, and keep the one whose least-squares optimum (given the
// rounded q) has the lowest weighted error. The weights are where an importance matrix
// enters: a column that sees large activations costs more to get wrong.
#pragma once
#include <cmath>
#include <cstdint>

// The searches below (and the K-quants' finishing step) are also compiled for AVX2 and
// AVX-512, picked at run time (GCC function clones, x86-64 only): 4 or 8 doubles a vector
// instead of SSE2's 2. Their files are built with -ffp-contract=off (kernels/CMakeLists.txt),
// so no multiply-add is fused in any clone (AVX-512 implies FMA) and every value, hence every
// quantized file, is the same as from the baseline build. On Zen 4, SmolLM2 Q6_K: 2.39 ->
// 2.23 CPU s with the AVX-512 clone (session 12). fit_symmetric's candidate search has an
// AVX2 version in intrinsics as well (quantize_fit_avx2.cpp), which keeps its sums in
// registers: 1.3x the AVX2 clone's speed (session 18), the same values.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define OSPREY_QFIT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define OSPREY_QFIT_CLONES
#endif

namespace osprey::kernels::qfit {

// Per-element weights for one row of n elements (sigma2: their mean square). Without
// importance, w = sqrt(sigma2 + x^2): large weights matter more. With importance (the mean
// squared activation per column, which makes importance * error^2 the expected squared output
// error), w = importance * sqrt(2 sigma2 + x^2): the importance leads and the magnitude term
// only tilts it. Never all zero.
void row_weights(const float* x, int64_t n, const float* importance, float* w);

// x ~ d * q, q integer in [qmin, qmax] (qmin < 0 < qmax). Writes q (as int) and returns d,
// which may be negative: the value of largest magnitude is tried against both ends of the range.
float fit_symmetric(const float* x, const float* w, int n, int qmin, int qmax, int* q);

// fit_symmetric's candidate scales: the value of largest magnitude lands on either end of the
// range, stretched by -0.6..+1.0 levels in steps of 0.1.
constexpr int kSymmetricCandidates = 34;

namespace avx2 {
// quantize_fit_avx2.cpp: false where the build has no AVX2 file (another CPU, other flags).
bool built();
// The first of the candidate inverse scales iscale[0..n_candidates) whose rounding has the
// highest score (see fit_symmetric), or -1 if none has a score. iscale must be readable up to
// n_candidates rounded up to a multiple of 4 (n_candidates <= kSymmetricCandidates).
int best_candidate(const float* x, const float* w, int n, int qmin, int qmax, const float* iscale,
                   int n_candidates);
}  // namespace avx2

// x ~ d * q - m, q integer in [0, qmax], d >= 0, m >= 0 (the K-quants' group offset is never
// above zero: they store it as an unsigned amount to subtract). With any_sign_offset (Q4_1,
// Q5_1, which store the offset as a signed half) m may be negative too. Writes q, d, m.
void fit_affine(const float* x, const float* w, int n, int qmax, int* q, float* d, float* m,
                bool any_sign_offset = false);

// x ~ d * levels[q], levels sorted ascending (at most 16). Writes q and returns d (signed).
float fit_table(const float* x, const float* w, int n, const int8_t* levels, int nlevels, int* q);

// Index of the level nearest to v (levels sorted ascending).
int nearest_level(float v, const int8_t* levels, int nlevels);

// A table of at most 16 sorted levels as its midpoints: the value of the level nearest to v,
// without a lookup or a branch (so loops over candidates vectorize), is levels[0] plus the
// step past every midpoint v reaches. A value on a midpoint goes up, as nearest_level's does;
// a NaN reaches none (levels[0], where nearest_level clamps it); past the table, steps are 0.
struct LevelMidpoints {
  static constexpr int kMaxLevels = 16;
  float first, mid[kMaxLevels - 1], step[kMaxLevels - 1];
  LevelMidpoints(const int8_t* levels, int nlevels);
  float value(float v) const {
    float t = first;
    for (int m = 0; m < kMaxLevels - 1; ++m) t += (float)(v >= mid[m]) * step[m];
    return t;
  }
};

// Quantize group scales s[0..n) to integers in [qmin, qmax] with one shared float scale:
// returns D and writes iq so that s[j] ~ D * iq[j]. Symmetric (qmin < 0): the scale of largest
// magnitude maps to qmin - stretch. Unsigned (qmin == 0): the largest maps to qmax + stretch.
// (A negative stretch clips the largest scale a little to resolve the others more finely.)
float quantize_scales(const float* s, int n, int qmin, int qmax, int* iq, float stretch = 0.0f);

// The stretches the K-quant and IQ4_XS quantizers try for their group scales, keeping the one
// whose finished block has the lowest weighted error.
constexpr float kScaleStretches[] = {0.0f, -1.0f, -0.5f, 0.5f};

// The element of largest magnitude, with its sign: the first of equal magnitudes, 0 if every
// element is zero or NaN. Selects instead of branching on the data (a branch here was a
// tenth of a Q4_0 quantize, mispredicted on random data).
inline float signed_absmax(const float* x, int n) {
  float amax = 0.0f, vmax = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    const bool bigger = a > amax;
    amax = bigger ? a : amax;
    vmax = bigger ? x[i] : vmax;
  }
  return vmax;
}

// The smallest and largest of x[0..n) with plain compares: the std::fmin / fmax fold from
// x[0] this replaces was library calls on baseline x86-64 with a branch for NaN (together a
// third of a Q4_1 quantize). The same values as that fold gave (checked byte for byte on
// quantized files): NaNs passed over, a tie of -0 and +0 keeping the earlier element, all
// NaN giving x[0]. (glibc's fmin also restarts the fold after a signaling NaN; here a
// signaling NaN is passed over like a quiet one.)
inline void min_max(const float* x, int n, float* lo, float* hi) {
  float l = INFINITY, h = -INFINITY;
  for (int i = 0; i < n; ++i) l = x[i] < l ? x[i] : l, h = x[i] > h ? x[i] : h;
  if (n > 0 && !(l <= h)) l = h = x[0];  // all NaN
  *lo = l, *hi = h;
}

// Round-half-away-from-zero to int, clamped to [lo, hi].
// Clamped in float first, so an out-of-range (or NaN, which goes to lo) value never reaches
// the int conversion.
inline int round_clamp(float v, int lo, int hi) {
  if (!(v > (float)lo)) return lo;
  if (v >= (float)hi) return hi;
  return (int)(v >= 0 ? v + 0.5f : v - 0.5f);
}

// round_clamp without branches, so a loop over candidates or elements vectorizes (the files
// that use it are built with -fno-trapping-math for that, which changes no value): the same
// value for every input, as a float (NaN fails v > lo and becomes lo; clamped first, the value
// is never out of int range; lo and hi round to themselves; copysign adds -0.5 to -0.0 where
// round_clamp adds +0.5, and both truncate to 0).
inline float round_clamp_flat(float v, int lo, int hi) {
  float c = v > (float)lo ? v : (float)lo;
  c = c < (float)hi ? c : (float)hi;
  return (float)(int)(c + std::copysign(0.5f, c));
}

// std::roundf (half away from zero, as ggml's and gguf-py's 8-bit quantizers round) of a
// value in [-127, 127], inline and branch-free: roundf is a library call on baseline x86-64.
// The truncation is exact in an int and v - t is exactly the fraction. Out of range values
// clamp to +-127 and NaN gives 0, so the int conversion is always defined.
inline int8_t round_half_away_i8(float v) {
  float c = v >= -127.0f ? v : -127.0f;
  c = c <= 127.0f ? c : 127.0f;
  c = v == v ? c : 0.0f;
  int t = (int)c;
  const float f = c - (float)t;
  t += (f >= 0.5f) - (f <= -0.5f);
  return (int8_t)t;
}

// The values a group's integer q decodes to: qmin..qmax themselves, or table[q] for an index
// q in [0, qmax] (table sorted ascending).
struct Grid {
  int qmin, qmax;
  const int8_t* table;
  float value(int q) const { return table ? (float)table[q] : (float)q; }
};

// Largest group layout the finishing step handles (one K-quant super-block).
constexpr int kMaxSuperBlock = 256;

// Step after the group scales sc[] have been quantized against super-scale D, for the
// symmetric formats x ~ D * sc[g] * grid.value(q): re-choose every q for the scales as they
// will be decoded, then try the least-squares D for those q, keeping it if the error drops.
// Returns the D to store, already rounded to half precision.
// *err, if given, receives the weighted squared error of the result.
float finish_symmetric(const float* x, const float* w, int group, int ngroups, const int* sc, float D,
                       const Grid& grid, int* q, double* err = nullptr);

// One attempt for the finishing step: in, the group scales and the super-scale they were
// quantized against; out, the stored D, the levels and the weighted squared error.
constexpr int kMaxFinishAttempts = 8;
struct SymmetricAttempt {
  int sc[16];
  float D;
  int q[kMaxSuperBlock];
  double err;
};

// The finishing step for several attempts (at most kMaxFinishAttempts, ngroups <= 16), each
// with the values one call above gives it. Most of the step is chains of dependent double
// additions (errors summed in element order); here the attempts' chains run side by side.
void finish_symmetric(const float* x, const float* w, int group, int ngroups, const Grid& grid,
                      SymmetricAttempt* attempts, int n_attempts);

// One attempt for the affine finishing step: in, the group scales and mins and the
// super-scales they were quantized against; out, the stored D and M, the levels and the error.
struct AffineAttempt {
  int sc[16], mn[16];
  float D, M;
  int q[kMaxSuperBlock];
  double err;
};
constexpr int kMaxAffineAttempts = 4;

// The finishing step of the affine formats, x ~ D * sc[g] * q - M * mn[g] (q in [0, qmax]):
// as finish_symmetric, for up to kMaxAffineAttempts attempts at once, refitting D and M
// jointly by least squares.
void finish_affine(const float* x, const float* w, int group, int ngroups, int qmax, AffineAttempt* attempts,
                   int n_attempts);

// sums[j] = terms[j][0] + terms[j][1] + ... + terms[j][n - 1], added in that order, for
// j < nrows (at most kMaxOrderedSums) at once: each sum is the same chain of dependent
// additions as alone, and the chains advance side by side.
constexpr int kMaxOrderedSums = 16;
void sums_in_order(const double (*terms)[kMaxSuperBlock], int nrows, int n, double* sums);

// v rounded to the nearest half-precision value.
float f16_round(float v);

}  // namespace osprey::kernels::qfit
