// Structured outputs: the JSON schema compiler (accept/reject strings per keyword, error
// messages), the regex subset, and token masks checked against a brute-force per-token check
// on the real SmolLM2 vocabulary. tests/api/test_structured.py checks real model outputs with
// the Python jsonschema package.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <random>

#include "engine/generate.h"
#include "engine/grammar/json_schema.h"
#include "engine/grammar/token_mask.h"
#include "formats/gguf.h"
#include "test_models.h"

namespace osprey::grammar {
namespace {

using nlohmann::json;

std::shared_ptr<const Grammar> compile(const std::string& schema) {
  auto g = compile_json_schema(json::parse(schema));
  EXPECT_TRUE(g.ok()) << schema << ": " << g.error();
  return g.ok() ? g.value() : nullptr;
}

// The whole text is a complete sentence of the grammar.
bool matches(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  Matcher m(g);
  return m.accept(text) && m.can_end();
}

// Every `yes` matches and no `no` does.
void check(const std::string& schema, std::initializer_list<std::string> yes, std::initializer_list<std::string> no) {
  auto g = compile(schema);
  ASSERT_TRUE(g);
  for (const auto& t : yes) EXPECT_TRUE(matches(g, t)) << schema << " should accept " << t;
  for (const auto& t : no) EXPECT_FALSE(matches(g, t)) << schema << " should reject " << t;
}

std::string error_of(const std::string& schema) {
  auto g = compile_json_schema(json::parse(schema));
  return g.ok() ? std::string("(compiled)") : g.error();
}

TEST(GrammarSchema, ScalarTypes) {
  check(R"({"type":"string"})", {R"("")", R"("abc")", R"("a\"b\\c\n")", "\"héllo ✓\""},
        {"abc", R"("a)", "\"a\nb\"", R"("a\qb")", R"("abc" )"});
  check(R"({"type":"integer"})", {"0", "-12", "123456789012345"}, {"01", "1.5", "-", "+1", "1234567890123456", ""});
  check(R"({"type":"number"})", {"1.5", "-0.25e+3", "7", "1E5"}, {"1.", ".5", "1e", "--1"});
  check(R"({"type":"boolean"})", {"true", "false"}, {"True", "1"});
  check(R"({"type":"null"})", {"null"}, {"nil", ""});
  check(R"({"type":["integer","null"]})", {"3", "null"}, {"\"3\""});
}

// Members come in key order: nlohmann::json objects (what the server parses requests into)
// keep their keys sorted.
TEST(GrammarSchema, ObjectsInKeyOrder) {
  const std::string s =
      R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"boolean"}},"required":["b"],"additionalProperties":false})";
  check(s, {R"({"b":"x"})", R"({"a":1,"b":"x"})", R"({"a":1,"b":"x","c":true})", R"({"b":"x","c":false})",
            "{\n  \"a\": 1,\n  \"b\": \"x\"\n}", R"({ "b" : "x" })"},
        {R"({})", R"({"a":1})", R"({"b":"x","d":1})", R"({"b":"x",})", R"({,"b":"x"})", R"({"b":1})",
         R"({"b":"x","a":1})"});
  check(R"({"type":"object"})", {R"({})", R"({"k":[1,{"z":null}],"j":"v"})"}, {R"([])", R"({"k"})"});
  check(R"({"type":"object","additionalProperties":{"type":"integer"}})", {R"({"x":1,"y":2})", R"({})"},
        {R"({"x":"1"})"});
  check(R"({"type":"object","additionalProperties":false})", {R"({})"}, {R"({"x":1})"});
  check(R"({"properties":{"n":{"type":"object","properties":{"m":{"type":"null"}},"required":["m"]}},"required":["n"]})",
        {R"({"n":{"m":null}})"}, {R"({"n":{}})"});
}

