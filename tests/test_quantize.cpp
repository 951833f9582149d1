// Quantizers against references: tests/data/quantize/ref.gguf, made by
// tests/scripts/gen_quantize_ref.py, holds source rows (synthetic and real weights), an
// importance row, gguf-py's quantization of the 32-element formats (must match byte for byte)
// and llama.cpp's quantization of the K-quant and IQ4 formats (the bar for round-trip error).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "formats/gguf.h"
#include "kernels/dequant.h"
#include "kernels/base/fp16.h"
#include "kernels/cpu/quant_dot.h"
#include "kernels/quant_blocks.h"
#include "kernels/quantize.h"
#include "kernels/quantize_fit.h"

namespace {

using osprey::DType;
namespace gguf = osprey::gguf;
namespace kernels = osprey::kernels;

struct RefData {
  std::unique_ptr<gguf::File> file;
  int64_t n = 0, rows = 0;
  std::vector<float> src, imp;
};

const RefData& ref() {
  static RefData d = [] {
    RefData r;
    auto f = gguf::File::open(std::string(OSPREY_TEST_DATA) + "/quantize/ref.gguf");
    if (!f.ok()) return r;
    r.file = std::move(*f);
    const gguf::TensorInfo* s = r.file->find_tensor("src");
    const gguf::TensorInfo* i = r.file->find_tensor("imp");
    if (!s || !i || s->type != DType::F32 || i->type != DType::F32 || s->ne.size() != 2) return r;
    r.n = s->ne[0], r.rows = s->ne[1];
    r.src.resize(s->n_elements());
    std::memcpy(r.src.data(), s->data, s->nbytes);
    r.imp.resize(i->n_elements());
    std::memcpy(r.imp.data(), i->data, i->nbytes);
    return r;
  }();
  return d;
}

std::vector<uint8_t> quantize_rows(DType t, const RefData& d, const float* imp) {
  const int64_t rb = osprey::dtype_row_bytes(t, d.n);
  std::vector<uint8_t> out(rb * d.rows, 0xAA);
  for (int64_t r = 0; r < d.rows; ++r)
    EXPECT_TRUE(kernels::quantize_row(t, d.src.data() + r * d.n, out.data() + r * rb, d.n, imp));
  return out;
}

class ExactRef : public ::testing::TestWithParam<DType> {};

TEST_P(ExactRef, MatchesGgufPyByteForByte) {
  const DType t = GetParam();
  const RefData& d = ref();
  ASSERT_TRUE(d.file) << "tests/data/quantize/ref.gguf missing (tests/scripts/gen_quantize_ref.py)";
  const gguf::TensorInfo* want = d.file->find_tensor(std::string("gguf.") + osprey::dtype_name(t));
  ASSERT_NE(want, nullptr);
  ASSERT_EQ(want->type, t);
  {
    const std::vector<uint8_t> got = quantize_rows(t, d, nullptr);
    ASSERT_EQ(got.size(), want->nbytes);
    const int64_t block = osprey::dtype_traits(t)->block_bytes;
    int bad = 0;
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i] != want->data[i] && ++bad <= 5)
        ADD_FAILURE() << osprey::dtype_name(t) << " byte " << i << " (block " << i / block << "): got "
                      << (int)got[i] << " want " << (int)want->data[i];
    EXPECT_EQ(bad, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Formats32, ExactRef,
                         ::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0),
                         [](const ::testing::TestParamInfo<DType>& i) { return std::string(osprey::dtype_name(i.param)); });

// Weighted squared round-trip error of quantized rows q (w: per-column weights or all ones).
double weighted_error(DType t, const uint8_t* q, const RefData& d, const float* w, int64_t row) {
  const int64_t rb = osprey::dtype_row_bytes(t, d.n);
  std::vector<float> y(d.n);
  EXPECT_TRUE(kernels::dequantize_row(t, q + row * rb, y.data(), d.n));
  double err = 0;
  for (int64_t j = 0; j < d.n; ++j) {
    const double e = (double)y[j] - d.src[row * d.n + j];
    EXPECT_TRUE(std::isfinite(y[j])) << osprey::dtype_name(t) << " row " << row;
    err += (w ? w[j] : 1.0) * e * e;
  }
  return err;
}

struct ErrorCase {
  DType type;
  double max_ratio;  // Osprey's total error may be at most this multiple of llama.cpp's
  bool plain;        // also compare without importance (the 32-element formats are exact there)
};

