// Tokenizer tests. The reference ids come from llama.cpp (tests/scripts/gen_tokenizer_ref.py,
// data in tests/data/tokenizer/*.json); we require identical ids for every corpus and fuzz
// string in all four (add_special, parse_special) modes, identical decoded bytes, and the
// same BOS/EOS/EOG decisions. The synthetic-vocabulary tests cover bad metadata and input.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <sstream>
#include <unistd.h>

#include "engine/tokenizer/tokenizer.h"
#include "test_models.h"

namespace osprey {
namespace {

using json = nlohmann::json;

std::string unhex(const std::string& h) {
  std::string s;
  for (size_t i = 0; i + 1 < h.size(); i += 2) s.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return s;
}

std::string show(const std::string& s) {
  std::string r;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F && c != '\\') r.push_back(static_cast<char>(c));
    else { char b[8]; std::snprintf(b, sizeof b, "\\x%02X", c); r += b; }
  }
  return r;
}

json load_ref(const std::string& key) {
  std::ifstream in(std::string(OSPREY_TEST_DATA) + "/tokenizer/" + key + ".json");
  if (!in) return json();
  return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

struct Loaded {
  std::unique_ptr<gguf::File> file;
  std::unique_ptr<Tokenizer> tok;
};

// Each model's tokenizer is loaded once for all tests (262k-token vocabularies take a moment).
Tokenizer* model_tokenizer(const std::string& path) {
  static std::map<std::string, Loaded> cache;
  auto it = cache.find(path);
  if (it != cache.end()) return it->second.tok.get();
  auto f = gguf::File::open(path);
  if (!f.ok()) { ADD_FAILURE() << f.error(); return nullptr; }
  auto t = Tokenizer::from_gguf(*f.value());
  if (!t.ok()) { ADD_FAILURE() << t.error(); return nullptr; }
  Loaded& l = cache[path];
  l.file = std::move(f.value());
  l.tok = std::move(t.value());
  return l.tok.get();
}

struct ModelCase {
  const char* key;
  const char* file;
};

void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.key; }

class RefTest : public ::testing::TestWithParam<ModelCase> {};

#define LOAD_OR_FAIL(tok, ref)                                                         \
  OSPREY_REQUIRE_MODEL(path_, GetParam().file);                                        \
  const json ref = load_ref(GetParam().key);                                            \
  ASSERT_TRUE(ref.is_object()) << "missing/invalid tests/data/tokenizer/" << GetParam().key \
                               << ".json; run tests/scripts/gen_tokenizer_ref.py";     \
  Tokenizer* tok = model_tokenizer(path_);                                              \
  ASSERT_NE(tok, nullptr)

TEST_P(RefTest, SpecialIdsMatchLlamaCpp) {
  LOAD_OR_FAIL(tok, ref);
  EXPECT_EQ(tok->n_vocab(), ref["n_vocab"].get<int>());
  EXPECT_EQ(tok->bos(), ref["bos"].get<int>());
  EXPECT_EQ(tok->eos(), ref["eos"].get<int>());
  EXPECT_EQ(tok->add_bos(), ref["add_bos"].get<bool>());
  EXPECT_EQ(tok->add_eos(), ref["add_eos"].get<bool>());
  std::set<int> want(ref["eog"].begin(), ref["eog"].end());
  std::set<int> got;
  for (int32_t id = 0; id < tok->n_vocab(); ++id)
    if (tok->is_eog(id)) got.insert(id);
  EXPECT_EQ(got, want);
  EXPECT_FALSE(tok->is_eog(-1));
  EXPECT_FALSE(tok->is_eog(tok->n_vocab()));
}

