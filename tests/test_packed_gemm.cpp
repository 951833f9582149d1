// Packed-weight products (kernels/cpu/packed_gemm.h), for every type the scalar table
// covers: (1) the scalar packed gemm against the exact dot product of the dequantized weight
// rows with the dequantized activations (double), within 1e-5 of sum |terms| (a different
// float order from vec_dot, same integers); (2) every ISA variant's gemm bit for bit equal to
// the scalar one, for any column count, group count and K; (3) a pack with two rows swapped
// must fail check (1), so the check can see layout errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "formats/gguf.h"
#include "kernels/cpu/packed_gemm.h"
#include "kernels/cpu/quant_dot.h"
#include "kernels/dequant.h"

namespace osprey::kernels {
namespace {

// The quantized types that have a packed layout (new layouts are picked up by themselves).
std::vector<DType> packed_types() {
  std::vector<DType> out;
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                  DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS})
    if (scalar::packed_format_for(t)) out.push_back(t);
  return out;
}

// `rows` rows of K elements made of blocks drawn at random from the dequant fixture (valid
// random blocks from gen_dequant_ref.py), so that no two rows are alike.
std::vector<uint8_t> weight_rows(DType t, int64_t K, int64_t rows, uint32_t seed) {
  auto f = gguf::File::open(std::string(OSPREY_TEST_DATA) + "/dequant/" + dtype_name(t) + ".gguf");
  EXPECT_TRUE(f.ok()) << f.error();
  std::vector<uint8_t> out((size_t)dtype_row_bytes(t, K) * (size_t)rows);
  if (!f) return out;
  const gguf::TensorInfo* q = f.value()->find_tensor("q");
  const size_t bb = (size_t)dtype_traits(t)->block_bytes, have = q->nbytes / bb;
  std::mt19937 rng(seed);
  for (size_t i = 0; i < out.size() / bb; ++i) std::memcpy(&out[i * bb], q->data + (rng() % have) * bb, bb);
  return out;
}

std::vector<float> random_x(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> x((size_t)n);
  for (float& v : x) v = d(rng);
  return x;
}

// The activation row as the kernels see it: d * q per element.
std::vector<double> dequant_act(ActQuant aq, const uint8_t* xq, int64_t K) {
  std::vector<double> v((size_t)K);
  if (aq == ActQuant::Q8_K) {
    for (int64_t i = 0; i < K / 256; ++i)
      for (int j = 0; j < 256; ++j) v[(size_t)(i * 256 + j)] = (double)((const block_q8_K*)xq)[i].d * ((const block_q8_K*)xq)[i].qs[j];
  } else {  // Q8_32 and Q8_32_ISUM keep d and qs at the same places
    for (int64_t i = 0; i < K / 32; ++i)
      for (int j = 0; j < 32; ++j) v[(size_t)(i * 32 + j)] = (double)((const block_q8_act*)xq)[i].d * ((const block_q8_act*)xq)[i].qs[j];
  }
  return v;
}

struct Problem {
  DType t;
  const PackedFormat* f;
  int64_t K, groups, cols;
  std::vector<uint8_t> w, packed, xq;
  size_t x_stride;
  int64_t ldy;
};

// Quantized inputs and the packed weights; x rows and y rows get padding so strides count.
Problem make_problem(DType t, const PackedFormat* f, int64_t blocks, int64_t groups, int64_t cols, uint32_t seed) {
  Problem p{t, f, blocks * dtype_traits(t)->block_elems, groups, cols, {}, {}, {}, 0, 0};
  const int64_t N = groups * kPackRows;
  p.w = weight_rows(t, p.K, N, seed);
  const size_t wrow = (size_t)dtype_row_bytes(t, p.K), gb = f->group_bytes(p.K);
  p.packed.resize(gb * (size_t)groups);
  for (int64_t g = 0; g < groups; ++g) f->pack(p.w.data() + (size_t)g * kPackRows * wrow, wrow, p.K, p.packed.data() + g * gb);
  p.x_stride = act_row_bytes(f->act, p.K) + 40;
  p.xq.assign(p.x_stride * (size_t)cols, 0);
  for (int64_t c = 0; c < cols; ++c) {
    const std::vector<float> x = random_x(p.K, seed * 131 + (uint32_t)c);
    quantize_act_row(f->act, x.data(), p.xq.data() + (size_t)c * p.x_stride, p.K);
  }
  p.ldy = N + 3;
  return p;
}

std::vector<float> run(const Problem& p, const PackedFormat* f) {
  std::vector<float> y((size_t)(p.ldy * p.cols), -7.f);
  f->gemm(p.packed.data(), p.groups, p.xq.data(), p.x_stride, p.cols, p.K, y.data(), p.ldy);
  return y;
}

