#include "wordpiece.h"

#include <algorithm>
#include <string>

#include "unicode.h"

namespace osprey::tok {
namespace {

constexpr std::string_view kWordStart = "\xE2\x96\x81";  // U+2581
constexpr size_t kMaxWordChars = 100;                    // HF WordPiece max_input_chars_per_word

// The CJK Unified Ideograph blocks BERT pads with spaces (BasicTokenizer._is_chinese_char).
bool is_cjk(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// Punctuation for the pre-tokenizer: ASCII punctuation (which includes symbols like $ + < =)
// or any Unicode P* category.
bool is_punct(uint32_t cp) {
  if (cp < 0x80) return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
  return (cp_flags(cp) & kPunct) != 0;
}

// Strip accents and lowercase one codepoint; Hangul syllables decompose into their jamo by
// the Unicode algorithm (the table leaves them out).
void normalize_cp(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= 0xAC00 && cp <= 0xD7A3) {
    const uint32_t s = cp - 0xAC00;
    out.push_back(0x1100 + s / 588);
    out.push_back(0x1161 + (s % 588) / 28);
    if (s % 28) out.push_back(0x11A7 + s % 28);
    return;
  }
  const BertMapEntry* end = kBertMap + kBertMapCount;
  const BertMapEntry* e = std::lower_bound(kBertMap, end, cp, [](const BertMapEntry& a, uint32_t c) { return a.cp < c; });
  if (e == end || e->cp != cp) {
    out.push_back(cp);
    return;
  }
  out.insert(out.end(), kBertMapPool + e->offset, kBertMapPool + e->offset + e->len);
}

// BertNormalizer then BertPreTokenizer: the words of the text, each as codepoints.
std::vector<std::vector<uint32_t>> bert_words(std::string_view text, bool lowercase) {
  std::vector<uint32_t> norm;
  for (uint32_t cp : decode_utf8_lossy(text)) {
    const uint8_t f = cp_flags(cp);
    // Control characters go first (HF's clean_text), so a control that is also White_Space
    // (vertical tab, NEL) vanishes rather than separating words.
    const bool tab_or_newline = cp == '\t' || cp == '\n' || cp == '\r';
    if (cp == 0 || cp == 0xFFFD || (!tab_or_newline && (f & kControl))) continue;
    const bool ws = tab_or_newline || (f & kSpace);
    if (ws) {
      norm.push_back(' ');
    } else if (is_cjk(cp)) {
      norm.push_back(' ');
      if (lowercase) normalize_cp(cp, norm);
      else norm.push_back(cp);
      norm.push_back(' ');
    } else if (lowercase) {
      normalize_cp(cp, norm);
    } else {
      norm.push_back(cp);
    }
  }
  std::vector<std::vector<uint32_t>> words(1);
  for (uint32_t cp : norm) {
    if (cp == ' ' || (cp_flags(cp) & kSpace)) {
      if (!words.back().empty()) words.emplace_back();
    } else if (is_punct(cp)) {
      if (!words.back().empty()) words.emplace_back();
      words.back().push_back(cp);
      words.emplace_back();
    } else {
      words.back().push_back(cp);
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

}  // namespace

void wpm_text(const TextMap& vocab, int32_t unk, bool lowercase, std::string_view text, std::vector<int32_t>& out) {
  std::string key;
  std::vector<int32_t> pieces;
  std::vector<size_t> offs;  // byte offset of each codepoint in the word's UTF-8, plus the end
  std::string utf8;
  for (const std::vector<uint32_t>& w : bert_words(text, lowercase)) {
    if (w.size() > kMaxWordChars) {
      if (unk >= 0) out.push_back(unk);
      continue;
    }
    utf8.clear();
    offs.clear();
    for (uint32_t cp : w) {
      offs.push_back(utf8.size());
      append_utf8(utf8, cp);
    }
    offs.push_back(utf8.size());
    // Greedy longest match from each start; any unmatched remainder makes the word unknown.
    pieces.clear();
    bool ok = true;
    for (size_t start = 0; start < w.size() && ok;) {
      size_t end = w.size();
      int32_t found = -1;
      for (; end > start; --end) {
        key.assign(start == 0 ? kWordStart : std::string_view());
        key.append(utf8, offs[start], offs[end] - offs[start]);
        auto it = vocab.find(std::string_view(key));
        if (it != vocab.end()) {
          found = it->second;
          break;
        }
      }
      if (found < 0) ok = false;
      else pieces.push_back(found), start = end;
    }
    if (ok) out.insert(out.end(), pieces.begin(), pieces.end());
    else if (unk >= 0) out.push_back(unk);
  }
}

}  // namespace osprey::tok
