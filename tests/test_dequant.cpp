// Dequantizers against gguf-py: tests/data/dequant/<type>.gguf hold random blocks ("q") and
// gguf-py's dequantization of them ("ref"), made by tests/scripts/gen_dequant_ref.py.
// The match must be exact: these kernels are the oracle for every faster one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "kernels/dequant.h"
#include "kernels/quant_blocks.h"
#include "test_models.h"

namespace {

using osprey::DType;
namespace gguf = osprey::gguf;
namespace kernels = osprey::kernels;

std::string data_path(const std::string& file) { return std::string(OSPREY_TEST_DATA) + "/dequant/" + file; }

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

struct Case {
  DType type;
  const char* file;
};

void PrintTo(const Case& c, std::ostream* os) { *os << osprey::dtype_name(c.type); }

class DequantRef : public ::testing::TestWithParam<Case> {};

TEST_P(DequantRef, MatchesGgufPyBitForBit) {
  const Case c = GetParam();
  auto f = gguf::File::open(data_path(c.file));
  ASSERT_TRUE(f.ok()) << f.error() << " (regenerate with tests/scripts/gen_dequant_ref.py)";
  const gguf::TensorInfo* q = (*f)->find_tensor("q");
  const gguf::TensorInfo* ref = (*f)->find_tensor("ref");
  ASSERT_NE(q, nullptr);
  ASSERT_NE(ref, nullptr);
  ASSERT_EQ(q->type, c.type);
  ASSERT_EQ(ref->type, DType::F32);
  ASSERT_EQ(q->ne, ref->ne);
  ASSERT_EQ(q->n_elements(), ref->n_elements());
  ASSERT_TRUE(kernels::has_dequantizer(c.type));

  const int64_t n = q->n_elements();
  std::vector<float> out(n, -12345.0f);
  // Row by row, as callers will: the row length is ne[0].
  const int64_t row = q->ne[0];
  const int64_t row_bytes = osprey::dtype_row_bytes(c.type, row);
  ASSERT_GT(row_bytes, 0);
  for (int64_t r = 0; r < n / row; ++r)
    ASSERT_TRUE(kernels::dequantize_row(c.type, q->data + r * row_bytes, out.data() + r * row, row));

  std::vector<float> expect(n);
  std::memcpy(expect.data(), ref->data, n * sizeof(float));
  int mismatches = 0;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_TRUE(std::isfinite(expect[i])) << "reference has inf/NaN at " << i;
    if (bits_of(out[i]) != bits_of(expect[i]) && ++mismatches <= 10)
      ADD_FAILURE() << osprey::dtype_name(c.type) << " element " << i << " (block "
                    << i / osprey::dtype_traits(c.type)->block_elems << "): got " << out[i] << " want "
                    << expect[i];
  }
  EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, DequantRef,
    ::testing::Values(Case{DType::F32, "f32.gguf"}, Case{DType::F16, "f16.gguf"}, Case{DType::BF16, "bf16.gguf"},
                      Case{DType::Q4_0, "q4_0.gguf"}, Case{DType::Q4_1, "q4_1.gguf"},
                      Case{DType::Q5_0, "q5_0.gguf"}, Case{DType::Q5_1, "q5_1.gguf"},
                      Case{DType::Q8_0, "q8_0.gguf"}, Case{DType::Q2_K, "q2_k.gguf"},
                      Case{DType::Q3_K, "q3_k.gguf"}, Case{DType::Q4_K, "q4_k.gguf"},
                      Case{DType::Q5_K, "q5_k.gguf"}, Case{DType::Q6_K, "q6_k.gguf"},
                      Case{DType::Q8_K, "q8_k.gguf"}, Case{DType::IQ4_NL, "iq4_nl.gguf"},
                      Case{DType::IQ4_XS, "iq4_xs.gguf"}, Case{DType::IQ2_XXS, "iq2_xxs.gguf"},
                      Case{DType::IQ2_XS, "iq2_xs.gguf"}, Case{DType::IQ2_S, "iq2_s.gguf"},
                      Case{DType::IQ3_XXS, "iq3_xxs.gguf"}, Case{DType::IQ3_S, "iq3_s.gguf"},
                      Case{DType::IQ1_S, "iq1_s.gguf"}, Case{DType::IQ1_M, "iq1_m.gguf"},
                      Case{DType::TQ1_0, "tq1_0.gguf"},
                      Case{DType::TQ2_0, "tq2_0.gguf"}, Case{DType::MXFP4, "mxfp4.gguf"}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(osprey::dtype_name(info.param.type)); });

TEST(Dequant, RejectsPartialBlocksAndUnsupportedTypes) {
  std::vector<uint8_t> src(1024, 0);
  std::vector<float> dst(512, 7.0f);
  EXPECT_FALSE(kernels::dequantize_row(DType::Q4_0, src.data(), dst.data(), 33));
  EXPECT_FALSE(kernels::dequantize_row(DType::Q4_K, src.data(), dst.data(), 32));
  EXPECT_FALSE(kernels::dequantize_row(DType::Q4_0, src.data(), dst.data(), -32));
  EXPECT_FALSE(kernels::has_dequantizer(DType::I32));  // an integer type is not weights
  EXPECT_FALSE(kernels::dequantize_row(DType::I32, src.data(), dst.data(), 256));
  EXPECT_FALSE(kernels::dequantize_row((DType)77, src.data(), dst.data(), 32));
  EXPECT_EQ(dst[0], 7.0f);  // nothing written on failure
  EXPECT_TRUE(kernels::dequantize_row(DType::Q4_0, src.data(), dst.data(), 0));
}