// Largest |y - exact| / (1e-5 * sum |terms| + 1e-30) over all outputs: <= 1 passes.
double worst_error_ratio(const Problem& p, const std::vector<float>& y) {
  const size_t wrow = (size_t)dtype_row_bytes(p.t, p.K);
  std::vector<float> wf((size_t)p.K);
  double worst = 0;
  for (int64_t c = 0; c < p.cols; ++c) {
    const std::vector<double> x = dequant_act(p.f->act, p.xq.data() + (size_t)c * p.x_stride, p.K);
    for (int64_t n = 0; n < p.groups * kPackRows; ++n) {
      EXPECT_TRUE(dequantize_row(p.t, p.w.data() + (size_t)n * wrow, wf.data(), p.K));
      double exact = 0, mag = 0;
      for (int64_t k = 0; k < p.K; ++k) exact += (double)wf[(size_t)k] * x[(size_t)k], mag += std::fabs((double)wf[(size_t)k] * x[(size_t)k]);
      worst = std::max(worst, std::fabs((double)y[(size_t)(c * p.ldy + n)] - exact) / (1e-5 * mag + 1e-30));
    }
  }
  return worst;
}

// Every ISA variant this build and CPU can run with its table (notes for the others).
std::vector<std::pair<const char*, const PackedFormat* (*)(DType)>> usable_tables() {
  std::vector<std::pair<const char*, const PackedFormat* (*)(DType)>> out;
  for (const IsaVariant& v : isa_variants()) {
    const std::string name = v.name;
    const PackedFormat* (*table)(DType) = name == "avx2" ? avx2::packed_format_for
                                          : name == "avx512" ? avx512::packed_format_for
                                                             : nullptr;
    if (!table) continue;
    if (v.usable()) out.push_back({v.name, table});
    else std::printf("note: %s variant not tested (built %d, cpu %d)\n", v.name, v.built, v.supported);
  }
  return out;
}

class PackedGemm : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    f_ = scalar::packed_format_for(GetParam());
    ASSERT_TRUE(f_ && f_->weight == GetParam());
  }
  const PackedFormat* f_ = nullptr;
};

TEST_P(PackedGemm, ScalarMatchesExactDot) {
  for (int64_t blocks : {1, 3, 8}) {
    const Problem p = make_problem(GetParam(), f_, blocks, 2, 3, 11 + (uint32_t)blocks);
    EXPECT_LE(worst_error_ratio(p, run(p, f_)), 1.0) << "blocks " << blocks;
  }
}

TEST_P(PackedGemm, SwappedRowsAreCaught) {
  Problem p = make_problem(GetParam(), f_, 2, 1, 2, 5);
  // Pack rows 0 and 1 swapped: the check must fail, or it could not see a layout error.
  const size_t wrow = (size_t)dtype_row_bytes(p.t, p.K);
  std::vector<uint8_t> swapped = p.w;
  std::memcpy(swapped.data(), p.w.data() + wrow, wrow);
  std::memcpy(swapped.data() + wrow, p.w.data(), wrow);
  f_->pack(swapped.data(), wrow, p.K, p.packed.data());
  EXPECT_GT(worst_error_ratio(p, run(p, f_)), 100.0);
}

TEST_P(PackedGemm, EveryIsaEqualsScalarBitForBit) {
  const int64_t bs = dtype_traits(GetParam())->block_elems;
  const auto tables = usable_tables();
  for (const auto& [name, table] : tables) {
    const PackedFormat* f = table(GetParam());
    if (!f) {
      std::printf("note: %s has no packed %s\n", name, dtype_name(GetParam()));
      continue;
    }
    // The layout is the ISA's business only through gemm(): pack and sizes must be shared.
    ASSERT_EQ(f->act, f_->act);
    ASSERT_EQ(f->group_bytes(bs * 5), f_->group_bytes(bs * 5));
    for (int64_t blocks : {int64_t{1}, int64_t{3}, int64_t{7}, 4096 / bs + 1})
      for (int64_t groups : {1, 3})
        for (int64_t cols : {1, 2, 3, 4, 5, 7, 8, 13}) {
          if (blocks > 7 && groups > 1 && cols > 5) continue;  // long K: a few shapes are enough
          const Problem p = make_problem(GetParam(), f_, blocks, groups, cols, (uint32_t)(blocks * 100 + groups * 10 + cols));
          const std::vector<float> want = run(p, f_), got = run(p, f);
          ASSERT_EQ(std::memcmp(want.data(), got.data(), want.size() * 4), 0)
              << name << " K " << p.K << " groups " << groups << " cols " << cols;
        }
  }
}

