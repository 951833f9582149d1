// Weighted scale searches for the K-quant and IQ4 quantizers. See quantize_fit.h.
//
// The shared idea: for a candidate inverse scale, round every element to its nearest level;
// given those levels the best scale is a weighted least-squares solution in closed form, and
// its error is  sum(w x^2) - (sum w x l)^2 / sum(w l^2)  for the symmetric case, so comparing
// candidates needs only the two sums. Sums are accumulated in double: groups are small and
// the affine error is a difference of nearly equal terms.
#include "kernels/quantize_fit.h"

#include <cmath>
#include <cstring>
#include <optional>

#include "kernels/base/fp16.h"
#include "kernels/cpu/quant_dot.h"

namespace osprey::kernels::qfit {

float f16_round(float v) { return f16_to_f32(f32_to_f16(v)); }

void row_weights(const float* x, int64_t n, const float* importance, float* w) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += (double)x[i] * x[i];
  const float sigma2 = n > 0 ? (float)(ss / (double)n) : 0.0f;
  // An importance of exactly zero (a column no calibration token reached) must not make the
  // element free to be anything: floor it at a small share of the row's mean importance.
  float floor_imp = 0.0f;
  if (importance) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += importance[i] > 0 ? importance[i] : 0.0f;
    floor_imp = n > 0 ? (float)(1e-3 * s / (double)n) : 0.0f;
    if (floor_imp <= 0.0f) importance = nullptr;  // nothing usable: plain weights
  }
  for (int64_t i = 0; i < n; ++i) {
    const float base = sigma2 > 0.0f ? std::sqrt((importance ? 2.0f : 1.0f) * sigma2 + x[i] * x[i]) : 1.0f;
    const float imp = importance ? (importance[i] > floor_imp ? importance[i] : floor_imp) : 1.0f;  // NaN: the floor
    w[i] = base * imp;
  }
}

namespace {

// The first candidate of highest score (-1: none has one), all candidates in one pass over the
// elements: each candidate's sums still add in element order (the same doubles as one
// candidate at a time), but the candidates vectorize and no long chain of dependent additions
// sets the pace. The lanes past the candidates repeat the last one, to fill whole vectors; the
// choice reads only the real candidates. quantize_fit_avx2.cpp gives the same answer.
OSPREY_QFIT_CLONES
int best_candidate_portable(const float* x, const float* w, int n, int qmin, int qmax, const float* iscale_in) {
  constexpr int kLanes = (kSymmetricCandidates + 7) / 8 * 8;  // whole vectors of 8 floats
  float iscale[kLanes];
  for (int k = 0; k < kLanes; ++k) iscale[k] = iscale_in[k < kSymmetricCandidates ? k : kSymmetricCandidates - 1];
  double slx[kLanes] = {}, sll[kLanes] = {};
  for (int i = 0; i < n; ++i) {
    const double wx = (double)w[i] * x[i], wi = w[i];
    for (int k = 0; k < kLanes; ++k) {
      const double l = round_clamp_flat(iscale[k] * x[i], qmin, qmax);
      slx[k] += wx * l;
      sll[k] += wi * l * l;
    }
  }
  double score[kLanes];  // the error drop each candidate's optimal scale gives (vectorizes)
  for (int k = 0; k < kLanes; ++k) score[k] = sll[k] > 0 ? slx[k] * slx[k] / sll[k] : -1.0;
  int best = -1;
  double best_score = -1.0;
  for (int k = 0; k < kSymmetricCandidates; ++k)
    if (score[k] > best_score) best_score = score[k], best = k;
  return best;
}

// The AVX2 search where the active kernel variant is avx2 (quant_dot.h: the matmuls' choice,
// capped by OSPREY_CPU_ISA). Where it is avx512, the portable search's AVX-512 clone runs, as
// before; OSPREY_CPU_ISA=scalar selects the portable search (its best clone for the CPU).
bool use_avx2_search() {
  static const bool on = avx2::built() && std::strcmp(active_isa().name, "avx2") == 0;
  return on;
}

}  // namespace

