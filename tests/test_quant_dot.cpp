// The integer dot kernels (kernels/cpu/quant_dot.h): scalar and every SIMD variant built in
// against the exact dot product of the dequantized weight row with the dequantized 8-bit
// activations (double accumulation). Both sides then compute the same number; only the
// float summation order differs, hence the 1e-5 relative tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "formats/gguf.h"
#include "kernels/cpu/quant_dot.h"
#include "kernels/dequant.h"

namespace osprey::kernels {
namespace {

std::vector<uint8_t> weight_rows(DType t, int64_t K, int64_t rows) {
  // Valid random blocks from the dequant fixtures (gen_dequant_ref.py), cycled to fill.
  auto f = gguf::File::open(std::string(OSPREY_TEST_DATA) + "/dequant/" + dtype_name(t) + ".gguf");
  EXPECT_TRUE(f.ok()) << f.error();
  std::vector<uint8_t> out((size_t)dtype_row_bytes(t, K) * (size_t)rows);
  if (!f) return out;
  const gguf::TensorInfo* q = f.value()->find_tensor("q");
  for (size_t i = 0; i < out.size(); ++i) out[i] = q->data[i % q->nbytes];
  return out;
}

// The activation row as the kernels see it: d * q per element.
std::vector<double> dequant_act(ActQuant aq, const void* xq, int64_t K) {
  std::vector<double> v((size_t)K);
  const int64_t bs = aq == ActQuant::Q8_K ? 256 : 32;
  for (int64_t i = 0; i < K / bs; ++i)
    for (int64_t j = 0; j < bs; ++j) {
      if (aq == ActQuant::Q8_K) {
        const auto* b = (const block_q8_K*)xq + i;
        v[(size_t)(i * bs + j)] = (double)b->d * b->qs[j];
      } else {
        const auto* b = (const block_q8_act*)xq + i;
        v[(size_t)(i * bs + j)] = (double)b->d * b->qs[j];
      }
    }
  return v;
}

class QuantDot : public ::testing::TestWithParam<DType> {};

TEST_P(QuantDot, KernelsMatchExactDotOfDequantizedOperands) {
  const DType t = GetParam();
  const ActQuant aq = act_quant_for(t);
  ASSERT_NE(aq, ActQuant::NONE);
  const VecDotFn sc = scalar::vec_dot_for(t);
  ASSERT_TRUE(sc);
  std::vector<std::pair<const char*, VecDotFn>> variants = {{"scalar", sc}};
  if (avx2::built() && cpu_has_avx2()) variants.push_back({"avx2", avx2::vec_dot_for(t)});
  else std::printf("note: AVX2 variant not tested (built %d, cpu %d)\n", avx2::built(), cpu_has_avx2());
  std::mt19937 rng(3);
  const int64_t bs = aq == ActQuant::Q8_K ? 256 : 32;
  for (int64_t blocks : {1, 2, 3, 7, 18}) {
    const int64_t K = blocks * bs;
    const auto w = weight_rows(t, K, 3);
    for (float range : {1.f, 1e-3f, 300.f}) {
      std::uniform_real_distribution<float> d(-range, range);
      std::vector<float> x((size_t)K);
      for (float& v : x) v = d(rng);
      std::vector<uint8_t> xq(act_row_bytes(aq, K));
      quantize_act_row(aq, x.data(), xq.data(), K);
      const std::vector<double> xa = dequant_act(aq, xq.data(), K);
      for (int64_t r = 0; r < 3; ++r) {
        const uint8_t* wr = w.data() + (size_t)r * (size_t)dtype_row_bytes(t, K);
        std::vector<float> wf((size_t)K);
        ASSERT_TRUE(dequantize_row(t, wr, wf.data(), K));
        double exact = 0, mag = 0;
        for (int64_t k = 0; k < K; ++k) {
          exact += wf[(size_t)k] * xa[(size_t)k];
          mag += std::fabs(wf[(size_t)k] * xa[(size_t)k]);
        }
        if (!std::isfinite(exact)) continue;
        for (const auto& [name, fn] : variants) {
          ASSERT_TRUE(fn) << name;
          const double got = fn(wr, xq.data(), K);
          EXPECT_LE(std::fabs(got - exact), 1e-5 * mag + 1e-30)
              << name << " K=" << K << " range=" << range << " row " << r << ": " << got << " vs " << exact;
        }
      }
    }
  }
}

TEST_P(QuantDot, FourRowKernelEqualsSingleRowKernel) {
  const DType t = GetParam();
  const VecDot4Fn dot4 = vec_dot4_for(t);
  if (!dot4) {
    std::printf("note: no 4-row kernel for %s on this CPU\n", dtype_name(t));
    return;
  }
  const ActQuant aq = act_quant_for(t);
  const VecDotFn dot = vec_dot_for(t);
  const int64_t K = 7 * (aq == ActQuant::Q8_K ? 256 : 32);
  const auto w = weight_rows(t, K, 1);
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> d(-2.f, 2.f);
  const size_t row = act_row_bytes(aq, K);
  std::vector<uint8_t> xq(row * 4);
  for (int r = 0; r < 4; ++r) {
    std::vector<float> x((size_t)K);
    for (float& v : x) v = d(rng);
    quantize_act_row(aq, x.data(), xq.data() + r * row, K);
  }
  float out[4];
  dot4(w.data(), xq.data(), row, K, out);
  for (int r = 0; r < 4; ++r) {
    const float one = dot(w.data(), xq.data() + r * row, K);
    EXPECT_NEAR(out[r], one, 1e-5 * (std::fabs(one) + 1)) << "row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, QuantDot,
                         ::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                                           DType::Q4_K, DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(QuantDot, ActivationQuantizationRoundTrips) {
  for (ActQuant aq : {ActQuant::Q8_32, ActQuant::Q8_K}) {
    const int64_t K = 512;
    std::vector<float> x((size_t)K);
    std::mt19937 rng(5);
    std::normal_distribution<float> d(0.f, 2.f);
    for (float& v : x) v = d(rng);
    x[7] = 0;
    std::vector<uint8_t> xq(act_row_bytes(aq, K));
    quantize_act_row(aq, x.data(), xq.data(), K);
    const auto back = dequant_act(aq, xq.data(), K);
    const int64_t bs = aq == ActQuant::Q8_K ? 256 : 32;
    for (int64_t b = 0; b < K / bs; ++b) {
      float amax = 0;
      for (int64_t j = 0; j < bs; ++j) amax = std::max(amax, std::fabs(x[(size_t)(b * bs + j)]));
      for (int64_t j = 0; j < bs; ++j)  // round to nearest: error at most half a step
        EXPECT_LE(std::fabs(back[(size_t)(b * bs + j)] - x[(size_t)(b * bs + j)]), amax / 127 * 0.5001);
    }
    if (aq == ActQuant::Q8_K) {
      const auto* b = (const block_q8_K*)xq.data();
      int s = 0;
      for (int j = 0; j < 16; ++j) s += b->qs[j];
      EXPECT_EQ(b->bsums[0], s);
    }
  }
}

}  // namespace
}  // namespace osprey::kernels