TEST(PackedGemmTables, SimdActivationQuantizerGivesTheSameBytes) {
  // Random rows, and blocks built to hit lround's ties: 127 sets d = 1, the rest are k + 0.5.
  const int64_t K = 32 * 40;
  std::vector<float> x = random_x(K, 9);
  for (int64_t i = 0; i < K / 32; ++i) x[(size_t)(i * 32)] *= (float)std::pow(10.0, (double)(i % 9) - 4);
  for (int b = 0; b < 4; ++b) {
    float* blk = x.data() + 32 * b;
    blk[0] = b % 2 ? 127.f : -127.f;
    for (int j = 1; j < 32; ++j) blk[j] = (float)(j - 16) + (j % 2 ? 0.5f : -0.5f);
  }
  for (int j = 0; j < 32; ++j) x[(size_t)(32 * 5 + j)] = j % 2 ? 0.f : -0.f;  // an all-zero block
  for (ActQuant q : {ActQuant::Q8_32, ActQuant::Q8_32_ISUM, ActQuant::Q8_K}) {  // K: 5 blocks of 256
    std::vector<uint8_t> want(act_row_bytes(q, K)), got(want.size(), 0xCD);
    quantize_act_row(q, x.data(), want.data(), K);
    quantize_act_row_simd(q, x.data(), got.data(), K);
    EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size()), 0) << "dispatched, act " << (int)q;
    for (const auto& [name, table] : usable_tables())
      if (std::string(name) == "avx512") {
        std::fill(got.begin(), got.end(), 0xCD);
        ASSERT_TRUE(avx512::quantize_act_row(q, x.data(), got.data(), K));
        EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size()), 0) << "avx512, act " << (int)q;
      }
  }
}

// The 4- and 5-bit types at both ends: every row's codes (and IQ4_XS scales) at their extremes
// (bytes 0x00: Q4 codes 0, Q5 codes 0, IQ4 level -127 and IQ4_XS scale -32; 0xFF: codes 15 / 31,
// level +113, scale +31; rows alternate), activations all +127, all -127 or mixed. The
// products' pair sums are then at their largest, so a kernel that sums too many of them in 16
// bits, or mishandles a sign or an offset, fails here.
TEST(PackedGemmTables, ExtremeOperands) {
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::IQ4_NL, DType::IQ4_XS}) {
    const PackedFormat* ref = scalar::packed_format_for(t);
    ASSERT_TRUE(ref) << dtype_name(t);
    Problem p = make_problem(t, ref, 256 / dtype_traits(t)->block_elems * 2, 2, 3, 17);
    const size_t wrow = (size_t)dtype_row_bytes(t, p.K), bb = (size_t)dtype_traits(t)->block_bytes;
    const size_t keep = t == DType::Q4_1 || t == DType::Q5_1 ? 4 : 2;  // d (and m) first, kept finite
    for (int64_t r = 0; r < p.groups * kPackRows; ++r)
      for (size_t at = 0; at < wrow; at += bb) std::memset(p.w.data() + (size_t)r * wrow + at + keep, r % 2 ? 0xFF : 0x00, bb - keep);
    for (int64_t g = 0; g < p.groups; ++g)
      ref->pack(p.w.data() + (size_t)g * kPackRows * wrow, wrow, p.K, p.packed.data() + g * ref->group_bytes(p.K));
    std::vector<float> x((size_t)p.K);
    for (int64_t c = 0; c < p.cols; ++c) {
      for (size_t k = 0; k < x.size(); ++k) x[k] = c == 0 ? 1.f : c == 1 ? -1.f : (k % 3 ? 1.f : -1.f);
      quantize_act_row(ref->act, x.data(), p.xq.data() + (size_t)c * p.x_stride, p.K);
    }
    const std::vector<float> want = run(p, ref);
    EXPECT_LE(worst_error_ratio(p, want), 1.0) << dtype_name(t);
    for (const auto& [name, table] : usable_tables())
      if (const PackedFormat* f = table(t)) {
        const std::vector<float> got = run(p, f);
        EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * 4), 0) << name << " " << dtype_name(t);
      }
  }
}

TEST(PackedGemmTables, CoverThe32ElementTypes) {
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::IQ4_NL}) {
    EXPECT_NE(scalar::packed_format_for(t), nullptr) << dtype_name(t);
    for (const auto& [name, table] : usable_tables())
      if (std::string(name) == "avx512") {
        EXPECT_NE(table(t), nullptr) << name << " " << dtype_name(t);
      }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, PackedGemm, ::testing::ValuesIn(packed_types()),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace osprey::kernels
