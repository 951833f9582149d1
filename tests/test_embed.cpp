// Embeddings against real references: all-MiniLM-L6-v2 (BERT, WordPiece, mean pooling) vs
// sentence-transformers on 100 sentences, token ids vs HF tokenizers; SmolLM2 (a decoder)
// with mean and last-token pooling vs llama.cpp. References: tests/scripts/gen_embed_ref.py.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "backends/cpu/cpu_backend.h"
#include "engine/embed.h"
#include "engine/session.h"
#include "kernels/base/fp16.h"
#include "test_models.h"

namespace osprey {
namespace {

// The checkpoint folder tools/fetch_models.py unpacks; Model::load converts it.
constexpr const char* kMiniLM = "all-minilm-l6-v2";

struct Reference {
  std::vector<std::string> sentences;
  std::vector<std::vector<int32_t>> ids;
  std::map<std::string, std::vector<std::vector<float>>> vectors;  // tensor name -> rows
};

// `prefix` "hard_" reads the tokenizer-only edge cases instead of the sentences.
Reference read_reference(const std::string& file, std::vector<std::string> names, const std::string& prefix = "") {
  Reference r;
  auto f = gguf::File::open(std::string(OSPREY_TEST_DATA) + "/embed/" + file);
  EXPECT_TRUE(f.ok()) << f.error();
  if (!f) return r;
  auto s = f.value()->get_string_array(prefix.empty() ? "embedref.sentences" : "embedref.hard_strings");
  EXPECT_TRUE(s.ok());
  if (!s) return r;
  r.sentences = s.value();
  const gguf::TensorInfo* ids = f.value()->find_tensor(prefix + "token_ids");
  const gguf::TensorInfo* counts = f.value()->find_tensor(prefix + "token_counts");
  EXPECT_TRUE(ids && counts && counts->ne[0] == (int64_t)r.sentences.size());
  if (!ids || !counts) return r;
  const int32_t* id = (const int32_t*)ids->data;
  for (int64_t i = 0, at = 0; i < counts->ne[0]; ++i) {
    const int32_t n = ((const int32_t*)counts->data)[i];
    r.ids.emplace_back(id + at, id + at + n);
    at += n;
  }
  for (const std::string& name : names) {
    const gguf::TensorInfo* t = f.value()->find_tensor(name);
    EXPECT_TRUE(t && t->ne[1] == (int64_t)r.sentences.size()) << name;
    if (!t) continue;
    for (int64_t row = 0; row < t->ne[1]; ++row) {
      std::vector<float> v((size_t)t->ne[0]);
      for (int64_t e = 0; e < t->ne[0]; ++e)
        v[(size_t)e] = t->type == DType::F16 ? f16_to_f32(((const uint16_t*)t->data)[row * t->ne[0] + e])
                                             : ((const float*)t->data)[row * t->ne[0] + e];
      r.vectors[name].push_back(std::move(v));
    }
  }
  return r;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
  return a.size() == b.size() && aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

struct Loaded {
  CpuBackend cpu{[] { CpuBackendOptions o; o.n_threads = 2; return o; }()};
  std::unique_ptr<Model> model;
};

std::unique_ptr<Loaded> load(const std::string& path) {
  auto l = std::make_unique<Loaded>();
  auto m = Model::load(path, l->cpu);
  EXPECT_TRUE(m.ok()) << m.error();
  if (m) l->model = std::move(m).value();
  return l;
}

TEST(Embed, MiniLMTokensMatchHfTokenizers) {
  OSPREY_REQUIRE_MODEL(path, kMiniLM);
  auto l = load(path);
  ASSERT_TRUE(l->model);
  const Reference ref = read_reference("minilm.gguf", {});
  ASSERT_EQ(ref.sentences.size(), 100u);
  for (size_t i = 0; i < ref.sentences.size(); ++i)
    EXPECT_EQ(l->model->tokenizer().encode(ref.sentences[i], true, true), ref.ids[i]) << ref.sentences[i];
  const Reference hard = read_reference("minilm.gguf", {}, "hard_");
  ASSERT_GE(hard.sentences.size(), 10u);
  for (size_t i = 0; i < hard.sentences.size(); ++i)
    EXPECT_EQ(l->model->tokenizer().encode(hard.sentences[i], true, true), hard.ids[i]) << "hard string " << i;
}

TEST(Embed, MiniLMMatchesSentenceTransformers) {
  OSPREY_REQUIRE_MODEL(path, kMiniLM);
  auto l = load(path);
  ASSERT_TRUE(l->model);
  EXPECT_EQ(l->model->hparams().pooling, Pooling::MEAN);
  const Reference ref = read_reference("minilm.gguf", {"embeddings"});
  ASSERT_EQ(ref.vectors.at("embeddings").size(), 100u);
  // All 100 sentences in one forward pass, from the reference token ids (the tokenizer has
  // its own test above).
  Embedder emb(*l->model);
  auto got = emb.embed(ref.ids);
  ASSERT_TRUE(got.ok()) << got.error();
  ASSERT_EQ(got.value().size(), 100u);
  double worst = 1;
  for (size_t i = 0; i < 100; ++i) {
    std::vector<float> v = got.value()[i];
    l2_normalize(&v);
    const double c = cosine(v, ref.vectors.at("embeddings")[i]);
    worst = std::min(worst, c);
    EXPECT_GE(c, 0.9999) << "sentence " << i << ": " << ref.sentences[i];
  }
  std::printf("worst cosine vs sentence-transformers over 100 sentences: 1 - %.2e\n", 1 - worst);
  // CLS pooling: the first token's hidden state.
  const Reference cls = read_reference("minilm.gguf", {"cls"});
  emb.set_pooling(Pooling::CLS);
  auto first = emb.embed(ref.ids);
  ASSERT_TRUE(first.ok()) << first.error();
  for (size_t i = 0; i < 100; ++i)
    EXPECT_GE(cosine(first.value()[i], cls.vectors.at("cls")[i]), 0.9999) << "CLS pooling, sentence " << i;
  emb.set_pooling(Pooling::MEAN);
  // A sequence alone gives the same vector as inside the batch: sequences do not see each other.
  for (size_t i : {0u, 21u, 96u}) {
    auto one = emb.embed({ref.ids[i]});
    ASSERT_TRUE(one.ok()) << one.error();
    EXPECT_GE(cosine(one.value()[0], got.value()[i]), 0.999999) << i;
  }
}

TEST(Embed, DecoderPoolingMatchesLlamaCpp) {
  OSPREY_REQUIRE_MODEL(path, testing::kSmolLM2);
  auto l = load(path);
  ASSERT_TRUE(l->model);
  EXPECT_EQ(l->model->hparams().pooling, Pooling::LAST);  // no pooling_type in the file
  const Reference ref = read_reference("smollm2.gguf", {"mean", "last"});
  ASSERT_FALSE(ref.sentences.empty());
  for (size_t i = 0; i < ref.sentences.size(); ++i)
    EXPECT_EQ(l->model->tokenizer().encode(ref.sentences[i], true, true), ref.ids[i]) << ref.sentences[i];
  for (const char* pooling : {"mean", "last"}) {
    Embedder emb(*l->model);
    emb.set_pooling(std::string(pooling) == "mean" ? Pooling::MEAN : Pooling::LAST);
    auto got = emb.embed(ref.ids);
    ASSERT_TRUE(got.ok()) << got.error();
    for (size_t i = 0; i < ref.sentences.size(); ++i) {
      // Both engines quantize activations to 8 bits for the Q4_1 matmuls, with different
      // summation orders: measured cosines are 0.9987..0.99997 (OSPREY_EXACT_MATMUL=1 gives
      // the same spread, so it is llama.cpp's own rounding).
      EXPECT_GE(cosine(got.value()[i], ref.vectors.at(pooling)[i]), 0.998) << pooling << " " << ref.sentences[i];
      // The other pooling is far off, so this comparison can tell them apart.
      const char* other = std::string(pooling) == "mean" ? "last" : "mean";
      EXPECT_LT(cosine(got.value()[i], ref.vectors.at(other)[i]), 0.99) << pooling << " " << ref.sentences[i];
    }
  }
}

TEST(Embed, BadInputIsAnError) {
  OSPREY_REQUIRE_MODEL(path, kMiniLM);
  auto l = load(path);
  ASSERT_TRUE(l->model);
  Embedder emb(*l->model);
  EXPECT_FALSE(emb.embed({{101, 102}, {}}).ok());
  EXPECT_FALSE(emb.embed({{101, 40000, 102}}).ok());
  EXPECT_FALSE(emb.embed({{-1}}).ok());
  EXPECT_FALSE(emb.embed({std::vector<int32_t>(513, 1000)}).ok());
  EXPECT_TRUE(emb.embed({std::vector<int32_t>(512, 1000)}).ok());
  auto none = emb.embed({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none.value().empty());
  // Text generation needs logits; an encoder says so instead of reading past its output.
  auto ctx = Context::create(*l->model, {64, 1});
  ASSERT_TRUE(ctx.ok()) << ctx.error();
  std::vector<float> logits;
  const Status s = ctx.value()->decode({{101, 0, 0, true}}, &logits);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("embedding model"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace osprey