OSPREY_QFIT_CLONES
float fit_symmetric(const float* x, const float* w, int n, int qmin, int qmax, int* q) {
  const float vmax = signed_absmax(x, n);
  if (vmax == 0.0f) {
    for (int i = 0; i < n; ++i) q[i] = 0;
    return 0.0f;
  }
  // Candidates: the largest value lands on -|qmin| or +qmax, each stretched by -0.6..+1.0
  // levels (stretching clips the largest value but resolves the rest more finely).
  constexpr int kFirst = -6, kFan = kSymmetricCandidates / 2;
  constexpr int kPadded = (kSymmetricCandidates + 3) / 4 * 4;  // whole vectors of 4 for the AVX2 search
  float iscale[kPadded];
  for (int side = 0; side < 2; ++side) {
    const float target = side == 0 ? (float)qmin : (float)qmax;
    const float sgn = target < 0 ? -1.0f : 1.0f;
    for (int k = 0; k < kFan; ++k) iscale[side * kFan + k] = (target + sgn * 0.1f * (float)(k + kFirst)) / vmax;
  }
  for (int k = kSymmetricCandidates; k < kPadded; ++k) iscale[k] = iscale[kSymmetricCandidates - 1];
  const int best = use_avx2_search() ? avx2::best_candidate(x, w, n, qmin, qmax, iscale, kSymmetricCandidates)
                                     : best_candidate_portable(x, w, n, qmin, qmax, iscale);
  const float best_iscale = best >= 0 ? iscale[best] : (float)qmin / vmax;
  // The chosen rounding, then its sums in element order.
  for (int i = 0; i < n; ++i) q[i] = (int)round_clamp_flat(best_iscale * x[i], qmin, qmax);
  double slx1 = 0, sll1 = 0;
  for (int i = 0; i < n; ++i) {
    slx1 += (double)w[i] * x[i] * q[i];
    sll1 += (double)w[i] * q[i] * q[i];
  }
  return sll1 > 0 ? (float)(slx1 / sll1) : 1.0f / best_iscale;
}

namespace {

struct AffineFit {
  double d, b, err;
};

// Best d, b (b <= 0) for x ~ d*q + b given the weighted sums over the group (s<a><b>: sum of
// w*a*b), with the weighted squared error.
AffineFit solve_affine_sums(double sw, double sq, double sqq, double sx, double sqx, double sxx,
                            bool any_sign_offset) {
  AffineFit f{0, 0, 0};
  const double det = sw * sqq - sq * sq;
  if (det > 0) {
    f.d = (sw * sqx - sq * sx) / det;
    f.b = (sqq * sx - sq * sqx) / det;
  }
  if (det <= 0 || (f.b > 0 && !any_sign_offset) || f.d < 0) {  // constrained: offset pinned at zero
    f.b = 0;
    f.d = sqq > 0 ? std::fmax(0.0, sqx / sqq) : 0.0;
  }
  f.err = sxx - 2 * f.d * sqx - 2 * f.b * sx + f.d * f.d * sqq + 2 * f.d * f.b * sq + f.b * f.b * sw;
  return f;
}

AffineFit solve_affine(const float* x, const float* w, int n, const int* q, bool any_sign_offset) {
  double sw = 0, sq = 0, sqq = 0, sx = 0, sqx = 0, sxx = 0;
  for (int i = 0; i < n; ++i) {
    const double wi = w[i], qi = q[i], xi = x[i];
    sw += wi, sq += wi * qi, sqq += wi * qi * qi, sx += wi * xi, sqx += wi * qi * xi, sxx += wi * xi * xi;
  }
  return solve_affine_sums(sw, sq, sqq, sx, sqx, sxx, any_sign_offset);
}

}  // namespace

