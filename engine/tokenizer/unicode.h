// Unicode helpers for the tokenizers: codepoint classes, UTF-8 coding, the GPT-2 byte map.
// Internal to engine/tokenizer.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace osprey::tok {

// One general-category bit per codepoint plus White_Space; see gen_unicode_tables.py.
enum CpFlag : uint8_t {
  kNumber = 0x01,     // \p{N}
  kLetter = 0x02,     // \p{L}
  kSeparator = 0x04,  // \p{Z}
  kMark = 0x08,       // \p{M}
  kPunct = 0x10,      // \p{P}
  kSymbol = 0x20,     // \p{S}
  kControl = 0x40,    // \p{C} (includes unassigned and surrogates)
  kSpace = 0x80,      // \s (White_Space)
};

struct CpRange {
  uint32_t first;
  uint8_t flags;
};
extern const CpRange kCpRanges[];
extern const size_t kCpRangeCount;
extern const char* const kUnicodeVersion;

// Flags of a codepoint; 0 for values past U+10FFFF.
uint8_t cp_flags(uint32_t cp);

// Length of the UTF-8 sequence a byte starts, judged by its high nibble alone (continuation
// bytes count as 1). The SPM splitter uses exactly this rule, so it must stay this crude.
inline size_t utf8_len_from_lead(uint8_t b) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[b >> 4];
}

// Decode to codepoints. A byte that does not start a well-formed sequence becomes U+FFFD and
// decoding resumes at the next byte — the rule llama.cpp applies before pre-tokenizing, which
// makes invalid input tokenize like the replacement character. Overlong forms and surrogates
// are decoded, not rejected, for the same reason.
std::vector<uint32_t> decode_utf8_lossy(std::string_view s);

void append_utf8(std::string& out, uint32_t cp);

// GPT-2 byte-level map: every byte gets a printable codepoint so byte strings become text.
const std::string& byte_to_unicode(uint8_t b);  // UTF-8 of the mapped codepoint
int unicode_to_byte(uint32_t cp);                // the byte, or -1 if cp is not in the map

// Number of leading bytes of `s` that form complete UTF-8 sequences, holding back only a
// trailing sequence that is valid so far but unfinished.
size_t utf8_complete_prefix(std::string_view s);

}  // namespace osprey::tok
