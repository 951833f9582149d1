// Whole-model quantization: the per-tensor type choices against llama.cpp's (replayed from
// tests/data/quantize/mix_types.json, made by tests/scripts/gen_quantize_mix_ref.py), and
// quantize_model on small GGUF files written here: types, metadata, values, refusals.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/quantize/quantize_model.h"
#include "engine/quantize/tensor_types.h"
#include "engine/store/model_store.h"
#include "formats/gguf.h"
#include "kernels/dequant.h"

namespace {

using osprey::DType;
namespace gguf = osprey::gguf;
namespace q = osprey::quantize;

TEST(QuantizeMix, SameTensorTypesAsLlamaCpp) {
  std::ifstream f(std::string(OSPREY_TEST_DATA) + "/quantize/mix_types.json");
  ASSERT_TRUE(f) << "tests/data/quantize/mix_types.json missing (tests/scripts/gen_quantize_mix_ref.py)";
  const nlohmann::json ref = nlohmann::json::parse(f);
  q::ModelFacts facts;
  facts.n_layer = ref["block_count"];
  facts.n_gqa = ref["head_count"].get<int>() / ref["head_count_kv"].get<int>();
  for (const auto& t : ref["tensors"]) {
    const std::string name = t["name"];
    if (name == "output.weight") facts.tied_embeddings = false;
    if (name.find("attn_v.weight") != std::string::npos) ++facts.n_attn_v;
  }
  int checked = 0;
  for (const auto& [mix_name, types] : ref["mixes"].items()) {
    const q::Mix* mix = q::find_mix(mix_name);
    ASSERT_NE(mix, nullptr) << mix_name;
    q::Position pos;
    for (const auto& t : ref["tensors"]) {
      const std::string name = t["name"];
      const std::vector<int64_t> ne = t["ne"].get<std::vector<int64_t>>();
      bool fallback = false;
      // Tensors llama.cpp leaves alone keep the source type (F32 here).
      const DType got = q::quantizable(name, ne) ? q::choose_type(*mix, name, ne, facts, &pos, &fallback) : DType::F32;
      EXPECT_EQ(std::string(osprey::dtype_name(got)), types[name].get<std::string>()) << mix_name << " " << name;
      ++checked;
    }
  }
  EXPECT_GT(checked, 1000);
}

TEST(QuantizeMix, NamesAndAliases) {
  ASSERT_NE(q::find_mix("q4_k_m"), nullptr);
  EXPECT_STREQ(q::find_mix("Q4_K")->name, "Q4_K_M");
  EXPECT_EQ(q::find_mix("Q4_K_M")->file_type, 15u);
  EXPECT_EQ(q::find_mix("IQ4_XS")->base, DType::IQ4_XS);
  EXPECT_EQ(q::find_mix("Q9_Z"), nullptr);
  EXPECT_EQ(q::find_mix(""), nullptr);
}

TEST(QuantizeMix, NeverQuantized) {
  EXPECT_FALSE(q::quantizable("blk.0.attn_norm.weight", {576}));
  EXPECT_FALSE(q::quantizable("blk.0.attn_q.bias", {576, 1}));
  EXPECT_FALSE(q::quantizable("blk.0.attn_q.bias", {576}));
  EXPECT_FALSE(q::quantizable("blk.0.ffn_gate_inp.weight", {576, 8}));
  EXPECT_FALSE(q::quantizable("position_embd.weight", {576, 512}));
  EXPECT_TRUE(q::quantizable("blk.0.attn_q.weight", {576, 576}));
}

TEST(QuantizeMix, RowLengthFallbacks) {
  const q::Mix* m = q::find_mix("Q4_K_M");
  q::ModelFacts facts;
  facts.n_layer = 1, facts.n_attn_v = 1;
  q::Position pos;
  bool fb = false;
  EXPECT_EQ(q::choose_type(*m, "blk.0.attn_q.weight", {512, 8}, facts, &pos, &fb), DType::Q4_K);
  EXPECT_FALSE(fb);
  EXPECT_EQ(q::choose_type(*m, "blk.0.attn_q.weight", {96, 8}, facts, &pos, &fb), DType::Q5_0);
  EXPECT_TRUE(fb);
  EXPECT_EQ(q::choose_type(*m, "blk.0.attn_q.weight", {40, 8}, facts, &pos, &fb), DType::F16);
  EXPECT_EQ(q::choose_type(*q::find_mix("IQ4_XS"), "blk.0.attn_q.weight", {96, 8}, facts, &pos, &fb), DType::IQ4_NL);
  EXPECT_EQ(q::choose_type(*q::find_mix("Q6_K"), "blk.0.attn_q.weight", {96, 8}, facts, &pos, &fb), DType::Q8_0);
}

// A small llama-shaped GGUF with F32 weights: rows of 512 (K-quant friendly), 96 (32-element
// only) and 40 (no block fits), a norm, and an importance-friendly layout.
class QuantizeModelFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("osprey_qm_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    src_ = (dir_ / "src.gguf").string();
    gguf::Writer w;
    w.add("general.architecture", gguf::Writer::str("llama"));
    w.add("general.name", gguf::Writer::str("tiny"));
    w.add("llama.block_count", gguf::Writer::u32(1));
    w.add("llama.attention.head_count", gguf::Writer::u32(4));
    w.add("llama.attention.head_count_kv", gguf::Writer::u32(1));
    add(w, "token_embd.weight", {512, 16});
    add(w, "blk.0.attn_norm.weight", {512});
    add(w, "blk.0.attn_v.weight", {512, 8});
    add(w, "blk.0.ffn_down.weight", {96, 8});
    add(w, "blk.0.odd.weight", {40, 4});
    ASSERT_TRUE(w.write(src_).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void add(gguf::Writer& w, const std::string& name, std::vector<int64_t> ne) {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    std::vector<float> v(n);
    for (int64_t i = 0; i < n; ++i) v[i] = 0.05f * std::sin(0.37f * (float)i + (float)name.size());
    values_[name] = v;
    ASSERT_TRUE(w.add_tensor(name, DType::F32, ne, v.data(), v.size() * 4).ok());
  }

  std::string out(const std::string& f) const { return (dir_ / f).string(); }

  std::filesystem::path dir_;
  std::string src_;
  std::map<std::string, std::vector<float>> values_;
};

TEST_F(QuantizeModelFile, Q4_K_MTypesMetadataAndValues) {
  q::Options o;
  o.mix = "Q4_K_M";
  o.threads = 2;
  int calls = 0;
  o.on_tensor = [&](const q::TensorDone& d) { EXPECT_EQ(d.index, calls++); };
  auto s = q::quantize_model(src_, out("q4km.gguf"), o);
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(s->n_quantized, 3);
  EXPECT_EQ(s->n_fallback, 2);
  auto f = gguf::File::open(out("q4km.gguf"));
  ASSERT_TRUE(f.ok()) << f.error();
  std::map<std::string, DType> want = {{"token_embd.weight", DType::Q6_K},  // tied: the output projection
                                       {"blk.0.attn_norm.weight", DType::F32},
                                       {"blk.0.attn_v.weight", DType::Q6_K},  // first layer: more bits
                                       {"blk.0.ffn_down.weight", DType::Q8_0},  // Q6_K wanted, 96 fits Q8_0
                                       {"blk.0.odd.weight", DType::F16}};       // 40: nothing fits
  for (const auto& [name, type] : want) {
    const gguf::TensorInfo* t = (*f)->find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->type, type) << name << " is " << osprey::dtype_name(t->type);
    // Values survive within the type's precision.
    std::vector<float> y(t->n_elements());
    const int64_t row = t->ne[0], rb = osprey::dtype_row_bytes(t->type, row);
    for (int64_t r = 0; r < t->n_elements() / row; ++r)
      ASSERT_TRUE(osprey::kernels::dequantize_row(t->type, t->data + r * rb, y.data() + r * row, row));
    double err = 0, ss = 0;
    for (size_t i = 0; i < y.size(); ++i) err += std::pow(y[i] - values_[name][i], 2), ss += std::pow(values_[name][i], 2);
    EXPECT_LT(err / ss, 0.01) << name;
  }
  EXPECT_EQ(*(*f)->get_int("general.file_type", -1), 15);
  EXPECT_EQ(*(*f)->get_int("general.quantization_version", -1), 2);
  EXPECT_EQ(*(*f)->get_string("general.name"), "tiny");
}

TEST_F(QuantizeModelFile, RefusesToRequantizeUnlessAllowed) {
  q::Options o;
  o.mix = "Q8_0";
  ASSERT_TRUE(q::quantize_model(src_, out("q8.gguf"), o).ok());
  o.mix = "Q4_0";
  auto again = q::quantize_model(out("q8.gguf"), out("q4.gguf"), o);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().find("already quantized (q8_0)"), std::string::npos) << again.error();
  EXPECT_NE(again.error().find("--allow-requantize"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(out("q4.gguf")));
  o.allow_requantize = true;
  auto allowed = q::quantize_model(out("q8.gguf"), out("q4.gguf"), o);
  ASSERT_TRUE(allowed.ok()) << allowed.error();
  // Same type in and out is a copy, not a requantization: always fine.
  o.allow_requantize = false;
  o.mix = "Q8_0";
  EXPECT_TRUE(q::quantize_model(out("q8.gguf"), out("q8b.gguf"), o).ok());
}

TEST_F(QuantizeModelFile, ImportanceIsUsedAndChecked) {
  std::map<std::string, std::vector<float>> im;
  im["blk.0.attn_v.weight"] = std::vector<float>(512, 1.0f);
  im["blk.0.ffn_down.weight"] = std::vector<float>(96, 2.0f);
  q::Options o;
  o.mix = "IQ4_XS";
  o.imatrix = &im;
  auto s = q::quantize_model(src_, out("iq4.gguf"), o);
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(s->n_imatrix, 2);
  im["blk.0.ffn_down.weight"].resize(95);
  auto bad = q::quantize_model(src_, out("iq4b.gguf"), o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("ffn_down"), std::string::npos) << bad.error();
}

TEST_F(QuantizeModelFile, BadInputsSayWhatIsWrong) {
  q::Options o;
  o.mix = "Q4_K_M";
  auto missing = q::quantize_model(out("nope.gguf"), out("x.gguf"), o);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("nope.gguf"), std::string::npos) << missing.error();
  o.mix = "Q7_K";
  auto unknown = q::quantize_model(src_, out("x.gguf"), o);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().find("Q7_K"), std::string::npos);
  EXPECT_NE(unknown.error().find("Q4_K_M"), std::string::npos);  // lists the valid ones
  o.mix = "Q4_0";
  auto unwritable = q::quantize_model(src_, "/no/such/dir/x.gguf", o);
  EXPECT_FALSE(unwritable.ok());
}