OSPREY_QFIT_CLONES
void fit_affine(const float* x, const float* w, int n, int qmax, int* q, float* d, float* m, bool any_sign_offset) {
  float lo, hi;
  min_max(x, n, &lo, &hi);
  if (lo > 0.0f && !any_sign_offset) lo = 0.0f;
  if (hi <= lo) {  // constant group (<= 0): all the offset
    for (int i = 0; i < n; ++i) q[i] = 0;
    *d = 0.0f;
    *m = -lo;
    return;
  }
  // All candidate scales in one pass over the group (sums in element order per candidate, as
  // solve_affine adds them); the sums of w, w x and w x^2 do not depend on the candidate.
  constexpr int kFirst = -10, kFan = 21;
  float iscale[kFan];
  double sq[kFan] = {}, sqq[kFan] = {}, sqx[kFan] = {}, sw = 0, sx = 0, sxx = 0;
  for (int k = 0; k < kFan; ++k) iscale[k] = ((float)qmax + 0.1f * (float)(k + kFirst)) / (hi - lo);
  for (int i = 0; i < n; ++i) {
    const double wi = w[i], xi = x[i];
    sw += wi, sx += wi * xi, sxx += wi * xi * xi;
    const float xl = x[i] - lo;
    for (int k = 0; k < kFan; ++k) {
      const double qi = round_clamp_flat(iscale[k] * xl, 0, qmax);
      sq[k] += wi * qi, sqq[k] += wi * qi * qi, sqx[k] += wi * qi * xi;
    }
  }
  AffineFit best{0, 0, INFINITY};
  int best_k = -kFirst;  // the unstretched scale, should no error be finite
  for (int k = 0; k < kFan; ++k) {
    const AffineFit f = solve_affine_sums(sw, sq[k], sqq[k], sx, sqx[k], sxx, any_sign_offset);
    if (f.err < best.err) best = f, best_k = k;
  }
  for (int i = 0; i < n; ++i) q[i] = round_clamp(iscale[best_k] * (x[i] - lo), 0, qmax);
  // One re-rounding with the fitted scale and offset, kept if it helps.
  if (best.d > 0) {
    int trial[64];
    const double id = 1.0 / best.d;
    for (int i = 0; i < n; ++i) trial[i] = round_clamp((float)((x[i] - best.b) * id), 0, qmax);
    const AffineFit f = solve_affine(x, w, n, trial, any_sign_offset);
    if (f.err < best.err) {
      best = f;
      for (int i = 0; i < n; ++i) q[i] = trial[i];
    }
  }
  *d = (float)best.d;
  *m = (float)-best.b;
}

namespace {

int nearest_level_search(float v, const int8_t* levels, int nlevels) {
  int lo = 0, hi = nlevels - 1;
  if (v <= levels[lo]) return lo;
  if (v >= levels[hi]) return hi;
  while (hi - lo > 1) {  // levels[lo] < v < levels[hi]
    const int mid = (lo + hi) / 2;
    if (v < levels[mid]) hi = mid; else lo = mid;
  }
  return (v - levels[lo] <= levels[hi] - v) ? lo : hi;
}

// The table fit needs this for every element and candidate scale, so it reads a lookup
// table in steps of 0.5: levels are integers, so every midpoint between two of them is a
// multiple of 0.5 and no cell [k/2, (k+1)/2) straddles one. (A value exactly on a midpoint
// may go either way; both levels are equally near.) The table is rebuilt when the levels change.
struct LevelLut {
  const int8_t* levels;
  int nlevels;
  const uint8_t* cell;  // cell[k] covers [(k - 256) / 2, (k - 255) / 2)
  const float* value;   // levels[cell[k]]

  explicit LevelLut(const int8_t* lv, int n) : levels(lv), nlevels(n) {
    thread_local const int8_t* cached = nullptr;
    thread_local int cached_n = 0;
    thread_local uint8_t lut[512];
    thread_local float lut_value[512];
    if (cached != lv || cached_n != n) {
      for (int k = 0; k < 512; ++k) {
        lut[k] = (uint8_t)nearest_level_search((float)(k - 256) * 0.5f + 0.25f, lv, n);
        lut_value[k] = (float)lv[lut[k]];
      }
      cached = lv, cached_n = n;
    }
    cell = lut, value = lut_value;
  }
  // Clamped to the table's ends first (NaN to the low end); then v in [-128, 127] and the
  // floor of 2v, taken exactly, gives the cell in [0, 511]. The ends land in cells whose
  // level is the end.
  int cell_of(float v) const {
    float c = v > (float)levels[0] ? v : (float)levels[0];
    c = c < (float)levels[nlevels - 1] ? c : (float)levels[nlevels - 1];
    const float c2 = c * 2.0f;
    int k = (int)c2;
    k -= (float)k > c2;  // truncation rounds negative values up: make it the floor
    return k + 256;
  }
  int operator()(float v) const { return cell[cell_of(v)]; }
};

}  // namespace

int nearest_level(float v, const int8_t* levels, int nlevels) { return LevelLut(levels, nlevels)(v); }

