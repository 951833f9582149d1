// The attention inner loops (kernels/cpu/attention_kernels.h) of every ISA variant this build
// and CPU can run, against the scalar table and against exact results; then the whole
// working attention driven by each variant's table against ref::attention (double), over
// every cache type, head dims 64/80/128/256 (and Dv != D), GQA 1/2/3/4/8, tiles of up to 17
// query tokens from two sequences, windows, softcap and the chunk split. The optional
// members (f16 rows read in place, max_of) against the required ones they stand in for.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/base/fp16.h"
#include "kernels/cpu/attention_kernels.h"
#include "kernels/cpu/quant_dot.h"
#include "kernels/dequant.h"
#include "kernels/ops.h"
#include "kernels/quantize.h"

namespace osprey::kernels {
namespace {

std::vector<const AttnKernels*> usable_tables() {
  std::vector<const AttnKernels*> out;
  for (const IsaVariant& v : isa_variants()) {
    if (v.usable()) out.push_back(&attn_kernels_for(v.name));
    else std::printf("note: %s variant not tested (built %d, cpu %d)\n", v.name, v.built, v.supported);
  }
  return out;
}

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Distance in units in the last place between two finite non-negative floats.
int64_t ulps(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::llabs((int64_t)ia - (int64_t)ib);
}

// Worst normalised mean squared error of any row of `rows` x `n` against the exact values,
// normalised by `mag` (default: the values themselves; for sums that may cancel, the sums of
// the terms' magnitudes, so the bound follows the conditioning).
double worst_row_nmse(const float* got, const double* want, int64_t rows, int64_t n, const double* mag = nullptr) {
  if (!mag) mag = want;
  double worst = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double err = 0, ref = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double d = (double)got[r * n + i] - want[r * n + i];
      err += d * d;
      ref += mag[r * n + i] * mag[r * n + i];
    }
    worst = std::max(worst, ref > 0 ? err / ref : err);
  }
  return worst;
}

TEST(AttentionKernels, ExpWithinFourUlpOfStdExp) {
  std::vector<float> x = random_floats(4099, 1, -110.f, 0.f);
  for (float v : {0.f, -0.f, -1e-8f, -0.3465736f, -0.3465737f, -1.f, -87.3f, -87.4f, -103.f, -104.f, -200.f, -INFINITY})
    x.push_back(v);
  for (const AttnKernels* k : usable_tables()) {
    SCOPED_TRACE(k->name);
    for (int64_t n : {(int64_t)x.size(), (int64_t)1, (int64_t)7, (int64_t)17}) {
      std::vector<float> s(x.begin(), x.begin() + n);
      const float sum = k->exp_sum(s.data(), n, 0.0f);
      double want_sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        const float want = std::exp(x[(size_t)j]);
        want_sum += want;
        if (want < 1.1754944e-38f) {  // tiny results: 0 or gradually rounded
          EXPECT_LE(s[(size_t)j], 1.2e-38f) << "x=" << x[(size_t)j];
          EXPECT_GE(s[(size_t)j], 0.0f) << "x=" << x[(size_t)j];
        } else {
          EXPECT_LE(ulps(s[(size_t)j], want), 4) << "x=" << x[(size_t)j] << " got " << s[(size_t)j] << " want " << want;
        }
      }
      EXPECT_NEAR(sum, want_sum, 1e-6 * std::max(1.0, want_sum));
    }
    // The maximum is subtracted first.
    std::vector<float> s = {3.f, 2.5f, -INFINITY};
    k->exp_sum(s.data(), 3, 3.f);
    EXPECT_EQ(s[0], 1.0f);
    EXPECT_LE(ulps(s[1], std::exp(-0.5f)), 4);
    EXPECT_EQ(s[2], 0.0f);
  }
}