class VersusLlama : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(VersusLlama, RoundTripErrorNoWorseThanLlamaCpp) {
  const ErrorCase c = GetParam();
  const RefData& d = ref();
  ASSERT_TRUE(d.file) << "tests/data/quantize/ref.gguf missing (tests/scripts/gen_quantize_ref.py)";
  for (bool with_imp : {false, true}) {
    if (!with_imp && !c.plain) continue;
    const std::string name = std::string(with_imp ? "llama_imp." : "llama.") + osprey::dtype_name(c.type);
    const gguf::TensorInfo* theirs = d.file->find_tensor(name);
    ASSERT_NE(theirs, nullptr) << name;
    ASSERT_EQ(theirs->type, c.type);
    const float* imp = with_imp ? d.imp.data() : nullptr;
    const std::vector<uint8_t> ours = quantize_rows(c.type, d, imp);
    ASSERT_EQ(ours.size(), theirs->nbytes);
    double e_ours = 0, e_theirs = 0;
    for (int64_t r = 0; r < d.rows; ++r) {
      // Each row normalised by its own scale so the huge synthetic row does not dominate.
      double ss = 0;
      for (int64_t j = 0; j < d.n; ++j) ss += (imp ? imp[j] : 1.0) * d.src[r * d.n + j] * d.src[r * d.n + j];
      if (ss == 0) ss = 1;
      const double eo = weighted_error(c.type, ours.data(), d, imp, r) / ss;
      const double et = weighted_error(c.type, theirs->data, d, imp, r) / ss;
      // Per row: never grossly worse (a broken packing or scale would be many times worse).
      if (std::getenv("OSPREY_QUANT_VERBOSE")) std::printf("  %s row %lld: %.5g vs %.5g\n", name.c_str(), (long long)r, eo, et);
      EXPECT_LE(eo, 1.5 * et + 1e-6) << name << " row " << r << ": ours " << eo << " llama.cpp " << et;
      // Rows whose values are below what a half-precision scale can express lose everything in
      // both; they would swamp the total.
      if (et < 0.5) e_ours += eo, e_theirs += et;
    }
    std::printf("%-16s relative error: osprey %.6g llama.cpp %.6g ratio %.4f\n", name.c_str(), e_ours, e_theirs,
                e_ours / e_theirs);
    EXPECT_LE(e_ours, c.max_ratio * e_theirs) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    KAndIQ4, VersusLlama,
    ::testing::Values(ErrorCase{DType::Q4_0, 1.0, false}, ErrorCase{DType::Q4_1, 1.0, false},
                      ErrorCase{DType::Q5_0, 1.0, false}, ErrorCase{DType::Q5_1, 1.0, false},
                      ErrorCase{DType::Q2_K, 1.0, true}, ErrorCase{DType::Q3_K, 1.0, true},
                      ErrorCase{DType::Q4_K, 1.0, true}, ErrorCase{DType::Q5_K, 1.0, true},
                      ErrorCase{DType::Q6_K, 1.0, true}, ErrorCase{DType::IQ4_NL, 1.0, true},
                      ErrorCase{DType::IQ4_XS, 1.0, true}),
    [](const ::testing::TestParamInfo<ErrorCase>& i) { return std::string(osprey::dtype_name(i.param.type)); });

TEST(Quantize, ImportanceLowersTheWeightedError) {
  // The importance row must steer the search: the error weighted by it drops when it is used.
  const RefData& d = ref();
  ASSERT_TRUE(d.file);
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K,
                  DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS}) {
    const std::vector<uint8_t> plain = quantize_rows(t, d, nullptr), steered = quantize_rows(t, d, d.imp.data());
    double e_plain = 0, e_steered = 0;
    for (int64_t r = 0; r < d.rows; ++r) {
      e_plain += weighted_error(t, plain.data(), d, d.imp.data(), r);
      e_steered += weighted_error(t, steered.data(), d, d.imp.data(), r);
    }
    EXPECT_LT(e_steered, e_plain) << osprey::dtype_name(t);
  }
}

TEST(Quantize, ZeroAndConstantRowsRoundTrip) {
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                  DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS}) {
    for (float v : {0.0f, -0.375f, 2.0f}) {
      std::vector<float> x(256, v), y(256, 99.0f);
      std::vector<uint8_t> q(osprey::dtype_row_bytes(t, 256));
      ASSERT_TRUE(kernels::quantize_row(t, x.data(), q.data(), 256));
      ASSERT_TRUE(kernels::dequantize_row(t, q.data(), y.data(), 256));
      for (float e : y) ASSERT_NEAR(e, v, 0.02f * std::fabs(v) + 1e-7f) << osprey::dtype_name(t) << " value " << v;
    }
  }
}