LevelMidpoints::LevelMidpoints(const int8_t* levels, int nlevels) : first((float)levels[0]) {
  for (int m = 0; m < kMaxLevels - 1; ++m) {
    const bool real = m + 1 < nlevels;
    mid[m] = real ? 0.5f * (float)(levels[m] + levels[m + 1]) : INFINITY;
    step[m] = real ? (float)(levels[m + 1] - levels[m]) : 0.0f;
  }
}

OSPREY_QFIT_CLONES
float fit_table(const float* x, const float* w, int n, const int8_t* levels, int nlevels, int* q) {
  const LevelLut nearest(levels, nlevels);
  const float vmax = signed_absmax(x, n);
  if (vmax == 0.0f) {
    const int zero = nearest(0.0f);
    for (int i = 0; i < n; ++i) q[i] = zero;
    return 0.0f;
  }
  auto score_of = [&](float iscale, int* out, double* stx_out, double* stt_out) {
    double stx = 0, stt = 0;
    for (int i = 0; i < n; ++i) {
      const int l = nearest(iscale * x[i]);
      if (out) out[i] = l;
      const double t = levels[l];
      stx += (double)w[i] * x[i] * t;
      stt += (double)w[i] * t * t;
    }
    *stx_out = stx, *stt_out = stt;
    return stt > 0 ? stx * stx / stt : -1.0;
  };
  // The largest value lands on either end of the table, stretched by up to +-half a step.
  // All candidates in one pass (sums in element order per candidate, as score_of adds them),
  // padded to whole vectors with repeats of the last, which the choice skips. The nearest
  // level is counted from the midpoints rather than looked up, so the candidates vectorize
  // without a gather.
  constexpr int kFirst = -4, kFan = 13, kCandidates = 2 * kFan, kLanes = 32;
  const LevelMidpoints mids(levels, nlevels);
  float iscale[kLanes];
  for (int side = 0; side < 2; ++side) {
    const float target = side == 0 ? (float)levels[0] : (float)levels[nlevels - 1];
    const float sgn = target < 0 ? -1.0f : 1.0f;
    for (int k = 0; k < kFan; ++k) iscale[side * kFan + k] = (target + sgn * 2.0f * (float)(k + kFirst)) / vmax;
  }
  for (int k = kCandidates; k < kLanes; ++k) iscale[k] = iscale[kCandidates - 1];
  double sx[kLanes] = {}, st[kLanes] = {};
  for (int i = 0; i < n; ++i) {
    float t[kLanes];
    for (int k = 0; k < kLanes; ++k) t[k] = mids.value(iscale[k] * x[i]);
    const double wx = (double)w[i] * x[i], wi = w[i];
    for (int k = 0; k < kLanes; ++k) {
      sx[k] += wx * (double)t[k];
      st[k] += wi * (double)t[k] * (double)t[k];
    }
  }
  double score[kLanes];
  for (int k = 0; k < kLanes; ++k) score[k] = st[k] > 0 ? sx[k] * sx[k] / st[k] : -1.0;
  float best_iscale = (float)levels[0] / vmax;
  double best_score = -1.0, stx, stt;
  for (int k = 0; k < kCandidates; ++k)
    if (score[k] > best_score) best_score = score[k], best_iscale = iscale[k];
  score_of(best_iscale, q, &stx, &stt);
  float d = stt > 0 ? (float)(stx / stt) : 1.0f / best_iscale;
  // Re-assign levels with the fitted scale; keep if the error drops.
  if (d != 0.0f) {
    int trial[64];
    const double s = score_of(1.0f / d, trial, &stx, &stt);
    if (s > best_score) {
      for (int i = 0; i < n; ++i) q[i] = trial[i];
      d = (float)(stx / stt);
    }
  }
  return d;
}

