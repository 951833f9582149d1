// End-to-end model tests on the three real models, against two references:
//
// 1. Exact: tests/scripts/gen_numpy_ref.py runs the forward pass in float64 numpy over
//    weights dequantized by the `gguf` package. We compute the same function in float32 with
//    an f16 KV cache, so the logits must agree closely: kExactTolerance allows the f16
//    rounding of keys and values (measured: at most ~0.02 on logits spanning ~30).
// 2. llama.cpp (tests/scripts/gen_golden.py, llama-cpp-python): its CPU matmuls quantize
//    activations to 8 bits, which moves its logits away from the exact values by up to
//    ~0.7 (SmolLM2, Qwen2.5) and ~3.1 (Gemma 3, whose activations are large) — measured
//    against the numpy reference, with our logits within 0.02 of numpy at the same time. So
//    the bound on each logit is that noise (kLlamaMaxDiff), the mean difference must stay
//    small (kLlamaMeanDiff; measured 0.16 SmolLM2, 0.25 Gemma 3), and argmax / greedy tokens must match wherever llama.cpp's
//    top-2 margin exceeds kClearMargin; below it, llama.cpp's own rounding picks the order.
// 3. The fast path (the default): matmuls quantize activations to 8 bits per block of 32 or
//    256 for integer dot products, as llama.cpp does, so against the exact numpy reference
//    it carries the same kind of noise llama.cpp shows there (measured: max 0.91 / 0.32 / 1.79,
//    mean 0.21 / 0.07 / 0.28 for SmolLM2 / Qwen / Gemma 3, where llama.cpp is at up to 3.1).
//    kFastMaxDiff / kFastMeanDiff bound it, and the argmax must match where the exact
//    top-2 margin is clear. The kernels themselves are checked exactly in test_quant_dot.
// Tests 1 and BrokenKernel run with exact_matmul (f32 activations, dequantized weights).
// BrokenKernel proves the exact comparison notices a kernel that is off by 2%.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "backends/cpu/cpu_backend.h"
#include "engine/session.h"
#include "golden.h"
#include "kernels/cpu/quant_dot.h"
#include "test_models.h"

namespace osprey::testing {
namespace {

constexpr double kExactTolerance = 0.06;
// Gemma 3's largest fast-path deviation sits on one fragile position (position 1 of the chat
// prompt): equally exact kernels that only sum their integer block products in another lane
// order move it between 1.43 and 2.99, as llama.cpp's own kernels put it at 3.1. The mean
// bound is the one that catches a real loss of accuracy.
constexpr double kFastMaxDiff = 3.5;
constexpr double kFastMeanDiff = 0.35;
constexpr double kLlamaMaxDiff = 4.0;
constexpr double kLlamaMeanDiff = 0.35;
constexpr double kClearMargin = 0.5;

GoldenReport run(const char* file, const std::string& golden, bool exact_matmul, ir::Op perturb = ir::Op::COUNT) {
  CpuBackendOptions o;
  o.n_threads = 2;
  o.exact_matmul = exact_matmul;
  o.perturb_op = perturb;
  CpuBackend cpu(o);
  GoldenReport r = compare_with_golden(file, golden, cpu, kClearMargin);
  for (const auto& d : r.details) std::printf("  %s\n", d.c_str());
  std::printf("%s vs %s: %d positions, max |diff| %.4f, mean %.4f, %d greedy tokens compared\n", file,
              golden.c_str(), r.positions, r.max_logit_diff, r.mean_logit_diff, r.greedy_compared);
  return r;
}

void expect_exact(const char* file) {
  OSPREY_REQUIRE_MODEL(path, file);
  const GoldenReport r = run(file, std::string(file) + ".numpy.json", true);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.tokenizer_mismatches, 0);
  EXPECT_GT(r.positions, 20);
  EXPECT_LE(r.max_logit_diff, kExactTolerance);
  EXPECT_EQ(r.top1_mismatches, 0);
}

void expect_fast_near_exact(const char* file) {
  OSPREY_REQUIRE_MODEL(path, file);
  // The aarch64 build run under qemu (tests/CMakeLists.txt) says which kernels it means to
  // test, so a dispatcher that fell back to another variant fails instead of passing quietly.
  const char* want_isa = std::getenv("OSPREY_TEST_EXPECT_ISA");
  std::printf("kernels: %s\n", kernels::active_isa().name);
  if (want_isa && *want_isa) {
    ASSERT_STREQ(kernels::active_isa().name, want_isa);
  }
  const GoldenReport r = run(file, std::string(file) + ".numpy.json", false);
  ASSERT_EQ(r.error, "");
  EXPECT_GT(r.positions, 20);
  EXPECT_LE(r.max_logit_diff, kFastMaxDiff);
  EXPECT_LE(r.mean_logit_diff, kFastMeanDiff);
  EXPECT_EQ(r.top1_mismatches, 0);
}

void expect_llama_cpp(const char* file) {
  OSPREY_REQUIRE_MODEL(path, file);
  const GoldenReport r = run(file, std::string(file) + ".json", false);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.tokenizer_mismatches, 0);
  EXPECT_GT(r.positions, 100);
  EXPECT_LE(r.max_logit_diff, kLlamaMaxDiff);
  EXPECT_LE(r.mean_logit_diff, kLlamaMeanDiff);
  EXPECT_EQ(r.top1_mismatches, 0);
  EXPECT_EQ(r.greedy_mismatches, 0);
  EXPECT_GE(r.greedy_compared, 10) << "too few greedy tokens were clear enough to compare";
}

