// K-quant quantizers: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (super-blocks of 256, see quant_blocks.h).
//
// Each super-block is quantized in three steps:
//   1. every group (16 or 32 elements) gets its own weighted fit (quantize_fit.h), giving a
//      float scale (and min) per group;
//   2. those per-group scales are themselves quantized to the format's few bits against one
//      half-precision super-scale;
//   3. the elements are re-rounded against the scales as they will actually be decoded, and
//      the super-scale is refitted by least squares over the whole block, kept if it helps.
// Step 3 matters most for the small-bit scales, whose rounding moves every group's grid.
#include <cmath>
#include <cstring>
#include <iterator>

#include "kernels/base/fp16.h"
#include "kernels/block_io.h"
#include "kernels/quant_blocks.h"
#include "kernels/quantize_fit.h"
#include "kernels/quantize_internal.h"

namespace osprey::kernels {
namespace {

// Steps 1 to 3 for the affine formats: per-group fits, then the group scales and mins
// quantized to [0, scale_max] against their own super-scales (trying the stretches of
// kScaleStretches, first for the scales, then for the mins), then the finishing step.
void fit_affine_groups(const float* x, const float* w, int group, int ngroups, int qmax, int scale_max,
                       int* q, int* sc, int* mn, float* D, float* M) {
  float d[16], m[16];
  for (int g = 0; g < ngroups; ++g)
    qfit::fit_affine(x + g * group, w + g * group, group, qmax, q + g * group, &d[g], &m[g]);
  double best = INFINITY;
  float best_sc_stretch = 0.0f;
  auto keep = [&](const qfit::AffineAttempt& t) {
    *D = t.D, *M = t.M;
    std::memcpy(q, t.q, sizeof(int) * group * ngroups);
    std::memcpy(sc, t.sc, sizeof(int) * ngroups);
    std::memcpy(mn, t.mn, sizeof(int) * ngroups);
  };
  // Each round's attempts are finished together, then kept in order (the first of the
  // lowest error; NaN-safe: the first attempt always lands).
  static_assert(std::size(qfit::kScaleStretches) <= qfit::kMaxAffineAttempts);
  qfit::AffineAttempt at[qfit::kMaxAffineAttempts];
  float stretch[qfit::kMaxAffineAttempts];
  int nat = 0;
  for (float st : qfit::kScaleStretches) {
    stretch[nat] = st;
    at[nat].D = qfit::quantize_scales(d, ngroups, 0, scale_max, at[nat].sc, st);
    at[nat].M = qfit::quantize_scales(m, ngroups, 0, scale_max, at[nat].mn, 0.0f);
    ++nat;
  }
  qfit::finish_affine(x, w, group, ngroups, qmax, at, nat);
  for (int a = 0; a < nat; ++a)
    if (!(at[a].err >= best)) best = at[a].err, best_sc_stretch = stretch[a], keep(at[a]);
  nat = 0;
  for (float st : qfit::kScaleStretches)
    if (st != 0.0f) {
      at[nat].D = qfit::quantize_scales(d, ngroups, 0, scale_max, at[nat].sc, best_sc_stretch);
      at[nat].M = qfit::quantize_scales(m, ngroups, 0, scale_max, at[nat].mn, st);
      ++nat;
    }
  qfit::finish_affine(x, w, group, ngroups, qmax, at, nat);
  for (int a = 0; a < nat; ++a)
    if (!(at[a].err >= best)) best = at[a].err, keep(at[a]);
  // And the scales and mins each fitted by weighted least squares, weighted by how much a
  // change in them moves the block's error (sum w q^2 for a scale, sum w for a min).
  float gw_sc[16], gw_mn[16];
  for (int g = 0; g < ngroups; ++g) {
    double a = 0, b = 0;
    for (int i = g * group; i < (g + 1) * group; ++i) a += (double)w[i] * q[i] * q[i], b += w[i];
    gw_sc[g] = (float)a + 1e-30f, gw_mn[g] = (float)b + 1e-30f;
  }
  at[0].D = qfit::fit_symmetric(d, gw_sc, ngroups, 0, scale_max, at[0].sc);
  at[0].M = qfit::fit_symmetric(m, gw_mn, ngroups, 0, scale_max, at[0].mn);
  qfit::finish_affine(x, w, group, ngroups, qmax, at, 1);
  if (at[0].err < best) keep(at[0]);
}

float fit_symmetric_groups(const float* x, const float* w, int group, int ngroups, int qmin, int qmax,
                           int scale_min, int scale_max, int* q, int* sc) {
  float d[16];
  for (int g = 0; g < ngroups; ++g)
    d[g] = qfit::fit_symmetric(x + g * group, w + g * group, group, qmin, qmax, q + g * group);
  // Weights for the scale fit: how much a change in each group's scale moves the error.
  float gw[16];
  for (int g = 0; g < ngroups; ++g) {
    double a = 0;
    for (int i = g * group; i < (g + 1) * group; ++i) a += (double)w[i] * q[i] * q[i];
    gw[g] = (float)a + 1e-30f;
  }
  // The stretched roundings, then a weighted least-squares fit of the scales, finished
  // together; the first of the lowest error is kept.
  constexpr int kStretches = (int)std::size(qfit::kScaleStretches);
  static_assert(kStretches + 1 <= qfit::kMaxFinishAttempts);
  qfit::SymmetricAttempt at[kStretches + 1];
  for (int a = 0; a <= kStretches; ++a)
    at[a].D = a < kStretches ? qfit::quantize_scales(d, ngroups, scale_min, scale_max, at[a].sc, qfit::kScaleStretches[a])
                             : qfit::fit_symmetric(d, gw, ngroups, scale_min, scale_max, at[a].sc);
  qfit::finish_symmetric(x, w, group, ngroups, qfit::Grid{qmin, qmax, nullptr}, at, kStretches + 1);
  int best = -1;
  double best_err = INFINITY;
  for (int a = 0; a <= kStretches; ++a)
    if (!(at[a].err >= best_err)) best = a, best_err = at[a].err;  // NaN-safe
  if (best < 0) return 0.0f;  // every error infinite: nothing to keep
  std::memcpy(q, at[best].q, sizeof(int) * group * ngroups);
  std::memcpy(sc, at[best].sc, sizeof(int) * ngroups);
  return at[best].D;
}

// Element e of a 256-block in the 2-bit-plane formats (Q2_K, Q3_K low bits): byte
// half*32 + l, shift 2*group, where e = half*128 + group*32 + l.
void pack_2bit_planes(const int* v, uint8_t* qs) {
  std::memset(qs, 0, OSPREY_QK_K / 4);
  for (int e = 0; e < OSPREY_QK_K; ++e) {
    const int half = e / 128, shift = 2 * ((e % 128) / 32), l = e % 32;
    qs[half * 32 + l] |= (uint8_t)((v[e] & 3) << shift);
  }
}

// Q4_K/Q5_K's 12-byte packing of eight 6-bit scales and mins (inverse of osprey_k4_scale_min).
void pack_k4_scales(const int* sc, const int* mn, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = (uint8_t)((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
    s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
  }
}

}  // namespace

void quantize_row_q2_k(const float* x, void* dst, int64_t n, const float* importance) {
  float w[OSPREY_QK_K];
  int q[OSPREY_QK_K], sc[16] = {}, mn[16] = {};
  for (int64_t i = 0; i < n / OSPREY_QK_K; ++i, x += OSPREY_QK_K) {
    qfit::row_weights(x, OSPREY_QK_K, importance ? importance + i * OSPREY_QK_K : nullptr, w);
    float D, M;
    fit_affine_groups(x, w, 16, 16, 3, 15, q, sc, mn, &D, &M);
    block_q2_K b;
    for (int g = 0; g < 16; ++g) b.scales[g] = (uint8_t)(sc[g] | (mn[g] << 4));
    pack_2bit_planes(q, b.qs);
    b.d = f32_to_f16(D);
    b.dmin = f32_to_f16(M);
    store_block(dst, i, b);
  }
}

void quantize_row_q3_k(const float* x, void* dst, int64_t n, const float* importance) {
  float w[OSPREY_QK_K];
  int q[OSPREY_QK_K], sc[16] = {};
  for (int64_t i = 0; i < n / OSPREY_QK_K; ++i, x += OSPREY_QK_K) {
    qfit::row_weights(x, OSPREY_QK_K, importance ? importance + i * OSPREY_QK_K : nullptr, w);
    const float D = fit_symmetric_groups(x, w, 16, 16, -4, 3, -32, 31, q, sc);
    block_q3_K b;
    std::memset(&b, 0, sizeof b);
    int u[OSPREY_QK_K];  // stored value q + 4: low two bits in qs, the third in hmask
    for (int e = 0; e < OSPREY_QK_K; ++e) {
      u[e] = q[e] + 4;
      b.hmask[e % 32] |= (uint8_t)((u[e] >> 2 & 1) << (e / 32));  // no branch: the bit is data
    }
    pack_2bit_planes(u, b.qs);
    for (int k = 0; k < 16; ++k) {  // inverse of osprey_q3k_scales (quant_blocks.h)
      const int v = sc[k] + 32;
      if (k < 8) b.scales[k] |= (uint8_t)(v & 15); else b.scales[k - 8] |= (uint8_t)((v & 15) << 4);
      b.scales[8 + k % 4] |= (uint8_t)((v >> 4) << (2 * (k / 4)));
    }
    b.d = f32_to_f16(D);
    store_block(dst, i, b);
  }
}

// Q4_K and Q5_K share everything but the fifth bit.
static void quantize_row_q45_k(const float* x, void* dst, int64_t n, const float* importance, bool five) {
  float w[OSPREY_QK_K];
  int q[OSPREY_QK_K], sc[8] = {}, mn[8] = {};
  for (int64_t i = 0; i < n / OSPREY_QK_K; ++i, x += OSPREY_QK_K) {
    qfit::row_weights(x, OSPREY_QK_K, importance ? importance + i * OSPREY_QK_K : nullptr, w);
    float D, M;
    fit_affine_groups(x, w, 32, 8, five ? 31 : 15, 63, q, sc, mn, &D, &M);
    uint8_t scales[OSPREY_K_SCALE_SIZE], qs[OSPREY_QK_K / 2] = {}, qh[OSPREY_QK_K / 8] = {};
    pack_k4_scales(sc, mn, scales);
    for (int sub = 0; sub < 8; ++sub)
      for (int l = 0; l < 32; ++l) {
        const int v = q[sub * 32 + l];
        qs[(sub / 2) * 32 + l] |= (uint8_t)((v & 15) << ((sub % 2) * 4));
        qh[l] |= (uint8_t)((v >> 4 & 1) << sub);  // no branch: the bit is data
      }
    if (five) {
      block_q5_K b;
      b.d = f32_to_f16(D), b.dmin = f32_to_f16(M);
      std::memcpy(b.scales, scales, sizeof scales);
      std::memcpy(b.qh, qh, sizeof qh);
      std::memcpy(b.qs, qs, sizeof qs);
      store_block(dst, i, b);
    } else {
      block_q4_K b;
      b.d = f32_to_f16(D), b.dmin = f32_to_f16(M);
      std::memcpy(b.scales, scales, sizeof scales);
      std::memcpy(b.qs, qs, sizeof qs);
      store_block(dst, i, b);
    }
  }
}

void quantize_row_q4_k(const float* x, void* dst, int64_t n, const float* importance) {
  quantize_row_q45_k(x, dst, n, importance, false);
}

void quantize_row_q5_k(const float* x, void* dst, int64_t n, const float* importance) {
  quantize_row_q45_k(x, dst, n, importance, true);
}

void quantize_row_q6_k(const float* x, void* dst, int64_t n, const float* importance) {
  float w[OSPREY_QK_K];
  int q[OSPREY_QK_K], sc[16] = {};
  for (int64_t i = 0; i < n / OSPREY_QK_K; ++i, x += OSPREY_QK_K) {
    qfit::row_weights(x, OSPREY_QK_K, importance ? importance + i * OSPREY_QK_K : nullptr, w);
    const float D = fit_symmetric_groups(x, w, 16, 16, -32, 31, -128, 127, q, sc);
    block_q6_K b;
    std::memset(&b, 0, sizeof b);
    for (int e = 0; e < OSPREY_QK_K; ++e) {  // layout: see dq_q6_k in dequant.cpp
      const int v = q[e] + 32;
      const int half = e / 128, g = (e % 128) / 32, l = e % 32;
      b.ql[half * 64 + (g % 2) * 32 + l] |= (uint8_t)((v & 15) << (g < 2 ? 0 : 4));
      b.qh[half * 32 + l] |= (uint8_t)((v >> 4) << (2 * g));
    }
    for (int g = 0; g < 16; ++g) b.scales[g] = (int8_t)sc[g];
    b.d = f32_to_f16(D);
    store_block(dst, i, b);
  }
}

}  // namespace osprey::kernels
