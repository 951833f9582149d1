#include "pretokenize.h"

#include "unicode.h"

namespace osprey::tok {

namespace {

// The pre types whose regexes we implement, by the names converters write into
// tokenizer.ggml.pre (the same grouping llama.cpp uses).
const std::vector<PreTypeInfo>& registry() {
  using S = PreStage;
  static const std::vector<PreTypeInfo> r = [] {
    std::vector<PreTypeInfo> v;
    auto add = [&](std::initializer_list<const char*> names, std::vector<PreStage> stages,
                   bool ignore_merges = false, bool add_bos = false, bool no_bos = false) {
      for (const char* n : names) v.push_back({n, stages, ignore_merges, add_bos, no_bos});
    };
    // GPT-2's own split, with extra splits for punctuation runs and three-digit groups.
    add({"default"}, {S::kPunctRuns, S::kGpt2, S::kNumberRuns, S::kDigitTriples});
    add({"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
         "mellum", "modern-bert", "mpt", "olmo", "exaone4", "jina-v1-en", "jina-v2-code",
         "roberta-bpe", "trillion", "granite-docling"},
        {S::kGpt2});
    // GPT-2 split after isolating every digit.
    add({"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2"},
        {S::kEachNumber, S::kGpt2});
    add({"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
         "jina-v5-nano"},
        {S::kLlama3}, /*ignore_merges=*/true, /*add_bos=*/true);
    add({"dbrx", "smaug-bpe"}, {S::kLlama3});
    add({"chatglm-bpe"}, {S::kLlama3}, false, false, /*no_bos=*/true);
    add({"glm4", "glm5"}, {S::kLlama3}, /*ignore_merges=*/true, false, /*no_bos=*/true);
    add({"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "megrez", "hunyuan",
         "solar-open", "grok-2"},
        {S::kQwen2});
    return v;
  }();
  return r;
}

constexpr uint8_t kLN = kLetter | kNumber;

// Matchers: given a piece [.., end) and a position inside it, return the length (>= 1, in
// codepoints) of the match the regex finds starting exactly there. Lookaheads see only the
// piece, as they would when a regex runs on each piece separately.
struct Piece {
  const uint32_t* cp;
  const uint8_t* fl;
  size_t end;
  bool letter(size_t i) const { return i < end && (fl[i] & kLetter); }
  bool number(size_t i) const { return i < end && (fl[i] & kNumber); }
  bool space(size_t i) const { return i < end && (fl[i] & kSpace); }
  // [^\s\p{L}\p{N}]
  bool other(size_t i) const { return i < end && !(fl[i] & (kSpace | kLN)); }
  bool crlf(size_t i) const { return i < end && (cp[i] == '\r' || cp[i] == '\n'); }
  size_t run(size_t i, bool (Piece::*pred)(size_t) const) const {
    while ((this->*pred)(i)) ++i;
    return i;
  }
};

inline uint32_t ascii_lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// 's|'t|'re|'ve|'m|'ll|'d, optionally case-insensitive. Returns the length or 0.
size_t match_contraction(const Piece& p, size_t i, bool fold_case) {
  if (p.cp[i] != '\'' || i + 1 >= p.end) return 0;
  auto at = [&](size_t k) { return fold_case ? ascii_lower(p.cp[k]) : p.cp[k]; };
  const uint32_t a = at(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= p.end) return 0;
  const uint32_t b = at(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// \s+(?!\S)|\s+ at a whitespace run of length k starting at i: a run followed by a
// non-space gives back its last character, so the next word can carry it as a leading space.
size_t match_space_run(const Piece& p, size_t i) {
  const size_t k = p.run(i, &Piece::space) - i;
  if (k >= 2 && i + k < p.end) return k - 1;
  return k > 0 ? k : 1;
}

size_t match_gpt2(const Piece& p, size_t i) {
  if (size_t n = match_contraction(p, i, false)) return n;
  const size_t j = i + (p.cp[i] == ' ' ? 1 : 0);  // the optional leading space
  if (p.letter(j)) return p.run(j, &Piece::letter) - i;
  if (p.number(j)) return p.run(j, &Piece::number) - i;
  if (p.other(j)) return p.run(j, &Piece::other) - i;
  return match_space_run(p, i);
}

size_t match_llama3(const Piece& p, size_t i, size_t max_digits) {
  if (size_t n = match_contraction(p, i, true)) return n;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (p.letter(i)) return p.run(i, &Piece::letter) - i;
  if (!p.crlf(i) && !p.number(i) && p.letter(i + 1)) return p.run(i + 1, &Piece::letter) - i;
  // \p{N}{1,K}
  if (p.number(i)) {
    size_t k = 1;
    while (k < max_digits && p.number(i + k)) ++k;
    return k;
  }
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  const size_t j = i + (p.cp[i] == ' ' ? 1 : 0);
  if (p.other(j)) return p.run(p.run(j, &Piece::other), &Piece::crlf) - i;
  // \s*[\r\n]+ : greedy \s* backs off to the last line break of the whitespace run.
  const size_t ws_end = p.run(i, &Piece::space);
  for (size_t k = ws_end; k > i; --k) {
    if (p.crlf(k - 1)) return k - i;
  }
  return match_space_run(p, i);
}

// A "find all" stage: every match becomes a piece, and so does each stretch between matches.
template <class Match>
void split_find_all(const Piece& p, size_t begin, std::vector<Span>& out, Match match) {
  size_t gap = begin;
  size_t i = begin;
  while (i < p.end) {
    const size_t n = match(i);
    if (n == 0) {
      ++i;
      continue;
    }
    if (gap < i) out.emplace_back(gap, i);
    out.emplace_back(i, i + n);
    i += n;
    gap = i;
  }
  if (gap < p.end) out.emplace_back(gap, p.end);
}

// A stage whose regex matches at every position: the matches tile the piece.
template <class Match>
void split_tiling(const Piece& p, size_t begin, std::vector<Span>& out, Match match) {
  size_t i = begin;
  while (i < p.end) {
    size_t n = match(i);
    if (n == 0 || i + n > p.end) n = 1;  // defensive: always make progress
    out.emplace_back(i, i + n);
    i += n;
  }
}

void run_stage(PreStage stage, const Piece& p, size_t begin, std::vector<Span>& out) {
  switch (stage) {
    case PreStage::kGpt2:
      return split_tiling(p, begin, out, [&](size_t i) { return match_gpt2(p, i); });
    case PreStage::kLlama3:
      return split_tiling(p, begin, out, [&](size_t i) { return match_llama3(p, i, 3); });
    case PreStage::kQwen2:
      return split_tiling(p, begin, out, [&](size_t i) { return match_llama3(p, i, 1); });
    case PreStage::kEachNumber:
      return split_find_all(p, begin, out, [&](size_t i) -> size_t { return p.number(i) ? 1 : 0; });
    case PreStage::kNumberRuns:
      return split_find_all(p, begin, out, [&](size_t i) { return p.run(i, &Piece::number) - i; });
    case PreStage::kPunctRuns: {
      auto punct = [&](size_t i) {
        if (i >= p.end) return false;
        const uint32_t c = p.cp[i];
        return (p.fl[i] & kPunct) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' ||
               c == '^' || c == '~' || c == '|';
      };
      return split_find_all(p, begin, out, [&](size_t i) {
        size_t j = i;
        while (punct(j)) ++j;
        return j - i;
      });
    }
    case PreStage::kDigitTriples:
      return split_find_all(p, begin, out, [&](size_t i) -> size_t {
        auto d = [&](size_t k) { return k < p.end && p.cp[k] >= '0' && p.cp[k] <= '9'; };
        return (d(i) && d(i + 1) && d(i + 2)) ? 3 : 0;
      });
  }
}

}  // namespace

const PreTypeInfo* find_pre_type(std::string_view name) {
  for (const PreTypeInfo& t : registry()) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

std::vector<Span> pretokenize(const std::vector<uint32_t>& cps, const std::vector<uint8_t>& flags,
                              const std::vector<PreStage>& stages) {
  std::vector<Span> pieces;
  if (cps.empty()) return pieces;
  pieces.emplace_back(0, static_cast<uint32_t>(cps.size()));
  std::vector<Span> next;
  for (PreStage stage : stages) {
    next.clear();
    next.reserve(pieces.size() * 2);
    for (const Span& s : pieces) {
      Piece p{cps.data(), flags.data(), s.second};
      run_stage(stage, p, s.first, next);
    }
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace osprey::tok
