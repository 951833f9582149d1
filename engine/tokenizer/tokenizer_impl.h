// Internal state of Tokenizer, shared by the .cpp files of engine/tokenizer.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "pretokenize.h"
#include "tokenizer.h"

namespace osprey {

namespace tok {

// Token attributes as bits, the way llama.cpp derives them from tokenizer.ggml.token_type
// (a token may gain kControl later, e.g. when its text marks end of turn).
enum Attr : uint8_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1 << 0,
  kAttrUnused = 1 << 1,
  kAttrNormal = 1 << 2,
  kAttrControl = 1 << 3,
  kAttrUserDefined = 1 << 4,
  kAttrByte = 1 << 5,
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TextMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// A piece of input after special-token partitioning: a special token, or raw text [begin, end).
struct Fragment {
  int32_t token;  // -1 for raw text
  uint32_t begin, end;
};

// Finds control / user-defined token text in input the way llama.cpp does: tokens are taken
// longest text first, each claiming all its leftmost non-overlapping occurrences in the text
// not yet claimed, so a long token wins over a shorter one it overlaps.
class SpecialMatcher {
 public:
  // `ids`: the candidate tokens; `always[i]`: matched even without parse_special (user-defined).
  void build(const std::vector<std::string>& texts, const std::vector<int32_t>& ids,
             const std::vector<bool>& always);
  void partition(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> kids;  // sorted by byte
    int32_t rank = -1;                              // terminal: index into by_rank_
  };
  struct Entry {
    int32_t id;
    uint32_t len;
    bool always;
  };
  int32_t child(int32_t node, uint8_t b) const;
  std::vector<Node> nodes_;
  std::vector<Entry> by_rank_;  // rank 0 = longest text
};

// Byte-level BPE over one pre-tokenized, byte-mapped word.
struct BpeMerges {
  // key: 4-byte length of the left part, then left, then right (unambiguous for any bytes)
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> rank;
  int32_t find(std::string_view left, std::string_view right, std::string& scratch) const;
};
void bpe_word(const TextMap& vocab, const BpeMerges& merges, std::string_view word,
              std::vector<int32_t>& out);

// SentencePiece-style merging by token score with <0xXX> byte fallback.
void spm_text(const TextMap& vocab, const std::vector<float>& scores, const int32_t byte_tokens[256],
              int32_t unk, std::string_view text, std::vector<int32_t>& out);

}  // namespace tok

struct Tokenizer::Impl {
  enum class Kind { kBpe, kSpm, kWpm } kind = Kind::kBpe;
  std::string model, pre;
  const tok::PreTypeInfo* pre_info = nullptr;

  std::vector<std::string> text;   // id -> vocabulary text
  std::vector<float> score;        // id -> score (SPM merge priority)
  std::vector<uint8_t> attr;       // id -> tok::Attr bits
  std::vector<std::string> piece;  // id -> decoded bytes (special tokens rendered)
  tok::TextMap text_to_id;
  tok::BpeMerges merges;
  tok::SpecialMatcher specials;
  int32_t byte_tokens[256];  // SPM: byte -> <0xXX> token (or single-byte token), -1 if none

  int32_t bos = -1, eos = -1, unk = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false;
  bool lowercase = true;  // WordPiece: tokenizer.ggml.normalizer.lowercase
  std::unordered_set<int32_t> eog;

  void encode_bpe_text(std::string_view text, std::vector<int32_t>& out) const;
  bool valid(int32_t id) const { return id >= 0 && static_cast<size_t>(id) < text.size(); }
};

}  // namespace osprey