TEST(Quantize, NonFiniteInputDoesNotCrash) {
  // Garbage in (a NaN or inf weight) gives garbage out, but no undefined behaviour.
  std::vector<float> x(256, 0.5f);
  x[3] = NAN;
  x[200] = INFINITY;
  for (DType t : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS}) {
    std::vector<uint8_t> q(osprey::dtype_row_bytes(t, 256));
    EXPECT_TRUE(kernels::quantize_row(t, x.data(), q.data(), 256)) << osprey::dtype_name(t);
  }
}

TEST(Quantize, RejectsPartialBlocksAndUnsupportedTypes) {
  std::vector<float> x(512, 1.0f);
  std::vector<uint8_t> q(4096, 0x5A);
  EXPECT_FALSE(kernels::quantize_row(DType::Q4_K, x.data(), q.data(), 32));
  EXPECT_FALSE(kernels::quantize_row(DType::Q4_0, x.data(), q.data(), 33));
  EXPECT_FALSE(kernels::quantize_row(DType::Q4_0, x.data(), q.data(), -32));
  EXPECT_FALSE(kernels::quantize_row(DType::Q8_K, x.data(), q.data(), 256));
  EXPECT_FALSE(kernels::quantize_row((DType)77, x.data(), q.data(), 32));
  EXPECT_EQ(q[0], 0x5A);  // nothing written on failure
  EXPECT_FALSE(kernels::has_quantizer(DType::IQ2_XXS));
  EXPECT_TRUE(kernels::has_quantizer(DType::IQ4_XS));
}

}  // namespace

// The scale searches evaluate their candidates with a branch-free rounding and a table
// lookup (so the loops vectorize); quantized files stay byte-identical only while those agree
// with round_clamp and the nearest level for every input: cell edges, midpoints, -0, NaN, inf.
std::vector<float> probe_values() {
  std::vector<float> v = {0.0f, -0.0f, NAN, -NAN, INFINITY, -INFINITY, 1e30f, -1e30f, 3e9f, -3e9f,
                          std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::denorm_min()};
  for (int k = -300; k <= 300; ++k) {
    const float c = 0.5f * (float)k;
    v.insert(v.end(), {c, std::nextafter(c, -1e9f), std::nextafter(c, 1e9f), c + 0.25f, c + 0.4999f});
  }
  return v;
}

TEST(QuantizeFit, FlatRoundingEqualsRoundClamp) {
  namespace qfit = osprey::kernels::qfit;
  for (auto [lo, hi] : {std::pair{-4, 3}, {-32, 31}, {-8, 7}, {-16, 15}, {0, 15}, {0, 31}, {0, 63}, {-128, 127}})
    for (float v : probe_values())
      ASSERT_EQ((int)qfit::round_clamp_flat(v, lo, hi), qfit::round_clamp(v, lo, hi)) << v << " in [" << lo << ", " << hi << "]";
}

TEST(QuantizeFit, InlineRoundingEqualsRoundf) {
  namespace qfit = osprey::kernels::qfit;
  // Every float within 64 ulps of each half-integer and integer of [-127.5, 127.5], then a
  // dense sweep; the Q8_0 quantizer's values never leave [-127, 127] (+ rounding of the
  // scale), and outside it the helper clamps.
  std::vector<float> v = probe_values();
  for (int k = -255; k <= 255; ++k) {
    float lo = 0.5f * (float)k, hi = lo;
    for (int i = 0; i < 64; ++i) lo = std::nextafter(lo, -1e9f), hi = std::nextafter(hi, 1e9f), v.insert(v.end(), {lo, hi});
  }
  for (int i = -1270000; i <= 1270000; ++i) v.push_back((float)i * 1e-4f);
  for (float x : v) {
    if (std::isnan(x)) {
      ASSERT_EQ(qfit::round_half_away_i8(x), 0);
      continue;
    }
    const float c = std::fmin(127.0f, std::fmax(-127.0f, x));
    ASSERT_EQ(qfit::round_half_away_i8(x), (int8_t)std::roundf(c)) << x;
  }
}