TEST(AttentionKernels, RowsToF32MatchDequantize) {
  for (DType t : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    for (int64_t D : {32, 64, 80, 96, 128, 256, 7, 33}) {
      if ((t == DType::Q8_0 || t == DType::Q4_0) && D % 32) continue;
      const int64_t n = 5, rb = dtype_row_bytes(t, D), stride = rb * 3;  // every third row, as with 3 kv heads
      std::vector<uint8_t> rows((size_t)(stride * n));
      std::vector<float> x = random_floats((size_t)D, 2, -3.f, 3.f), want((size_t)(n * D));
      for (int64_t j = 0; j < n; ++j) {
        for (float& v : x) v *= 1.1f;
        ASSERT_TRUE(quantize_row(t, x.data(), rows.data() + j * stride, D));
        ASSERT_TRUE(dequantize_row(t, rows.data() + j * stride, want.data() + j * D, D));
      }
      for (const AttnKernels* k : usable_tables()) {
        SCOPED_TRACE(std::string(k->name) + " " + dtype_name(t) + " D=" + std::to_string(D));
        std::vector<float> got((size_t)(n * D), NAN);
        ASSERT_TRUE(k->rows_to_f32(t, rows.data(), (size_t)stride, n, D, got.data()));
        for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << i;
      }
    }
  }
}

// Scores and value accumulation against double sums; each (row, cell) result must also be
// bit for bit the same whatever the number of rows R (tiling must not change a token's result).
TEST(AttentionKernels, ScoresAndAccumulateMatchExact) {
  for (int64_t D : {64, 80, 128, 256, 7, 33}) {
    for (int64_t R : {1, 2, 3, 5, 8, 9, 17, 24}) {
      for (int64_t n : {1, 31, 33, 64}) {
        const int64_t ldk = D + 3, lds = 64 + 1;
        const std::vector<float> q = random_floats((size_t)(R * D), 3), kv = random_floats((size_t)(n * ldk), 4);
        const std::vector<float> p = random_floats((size_t)(R * lds), 5, 0.f, 1.f);
        std::vector<double> want_s((size_t)(R * n)), want_acc((size_t)(R * D)), mag_s((size_t)(R * n)),
            mag_acc((size_t)(R * D));
        const std::vector<float> acc0 = random_floats((size_t)(R * D), 6);
        for (int64_t r = 0; r < R; ++r) {
          for (int64_t j = 0; j < n; ++j) {
            double d = 0, m = 0;
            for (int64_t i = 0; i < D; ++i) {
              d += (double)q[(size_t)(r * D + i)] * kv[(size_t)(j * ldk + i)];
              m += std::fabs((double)q[(size_t)(r * D + i)] * kv[(size_t)(j * ldk + i)]);
            }
            want_s[(size_t)(r * n + j)] = 0.125 * d;
            mag_s[(size_t)(r * n + j)] = 0.125 * m;
          }
          for (int64_t i = 0; i < D; ++i) {
            double a = acc0[(size_t)(r * D + i)], m = std::fabs(a);
            for (int64_t j = 0; j < n; ++j) {
              a += (double)p[(size_t)(r * lds + j)] * kv[(size_t)(j * ldk + i)];
              m += std::fabs((double)p[(size_t)(r * lds + j)] * kv[(size_t)(j * ldk + i)]);
            }
            want_acc[(size_t)(r * D + i)] = a;
            mag_acc[(size_t)(r * D + i)] = m;
          }
        }
        for (const AttnKernels* k : usable_tables()) {
          SCOPED_TRACE(std::string(k->name) + " D=" + std::to_string(D) + " R=" + std::to_string(R) + " n=" +
                       std::to_string(n));
          std::vector<float> s((size_t)(R * lds), NAN), s1((size_t)lds, NAN);
          k->scores(q.data(), R, kv.data(), ldk, n, D, 0.125f, s.data(), lds);
          std::vector<float> packed((size_t)(R * n));
          for (int64_t r = 0; r < R; ++r) {
            for (int64_t j = 0; j < n; ++j) packed[(size_t)(r * n + j)] = s[(size_t)(r * lds + j)];
            EXPECT_TRUE(std::isnan(s[(size_t)(r * lds + n)]) || n == lds) << "wrote past n";
            k->scores(q.data() + r * D, 1, kv.data(), ldk, n, D, 0.125f, s1.data(), lds);
            for (int64_t j = 0; j < n; ++j) ASSERT_EQ(s1[(size_t)j], s[(size_t)(r * lds + j)]) << "row " << r;
          }
          // f32 inputs, only the summation order differs from the exact sum.
          EXPECT_LT(worst_row_nmse(packed.data(), want_s.data(), R, n, mag_s.data()), 1e-10);

          std::vector<float> acc = acc0, acc1((size_t)D);
          k->accumulate(p.data(), lds, R, kv.data(), ldk, n, D, acc.data());
          EXPECT_LT(worst_row_nmse(acc.data(), want_acc.data(), R, D, mag_acc.data()), 1e-10);
          for (int64_t r = 0; r < R; r += std::max<int64_t>(1, R / 3)) {
            std::copy(acc0.begin() + r * D, acc0.begin() + (r + 1) * D, acc1.begin());
            k->accumulate(p.data() + r * lds, lds, 1, kv.data(), ldk, n, D, acc1.data());
            for (int64_t i = 0; i < D; ++i) ASSERT_EQ(acc1[(size_t)i], acc[(size_t)(r * D + i)]) << "row " << r;
          }
        }
      }
    }
  }
}

