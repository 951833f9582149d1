// Engine behaviour on a real model: batched decoding of several sequences equals decoding
// each alone, embedding inputs equal token inputs, sampling is deterministic per seed,
// stop strings and token limits work, and bad input is an error.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>

#include "backends/cpu/cpu_backend.h"
#include "engine/generate.h"
#include "kernels/dequant.h"
#include "test_models.h"

namespace osprey {
namespace {

struct Loaded {
  CpuBackend cpu{CpuBackendOptions{2}};
  std::unique_ptr<Model> model;
};

std::unique_ptr<Loaded> load(const std::string& path) {
  auto l = std::make_unique<Loaded>();
  auto m = Model::load(path, l->cpu);
  EXPECT_TRUE(m.ok()) << m.error();
  if (m) l->model = std::move(m.value());
  return l;
}

double max_abs_diff(const float* a, const float* b, size_t n) {
  double d = 0;
  for (size_t i = 0; i < n; ++i) d = std::max(d, (double)std::fabs(a[i] - b[i]));
  return d;
}

TEST(Engine, BatchOfSequencesEqualsSeparateRuns) {
  OSPREY_REQUIRE_MODEL(path, testing::kSmolLM2);
  auto l = load(path);
  ASSERT_TRUE(l->model);
  const Model& m = *l->model;
  const std::vector<std::string> prompts = {"The capital of France is", "def add(a, b):\n    return",
                                            "Once upon a time there was a small dragon who"};
  std::vector<std::vector<int32_t>> toks;
  for (const auto& p : prompts) toks.push_back(m.tokenizer().encode(p, true, true));
  const int64_t V = m.hparams().n_vocab;

  // Alone: each in slot 0 of its own context; logits of every position.
  std::vector<std::vector<float>> alone;
  for (const auto& t : toks) {
    auto ctx = Context::create(m, {256, 1});
    ASSERT_TRUE(ctx.ok());
    std::vector<BatchToken> b;
    for (size_t i = 0; i < t.size(); ++i) b.push_back({t[i], 0, (int32_t)i, true});
    std::vector<float> lg;
    ASSERT_TRUE(ctx.value()->decode(b, &lg).ok());
    alone.push_back(lg);
  }
  // Together: interleaved in one batch over three slots, split into chunks of 5 tokens so
  // sequences also continue across graph runs.
  ContextParams cp{256, 3, 5};
  auto ctx = Context::create(m, cp);
  ASSERT_TRUE(ctx.ok());
  std::vector<BatchToken> b;
  std::vector<std::pair<size_t, size_t>> where;  // (sequence, position) of each logits row
  for (size_t i = 0; i < 32; ++i)
    for (size_t s = 0; s < toks.size(); ++s)
      if (i < toks[s].size()) {
        b.push_back({toks[s][i], (int32_t)s, (int32_t)i, true});
        where.push_back({s, i});
      }
  std::vector<float> lg;
  ASSERT_TRUE(ctx.value()->decode(b, &lg).ok());
  ASSERT_EQ(lg.size(), where.size() * (size_t)V);
  for (size_t r = 0; r < where.size(); ++r) {
    const auto [s, i] = where[r];
    EXPECT_LE(max_abs_diff(lg.data() + r * V, alone[s].data() + i * V, (size_t)V), 1e-4) << "seq " << s << " pos " << i;
  }
}

TEST(Engine, EmbeddingInputEqualsTokenInput) {
  OSPREY_REQUIRE_MODEL(path, testing::kSmolLM2);
  auto l = load(path);
  ASSERT_TRUE(l->model);
  const Model& m = *l->model;
  const auto t = m.tokenizer().encode("Embeddings in, logits out", true, true);
  const int64_t E = m.hparams().n_embd, V = m.hparams().n_vocab;
  const ir::Tensor& emb = *m.weights().tok_embd;
  std::vector<float> rows(t.size() * (size_t)E);
  const gguf::TensorInfo* ti = m.file().find_tensor("token_embd.weight");
  ASSERT_TRUE(ti);
  for (size_t i = 0; i < t.size(); ++i)
    ASSERT_TRUE(kernels::dequantize_row(emb.dtype, ti->data + (size_t)t[i] * emb.row_bytes(), rows.data() + i * E, E));
  std::vector<BatchToken> b;
  for (size_t i = 0; i < t.size(); ++i) b.push_back({t[i], 0, (int32_t)i, i + 1 == t.size()});
  std::vector<float> a, e;
  auto c1 = Context::create(m, {64, 1});
  auto c2 = Context::create(m, {64, 1});
  ASSERT_TRUE(c1.value()->decode(b, &a).ok());
  ASSERT_TRUE(c2.value()->decode(b, &e, rows.data()).ok());
  ASSERT_EQ(a.size(), (size_t)V);
  EXPECT_LE(max_abs_diff(a.data(), e.data(), (size_t)V), 1e-4);
}

TEST(Engine, SamplingIsDeterministicPerSeedAndHonoursLimits) {
  OSPREY_REQUIRE_MODEL(path, testing::kSmolLM2);
  auto l = load(path);
  ASSERT_TRUE(l->model);
  const Model& m = *l->model;
  auto ctx = Context::create(m, {256, 1});
  ASSERT_TRUE(ctx.ok());
  const auto prompt = m.tokenizer().encode("Write a short poem about the sea:", true, true);
  auto run = [&](uint64_t seed, float temp, int n, std::vector<std::string> stop = {}) {
    GenerateParams p;
    p.max_tokens = n;
    p.stop = std::move(stop);
    p.sampling.temperature = temp;
    p.sampling.seed = seed;
    p.sampling.random_seed = false;
    std::string text;
    auto r = generate(*ctx.value(), 0, prompt, p, [&](const std::string& s) { text += s; return true; });
    EXPECT_TRUE(r.ok());
    return std::make_pair(text, r.ok() ? r.value() : GenerateResult{});
  };
  const auto a = run(7, 1.0f, 24), b = run(7, 1.0f, 24), c = run(8, 1.0f, 24);
  EXPECT_EQ(a.first, b.first);
  EXPECT_EQ(a.second.tokens, b.second.tokens);
  EXPECT_NE(a.second.tokens, c.second.tokens);  // 24 tokens at temperature 1: a collision would be astonishing
  // A sampled run may end early on an end-of-generation token; otherwise it stops at the limit.
  EXPECT_EQ(a.second.n_generated, (int64_t)a.second.tokens.size());
  EXPECT_TRUE(a.second.done_reason == "length" ? a.second.n_generated == 24
                                                : a.second.done_reason == "stop" && a.second.n_generated < 24)
      << a.second.done_reason << " after " << a.second.n_generated;
  EXPECT_EQ(m.tokenizer().decode(a.second.tokens), a.first);
  // The limit itself, on a greedy run too short to reach an end token.
  const auto limited = run(1, 0.f, 5);
  EXPECT_EQ(limited.second.n_generated, 5);
  EXPECT_EQ(limited.second.done_reason, "length");

  // A stop string cuts the text right before it.
  const auto full = run(1, 0.f, 24);
  ASSERT_GT(full.first.size(), 6u);
  const std::string stop = full.first.substr(full.first.size() / 2, 3);
  const auto cut = run(1, 0.f, 24, {stop});
  EXPECT_EQ(cut.second.done_reason, "stop");
  EXPECT_EQ(cut.first, full.first.substr(0, full.first.find(stop)));
}

TEST(Engine, TopKOneIsGreedy) {
  const float logits[] = {0.1f, 2.5f, -1.f, 2.4f, 0.f};
  SamplerParams p;
  p.top_k = 1;
  p.temperature = 1.5f;
  p.random_seed = false;
  Sampler s(p);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.sample(logits, 5), 1);
  SamplerParams rp;
  rp.temperature = 0;
  rp.repeat_penalty = 2.0f;
  Sampler r(rp);
  r.accept(1);
  EXPECT_EQ(r.sample(logits, 5), 3);  // 2.5 / 2 < 2.4
}

TEST(Engine, TopPAndMinPFilter) {
  // softmax of {3, 2, 1, 0, -1}: ~0.64, 0.24, 0.09, 0.03, 0.01
  const float logits[] = {3.f, 2.f, 1.f, 0.f, -1.f};
  auto draws = [&](SamplerParams p) {
    p.random_seed = false;
    p.top_k = 0;
    p.repeat_penalty = 1.f;
    Sampler s(p);
    std::set<int32_t> seen;
    for (int i = 0; i < 400; ++i) seen.insert(s.sample(logits, 5));
    return seen;
  };
  SamplerParams p;
  p.temperature = 1.f;
  p.top_p = 0.5f;
  EXPECT_EQ(draws(p), (std::set<int32_t>{0}));
  p.top_p = 0.8f;
  EXPECT_EQ(draws(p), (std::set<int32_t>{0, 1}));
  p.top_p = 1.f;
  p.min_p = 0.1f;  // keeps p >= 0.064: tokens 0, 1, 2
  EXPECT_EQ(draws(p), (std::set<int32_t>{0, 1, 2}));
  p.min_p = 0.f;
  p.temperature = 5.f;  // flat enough that 400 draws see every token
  EXPECT_EQ(draws(p), (std::set<int32_t>{0, 1, 2, 3, 4}));
}

TEST(Engine, StopMatcherHoldsBackPartialMatches) {
  StopMatcher m({"</end>"});
  bool stopped = false;
  EXPECT_EQ(m.feed("hello </e", &stopped), "hello ");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(m.feed("nd> tail", &stopped), "");
  EXPECT_TRUE(stopped);
  StopMatcher n({"XY"});
  EXPECT_EQ(n.feed("aX", &stopped), "a");
  EXPECT_EQ(n.feed("b", &stopped), "Xb");
}

TEST(Engine, LoadErrorsAreClear) {
  CpuBackend cpu;
  auto missing = Model::load("/nonexistent/model.gguf", cpu);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("/nonexistent/model.gguf"), std::string::npos) << missing.error();