TEST(GrammarSchema, WhitespaceIsBoundedAndNothingFollowsTheValue) {
  auto g = compile(R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]})");
  EXPECT_TRUE(matches(g, "{\"a\":" + std::string(1, ' ') + "1}"));
  EXPECT_FALSE(matches(g, "{\"a\":" + std::string(40, ' ') + "1}"));
  EXPECT_FALSE(matches(g, "{\"a\":1} "));
  Matcher m(g);
  ASSERT_TRUE(m.accept("{\"a\":1"));
  EXPECT_FALSE(m.can_end());
  ASSERT_TRUE(m.accept("}"));
  EXPECT_TRUE(m.must_end());
  Matcher n(compile(R"({"type":"integer"})"));
  ASSERT_TRUE(n.accept("12"));
  EXPECT_TRUE(n.can_end());
  EXPECT_FALSE(n.must_end());  // "123" could follow
}

TEST(GrammarSchema, EnumConstAnyOf) {
  check(R"({"enum":["red","green",3,null,{"a":[1]}]})", {R"("red")", R"("green")", "3", "null", R"({"a":[1]})"},
        {R"("blue")", "4", R"("Red")"});
  check(R"({"const":"fixed"})", {R"("fixed")"}, {R"("other")"});
  check(R"({"anyOf":[{"type":"integer"},{"type":"string","maxLength":2}]})", {"5", R"("ab")"}, {R"("abc")", "true"});
  check(R"({"oneOf":[{"type":"boolean"},{"type":"null"}]})", {"true", "null"}, {"0"});
  check(R"({"allOf":[{"type":"boolean"}]})", {"true"}, {"0"});
}

TEST(GrammarSchema, Arrays) {
  check(R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3})", {"[1]", "[1,2,3]", "[ 1 , 2 ]"},
        {"[]", "[1,2,3,4]", "[1,]", R"(["a"])"});
  check(R"({"type":"array","items":{"type":"string"}})", {"[]", R"(["a","b","c","d","e"])"}, {"[1]"});
  check(R"({"type":"array","maxItems":0})", {"[]"}, {"[1]"});
  check(R"({"type":"array"})", {R"([1,"a",null,[true]])"}, {"[1"});
}

TEST(GrammarSchema, RefsAndDefs) {
  check(R"({"$defs":{"p":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]}},
            "type":"array","items":{"$ref":"#/$defs/p"}})",
        {R"([{"x":1},{"x":2}])"}, {R"([{"y":1}])"});
  // Recursion: a tree.
  check(R"({"definitions":{"node":{"type":"object","properties":{"v":{"type":"integer"},
            "xs":{"type":"array","items":{"$ref":"#/definitions/node"}}},"required":["v"]}},"$ref":"#/definitions/node"})",
        {R"({"v":1})", R"({"v":1,"xs":[{"v":2,"xs":[{"v":3}]}]})"}, {R"({"v":1,"xs":[{}]})"});
}

TEST(GrammarSchema, StringLengths) {
  check(R"({"type":"string","minLength":2,"maxLength":3})", {R"("ab")", R"("abc")", R"("\"\\")", "\"ħé\""},
        {R"("a")", R"("abcd")"});
}

TEST(GrammarSchema, IntegerBoundsMatchBruteForce) {
  const std::pair<const char*, std::pair<double, double>> cases[] = {
      {R"({"type":"integer","minimum":-37,"maximum":120})", {-37, 120}},
      {R"({"type":"integer","minimum":5})", {5, 1e18}},
      {R"({"type":"integer","maximum":-3})", {-1e18, -3}},
      {R"({"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":100})", {1, 99}},
      {R"({"type":"integer","minimum":1.5,"maximum":9.5})", {2, 9}},
      {R"({"type":"integer","minimum":-100,"maximum":-10})", {-100, -10}},
  };
  for (const auto& [schema, range] : cases) {
    auto g = compile(schema);
    ASSERT_TRUE(g);
    for (int v = -1100; v <= 1100; ++v)
      EXPECT_EQ(matches(g, std::to_string(v)), v >= range.first && v <= range.second) << schema << " " << v;
    EXPECT_FALSE(matches(g, "-0")) << schema;
  }
}