namespace {

// The levels for super-scale Dh and one weighted squared error term per element (loops the
// compiler vectorizes; the terms are summed in element order by the caller).
OSPREY_QFIT_CLONES
void assign_levels(const float* x, const float* w, int group, int ngroups, const int* sc, float Dh,
                   const Grid& grid, const LevelLut* lut, int* out, double* term) {
  for (int g = 0; g < ngroups; ++g) {
    const float dl = Dh * (float)sc[g];
    const int i0 = g * group, i1 = i0 + group;
    if (dl == 0.0f) {  // every q is 0 and decodes to 0 (dl * value is a zero)
      for (int i = i0; i < i1; ++i) out[i] = 0, term[i] = w[i] * (double)x[i] * x[i];
    } else if (lut) {
      const float id = 1.0f / dl;
      for (int i = i0; i < i1; ++i) {
        const int c = lut->cell_of(x[i] * id);
        out[i] = lut->cell[c];
        const double e = x[i] - dl * lut->value[c];
        term[i] = w[i] * e * e;
      }
    } else {
      const float id = 1.0f / dl;
      for (int i = i0; i < i1; ++i) {
        const float l = round_clamp_flat(x[i] * id, grid.qmin, grid.qmax);
        out[i] = (int)l;
        const double e = x[i] - dl * l;
        term[i] = w[i] * e * e;
      }
    }
  }
}

}  // namespace

void sums_in_order(const double (*terms)[kMaxSuperBlock], int nrows, int n, double* sums) {
  double acc[kMaxOrderedSums] = {};
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < nrows; ++j) acc[j] += terms[j][i];
  for (int j = 0; j < nrows; ++j) sums[j] = acc[j];
}

// Per attempt: choose q for D, then try the least-squares D for those q. Every attempt gets
// the values it would get alone; what is shared is the time of the in-order sums.
OSPREY_QFIT_CLONES
void finish_symmetric(const float* x, const float* w, int group, int ngroups, const Grid& grid,
                      SymmetricAttempt* at, int nat) {
  const int n = group * ngroups;
  std::optional<LevelLut> lut;
  if (grid.table) lut.emplace(grid.table, grid.qmax + 1);
  const LevelLut* lp = lut ? &*lut : nullptr;
  double terms[2 * kMaxFinishAttempts][kMaxSuperBlock], sums[2 * kMaxFinishAttempts];
  for (int a = 0; a < nat; ++a) {
    at[a].D = f16_round(at[a].D);
    assign_levels(x, w, group, ngroups, at[a].sc, at[a].D, grid, lp, at[a].q, terms[a]);
  }
  sums_in_order(terms, nat, n, sums);
  for (int a = 0; a < nat; ++a) at[a].err = sums[a];
  // The least-squares D for each attempt's q: sxy in row a, syy in row nat + a.
  for (int a = 0; a < nat; ++a)
    for (int g = 0; g < ngroups; ++g) {
      const double s = at[a].sc[g];
      for (int i = g * group; i < (g + 1) * group; ++i) {
        const double y = s * grid.value(at[a].q[i]);
        terms[a][i] = w[i] * x[i] * y, terms[nat + a][i] = w[i] * y * y;
      }
    }
  sums_in_order(terms, 2 * nat, n, sums);
  // The refits, in rows 0..nrefit-1 (attempt refit[j]).
  int trial[kMaxFinishAttempts][kMaxSuperBlock], refit[kMaxFinishAttempts];
  float D1[kMaxFinishAttempts];
  int nrefit = 0;
  for (int a = 0; a < nat; ++a) {
    const double sxy = sums[a], syy = sums[nat + a];
    if (!(syy > 0)) continue;
    D1[nrefit] = f16_round((float)(sxy / syy));
    assign_levels(x, w, group, ngroups, at[a].sc, D1[nrefit], grid, lp, trial[nrefit], terms[nrefit]);
    refit[nrefit++] = a;
  }
  sums_in_order(terms, nrefit, n, sums);
  for (int j = 0; j < nrefit; ++j) {
    SymmetricAttempt& t = at[refit[j]];
    if (sums[j] < t.err) {
      t.D = D1[j], t.err = sums[j];
      std::memcpy(t.q, trial[j], sizeof(int) * n);
    }
  }
}

namespace {

// The levels for super-scales Dh, Mh and one weighted squared error term per element (loops
// the compiler vectorizes; the terms are summed in element order by the caller).
OSPREY_QFIT_CLONES
void assign_affine(const float* x, const float* w, int group, int ngroups, const AffineAttempt& at, float Dh,
                   float Mh, int qmax, int* out, double* term) {
  for (int g = 0; g < ngroups; ++g) {
    const float dl = Dh * (float)at.sc[g], ml = Mh * (float)at.mn[g];
    const float id = dl > 0.0f ? 1.0f / dl : 0.0f;
    const bool live = dl > 0.0f;
    for (int i = g * group; i < (g + 1) * group; ++i) {
      const float l = live ? round_clamp_flat((x[i] + ml) * id, 0, qmax) : 0.0f;
      out[i] = (int)l;
      const double e = x[i] - (dl * l - ml);
      term[i] = w[i] * e * e;
    }
  }
}

}  // namespace

