// The K-quant (Q2_K .. Q6_K) and IQ4_XS packed layouts (kernels/cpu/packed_kquant.h): every ISA's packed
// GEMM equals the scalar packed GEMM bit for bit, for every column count, group count and K;
// the scalar packed GEMM agrees with the one-row reference kernel (quant_dot_scalar.cpp) up
// to float summation order; and the comparison catches a kernel that is wrong in a single
// output.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>

#include "kernels/base/fp16.h"
#include "kernels/cpu/packed_kquant.h"

namespace osprey::kernels {
namespace {

// Random valid super-blocks: any bytes, with finite f16 block scales of a realistic size.
std::vector<uint8_t> random_rows(DType t, int64_t rows, int64_t K, std::mt19937& rng, bool extreme = false) {
  const size_t row_bytes = (size_t)dtype_row_bytes(t, K);
  std::vector<uint8_t> w(row_bytes * (size_t)rows);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  for (uint8_t& b : w) b = extreme ? 0xFF : (uint8_t)byte(rng);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < K / 256; ++i) {
      uint8_t* blk = w.data() + (size_t)r * row_bytes + (size_t)i * (size_t)dtype_row_bytes(t, 256);
      const uint16_t d = f32_to_f16(scale(rng)), dmin = f32_to_f16(scale(rng));
      if (t == DType::Q4_K || t == DType::Q5_K) {  // same d / dmin offsets
        std::memcpy(blk + offsetof(block_q4_K, d), &d, 2);
        std::memcpy(blk + offsetof(block_q4_K, dmin), &dmin, 2);
      } else if (t == DType::Q2_K) {  // extreme: every byte 0xFF, quants 3 under scale and min 15
        std::memcpy(blk + offsetof(block_q2_K, d), &d, 2);
        std::memcpy(blk + offsetof(block_q2_K, dmin), &dmin, 2);
      } else if (t == DType::Q3_K) {  // extreme: quants 7, scales +31 (0xFF) / -32, quants -4 (0x00)
        if (extreme && r % 2) std::memset(blk, 0x00, offsetof(block_q3_K, d));
        std::memcpy(blk + offsetof(block_q3_K, d), &d, 2);
      } else if (t == DType::IQ4_XS) {  // extreme: both ends, levels -127 under scale -32 / +113 under +31
        std::memcpy(blk + offsetof(block_iq4_xs, d), &d, 2);
        if (extreme) std::memset(blk + offsetof(block_iq4_xs, scales_h), r % 2 ? 0xFF : 0x00, sizeof(block_iq4_xs) - 2);
      } else {
        std::memcpy(blk + offsetof(block_q6_K, d), &d, 2);
        if (extreme) std::memset(blk + offsetof(block_q6_K, scales), 0x80, 16);  // -128: the widest
      }
    }
  return w;
}

// cols activation rows quantized to Q8_K; extreme: every byte +127 (column 0 mod 3), -127
// (1 mod 3) or mixed +-127.
std::vector<uint8_t> random_acts(int64_t cols, int64_t K, std::mt19937& rng, bool extreme = false) {
  const size_t xs = act_row_bytes(ActQuant::Q8_K, K);
  std::vector<uint8_t> xq(xs * (size_t)cols);
  std::uniform_real_distribution<float> d(-2.f, 2.f);
  std::vector<float> x((size_t)K);
  for (int64_t c = 0; c < cols; ++c) {
    for (size_t k = 0; k < x.size(); ++k)
      x[k] = !extreme ? d(rng) : c % 3 == 0 ? 1.f : c % 3 == 1 ? -1.f : (k % 3 ? 1.f : -1.f);
    quantize_act_row(ActQuant::Q8_K, x.data(), xq.data() + (size_t)c * xs, K);
  }
  return xq;
}

std::vector<uint8_t> pack_all(const PackedFormat& f, const std::vector<uint8_t>& w, int64_t groups, int64_t K) {
  const size_t row_bytes = (size_t)dtype_row_bytes(f.weight, K);
  std::vector<uint8_t> p(f.group_bytes(K) * (size_t)groups);
  for (int64_t g = 0; g < groups; ++g)
    f.pack(w.data() + (size_t)g * 16 * row_bytes, row_bytes, K, p.data() + (size_t)g * f.group_bytes(K));
  return p;
}

using Gemm = std::function<void(const void*, int64_t, const void*, size_t, int64_t, int64_t, float*, int64_t)>;

// Runs gemm with ldy wider than the output and sentinels around it; "" when every output equals
// want(row, col) bit for bit and nothing else was written, else the first difference.
std::string bit_mismatch(const Gemm& gemm, const std::vector<uint8_t>& packed, int64_t groups,
                         const std::vector<uint8_t>& xq, int64_t cols, int64_t K, const std::vector<float>& want) {
  const int64_t ldy = groups * 16 + 3;
  std::vector<float> y((size_t)(ldy * cols + 5), -777.f);
  gemm(packed.data(), groups, xq.data(), act_row_bytes(ActQuant::Q8_K, K), cols, K, y.data(), ldy);
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t j = 0; j < ldy; ++j) {
      const float got = y[(size_t)(c * ldy + j)];
      if (j >= groups * 16) {
        if (got != -777.f) return "wrote padding at col " + std::to_string(c) + " lane " + std::to_string(j);
        continue;
      }
      const float w = want[(size_t)(c * groups * 16 + j)];
      if (std::memcmp(&got, &w, 4) != 0)
        return "row " + std::to_string(j) + " col " + std::to_string(c) + ": " + std::to_string(got) + " vs " +
               std::to_string(w);
    }
  for (size_t i = (size_t)(ldy * cols); i < y.size(); ++i)
    if (y[i] != -777.f) return "wrote past the end";
  return "";
}