TEST(GrammarSchema, NumberBoundsAreSound) {
  const std::pair<const char*, std::pair<double, double>> cases[] = {
      {R"({"type":"number","minimum":-2.5,"maximum":10})", {-2.5, 10}},
      {R"({"type":"number","minimum":0,"maximum":1})", {0, 1}},
      {R"({"type":"number","exclusiveMinimum":-5,"exclusiveMaximum":-1})", {-5, -1}},
      {R"({"type":"number","minimum":100})", {100, INFINITY}},
  };
  std::mt19937 rng(7);
  for (const auto& [schema, range] : cases) {
    auto g = compile(schema);
    ASSERT_TRUE(g);
    const bool exclusive = std::string(schema).find("exclusive") != std::string::npos;
    int accepted = 0;
    for (int i = 0; i < 3000; ++i) {
      const double lo = range.first - 3, hi = std::isfinite(range.second) ? range.second + 3 : range.first + 60;
      const double v = std::uniform_real_distribution<double>(lo, hi)(rng);
      char buf[64];
      snprintf(buf, sizeof buf, i % 3 == 0 ? "%.0f" : i % 3 == 1 ? "%.1f" : "%.3f", v);
      const double parsed = std::strtod(buf, nullptr);
      const bool inside = exclusive ? parsed > range.first && parsed < range.second
                                    : parsed >= range.first && parsed <= range.second;
      if (matches(g, buf)) {
        ++accepted;
        EXPECT_TRUE(inside) << schema << " accepted " << buf;
      }
    }
    EXPECT_GT(accepted, 10) << schema;
  }
  check(R"({"type":"number","minimum":0,"maximum":1})", {"0", "1", "0.5", "0.999"}, {"1.5", "-0.5", "2"});
}