OSPREY_QFIT_CLONES
void finish_affine(const float* x, const float* w, int group, int ngroups, int qmax, AffineAttempt* at, int nat) {
  const int n = group * ngroups;
  double terms[kMaxAffineAttempts][kMaxSuperBlock], sums[kMaxAffineAttempts];
  for (int a = 0; a < nat; ++a) {
    at[a].D = f16_round(at[a].D), at[a].M = f16_round(at[a].M);
    assign_affine(x, w, group, ngroups, at[a], at[a].D, at[a].M, qmax, at[a].q, terms[a]);
  }
  sums_in_order(terms, nat, n, sums);
  // Least squares in (D, M) for x ~ D*a - M*b with a = sc*q, b = mn; the attempts' five
  // sums each advance together, element by element.
  double s[kMaxAffineAttempts][5] = {};
  for (int g = 0; g < ngroups; ++g)
    for (int i = g * group; i < (g + 1) * group; ++i)
      for (int a = 0; a < nat; ++a) {
        const double av = (double)at[a].sc[g] * at[a].q[i], b = at[a].mn[g];
        s[a][0] += w[i] * av * av, s[a][1] += w[i] * av * b, s[a][2] += w[i] * b * b;
        s[a][3] += w[i] * x[i] * av, s[a][4] += w[i] * x[i] * b;
      }
  int trial[kMaxAffineAttempts][kMaxSuperBlock], refit[kMaxAffineAttempts];
  float D1[kMaxAffineAttempts], M1[kMaxAffineAttempts];
  int nrefit = 0;
  for (int a = 0; a < nat; ++a) {
    at[a].err = sums[a];
    const double saa = s[a][0], sab = s[a][1], sbb = s[a][2], sxa = s[a][3], sxb = s[a][4];
    const double det = saa * sbb - sab * sab;
    if (!(det > 0)) continue;
    const double d1 = (sxa * sbb - sxb * sab) / det, m1 = (sxa * sab - sxb * saa) / det;
    if (!(d1 > 0 && m1 >= 0)) continue;
    D1[nrefit] = f16_round((float)d1), M1[nrefit] = f16_round((float)m1);
    assign_affine(x, w, group, ngroups, at[a], D1[nrefit], M1[nrefit], qmax, trial[nrefit], terms[nrefit]);
    refit[nrefit++] = a;
  }
  sums_in_order(terms, nrefit, n, sums);
  for (int j = 0; j < nrefit; ++j) {
    AffineAttempt& t = at[refit[j]];
    if (sums[j] < t.err) {
      t.D = D1[j], t.M = M1[j], t.err = sums[j];
      std::memcpy(t.q, trial[j], sizeof(int) * n);
    }
  }
}

float finish_symmetric(const float* x, const float* w, int group, int ngroups, const int* sc, float D,
                       const Grid& grid, int* q, double* err_out) {
  SymmetricAttempt at;
  std::memcpy(at.sc, sc, sizeof(int) * ngroups);
  at.D = D;
  finish_symmetric(x, w, group, ngroups, grid, &at, 1);
  std::memcpy(q, at.q, sizeof(int) * group * ngroups);
  if (err_out) *err_out = at.err;
  return at.D;
}

float quantize_scales(const float* s, int n, int qmin, int qmax, int* iq, float stretch) {
  float D = 0.0f;
  if (qmin < 0) {
    const float vmax = signed_absmax(s, n);
    D = vmax / ((float)qmin - stretch);
  } else {
    float smax = 0.0f;
    for (int j = 0; j < n; ++j) smax = s[j] > smax ? s[j] : smax;  // as the fmax fold was: a tie keeps smax, a NaN never wins
    D = smax / ((float)qmax + stretch);
  }
  const float iD = D != 0.0f ? 1.0f / D : 0.0f;
  for (int j = 0; j < n; ++j) iq[j] = round_clamp(s[j] * iD, qmin, qmax);
  return D;
}

}  // namespace osprey::kernels::qfit