TEST_P(RefTest, CorpusIdsAndDecodeMatchLlamaCpp) {
  LOAD_OR_FAIL(tok, ref);
  int checked = 0;
  for (const json& e : ref["corpus"]) {
    const std::string text = unhex(e["hex"]);
    for (int as = 0; as <= 1; ++as) {
      for (int ps = 0; ps <= 1; ++ps) {
        const std::string mode = "as" + std::to_string(as) + "_ps" + std::to_string(ps);
        const std::vector<int32_t> want = e["llama_cpp"][mode].get<std::vector<int32_t>>();
        const std::vector<int32_t> got = tok->encode(text, as, ps);
        EXPECT_EQ(got, want) << e["name"] << " [" << mode << "] \"" << show(text) << "\"";
        // Decoding llama.cpp's ids gives llama.cpp's bytes (special tokens rendered iff ps).
        EXPECT_EQ(show(tok->decode(want, ps)), show(unhex(e["detok"][mode])))
            << e["name"] << " [" << mode << "]";
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 4 * 50);
}

TEST_P(RefTest, FuzzIdsMatchLlamaCpp) {
  LOAD_OR_FAIL(tok, ref);
  int bad = 0;
  for (const json& e : ref["fuzz"]) {
    const std::string text = unhex(e["hex"]);
    const auto a = tok->encode(text, false, false);
    const auto b = tok->encode(text, true, true);
    if (a != e["as0_ps0"].get<std::vector<int32_t>>() || b != e["as1_ps1"].get<std::vector<int32_t>>()) {
      if (++bad <= 10) ADD_FAILURE() << "fuzz mismatch for \"" << show(text) << "\"";
    }
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GE(ref["fuzz"].size(), 100u);
}

TEST_P(RefTest, PiecesMatchLlamaCpp) {
  LOAD_OR_FAIL(tok, ref);
  for (const auto& [id_str, p] : ref["pieces"].items()) {
    const int32_t id = std::stoi(id_str);
    EXPECT_EQ(show(tok->token_to_piece(id)), show(unhex(p[0]))) << "id " << id;
    EXPECT_EQ(show(tok->token_to_piece(id, true)), show(unhex(p[1]))) << "id " << id;
  }
  EXPECT_EQ(tok->token_to_piece(-1), "");
  EXPECT_EQ(tok->token_to_piece(tok->n_vocab(), true), "");
  EXPECT_EQ(tok->token_text(-5), "");
}

// decode(encode(s)) == s for every valid UTF-8 corpus string, with special text parsed into
// tokens and rendered back, or left as plain text. (SentencePiece maps a literal U+2581 to
// the space it stands for, so such strings cannot come back unchanged there.)
TEST_P(RefTest, RoundTrip) {
  LOAD_OR_FAIL(tok, ref);
  int n = 0;
  for (const json& e : ref["corpus"]) {
    if (!e.contains("text")) continue;  // not valid UTF-8
    const std::string s = e["text"];
    if (tok->model() == "llama" && s.find("\xE2\x96\x81") != std::string::npos) continue;
    EXPECT_EQ(show(tok->decode(tok->encode(s, false, false))), show(s)) << e["name"];
    EXPECT_EQ(show(tok->decode(tok->encode(s, true, false))), show(s)) << e["name"];
    EXPECT_EQ(show(tok->decode(tok->encode(s, false, true), true)), show(s)) << e["name"];
    ++n;
  }
  EXPECT_GE(n, 45);
}

// Not a timing test: makes sure a large input goes through (and says how long it took).
TEST_P(RefTest, LargeInput) {
  LOAD_OR_FAIL(tok, ref);
  std::string big;
  for (const json& e : ref["corpus"]) big += unhex(e["hex"]);
  while (big.size() < 100000) big += big;
  auto t0 = std::chrono::steady_clock::now();
  auto ids = tok->encode(big, true, true);
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[   INFO   ] %s: %zu bytes -> %zu tokens in %.1f ms\n", GetParam().key, big.size(), ids.size(), ms);
  EXPECT_GT(ids.size(), big.size() / 20);
}

INSTANTIATE_TEST_SUITE_P(Models, RefTest,
                         ::testing::Values(ModelCase{"smollm2", testing::kSmolLM2},
                                           ModelCase{"qwen25", testing::kQwen25},
                                           ModelCase{"gemma3", testing::kGemma3}),
                         [](const auto& info) { return std::string(info.param.key); });

Result<std::unique_ptr<Tokenizer>> load_written(const gguf::Writer& w, const std::string& name,
                                                std::unique_ptr<gguf::File>* keep);

// The other byte-level pre-tokenizers, on the Qwen vocabulary relabelled with their pre type
// and given digit tokens (see gen_tokenizer_ref.py: 00..99, 000..999 and their merges).
TEST(TokenizerVariants, OtherPreTypesMatchLlamaCpp) {
  OSPREY_REQUIRE_MODEL(path, testing::kQwen25);
  const json ref = load_ref("qwen25_variants");
  ASSERT_TRUE(ref.is_object()) << "run tests/scripts/gen_tokenizer_ref.py";
  auto f = gguf::File::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  std::vector<std::string> pairs, triples;
  for (char a = '0'; a <= '9'; ++a)
    for (char b = '0'; b <= '9'; ++b) pairs.push_back(std::string{a, b});
  for (const std::string& p : pairs)
    for (char c = '0'; c <= '9'; ++c) triples.push_back(p + c);

  for (const auto& [pre, v] : ref["variants"].items()) {
    gguf::Writer w;
    for (const gguf::KeyValue& kv : f.value()->metadata()) {
      gguf::Value val = kv.value;
      if (kv.key == "tokenizer.ggml.pre") {
        val = gguf::Writer::str(pre);
      } else if (kv.key == "tokenizer.ggml.tokens") {
        for (const auto* list : {&pairs, &triples})
          for (const std::string& s : *list) val.array.push_back(gguf::Writer::str(s));
      } else if (kv.key == "tokenizer.ggml.token_type") {
        for (size_t i = 0; i < pairs.size() + triples.size(); ++i) val.array.push_back(gguf::Writer::i32(1));
      } else if (kv.key == "tokenizer.ggml.merges") {
        for (const std::string& p : pairs) val.array.push_back(gguf::Writer::str(p.substr(0, 1) + " " + p.substr(1)));
        for (const std::string& t : triples) val.array.push_back(gguf::Writer::str(t.substr(0, 2) + " " + t.substr(2)));
      }
      w.add(kv.key, std::move(val));
    }
    std::unique_ptr<gguf::File> keep;
    auto t = load_written(w, "variant_" + pre + ".gguf", &keep);
    ASSERT_TRUE(t.ok()) << pre << ": " << t.error();
    Tokenizer& tok = *t.value();
    EXPECT_EQ(tok.pre_type(), pre);
    EXPECT_EQ(tok.n_vocab(), v["n_vocab"].get<int>());
    int bad = 0;
    for (const json& c : v["cases"]) {
      const std::string text = unhex(c["hex"]);
      if (tok.encode(text, false, false) != c["as0_ps0"].get<std::vector<int32_t>>() ||
          tok.encode(text, true, true) != c["as1_ps1"].get<std::vector<int32_t>>()) {
        if (++bad <= 5) ADD_FAILURE() << pre << ": mismatch for \"" << show(text) << "\"";
      }
    }
    EXPECT_EQ(bad, 0) << pre;
  }
}

TEST(Tokenizer, ByteFallbackPieces) {
  OSPREY_REQUIRE_MODEL(path, testing::kGemma3);
  Tokenizer* tok = model_tokenizer(path);
  ASSERT_NE(tok, nullptr);
  int found = 0;
  for (int32_t id = 0; id < tok->n_vocab(); ++id) {
    const std::string& t = tok->token_text(id);
    if (t.size() == 6 && t.compare(0, 3, "<0x") == 0) {
      const int b = std::stoi(t.substr(3, 2), nullptr, 16);
      EXPECT_EQ(tok->token_to_piece(id), std::string(1, static_cast<char>(b))) << t;
      ++found;
    }
  }
  EXPECT_EQ(found, 256);
  // A character missing from the vocabulary falls back to one byte token per UTF-8 byte, and
  // those pieces decode back to the character.
  const std::string rare = "\xF0\x9F\xAA\xBF";  // U+1FABF, newer than most vocabularies
  auto ids = tok->encode(rare, false, false);
  EXPECT_EQ(tok->decode(ids), rare);
}

TEST(Utf8StreamDecoder, HoldsBackSplitCharacters) {
  const std::string text = "h\xC3\xA9llo \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80!";  // héllo 你好 😀!
  Utf8StreamDecoder d;
  std::string out;
  for (char c : text) {
    std::string got = d.push(std::string(1, c));
    // Whatever comes out ends on a character boundary.
    if (!got.empty()) {
      const unsigned char last = static_cast<unsigned char>(got.back());
      EXPECT_TRUE(last < 0x80 || (last & 0xC0) == 0x80) << show(got);
    }
    out += got;
  }
  EXPECT_FALSE(d.has_pending());
  EXPECT_EQ(out, text);

  EXPECT_EQ(d.push("\xE4\xBD"), "");
  EXPECT_TRUE(d.has_pending());
  EXPECT_EQ(d.push("\xA0x"), "\xE4\xBD\xA0x");
  EXPECT_EQ(d.push("\xFF"), "\xFF");        // can never be valid: passed through
  EXPECT_EQ(d.push("a\x80"), "a\x80");      // stray continuation byte: passed through
  EXPECT_EQ(d.push("\xF0\x9F"), "");
  EXPECT_EQ(d.flush(), "\xF0\x9F");         // end of stream: release what is left
  EXPECT_FALSE(d.has_pending());
}

TEST(Utf8StreamDecoder, ByteTokensFromGemma) {
  OSPREY_REQUIRE_MODEL(path, testing::kGemma3);
  Tokenizer* tok = model_tokenizer(path);
  ASSERT_NE(tok, nullptr);
  // Three byte tokens spelling 你 print nothing until the last one arrives.
  std::vector<int32_t> byte_ids;
  for (const char* t : {"<0xE4>", "<0xBD>", "<0xA0>"}) {
    for (int32_t id = 0; id < tok->n_vocab(); ++id)
      if (tok->token_text(id) == t) { byte_ids.push_back(id); break; }
  }
  ASSERT_EQ(byte_ids.size(), 3u);
  Utf8StreamDecoder d;
  EXPECT_EQ(d.push_token(*tok, byte_ids[0]), "");
  EXPECT_EQ(d.push_token(*tok, byte_ids[1]), "");
  EXPECT_EQ(d.push_token(*tok, byte_ids[2]), "\xE4\xBD\xA0");
}

// ---- synthetic vocabularies: bad metadata and hostile input ----

struct TmpFile {
  std::string path;
  explicit TmpFile(const std::string& name)
      : path((std::filesystem::temp_directory_path() / ("osprey_tok_" + std::to_string(::getpid()) + "_" + name)).string()) {}
  ~TmpFile() { std::filesystem::remove(path); }
};

gguf::Value int_array(const std::vector<int32_t>& v) {
  gguf::Value a;
  a.type = gguf::ValueType::ARRAY;
  a.elem_type = gguf::ValueType::INT32;
  for (int32_t x : v) a.array.push_back(gguf::Writer::i32(x));
  return a;
}

// A byte-level BPE vocabulary: the 256 byte stand-ins, a few merges, two control tokens.
void add_tiny_bpe(gguf::Writer& w, const std::string& pre = "gpt-2") {
  std::vector<std::string> toks;
  for (int b = 0; b < 256; ++b) {
    // Same byte map as GPT-2: printable Latin-1 stays, the rest shift to U+0100...
    static int next = 256;
    if (b == 0) next = 256;
    bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    int cp = printable ? b : next++;
    std::string s;
    if (cp < 0x80) s.push_back(static_cast<char>(cp));
    else { s.push_back(static_cast<char>(0xC0 | (cp >> 6))); s.push_back(static_cast<char>(0x80 | (cp & 0x3F))); }
    toks.push_back(s);
  }
  toks.push_back("he");
  toks.push_back("hel");
  toks.push_back("<|end|>");
  toks.push_back("<|start|>");
  std::vector<int32_t> types(toks.size(), 1);
  types[258] = 3;
  types[259] = 3;
  w.add("tokenizer.ggml.model", gguf::Writer::str("gpt2"));
  w.add("tokenizer.ggml.pre", gguf::Writer::str(pre));
  w.add("tokenizer.ggml.tokens", gguf::Writer::str_array(toks));
  w.add("tokenizer.ggml.token_type", int_array(types));
  w.add("tokenizer.ggml.merges", gguf::Writer::str_array({"h e", "he l"}));
}

Result<std::unique_ptr<Tokenizer>> load_written(const gguf::Writer& w, const std::string& name,
                                                std::unique_ptr<gguf::File>* keep) {
  TmpFile tmp(name);
  Status st = w.write(tmp.path);
  if (!st.ok()) return st;
  auto f = gguf::File::open(tmp.path);
  if (!f.ok()) return f.status();
  *keep = std::move(f.value());
  return Tokenizer::from_gguf(**keep);
}

TEST(TokenizerMetadata, TinyBpeWorksAndSurvivesHostileInput) {
  gguf::Writer w;
  add_tiny_bpe(w);
  w.add("tokenizer.ggml.eos_token_id", gguf::Writer::u32(258));
  std::unique_ptr<gguf::File> keep;
  auto t = load_written(w, "tiny.gguf", &keep);
  ASSERT_TRUE(t.ok()) << t.error();
  Tokenizer& tok = *t.value();
  EXPECT_EQ(tok.n_vocab(), 260);
  EXPECT_EQ(tok.eos(), 258);
  EXPECT_TRUE(tok.is_eog(258));
  EXPECT_EQ(tok.encode("hello", false, false), (std::vector<int32_t>{257, 'l' - 0, 'o' - 0}));
  EXPECT_EQ(tok.encode("<|end|>", false, true), (std::vector<int32_t>{258}));
  EXPECT_EQ(tok.decode(tok.encode("hello <|end|>", false, true)), "hello ");
  // Every byte value, a codepoint past U+10FFFF (llama.cpp aborts on this one), truncated
  // sequences: all encode without crashing, to the byte tokens of U+FFFD where invalid.
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  for (const std::string& s : {all, std::string("\xF7\xBF\xBF\xBF"), std::string("\xE4\xB8"),
                               std::string("\xC0\x80", 2), std::string(1, '\0')}) {
    auto ids = tok.encode(s, true, true);
    EXPECT_FALSE(ids.empty());
    for (int32_t id : ids) EXPECT_TRUE(id >= 0 && id < tok.n_vocab());
  }
  EXPECT_EQ(tok.decode(tok.encode("\xF7\xBF\xBF\xBF", false, false)),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(tok.decode({-1, 100000, 'a'}), "a");
}

TEST(TokenizerMetadata, RejectsBadMetadata) {
  std::unique_ptr<gguf::File> keep;
  {
    gguf::Writer w;
    add_tiny_bpe(w);
    w.add("tokenizer.ggml.bos_token_id", gguf::Writer::u32(260));  // one past the end
    auto t = load_written(w, "bos.gguf", &keep);
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.error().find("bos_token_id"), std::string::npos) << t.error();
  }
  {
    gguf::Writer w;
    add_tiny_bpe(w);
    w.add("tokenizer.ggml.eos_token_id", gguf::Writer::i32(-3));
    EXPECT_FALSE(load_written(w, "eos.gguf", &keep).ok());
  }
  {
    gguf::Writer w;
    add_tiny_bpe(w, "no-such-pre");
    auto t = load_written(w, "pre.gguf", &keep);
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.error().find("no-such-pre"), std::string::npos) << t.error();
  }
  {
    gguf::Writer w;
    w.add("tokenizer.ggml.model", gguf::Writer::str("rwkv"));
    w.add("tokenizer.ggml.tokens", gguf::Writer::str_array({"a", "b"}));
    auto t = load_written(w, "rwkv.gguf", &keep);
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.error().find("rwkv"), std::string::npos) << t.error();
  }
  {
    gguf::Writer w;  // no vocabulary at all
    w.add("tokenizer.ggml.model", gguf::Writer::str("llama"));
    EXPECT_FALSE(load_written(w, "novocab.gguf", &keep).ok());
  }
  {
    gguf::Writer w;  // token types shorter than the vocabulary
    w.add("tokenizer.ggml.model", gguf::Writer::str("llama"));
    w.add("tokenizer.ggml.tokens", gguf::Writer::str_array({"<unk>", "<s>", "</s>", "a"}));
    w.add("tokenizer.ggml.token_type", int_array({2, 3}));
    EXPECT_FALSE(load_written(w, "types.gguf", &keep).ok());
  }
  {
    gguf::Writer w;  // tokens of the wrong type
    w.add("tokenizer.ggml.model", gguf::Writer::str("llama"));
    w.add("tokenizer.ggml.tokens", int_array({1, 2, 3}));
    EXPECT_FALSE(load_written(w, "toktype.gguf", &keep).ok());
  }
  {
    gguf::Writer w;  // BPE without merges
    w.add("tokenizer.ggml.model", gguf::Writer::str("gpt2"));
    w.add("tokenizer.ggml.tokens", gguf::Writer::str_array({"a", "b"}));
    EXPECT_FALSE(load_written(w, "nomerges.gguf", &keep).ok());
  }
}

TEST(TokenizerMetadata, SpmWithoutByteTokensDoesNotCrash) {
  gguf::Writer w;
  w.add("tokenizer.ggml.model", gguf::Writer::str("llama"));
  w.add("tokenizer.ggml.tokens", gguf::Writer::str_array({"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "\xE2\x96\x81" "a"}));
  w.add("tokenizer.ggml.token_type", int_array({2, 3, 3, 1, 1, 1}));
  gguf::Value scores;
  scores.type = gguf::ValueType::ARRAY;
  scores.elem_type = gguf::ValueType::FLOAT32;
  for (float s : {0.f, 0.f, 0.f, -1.f, -2.f, -0.5f}) scores.array.push_back(gguf::Writer::f32(s));
  w.add("tokenizer.ggml.scores", scores);
  std::unique_ptr<gguf::File> keep;
  auto t = load_written(w, "spm.gguf", &keep);
  ASSERT_TRUE(t.ok()) << t.error();
  Tokenizer& tok = *t.value();
  EXPECT_TRUE(tok.add_bos());  // SentencePiece default
  // add_space_prefix defaults on: " a" becomes one token; unknown characters become <unk>.
  EXPECT_EQ(tok.encode("a", true, false), (std::vector<int32_t>{1, 5}));
  EXPECT_EQ(tok.encode("a\xFFz", false, false), (std::vector<int32_t>{5, 0, 0}));
  EXPECT_EQ(tok.decode(tok.encode("a a", true, false)), "a a");
}

}  // namespace
}  // namespace osprey