std::vector<float> run(const PackedFormat& f, const std::vector<uint8_t>& packed, int64_t groups,
                       const std::vector<uint8_t>& xq, int64_t cols, int64_t K) {
  std::vector<float> y((size_t)(groups * 16 * cols));
  f.gemm(packed.data(), groups, xq.data(), act_row_bytes(ActQuant::Q8_K, K), cols, K, y.data(), groups * 16);
  return y;
}

struct Variant {
  const char* name;
  const PackedFormat* format;
};

// The SIMD variants this CPU can run (a note for the others).
std::vector<Variant> simd_variants(DType t) {
  std::vector<Variant> out;
  for (const IsaVariant& v : isa_variants()) {
    const std::string n = v.name;
    const PackedFormat* f = n == "avx2"     ? avx2::packed_kquant_format(t)
                            : n == "avx512" ? avx512::packed_kquant_format(t)
                                            : nullptr;
    if (n == "scalar") continue;
    if (v.usable() && f)
      out.push_back({v.name, f});
    else
      std::printf("note: packed %s %s not tested (built %d, cpu %d, kernel %d)\n", dtype_name(t), v.name, v.built,
                  v.supported, f != nullptr);
  }
  return out;
}

class PackedKQuant : public ::testing::TestWithParam<DType> {};

TEST_P(PackedKQuant, EveryIsaEqualsScalarPackedGemmBitForBit) {
  const DType t = GetParam();
  const PackedFormat* ref = scalar::packed_kquant_format(t);
  ASSERT_TRUE(ref);
  ASSERT_EQ(ref->weight, t);
  ASSERT_EQ(ref->act, ActQuant::Q8_K);
  std::mt19937 rng(5);
  const auto variants = simd_variants(t);
  std::printf("note: %zu SIMD variants tested for packed %s\n", variants.size(), dtype_name(t));
  for (const Variant& v : variants) {
    ASSERT_EQ(v.format->weight, t);
    ASSERT_EQ(v.format->group_bytes(4096), ref->group_bytes(4096)) << "the layout is the same on every ISA";
    for (int64_t K : {256, 512, 4096})
      for (int64_t groups : {1, 2, 3}) {
        if (K == 4096 && groups != 3) continue;
        const auto w = random_rows(t, groups * 16, K, rng);
        const auto packed = pack_all(*ref, w, groups, K);
        for (int64_t cols : {1, 2, 3, 4, 5, 6, 7, 8, 13}) {
          const auto xq = random_acts(cols, K, rng);
          const auto want = run(*ref, packed, groups, xq, cols, K);
          EXPECT_EQ(bit_mismatch(v.format->gemm, packed, groups, xq, cols, K, want), "")
              << v.name << " " << dtype_name(t) << " K " << K << " groups " << groups << " cols " << cols;
        }
      }
  }
}