TEST(Dequant, Q8_1HandBuiltBlock) {
  // gguf-py has no Q8_1 dequantizer (and lists a stale 40-byte block), so check by hand.
  block_q8_1 b{};
  b.d = 0x3800;  // 0.5
  b.s = 0;
  for (int j = 0; j < 32; ++j) b.qs[j] = (int8_t)(j - 16);
  float out[32];
  ASSERT_TRUE(kernels::dequantize_row(DType::Q8_1, &b, out, 32));
  for (int j = 0; j < 32; ++j) EXPECT_EQ(out[j], 0.5f * (float)(j - 16));
}

TEST(Dequant, UnalignedSourceIsFine) {
  // Tensor data is only byte-aligned relative to block boundaries in some files.
  auto f = gguf::File::open(data_path("q4_k.gguf"));
  ASSERT_TRUE(f.ok()) << f.error();
  const gguf::TensorInfo* q = (*f)->find_tensor("q");
  ASSERT_NE(q, nullptr);
  std::vector<uint8_t> shifted(q->nbytes + 1);
  std::memcpy(shifted.data() + 1, q->data, q->nbytes);
  std::vector<float> a(q->n_elements()), b(q->n_elements());
  ASSERT_TRUE(kernels::dequantize_row(DType::Q4_K, q->data, a.data(), q->n_elements()));
  ASSERT_TRUE(kernels::dequantize_row(DType::Q4_K, shifted.data() + 1, b.data(), q->n_elements()));
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

class DequantModel : public ::testing::TestWithParam<const char*> {};

TEST_P(DequantModel, FirstAndLastRowOfEveryTensorAreFinite) {
  // Real weights, not random bytes: every supported tensor's edge rows must decode to
  // finite values of plausible size.
  OSPREY_REQUIRE_MODEL(path, GetParam());
  auto f = gguf::File::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  int checked = 0;
  for (const gguf::TensorInfo& t : (*f)->tensors()) {
    ASSERT_TRUE(kernels::has_dequantizer(t.type)) << t.name << " " << osprey::dtype_name(t.type);
    const int64_t row = t.ne[0];
    const int64_t rows = t.n_elements() / row;
    const int64_t row_bytes = osprey::dtype_row_bytes(t.type, row);
    std::vector<float> out(row);
    for (int64_t r : {int64_t{0}, rows - 1}) {
      ASSERT_TRUE(kernels::dequantize_row(t.type, t.data + r * row_bytes, out.data(), row));
      for (float v : out) ASSERT_TRUE(std::isfinite(v) && std::fabs(v) < 1e4f) << t.name << " row " << r << ": " << v;
    }
    ++checked;
  }
  EXPECT_GT(checked, 200);
}

INSTANTIATE_TEST_SUITE_P(Real, DequantModel,
                         ::testing::Values(osprey::testing::kSmolLM2, osprey::testing::kGemma3,
                                           osprey::testing::kQwen25),
                         [](const ::testing::TestParamInfo<const char*>& i) {
                           return std::string(i.index == 0 ? "SmolLM2" : i.index == 1 ? "Gemma3" : "Qwen25");
                         });

TEST(Quantize, Q8_0MatchesGgufPy) {
  auto f = gguf::File::open(data_path("q8_0_quantize.gguf"));
  ASSERT_TRUE(f.ok()) << f.error();
  const gguf::TensorInfo* src = (*f)->find_tensor("src");
  const gguf::TensorInfo* quant = (*f)->find_tensor("quant");
  ASSERT_NE(src, nullptr);
  ASSERT_NE(quant, nullptr);
  ASSERT_EQ(quant->type, DType::Q8_0);
  const int64_t n = src->n_elements();
  std::vector<float> x(n);
  std::memcpy(x.data(), src->data, n * sizeof(float));
  std::vector<uint8_t> out(quant->nbytes, 0xAA);
  kernels::quantize_row_q8_0(x.data(), out.data(), n);
  for (uint64_t i = 0; i < quant->nbytes; ++i)
    ASSERT_EQ(out[i], quant->data[i]) << "byte " << i << " (block " << i / sizeof(block_q8_0) << ")";
}

TEST(Quantize, Q8_0RoundTripIsClose) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = std::sin(0.3f * (float)i) * 3.0f;
  std::vector<uint8_t> q(2 * sizeof(block_q8_0));
  kernels::quantize_row_q8_0(x.data(), q.data(), 64);
  std::vector<float> y(64);
  ASSERT_TRUE(kernels::dequantize_row(DType::Q8_0, q.data(), y.data(), 64));
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(x[i], y[i], 3.0f / 127.0f);
}

}  // namespace