// Q8_0 rows of awkward values (NaN, inf, huge, denormal, near-ties of every rounding step at
// several scales) against the formula written plainly: fmax fold, roundf. The quantizer's
// loops are vectorized (quantize.cpp); this checks they keep every value.
TEST(Quantize, Q8_0EqualsThePlainFormula) {
  std::vector<float> v = probe_values();
  std::srand(5);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[(size_t)std::rand() % i]);
  std::vector<float> x;
  for (float scale : {1.0f, 0.013f, 3.7f, 1e-30f})
    for (size_t i = 0; i < v.size(); ++i) {
      const bool odd = !std::isfinite(v[i]) || std::fabs(v[i]) > 1e6f;  // one in a block at most, anywhere
      x.push_back(odd && x.size() % 32 != x.size() / 32 % 32 ? 0.25f : v[i] * scale);  // block b: at b % 32
    }
  x.resize(x.size() / 32 * 32);
  std::vector<uint8_t> got(x.size() / 32 * sizeof(block_q8_0));
  ASSERT_TRUE(kernels::quantize_row(DType::Q8_0, x.data(), got.data(), (int64_t)x.size()));
  for (size_t b = 0; b < x.size() / 32; ++b) {
    const float* xb = x.data() + b * 32;
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    block_q8_0 want;
    want.d = osprey::f32_to_f16(d);
    for (int j = 0; j < 32; ++j) {
      const float y = xb[j] * id;
      want.qs[j] = std::isnan(y) ? 0 : (int8_t)std::roundf(std::fmin(127.0f, std::fmax(-127.0f, y)));
    }
    ASSERT_EQ(0, std::memcmp(&want, got.data() + b * sizeof want, sizeof want)) << "block " << b;
  }
}

TEST(QuantizeFit, NearestLevelIsNearest) {
  namespace qfit = osprey::kernels::qfit;
  const int8_t* lv = osprey_iq4nl_values;
  for (float v : probe_values()) {
    const int got = qfit::nearest_level(v, lv, 16);
    ASSERT_GE(got, 0);
    ASSERT_LT(got, 16);
    if (std::isnan(v)) {
      EXPECT_EQ(got, 0);
      continue;
    }
    float best = INFINITY;
    for (int j = 0; j < 16; ++j) best = std::fmin(best, std::fabs(v - (float)lv[j]));
    EXPECT_EQ(std::fabs(v - (float)lv[got]), best) << v << " -> level " << (int)lv[got];
  }
}

// The finishing step run for several attempts at once gives each attempt what it gets alone
// (the attempts' sums only interleave). Symmetric grids and IQ4's level table, attempts
// whose scales are all zero (no refit) among them.
TEST(QuantizeFit, BatchedFinishEqualsOneAttemptAtATime) {
  namespace qfit = osprey::kernels::qfit;
  std::srand(7);
  auto uniform = [] { return (float)std::rand() / (float)RAND_MAX * 2.0f - 1.0f; };
  const qfit::Grid q3{-4, 3, nullptr}, q6{-32, 31, nullptr}, iq4{0, 15, osprey_iq4nl_values};
  for (auto [grid, group, ngroups] : {std::tuple{q3, 16, 16}, {q6, 16, 16}, {iq4, 32, 8}, {q6, 32, 1}})
    for (int trial = 0; trial < 20; ++trial) {
      const int n = group * ngroups;
      std::vector<float> x(n), w(n);
      for (int i = 0; i < n; ++i) x[i] = uniform() * (1 + i % 7), w[i] = 0.1f + std::fabs(uniform());
      qfit::SymmetricAttempt at[5];
      for (int a = 0; a < 5; ++a) {
        for (int g = 0; g < ngroups; ++g) at[a].sc[g] = a == 2 ? 0 : std::rand() % 64 - 32;
        at[a].D = 0.01f + 0.02f * std::fabs(uniform());
      }
      qfit::SymmetricAttempt alone[5];
      std::memcpy(alone, at, sizeof at);
      qfit::finish_symmetric(x.data(), w.data(), group, ngroups, grid, at, 5);
      for (int a = 0; a < 5; ++a) {
        qfit::finish_symmetric(x.data(), w.data(), group, ngroups, grid, &alone[a], 1);
        ASSERT_EQ(at[a].D, alone[a].D) << "attempt " << a;
        ASSERT_EQ(at[a].err, alone[a].err) << "attempt " << a;
        ASSERT_EQ(0, std::memcmp(at[a].q, alone[a].q, sizeof(int) * n)) << "attempt " << a;
      }
    }
}