// The layout's packing and the scalar order against the one-row kernel on the source rows:
// the same integers, summed in another float order, so NMSE (and the worst element) stays at
// float rounding. Extreme operands (every quant, scale and activation at its widest) check
// that the integer sums cannot overflow and that every ISA still agrees.
TEST_P(PackedKQuant, ScalarPackedGemmMatchesOneRowKernel) {
  const DType t = GetParam();
  const PackedFormat* ref = scalar::packed_kquant_format(t);
  const VecDotFn one = scalar::vec_dot_for(t);
  ASSERT_TRUE(ref && one);
  std::mt19937 rng(9);
  for (bool extreme : {false, true})
    for (int64_t K : {256, 2304}) {
      const int64_t groups = 2, cols = 3;
      const auto w = random_rows(t, groups * 16, K, rng, extreme);
      const auto xq = random_acts(cols, K, rng, extreme);
      const auto packed = pack_all(*ref, w, groups, K);
      const auto y = run(*ref, packed, groups, xq, cols, K);
      const size_t row_bytes = (size_t)dtype_row_bytes(t, K), xs = act_row_bytes(ActQuant::Q8_K, K);
      double err = 0, norm = 0, worst = 0, amax = 0;
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t r = 0; r < groups * 16; ++r) {
          const double want = one(w.data() + (size_t)r * row_bytes, xq.data() + (size_t)c * xs, K);
          const double got = y[(size_t)(c * groups * 16 + r)];
          err += (got - want) * (got - want);
          norm += want * want;
          worst = std::max(worst, std::fabs(got - want));
          amax = std::max(amax, std::fabs(want));
        }
      EXPECT_LT(err / norm, 1e-10) << dtype_name(t) << " K " << K << " extreme " << extreme;
      EXPECT_LE(worst, 1e-5 * amax) << dtype_name(t) << " K " << K << " extreme " << extreme;
      for (const Variant& v : simd_variants(t))
        EXPECT_EQ(bit_mismatch(v.format->gemm, packed, groups, xq, cols, K, y), "") << v.name << " extreme " << extreme;
    }
}

// The bit-for-bit check is not vacuous: one output off by one ulp, or one packed byte changed,
// is caught.
TEST_P(PackedKQuant, ComparisonCatchesABrokenKernel) {
  const DType t = GetParam();
  const PackedFormat* ref = scalar::packed_kquant_format(t);
  std::mt19937 rng(13);
  const int64_t K = 512, groups = 2, cols = 3;
  const auto w = random_rows(t, groups * 16, K, rng);
  const auto xq = random_acts(cols, K, rng);
  const auto packed = pack_all(*ref, w, groups, K);
  const auto want = run(*ref, packed, groups, xq, cols, K);
  EXPECT_EQ(bit_mismatch(ref->gemm, packed, groups, xq, cols, K, want), "");
  const Gemm one_ulp_off = [&](const void* p, int64_t g, const void* x, size_t xs, int64_t c, int64_t k, float* y,
                               int64_t ldy) {
    ref->gemm(p, g, x, xs, c, k, y, ldy);
    y[2 * ldy + 17] = std::nextafter(y[2 * ldy + 17], INFINITY);
  };
  EXPECT_NE(bit_mismatch(one_ulp_off, packed, groups, xq, cols, K, want), "");
  auto changed = packed;
  changed[ref->group_bytes(K) + 1000] ^= 0x11;  // a quant byte of the second group
  EXPECT_NE(bit_mismatch(ref->gemm, changed, groups, xq, cols, K, want), "");
}

INSTANTIATE_TEST_SUITE_P(Types, PackedKQuant,
                         ::testing::Values(DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_XS),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace osprey::kernels
