// The two merge loops. Both keep symbols in a doubly linked list over the input and a heap of
// candidate pairs; a popped pair whose symbols changed since it was pushed is stale and skipped.
// Ties break toward the leftmost pair, which is what makes results match the references.
#include <algorithm>
#include <queue>

#include "tokenizer_impl.h"
#include "unicode.h"

namespace osprey::tok {

namespace {

struct Sym {
  uint32_t start, len;
  int32_t prev, next;
};

// Split into characters by lead byte (an invalid lead still yields one symbol per its nibble
// rule, clamped to the end), linked left to right.
std::vector<Sym> split_chars(std::string_view s) {
  std::vector<Sym> syms;
  syms.reserve(s.size());
  size_t off = 0;
  while (off < s.size()) {
    size_t n = std::min(utf8_len_from_lead(static_cast<uint8_t>(s[off])), s.size() - off);
    const int32_t idx = static_cast<int32_t>(syms.size());
    syms.push_back({static_cast<uint32_t>(off), static_cast<uint32_t>(n), idx - 1,
                    off + n == s.size() ? -1 : idx + 1});
    off += n;
  }
  return syms;
}

int32_t lookup(const TextMap& vocab, std::string_view s) {
  auto it = vocab.find(s);
  return it == vocab.end() ? -1 : it->second;
}

template <class Key>
struct Cand {
  Key key;  // smaller key = merge first
  int32_t left, right;
  uint32_t size;  // combined byte length when pushed, to detect staleness
};

}  // namespace

int32_t BpeMerges::find(std::string_view left, std::string_view right, std::string& scratch) const {
  const uint32_t n = static_cast<uint32_t>(left.size());
  scratch.assign(reinterpret_cast<const char*>(&n), sizeof(n));
  scratch.append(left);
  scratch.append(right);
  auto it = rank.find(std::string_view(scratch));
  return it == rank.end() ? -1 : it->second;
}

void bpe_word(const TextMap& vocab, const BpeMerges& merges, std::string_view word,
              std::vector<int32_t>& out) {
  std::vector<Sym> syms = split_chars(word);
  using C = Cand<std::pair<int32_t, int32_t>>;  // (rank, left index)
  auto later = [](const C& a, const C& b) { return a.key > b.key; };
  std::priority_queue<C, std::vector<C>, decltype(later)> heap(later);
  std::string scratch;
  auto text_of = [&](const Sym& s) { return word.substr(s.start, s.len); };
  auto push = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const int32_t rk = merges.find(text_of(syms[l]), text_of(syms[r]), scratch);
    if (rk >= 0) heap.push({{rk, l}, l, r, syms[l].len + syms[r].len});
  };
  for (size_t i = 1; i < syms.size(); ++i) push(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));

  while (!heap.empty()) {
    const C c = heap.top();
    heap.pop();
    Sym& l = syms[c.left];
    Sym& r = syms[c.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != c.size) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = c.left;
    push(l.prev, c.left);
    push(c.left, l.next);
  }

  for (const Sym& s : syms) {
    if (s.len == 0) continue;
    const std::string_view t = text_of(s);
    const int32_t id = lookup(vocab, t);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    // Not a token (merges disagree with the vocabulary): fall back to single-byte tokens that
    // exist, as llama.cpp does, rather than failing.
    for (char ch : t) {
      const int32_t b = lookup(vocab, std::string_view(&ch, 1));
      if (b >= 0) out.push_back(b);
    }
  }
}

void spm_text(const TextMap& vocab, const std::vector<float>& scores, const int32_t byte_tokens[256],
              int32_t unk, std::string_view text, std::vector<int32_t>& out) {
  std::vector<Sym> syms = split_chars(text);
  struct Key {
    float score;
    int32_t left;
    // "greater" = merge later: lower score, then further right
    bool operator>(const Key& o) const { return score < o.score || (score == o.score && left > o.left); }
  };
  using C = Cand<Key>;
  auto later = [](const C& a, const C& b) { return a.key > b.key; };
  std::priority_queue<C, std::vector<C>, decltype(later)> heap(later);
  auto push = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const uint32_t size = syms[l].len + syms[r].len;  // l and r are adjacent in the text
    const int32_t id = lookup(vocab, text.substr(syms[l].start, size));
    if (id < 0 || static_cast<size_t>(id) >= scores.size()) return;
    heap.push({{scores[id], l}, l, r, size});
  };
  for (size_t i = 1; i < syms.size(); ++i) push(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));

  while (!heap.empty()) {
    const C c = heap.top();
    heap.pop();
    Sym& l = syms[c.left];
    Sym& r = syms[c.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != c.size) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = c.left;
    push(l.prev, c.left);
    push(c.left, l.next);
  }

  for (int32_t i = syms.empty() ? -1 : 0; i >= 0; i = syms[i].next) {
    const Sym& s = syms[i];
    const int32_t id = lookup(vocab, text.substr(s.start, s.len));
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    // A character the vocabulary lacks: one byte token per byte.
    for (uint32_t k = 0; k < s.len; ++k) {
      const int32_t b = byte_tokens[static_cast<uint8_t>(text[s.start + k])];
      if (b >= 0) out.push_back(b);
      else if (unk >= 0) out.push_back(unk);
    }
  }
}

}  // namespace osprey::tok