// The same for the affine finishing step (Q2_K, Q4_K, Q5_K): attempts whose least-squares
// refit is refused (all scales zero) among them.
TEST(QuantizeFit, BatchedAffineFinishEqualsOneAttemptAtATime) {
  namespace qfit = osprey::kernels::qfit;
  std::srand(9);
  auto uniform = [] { return (float)std::rand() / (float)RAND_MAX; };
  for (auto [group, ngroups, qmax] : {std::tuple{16, 16, 3}, {32, 8, 15}, {32, 8, 31}})
    for (int trial = 0; trial < 20; ++trial) {
      const int n = group * ngroups;
      std::vector<float> x(n), w(n);
      for (int i = 0; i < n; ++i) x[i] = (uniform() - 0.3f) * (1 + i % 5), w[i] = 0.1f + uniform();
      qfit::AffineAttempt at[qfit::kMaxAffineAttempts];
      for (int a = 0; a < qfit::kMaxAffineAttempts; ++a) {
        for (int g = 0; g < ngroups; ++g)
          at[a].sc[g] = a == 1 ? 0 : std::rand() % 64, at[a].mn[g] = std::rand() % 64;
        at[a].D = 0.002f + 0.01f * uniform(), at[a].M = 0.001f + 0.01f * uniform();
      }
      qfit::AffineAttempt alone[qfit::kMaxAffineAttempts];
      std::memcpy(alone, at, sizeof at);
      qfit::finish_affine(x.data(), w.data(), group, ngroups, qmax, at, qfit::kMaxAffineAttempts);
      for (int a = 0; a < qfit::kMaxAffineAttempts; ++a) {
        qfit::finish_affine(x.data(), w.data(), group, ngroups, qmax, &alone[a], 1);
        ASSERT_EQ(at[a].D, alone[a].D) << "attempt " << a;
        ASSERT_EQ(at[a].M, alone[a].M) << "attempt " << a;
        ASSERT_EQ(at[a].err, alone[a].err) << "attempt " << a;
        ASSERT_EQ(0, std::memcmp(at[a].q, alone[a].q, sizeof(int) * n)) << "attempt " << a;
      }
    }
}