TEST(GrammarRegex, Subset) {
  auto p = [](const std::string& pattern) { return json{{"type", "string"}, {"pattern", pattern}}.dump(); };
  check(p("^[A-Z]{2}-[0-9]{3}$"), {R"("AB-123")"}, {R"("Ab-123")", R"("AB-12")", R"("AB-1234")"});
  check(p("^(cat|dog)s?$"), {R"("cat")", R"("dogs")"}, {R"("cow")", R"("cats!")"});
  check(p("^a+b*c?$"), {R"("a")", R"("aaabbc")"}, {R"("b")", R"("acc")"});
  check(p("^\\d{2,}\\.\\w\\s?$"), {R"("12.x")", R"("123._ ")"}, {R"("1.x")", R"("12x")"});
  check(p("^[^0-9\"]+$"), {R"("abc")"}, {R"("a1")", R"("a\"")"});
  check(p("^(?:ab){1,2}$"), {R"("ab")", R"("abab")"}, {R"("aba")", R"("ababab")"});
  check(p("^say \"hi\"\\\\$"), {R"("say \"hi\"\\")"}, {R"("say "hi"\")"});
  check(p("^.{3}$"), {R"("abc")", "\"a✓c\""}, {R"("ab")"});
  check(p("ab"), {R"("ab")", R"("xxabyy")"}, {R"("a")"});   // unanchored: anywhere
  check(p("^ab"), {R"("abz")"}, {R"("zab")"});
  check(p("[a-c]x$"), {R"("zzbx")"}, {R"("bxz")"});
}

TEST(GrammarRegex, Formats) {
  auto f = [](const std::string& format) { return json{{"type", "string"}, {"format", format}}.dump(); };
  check(f("date"), {R"("2024-02-28")"}, {R"("2024-13-01")", R"("2024-02-30")", R"("24-01-01")"});
  check(f("time"), {R"("23:59:59Z")", R"("08:00:00.5+02:00")"}, {R"("24:00:00Z")", R"("08:00:00")"});
  check(f("date-time"), {R"("2020-01-01T00:00:00Z")"}, {R"("2020-01-01 00:00:00Z")"});
  check(f("uuid"), {R"("123e4567-e89b-12d3-a456-426614174000")"}, {R"("123e4567e89b12d3a456426614174000")"});
  check(f("email"), {R"("a.b@example.com")"}, {R"("example.com")", R"("a@b")"});
  check(f("ipv4"), {R"("192.168.0.255")", R"("0.0.0.0")"}, {R"("256.1.1.1")", R"("01.1.1.1")", R"("1.1.1")"});
}

TEST(GrammarSchema, ErrorsNameTheProblem) {
  EXPECT_EQ(error_of(R"({"type":"object","properties":{"a":{"type":12}}})"),
            "type at #/properties/a must be a string or an array of strings");
  EXPECT_EQ(error_of(R"({"type":"strin"})"), "invalid type \"strin\" at #");
  EXPECT_EQ(error_of(R"({"type":"array","uniqueItems":true})"), "unsupported schema keyword \"uniqueItems\" at #");
  EXPECT_EQ(error_of(R"({"properties":{"a":{"not":{}}}})"), "unsupported schema keyword \"not\" at #/properties/a");
  EXPECT_EQ(error_of(R"({"$ref":"#/$defs/missing"})"), "$ref to unknown definition \"#/$defs/missing\" at #");
  EXPECT_EQ(error_of(R"({"$ref":"http://x/y.json"})"),
            "$ref \"http://x/y.json\" at #: only local references (#/...) are supported");
  EXPECT_EQ(error_of(R"({"properties":{"a":{}},"required":["b"]})"),
            "required property \"b\" at # is not defined in properties");
  EXPECT_EQ(error_of(R"({"type":"string","minLength":5,"maxLength":2})"), "minLength > maxLength at #");
  EXPECT_EQ(error_of(R"({"type":"string","format":"ipv7"})"), "unsupported string format \"ipv7\" at #");
  EXPECT_EQ(error_of(R"({"type":"integer","minimum":10,"maximum":2})"), "no integer satisfies the bounds at #");
  EXPECT_EQ(error_of(R"({"type":"array","minItems":-1})"), "minItems at # must be a non-negative integer");
  EXPECT_EQ(error_of(R"({"allOf":[{},{}]})"), "allOf with more than one schema is not supported at #");
  EXPECT_EQ(error_of(R"(false)"), "schema false at # matches nothing");
  EXPECT_EQ(error_of(R"(12)"), "schema at # must be an object or a boolean, not number");
  EXPECT_NE(error_of(R"({"type":"string","pattern":"(ab"})").find("invalid pattern (ab: unbalanced '('"), std::string::npos);
  EXPECT_NE(error_of(R"({"type":"string","pattern":"a\\bb"})").find("word boundaries are not supported"), std::string::npos);
  EXPECT_NE(error_of(R"({"type":"string","pattern":"a{3,1}"})").find("{n,m} with m < n"), std::string::npos);
  EXPECT_NE(error_of(R"({"type":"string","pattern":"a^b"})").find("anchors are only supported"), std::string::npos);
}

TEST(GrammarSchema, JsonFormatIsAnyObject) {
  auto g = json_object_grammar();
  EXPECT_TRUE(matches(g, R"({"a":[1,2.5e3,"x",{"b":null}],"c":true})"));
  EXPECT_TRUE(matches(g, "{}"));
  EXPECT_FALSE(matches(g, "[1]"));
  EXPECT_FALSE(matches(g, "\"x\""));
}

// The corpus the API property test (tests/api/test_structured.py) runs through a real model.
TEST(GrammarSchema, CorpusCompiles) {
  std::ifstream f(std::string(OSPREY_TEST_DATA) + "/grammar/schemas.json");
  ASSERT_TRUE(f.good());
  const json corpus = json::parse(f);
  ASSERT_GE(corpus.size(), 50u);
  for (const auto& c : corpus) {
    auto g = compile_json_schema(c["schema"]);
    EXPECT_TRUE(g.ok()) << c["name"] << ": " << g.error();
  }
}

// The trie-walking mask must equal checking every token on its own, on a real vocabulary
// (multi-byte UTF-8 pieces, byte tokens, control tokens, end-of-generation tokens).
TEST(GrammarMask, EqualsBruteForceOnSmolLM2Vocabulary) {
  OSPREY_REQUIRE_MODEL(path, ::osprey::testing::kSmolLM2);
  auto f = gguf::File::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  auto tok = Tokenizer::from_gguf(*f.value());
  ASSERT_TRUE(tok.ok()) << tok.error();
  auto vocab = grammar_vocab(*tok.value());
  const std::pair<std::string, std::vector<std::string>> cases[] = {
      {R"({"type":"object","properties":{"name":{"type":"string","maxLength":8},"age":{"type":"integer","minimum":0,"maximum":130}},"required":["name","age"]})",
       {"", "{", "{\"", "{\"age\": 4", "{\"age\":12,\"name\": \"Al", "{\"age\":1,\"name\":\"Alice\"", "{\"age\":1,\"name\":\"x\"}"}},
      {R"({"type":"string","pattern":"^[a-f0-9]{4}-(x|yy)$"})", {"", "\"", "\"ab1", "\"ab12-", "\"ab12-y"}},
      {R"({"enum":["héllo","hé","日本語"]})", {"", "\"h", "\"h\xc3", "\"\xe6\x97"}},
      {R"({"type":"array","items":{"type":"number"},"maxItems":2})", {"", "[", "[1", "[1.5,", "[1, -2e"}},
  };
  int32_t byte_token[256];
  std::fill(std::begin(byte_token), std::end(byte_token), -1);
  for (int32_t t = vocab->size() - 1; t >= 0; --t)
    if (vocab->piece(t).size() == 1 && !vocab->is_eog(t)) byte_token[(unsigned char)vocab->piece(t)[0]] = t;
  const int64_t n = (int64_t)vocab->size() + 3;  // logits rows may be wider than the vocabulary
  int64_t checked = 0;
  for (const auto& [schema, prefixes] : cases) {
    auto g = compile(schema);
    ASSERT_TRUE(g);
    for (const std::string& prefix : prefixes) {
      Matcher base(g);
      ASSERT_TRUE(base.accept(prefix)) << prefix;
      // The token matcher reaches the prefix one single-byte token at a time (a byte-level
      // BPE vocabulary has one for every byte).
      TokenMatcher tm(g, vocab);
      for (unsigned char c : prefix) {
        ASSERT_GE(byte_token[c], 0) << "no single-byte token for " << (int)c;
        ASSERT_TRUE(tm.accept(byte_token[c])) << prefix;
      }
      std::vector<uint8_t> fast;
      tm.allowed(&fast, n);
      ASSERT_EQ((int64_t)fast.size(), n);
      int64_t n_allowed = 0;
      for (int32_t id = 0; id < (int32_t)n; ++id) {
        bool want = false;
        if (id < vocab->size()) {
          if (vocab->is_eog(id)) {
            want = base.can_end();
          } else if (!vocab->piece(id).empty()) {
            Matcher m = base;
            want = m.accept(vocab->piece(id));
          }
        }
        EXPECT_EQ(fast[(size_t)id] != 0, want) << schema << " after \"" << prefix << "\": token " << id << " \""
                                                << (id < vocab->size() ? vocab->piece(id) : "") << "\"";
        if (id < vocab->size()) {
          EXPECT_EQ(tm.allows(id), want) << "allows() disagrees for token " << id;
        }
        n_allowed += want;
        ++checked;
      }
      EXPECT_GT(n_allowed, 0) << schema << " after \"" << prefix << "\"";
    }
  }
  EXPECT_GT(checked, 1000000);
}

}  // namespace
}  // namespace osprey::grammar