TEST(AttentionKernels, MaxOfMatchesScalar) {
  std::vector<float> x = random_floats(70, 16, -50.f, 50.f);
  x[3] = -INFINITY;
  for (const AttnKernels* k : usable_tables()) {
    if (!k->max_of) continue;
    SCOPED_TRACE(k->name);
    for (int64_t n = 1; n <= 70; ++n)
      for (int64_t at : {(int64_t)0, n / 2, n - 1}) {  // the largest first, in the middle, last (a tail lane)
        std::vector<float> s(x.begin(), x.begin() + n);
        s[(size_t)at] = 60.f + (float)n;
        ASSERT_EQ(k->max_of(s.data(), n), 60.f + (float)n) << "n=" << n << " at " << at;
      }
    std::vector<float> neg = {-INFINITY, -3.f, -INFINITY};
    EXPECT_EQ(k->max_of(neg.data(), 3), -3.f);
    EXPECT_EQ(k->max_of(neg.data(), 1), -INFINITY);
  }
}

// The optional f16 members read cache rows directly; they must give what rows_to_f32
// followed by scores / accumulate gives, bit for bit, for any R and n.
TEST(AttentionKernels, F16DirectEqualsWidenedRows) {
  int checked = 0;
  for (int64_t D : {64, 256, 80, 7, 33}) {
    for (int64_t R : {1, 2, 3, 4, 5, 8, 9, 32}) {
      for (int64_t n : {1, 7, 16, 31, 64}) {
        const int64_t stride_h = D * 3 + 5;  // f16 elements between rows (other heads between)
        const std::vector<float> q = random_floats((size_t)(R * D), 12), x = random_floats((size_t)(n * stride_h), 13);
        const std::vector<float> p = random_floats((size_t)(R * 64), 14, 0.f, 1.f);
        const std::vector<float> acc0 = random_floats((size_t)(R * D), 15);
        std::vector<uint16_t> h((size_t)(n * stride_h));
        ASSERT_TRUE(quantize_row(DType::F16, x.data(), h.data(), n * stride_h));
        const uint8_t* rows = (const uint8_t*)h.data();
        const size_t stride = (size_t)stride_h * 2;
        for (const AttnKernels* k : usable_tables()) {
          if (!k->scores_f16 || !k->accumulate_f16) continue;
          SCOPED_TRACE(std::string(k->name) + " D=" + std::to_string(D) + " R=" + std::to_string(R) + " n=" +
                       std::to_string(n));
          std::vector<float> wide((size_t)(n * D));
          ASSERT_TRUE(k->rows_to_f32(DType::F16, rows, stride, n, D, wide.data()));
          std::vector<float> s_want((size_t)(R * 64), NAN), s_got = s_want;
          k->scores(q.data(), R, wide.data(), D, n, D, 0.3f, s_want.data(), 64);
          k->scores_f16(q.data(), R, rows, stride, n, D, 0.3f, s_got.data(), 64);
          for (size_t i = 0; i < s_want.size(); ++i)
            ASSERT_TRUE(s_got[i] == s_want[i] || (std::isnan(s_got[i]) && std::isnan(s_want[i]))) << i;
          std::vector<float> a_want = acc0, a_got = acc0;
          k->accumulate(p.data(), 64, R, wide.data(), D, n, D, a_want.data());
          k->accumulate_f16(p.data(), 64, R, rows, stride, n, D, a_got.data());
          for (size_t i = 0; i < a_want.size(); ++i) ASSERT_EQ(a_got[i], a_want[i]) << i;
          ++checked;
        }
      }
    }
  }
  std::printf("note: %d f16-direct cases checked\n", checked);
}

