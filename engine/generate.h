// The generation loop shared by `osprey run` and the server: prompt prefill, sampling,
// stop strings, end-of-generation tokens, token limits, timings.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/grammar/token_mask.h"
#include "engine/sampler.h"
#include "engine/session.h"

namespace osprey {

struct GenerateParams {
  int32_t max_tokens = -1;  // -1: until the context is full
  std::vector<std::string> stop;
  SamplerParams sampling;
  // Structured output: only text of this grammar is generated, and generation ends as soon as
  // the text is complete and nothing may follow.
  std::shared_ptr<const grammar::Grammar> grammar;
};

// The token byte strings a grammar constrains (built once per model by its users).
std::shared_ptr<const grammar::Vocab> grammar_vocab(const Tokenizer& tok);

struct GenerateResult {
  std::string done_reason;  // "stop" (end token or stop string), "length"
  int64_t n_prompt = 0, n_generated = 0;
  int64_t prompt_ns = 0, generate_ns = 0;
  std::vector<int32_t> tokens;  // generated token ids
};

// Text callback: return false to stop early (reported as "stop").
using TextCallback = std::function<bool(const std::string&)>;

// Generates for sequence slot `seq` from position 0 (the slot's old contents are ignored).
Result<GenerateResult> generate(Context& ctx, int32_t seq, const std::vector<int32_t>& prompt,
                                const GenerateParams& p, const TextCallback& on_text);

// Holds back text that might be the start of a stop string; reports when one matched.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Feeds text; returns what can be emitted now. Sets *stopped when a stop string matched
  // (the returned text then ends right before it).
  std::string feed(const std::string& text, bool* stopped);
  std::string flush() { return std::exchange(pending_, std::string()); }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
};

}  // namespace osprey