// fit_symmetric's one pass over all candidates (padded to whole vectors) chooses what trying
// them one at a time, in order, chooses: the same scale, the same levels. Where the CPU has
// AVX2, fit_symmetric runs the AVX2 search (OSPREY_CPU_ISA=scalar, the test_quantize_fit_portable
// ctest, runs the portable one), and avx2::best_candidate is also checked directly: the same
// candidate as one at a time. The inputs include non-finite values, zero weights and ties.
TEST(QuantizeFit, SymmetricFitEqualsOneCandidateAtATime) {
  namespace qfit = osprey::kernels::qfit;
  // Returns d; *best_k gets the index of the chosen candidate (-1: the fallback qmin / vmax; -2:
  // all zero, no search).
  auto one_at_a_time = [](const float* x, const float* w, int n, int qmin, int qmax, int* q, float* iscales,
                          double* scores, int* best_k) {
    float vmax = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; ++i)
      if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), vmax = x[i];
    *best_k = -1;
    if (vmax == 0.0f) {  // no search
      *best_k = -2;
      for (int i = 0; i < n; ++i) q[i] = 0;
      return 0.0f;
    }
    float best_iscale = (float)qmin / vmax;
    double best = -1.0;
    int k_all = 0;
    for (float target : {(float)qmin, (float)qmax})
      for (int k = -6; k <= 10; ++k, ++k_all) {
        const float iscale = (target + (target < 0 ? -1.0f : 1.0f) * 0.1f * (float)k) / vmax;
        iscales[k_all] = iscale;
        double slx = 0, sll = 0;
        for (int i = 0; i < n; ++i) {
          const double l = qfit::round_clamp(iscale * x[i], qmin, qmax);
          slx += (double)w[i] * x[i] * l, sll += (double)w[i] * l * l;
        }
        scores[k_all] = sll > 0 ? slx * slx / sll : -1.0;
        if (sll > 0 && slx * slx / sll > best) best = slx * slx / sll, best_iscale = iscale, *best_k = k_all;
      }
    double slx = 0, sll = 0;
    for (int i = 0; i < n; ++i) {
      q[i] = qfit::round_clamp(best_iscale * x[i], qmin, qmax);
      slx += (double)w[i] * x[i] * q[i], sll += (double)w[i] * q[i] * q[i];
    }
    return sll > 0 ? (float)(slx / sll) : 1.0f / best_iscale;
  };
  auto bits = [](float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
  };
  const bool avx2 = qfit::avx2::built() && osprey::kernels::cpu_has_avx2();
  if (!avx2) std::printf("no AVX2 here: only fit_symmetric's portable search is checked\n");
  const std::vector<float> odd = probe_values();
  std::srand(11);
  int checked_avx2 = 0;
  for (auto [qmin, qmax, n] :
       {std::tuple{-4, 3, 16}, {-32, 31, 16}, {-8, 7, 32}, {0, 63, 8}, {-128, 127, 16}, {0, 15, 16}, {-16, 15, 5}})
    for (int trial = 0; trial < 300; ++trial) {
      std::vector<float> x(n), w(n);
      for (int i = 0; i < n; ++i) {
        x[i] = ((float)std::rand() / (float)RAND_MAX - (qmin < 0 ? 0.5f : 0.0f)) * (float)(1 + trial % 5);
        w[i] = trial % 3 == 0 ? 1.0f : 0.05f + (float)std::rand() / (float)RAND_MAX;
      }
      if (trial % 17 == 0) std::fill(x.begin(), x.end(), 0.0f);
      if (trial % 23 == 1) x[(size_t)trial % n] = odd[(size_t)std::rand() % odd.size()];  // NaN, inf, huge, ...
      if (trial % 29 == 2) w[(size_t)trial % n] = 0.0f;
      if (trial % 31 == 3) std::fill(w.begin(), w.end(), 0.0f);  // no candidate has a score
      if (trial % 37 == 4) std::fill(x.begin(), x.end(), x[0]);  // every candidate rounds alike: ties
      std::vector<int> q(n), q_ref(n);
      float iscales[(qfit::kSymmetricCandidates + 3) / 4 * 4];
      double scores[qfit::kSymmetricCandidates];
      int k_ref;
      const float d = qfit::fit_symmetric(x.data(), w.data(), n, qmin, qmax, q.data());
      const float d_ref = one_at_a_time(x.data(), w.data(), n, qmin, qmax, q_ref.data(), iscales, scores, &k_ref);
      ASSERT_EQ(bits(d), bits(d_ref)) << "[" << qmin << ", " << qmax << "] trial " << trial;
      ASSERT_EQ(q, q_ref) << "[" << qmin << ", " << qmax << "] trial " << trial;
      if (!avx2 || k_ref == -2) continue;
      for (int k = qfit::kSymmetricCandidates; k < (qfit::kSymmetricCandidates + 3) / 4 * 4; ++k) iscales[k] = iscales[k - 1];
      ASSERT_EQ(qfit::avx2::best_candidate(x.data(), w.data(), n, qmin, qmax, iscales, qfit::kSymmetricCandidates),
                k_ref)
          << "[" << qmin << ", " << qmax << "] trial " << trial;
      // Fewer candidates: the lanes past them (real candidates here, maybe better) must not count.
      for (int m : {33, 30, 17, 5}) {
        int k_m = -1;
        double best = -1.0;
        for (int k = 0; k < m; ++k)
          if (scores[k] > best) best = scores[k], k_m = k;
        ASSERT_EQ(qfit::avx2::best_candidate(x.data(), w.data(), n, qmin, qmax, iscales, m), k_m)
            << m << " candidates, [" << qmin << ", " << qmax << "] trial " << trial;
      }
      ++checked_avx2;
    }
  if (avx2) {
    EXPECT_GT(checked_avx2, 1500);
  }
}

