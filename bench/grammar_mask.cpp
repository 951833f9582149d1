// Cost of structured-output token masks on a real vocabulary:
//   build/bench/osprey-grammar-mask MODEL.gguf
// prints the time to gather the vocabulary into its trie, then the time of one full mask
// (TokenMatcher::allowed) after several prefixes of a schema's output: between members
// (a handful of tokens allowed), inside an email (a class-limited string) and inside free text
// (nearly the whole vocabulary allowed: the worst case).
#include <chrono>
#include <cstdio>

#include "engine/generate.h"
#include "engine/grammar/json_schema.h"
#include "formats/gguf.h"

using namespace osprey;

static double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
    return 2;
  }
  auto f = gguf::File::open(argv[1]);
  if (!f) return std::fprintf(stderr, "error: %s\n", f.error().c_str()), 1;
  auto tok = Tokenizer::from_gguf(*f.value());
  if (!tok) return std::fprintf(stderr, "error: %s\n", tok.error().c_str()), 1;
  auto t0 = std::chrono::steady_clock::now();
  auto vocab = grammar_vocab(*tok.value());
  std::printf("vocabulary: %d tokens, trie of %zu nodes, built in %.1f ms\n", vocab->size(), vocab->trie().size(),
              ms_since(t0));
  auto g = grammar::compile_json_schema(nlohmann::json::parse(
      R"({"type":"object","properties":{"name":{"type":"string","maxLength":40},"age":{"type":"integer","minimum":0,"maximum":120},"email":{"type":"string","format":"email"}},"required":["name","age","email"]})"));
  if (!g) return std::fprintf(stderr, "error: %s\n", g.error().c_str()), 1;
  int32_t byte_token[256];
  for (int32_t& t : byte_token) t = -1;
  for (int32_t t = vocab->size() - 1; t >= 0; --t)
    if (vocab->piece(t).size() == 1 && !vocab->is_eog(t)) byte_token[(unsigned char)vocab->piece(t)[0]] = t;
  const char* prefixes[] = {"", "{", "{\"age\": 12", "{\"age\": 12, \"email\": \"bob",
                            "{\"age\": 12, \"email\": \"bob@x.com\", \"name\": \"Al"};
  for (const char* p : prefixes) {
    grammar::TokenMatcher tm(g.value(), vocab);
    for (const char* c = p; *c; ++c)
      if (byte_token[(unsigned char)*c] < 0 || !tm.accept(byte_token[(unsigned char)*c]))
        return std::fprintf(stderr, "error: cannot feed %s\n", p), 1;
    std::vector<uint8_t> ok;
    const int runs = 20;
    t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < runs; ++i) tm.allowed(&ok, vocab->size());
    const double ms = ms_since(t0) / runs;
    int n = 0;
    for (uint8_t x : ok) n += x;
    std::printf("after %-50s %6d tokens allowed, full mask %.3f ms\n", (std::string("'") + p + "'").c_str(), n, ms);
  }
  return 0;
}