struct Case {
  int64_t D, Dv, Hq, Hkv, window;
  float softcap;
};

// Runs the working attention with table k over all its units (and the merge).
std::vector<float> run_attention(const AttnKernels& k, AttentionArgs a, int64_t n_chunks) {
  std::vector<float> out((size_t)(a.T * a.Hq * a.Dv), NAN);
  a.out = out.data();
  std::vector<float> scratch((size_t)cpu::attention_scratch_floats(a));
  std::vector<float> partials((size_t)cpu::attention_partial_floats(a, n_chunks));
  const int64_t units = cpu::attention_units(a, n_chunks);
  // Two "threads": the units in two ranges, as the backend's split would give them.
  EXPECT_TRUE(cpu::attention_with(k, a, n_chunks, 0, units / 2, scratch.data(), partials.data()));
  EXPECT_TRUE(cpu::attention_with(k, a, n_chunks, units / 2, units, scratch.data(), partials.data()));
  if (n_chunks > 1) cpu::attention_merge(a, n_chunks, partials.data());
  return out;
}

TEST(AttentionKernels, AttentionMatchesReference) {
  const std::vector<Case> cases = {
      {64, 64, 9, 3, 0, 0.f},    {64, 64, 8, 1, 0, 0.f},    {128, 128, 4, 2, 0, 0.f}, {80, 80, 3, 3, 5, 0.f},
      {256, 256, 4, 1, 70, 0.f}, {64, 128, 6, 2, 0, 30.f},  {128, 64, 8, 2, 0, 0.f},  {64, 64, 14, 2, 3, 20.f},
      {96, 96, 8, 4, 0, 0.f},    {256, 256, 2, 1, 0, 30.f},
  };
  const int64_t cells_per_seq = 300, n_cells = 2 * cells_per_seq;
  // Tokens: 17 consecutive positions of sequence 0 (prompt processing deep in the cache),
  // then sequence 1's four, then one more of sequence 0 at a far position.
  std::vector<int32_t> meta;
  for (int32_t i = 0; i < 17; ++i) meta.insert(meta.end(), {0, 250 + i});
  for (int32_t i = 0; i < 4; ++i) meta.insert(meta.end(), {(int32_t)cells_per_seq, 61 + i});
  meta.insert(meta.end(), {0, 131});
  const int64_t T = (int64_t)meta.size() / 2;
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    for (const Case& cs : cases) {
      if ((t == DType::Q8_0 || t == DType::Q4_0) && (cs.D % 32 || cs.Dv % 32)) continue;
      std::vector<uint8_t> kc((size_t)(dtype_row_bytes(t, cs.D) * cs.Hkv * n_cells));
      std::vector<uint8_t> vc((size_t)(dtype_row_bytes(t, cs.Dv) * cs.Hkv * n_cells));
      const std::vector<float> kx = random_floats((size_t)(cs.D * cs.Hkv * n_cells), 7, -2.f, 2.f);
      const std::vector<float> vx = random_floats((size_t)(cs.Dv * cs.Hkv * n_cells), 8);
      ASSERT_TRUE(quantize_row(t, kx.data(), kc.data(), cs.D * cs.Hkv * n_cells));
      ASSERT_TRUE(quantize_row(t, vx.data(), vc.data(), cs.Dv * cs.Hkv * n_cells));
      const std::vector<float> q = random_floats((size_t)(cs.D * cs.Hq * T), 9);
      AttentionArgs a{};
      a.q = q.data();
      a.D = cs.D; a.Hq = cs.Hq; a.T = T;
      a.k_type = t; a.k = kc.data();
      a.v_type = t; a.v = vc.data();
      a.Dv = cs.Dv; a.Hkv = cs.Hkv;
      a.meta = meta.data();
      a.cells_per_seq = cells_per_seq;
      a.n_cells = n_cells;
      a.window = cs.window;
      a.scale = 1.0f / std::sqrt((float)cs.D);
      a.softcap = cs.softcap;
      std::vector<float> ref((size_t)(T * cs.Hq * cs.Dv));
      a.out = ref.data();
      ASSERT_TRUE(ref::attention(a));
      const std::vector<double> want(ref.begin(), ref.end());
      for (const AttnKernels* k : usable_tables()) {
        for (int64_t n_chunks : {1, 3}) {
          SCOPED_TRACE(std::string(k->name) + " " + dtype_name(t) + " D=" + std::to_string(cs.D) + " Dv=" +
                       std::to_string(cs.Dv) + " Hq=" + std::to_string(cs.Hq) + " Hkv=" + std::to_string(cs.Hkv) +
                       " window=" + std::to_string(cs.window) + " chunks=" + std::to_string(n_chunks));
          const std::vector<float> got = run_attention(*k, a, n_chunks);
          // Both sides read the same cache values; f32 against double arithmetic.
          EXPECT_LT(worst_row_nmse(got.data(), want.data(), T * cs.Hq, cs.Dv), 1e-9);
          if (n_chunks != 1 || cs.window != 0) continue;
          // Without a window, a token's result is bit for bit what it gets alone (generation).
          for (int64_t tok : {0, 16, 18, 21}) {
            AttentionArgs one = a;
            one.T = 1;
            one.q = q.data() + tok * cs.Hq * cs.D;
            one.meta = meta.data() + 2 * tok;
            const std::vector<float> alone = run_attention(*k, one, 1);
            for (int64_t i = 0; i < cs.Hq * cs.Dv; ++i)
              ASSERT_EQ(alone[(size_t)i], got[(size_t)(tok * cs.Hq * cs.Dv + i)]) << "token " << tok << " at " << i;
          }
        }
      }
    }
  }
}