// min_max is the fold from x[0] it replaced, written out here: a NaN is passed over, a tie
// (-0 and +0) keeps the earlier element, all NaN gives x[0]. Compared bit for bit: Q4_1 and
// Q5_1 store the minimum's sign.
TEST(QuantizeFit, MinMaxIsTheFminFmaxFold) {
  namespace qfit = osprey::kernels::qfit;
  const std::vector<float> v = probe_values();
  auto bits = [](float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
  };
  std::srand(3);
  for (int trial = 0; trial < 4000; ++trial) {
    const int n = 1 + trial % 40;
    std::vector<float> x(n);
    for (float& e : x) e = trial % 3 == 0 ? (std::rand() % 2 ? 0.0f : -0.0f) : v[(size_t)std::rand() % v.size()];
    if (trial % 5 == 0) x[0] = NAN;
    if (trial % 97 == 0) std::fill(x.begin(), x.end(), -NAN);
    float rlo = x[0], rhi = x[0];
    for (int i = 1; i < n; ++i) {
      if (std::isnan(x[i])) continue;
      if (std::isnan(rlo) || x[i] < rlo) rlo = x[i];
      if (std::isnan(rhi) || x[i] > rhi) rhi = x[i];
    }
    float lo, hi;
    qfit::min_max(x.data(), n, &lo, &hi);
    ASSERT_EQ(bits(lo), bits(rlo)) << "trial " << trial;
    ASSERT_EQ(bits(hi), bits(rhi)) << "trial " << trial;
  }
}

// The midpoint count gives nearest_level's level for every value, exact midpoints (ties go
// up) and NaN included, and for a table shorter than 16.
TEST(QuantizeFit, MidpointCountIsTheNearestLevel) {
  namespace qfit = osprey::kernels::qfit;
  const int8_t short_table[5] = {-9, -2, 0, 5, 11};
  for (auto [lv, n] : {std::pair{osprey_iq4nl_values, 16}, {short_table, 5}}) {
    const qfit::LevelMidpoints mids(lv, n);
    std::vector<float> v = probe_values();
    for (int m = 0; m + 1 < n; ++m) {
      const float mid = 0.5f * (float)(lv[m] + lv[m + 1]);
      v.insert(v.end(), {mid, std::nextafter(mid, -1e9f), std::nextafter(mid, 1e9f)});
    }
    for (float x : v) {
      const float want = (float)lv[qfit::nearest_level(x, lv, n)];
      ASSERT_EQ(mids.value(x), want) << x << " with " << n << " levels";
    }
  }
}

// fit_table counts the midpoints a value reaches instead of looking its level up: the same
// choice as trying each candidate in order with nearest_level.
TEST(QuantizeFit, TableFitEqualsOneCandidateAtATime) {
  namespace qfit = osprey::kernels::qfit;
  const int8_t* lv = osprey_iq4nl_values;
  auto score = [&](const std::vector<float>& x, const std::vector<float>& w, float iscale, int* q, double* sx, double* st) {
    *sx = *st = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      q[i] = qfit::nearest_level(iscale * x[i], lv, 16);
      const double t = lv[q[i]];
      *sx += (double)w[i] * x[i] * t, *st += (double)w[i] * t * t;
    }
    return *st > 0 ? *sx * *sx / *st : -1.0;
  };
  std::srand(5);
  for (int trial = 0; trial < 400; ++trial) {
    const int n = 32;
    std::vector<float> x(n), w(n);
    for (int i = 0; i < n; ++i) {
      x[i] = ((float)std::rand() / (float)RAND_MAX - 0.5f) * (float)(1 + trial % 9);
      w[i] = trial % 3 == 0 ? 1.0f : 0.05f + (float)std::rand() / (float)RAND_MAX;
    }
    if (trial % 2) x[trial % n] = 4.0f * (float)(1 + trial % 9);  // a positive largest value
    float vmax = 0.0f;
    for (float v : x)
      if (std::fabs(v) > std::fabs(vmax)) vmax = v;
    std::vector<int> q_ref(n), trial_q(n), q(n);
    float best_iscale = (float)lv[0] / vmax;
    double best = -1.0, sx, st;
    for (float target : {(float)lv[0], (float)lv[15]})
      for (int k = -4; k <= 8; ++k) {
        const float iscale = (target + (target < 0 ? -1.0f : 1.0f) * 2.0f * (float)k) / vmax;
        const double s = score(x, w, iscale, trial_q.data(), &sx, &st);
        if (s > best) best = s, best_iscale = iscale;
      }
    score(x, w, best_iscale, q_ref.data(), &sx, &st);
    float d_ref = st > 0 ? (float)(sx / st) : 1.0f / best_iscale;
    if (d_ref != 0.0f && score(x, w, 1.0f / d_ref, trial_q.data(), &sx, &st) > best) q_ref = trial_q, d_ref = (float)(sx / st);
    const float d = qfit::fit_table(x.data(), w.data(), n, lv, 16, q.data());
    ASSERT_EQ(d, d_ref) << "trial " << trial;
    ASSERT_EQ(q, q_ref) << "trial " << trial;
  }
}