TEST_F(QuantizeModelFile, StoreCreateQuantizesTheModelLayer) {
  // `create --quantize`: the store hands the model blob to the quantizer hook and keeps the
  // result as the model layer; the details name the new file type.
  osprey::store::ModelStore store((dir_ / "store").string());
  osprey::store::CreateRequest req;
  req.from_file = src_;
  req.quantize = "q8_0";
  auto refused = store.create("tiny:q8", req);
  ASSERT_FALSE(refused.ok());  // no quantizer given: a clear error, not a silent copy
  req.quantizer = [](const std::string& in, const std::string& out, const std::string& type) -> osprey::Status {
    q::Options o;
    o.mix = type;
    auto s = q::quantize_model(in, out, o);
    return s.ok() ? osprey::Status() : s.status();
  };
  std::vector<std::string> statuses;
  auto info = store.create("tiny:q8", req, [&](const nlohmann::json& j) { statuses.push_back(j.value("status", "")); });
  ASSERT_TRUE(info.ok()) << info.error();
  EXPECT_EQ(info->details.value("quantization_level", ""), "Q8_0");
  auto f = gguf::File::open(info->model_path);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ((*f)->find_tensor("blk.0.attn_v.weight")->type, DType::Q8_0);
  EXPECT_NE(std::find(statuses.begin(), statuses.end(), "quantizing model to q8_0"), statuses.end());
  // Errors from the quantizer reach the caller.
  req.quantize = "Q9_Q";
  auto bad = store.create("tiny:bad", req);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("Q9_Q"), std::string::npos) << bad.error();
}

}  // namespace