  // A valid GGUF of an architecture we do not know.
  const std::string p = ::testing::TempDir() + "/unknown_arch.gguf";
  gguf::Writer w;
  w.add("general.architecture", gguf::Writer::str("mamba9"));
  ASSERT_TRUE(w.write(p).ok());
  auto unknown = Model::load(p, cpu);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().find("unknown architecture 'mamba9'"), std::string::npos) << unknown.error();
}

TEST(Engine, DecodeRejectsBadBatches) {
  OSPREY_REQUIRE_MODEL(path, testing::kSmolLM2);
  auto l = load(path);
  ASSERT_TRUE(l->model);
  auto ctx = Context::create(*l->model, {16, 2});
  ASSERT_TRUE(ctx.ok());
  std::vector<float> lg;
  EXPECT_FALSE(ctx.value()->decode({{1, 2, 0, true}}, &lg).ok());        // no slot 2
  EXPECT_FALSE(ctx.value()->decode({{1, 0, 16, true}}, &lg).ok());       // past n_ctx
  EXPECT_FALSE(ctx.value()->decode({{-5, 0, 0, true}}, &lg).ok());       // bad token
  EXPECT_FALSE(ctx.value()->decode({{1 << 30, 0, 0, true}}, &lg).ok());  // bad token
}

}  // namespace
}  // namespace osprey
