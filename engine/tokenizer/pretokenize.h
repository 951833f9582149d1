// Pre-tokenizers for byte-level BPE: split text into the words BPE merges inside of.
// Each model family's split regex is hand-coded as a matcher with the regex's exact semantics
// (alternation order, greedy runs, the \s+(?!\S) backoff); a pre type is a list of stages
// applied in turn, each stage splitting every piece the previous one produced.
// Internal to engine/tokenizer.
#pragma once
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace osprey::tok {

enum class PreStage : uint8_t {
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2,
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3,
  // as kLlama3 with \p{N} (one digit per piece) instead of \p{N}{1,3}
  kQwen2,
  kEachNumber,    // \p{N}      each number codepoint isolated
  kNumberRuns,    // \p{N}+
  kPunctRuns,     // [\p{P}\$\+<=>\^~\|]+
  kDigitTriples,  // [0-9][0-9][0-9]
};

// What a tokenizer.ggml.pre value means for a byte-level BPE vocabulary.
struct PreTypeInfo {
  const char* name;
  std::vector<PreStage> stages;
  bool ignore_merges = false;  // a word that is itself a token is emitted whole
  bool add_bos = false;        // default when tokenizer.ggml.add_bos_token is absent
  bool no_bos = false;         // the family has no BOS token whatever the metadata says
};

// nullptr if the pre type is not supported.
const PreTypeInfo* find_pre_type(std::string_view name);

// A piece of text as [begin, end) codepoint indices.
using Span = std::pair<uint32_t, uint32_t>;

// Split `cps` (whose per-codepoint flags are `flags`) into words.
std::vector<Span> pretokenize(const std::vector<uint32_t>& cps, const std::vector<uint8_t>& flags,
                              const std::vector<PreStage>& stages);

}  // namespace osprey::tok