// A cache type without a fast path (here q5_0) goes through dequantize_row, and a position
// outside the slot is an error, not a read out of bounds.
TEST(AttentionKernels, OtherCacheTypesAndBadPositions) {
  const int64_t D = 64, Hq = 4, Hkv = 2, cells = 100;
  std::vector<uint8_t> kc((size_t)(dtype_row_bytes(DType::Q5_0, D) * Hkv * cells)), vc = kc;
  const std::vector<float> x = random_floats((size_t)(D * Hkv * cells), 10);
  ASSERT_TRUE(quantize_row(DType::Q5_0, x.data(), kc.data(), D * Hkv * cells));
  ASSERT_TRUE(quantize_row(DType::Q5_0, x.data(), vc.data(), D * Hkv * cells));
  const std::vector<float> q = random_floats((size_t)(D * Hq * 2), 11);
  std::vector<int32_t> meta = {0, 70, 0, 71};
  AttentionArgs a{};
  a.q = q.data(); a.D = D; a.Hq = Hq; a.T = 2;
  a.k_type = DType::Q5_0; a.k = kc.data(); a.v_type = DType::Q5_0; a.v = vc.data();
  a.Dv = D; a.Hkv = Hkv; a.meta = meta.data(); a.cells_per_seq = cells; a.n_cells = cells;
  a.scale = 0.125f;
  std::vector<float> ref((size_t)(2 * Hq * D));
  a.out = ref.data();
  ASSERT_TRUE(ref::attention(a));
  const std::vector<double> want(ref.begin(), ref.end());
  for (const AttnKernels* k : usable_tables()) {
    SCOPED_TRACE(k->name);
    EXPECT_LT(worst_row_nmse(run_attention(*k, a, 1).data(), want.data(), 2 * Hq, D), 1e-9);
    std::vector<int32_t> bad = {0, 70, 0, (int32_t)cells};
    AttentionArgs b = a;
    b.meta = bad.data();
    std::vector<float> out((size_t)(2 * Hq * D)), scratch((size_t)cpu::attention_scratch_floats(b));
    b.out = out.data();
    EXPECT_FALSE(cpu::attention_with(*k, b, 1, 0, cpu::attention_units(b, 1), scratch.data(), nullptr));
  }
}

}  // namespace
}  // namespace osprey::kernels