TEST(GoldenExact, SmolLM2) { expect_exact(kSmolLM2); }
TEST(GoldenExact, Qwen25) { expect_exact(kQwen25); }
TEST(GoldenExact, Gemma3) { expect_exact(kGemma3); }
TEST(GoldenFast, SmolLM2) { expect_fast_near_exact(kSmolLM2); }
TEST(GoldenFast, Qwen25) { expect_fast_near_exact(kQwen25); }
TEST(GoldenFast, Gemma3) { expect_fast_near_exact(kGemma3); }
TEST(GoldenLlamaCpp, SmolLM2) { expect_llama_cpp(kSmolLM2); }
TEST(GoldenLlamaCpp, Qwen25) { expect_llama_cpp(kQwen25); }
TEST(GoldenLlamaCpp, Gemma3) { expect_llama_cpp(kGemma3); }

class BrokenKernel : public ::testing::TestWithParam<ir::Op> {};

TEST_P(BrokenKernel, IsCaught) {
  OSPREY_REQUIRE_MODEL(path, kSmolLM2);
  const GoldenReport r = run(kSmolLM2, std::string(kSmolLM2) + ".numpy.json", true, GetParam());
  ASSERT_EQ(r.error, "");
  EXPECT_GT(r.max_logit_diff, kExactTolerance) << ir::op_name(GetParam()) << " perturbed but logits still match";
}

INSTANTIATE_TEST_SUITE_P(Ops, BrokenKernel,
                         ::testing::Values(ir::Op::MATMUL, ir::Op::ATTENTION, ir::Op::RMS_NORM, ir::Op::ROPE,
                                           ir::Op::SWIGLU, ir::Op::GET_ROWS, ir::Op::ADD, ir::Op::MUL),
                         [](const auto& info) { return std::string(ir::op_name(info.param)); });

}  // namespace
}  // namespace osprey::testing

namespace osprey::testing {
namespace {

// Quality cost of each KV-cache type: mean KL(f16-cache distribution || other) over every
// position of the golden prompts, fast matmul path. Printed as the table in the issue note;
// bounds are a few times the measured values, so a broken quantized cache (wrong block
// layout, a bad scale) fails while rounding noise passes.
TEST(KvCacheQuality, KlDivergenceAgainstF16) {
  struct Row { const char* model; DType type; double max_mean_kl; };
  const Row rows[] = {
      // measured mean KL: bf16 0.0034 / 0.0057 / 0.0021, q8_0 0.0053 / 0.0057 / 0.0107,
      // q4_0 0.106 / 0.079 / 0.80 (SmolLM2 / Gemma 3 / Qwen2.5, whose keys have large outliers)
      {kSmolLM2, DType::BF16, 0.02}, {kSmolLM2, DType::Q8_0, 0.03}, {kSmolLM2, DType::Q4_0, 0.4},
      {kGemma3, DType::BF16, 0.03},  {kGemma3, DType::Q8_0, 0.03},  {kGemma3, DType::Q4_0, 0.4},
      {kQwen25, DType::BF16, 0.02},  {kQwen25, DType::Q8_0, 0.05},  {kQwen25, DType::Q4_0, 3.0},
  };
  CpuBackendOptions o;
  o.n_threads = 2;
  CpuBackend cpu(o);
  std::string loaded;
  std::unique_ptr<Model> model;
  std::printf("| model | K/V cache | mean KL vs f16 | max KL |\n|---|---|---|---|\n");
  for (const Row& r : rows) {
    OSPREY_REQUIRE_MODEL(path, r.model);
    if (loaded != r.model) {
      auto m = Model::load(path, cpu);
      ASSERT_TRUE(m.ok()) << m.error();
      model = std::move(m.value());
      loaded = r.model;
    }
    const int64_t V = model->hparams().n_vocab;
    const auto toks = model->tokenizer().encode(
        "The history of the lighthouse begins with fires lit on hilltops to guide ships home. Over centuries, keepers "
        "tended lamps of oil and later electric bulbs, rotating lenses that threw beams across dark water.",
        true, true);
    std::vector<BatchToken> b;
    for (size_t i = 0; i < toks.size(); ++i) b.push_back({toks[i], 0, (int32_t)i, true});
    auto logits_with = [&](DType t) {
      ContextParams cp;
      cp.n_ctx = 256;
      cp.k_type = cp.v_type = t;
      auto ctx = Context::create(*model, cp);
      EXPECT_TRUE(ctx.ok()) << ctx.error();
      std::vector<float> lg;
      if (ctx) {
        EXPECT_TRUE(ctx.value()->decode(b, &lg).ok());
      }
      return lg;
    };
    const auto base = logits_with(DType::F16), other = logits_with(r.type);
    ASSERT_EQ(base.size(), other.size());
    double sum_kl = 0, max_kl = 0;
    for (size_t p = 0; p < toks.size(); ++p) {
      const float* a = base.data() + p * V;
      const float* c = other.data() + p * V;
      const double ma = *std::max_element(a, a + V), mc = *std::max_element(c, c + V);
      double za = 0, zc = 0;
      for (int64_t i = 0; i < V; ++i) za += std::exp(a[i] - ma), zc += std::exp(c[i] - mc);
      double kl = 0;
      for (int64_t i = 0; i < V; ++i) {
        const double lpa = a[i] - ma - std::log(za), lpc = c[i] - mc - std::log(zc);
        kl += std::exp(lpa) * (lpa - lpc);
      }
      sum_kl += kl;
      max_kl = std::max(max_kl, kl);
    }
    const double mean_kl = sum_kl / (double)toks.size();
    std::printf("| %s | %s | %.6f | %.6f |\n", r.model, dtype_name(r.type), mean_kl, max_kl);
    EXPECT_LE(mean_kl, r.max_mean_kl) << r.model << " " << dtype_name(r.type);
  }
}

}  // namespace
}  // namespace osprey::testing
