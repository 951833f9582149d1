#include "engine/grammar/token_mask.h"

#include <algorithm>
#include <limits>

namespace osprey::grammar {

Vocab::Vocab(std::vector<std::string> pieces, std::vector<bool> eog) : pieces_(std::move(pieces)), eog_(std::move(eog)) {
  eog_.resize(pieces_.size(), false);
  for (size_t i = 0; i < eog_.size(); ++i)
    if (eog_[i]) {
      first_eog_ = (int32_t)i;
      break;
    }
  // Sorted pieces make every trie node's children and tokens contiguous: build breadth by
  // breadth would need maps, depth-first over the sorted list needs only a path stack.
  std::vector<int32_t> order;
  for (size_t i = 0; i < pieces_.size(); ++i)
    if (!pieces_[i].empty() && !eog_[i]) order.push_back((int32_t)i);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return pieces_[(size_t)a] < pieces_[(size_t)b]; });
  struct Build {
    std::vector<std::pair<uint8_t, uint32_t>> kids;
    std::vector<int32_t> toks;
  };
  std::vector<Build> b(1);
  for (int32_t id : order) {
    uint32_t node = 0;
    for (unsigned char c : pieces_[(size_t)id]) {
      auto& kids = b[node].kids;
      if (!kids.empty() && kids.back().first == c) {
        node = kids.back().second;
      } else {
        kids.push_back({c, (uint32_t)b.size()});
        b.emplace_back();
        node = (uint32_t)b.size() - 1;
      }
    }
    b[node].toks.push_back(id);
  }
  trie_.resize(b.size());
  for (size_t i = 0; i < b.size(); ++i) {
    trie_[i] = {(uint32_t)children_.size(), (uint32_t)b[i].kids.size(), (uint32_t)token_ids_.size(),
                (uint32_t)b[i].toks.size()};
    children_.insert(children_.end(), b[i].kids.begin(), b[i].kids.end());
    token_ids_.insert(token_ids_.end(), b[i].toks.begin(), b[i].toks.end());
  }
}

TokenMatcher::TokenMatcher(std::shared_ptr<const Grammar> g, std::shared_ptr<const Vocab> v)
    : v_(std::move(v)), m_(std::move(g)) {}

bool TokenMatcher::allows(int32_t id) {
  if (id < 0 || id >= v_->size()) return false;
  if (v_->is_eog(id)) return m_.can_end();
  const std::string& p = v_->piece(id);
  if (p.empty()) return false;
  const size_t mark = m_.mark();
  Matcher::State a = m_.state(), b;
  bool ok = true;
  for (unsigned char c : p) {
    if (!(ok = m_.step(a, c, &b))) break;
    std::swap(a, b);
  }
  m_.rollback(mark);
  return ok;
}

bool TokenMatcher::accept(int32_t id) {
  if (id < 0 || id >= v_->size()) return false;
  if (v_->is_eog(id)) return m_.can_end();
  const std::string& p = v_->piece(id);
  return !p.empty() && m_.accept(p);
}

int32_t TokenMatcher::intern(Matcher::State&& s) {
  const uint64_t h = m_.hash(s);
  auto [lo, hi] = state_ids_.equal_range(h);
  for (auto it = lo; it != hi; ++it)
    if (m_.same(states_[(size_t)it->second], s)) return it->second;
  states_.push_back(std::move(s));
  steps_.resize(states_.size() * 256, -2);
  state_ids_.emplace(h, (int32_t)states_.size() - 1);
  return (int32_t)states_.size() - 1;
}

void TokenMatcher::walk(uint32_t node, int32_t state, std::vector<uint8_t>* allowed) {
  const Vocab::TrieNode& tn = v_->trie()[node];
  for (uint32_t k = 0; k < tn.n_children; ++k) {
    const auto [byte, child] = v_->children()[tn.first_child + k];
    const size_t key = (size_t)state * 256 + byte;
    int32_t next = steps_[key];
    if (next == -2) {
      Matcher::State out;
      next = m_.step(states_[(size_t)state], byte, &out) ? intern(std::move(out)) : -1;
      steps_[key] = next;
    }
    if (next < 0) continue;
    const Vocab::TrieNode& cn = v_->trie()[child];
    for (uint32_t t = 0; t < cn.n_tokens; ++t) (*allowed)[(size_t)v_->tokens()[cn.first_token + t]] = 1;
    walk(child, next, allowed);
  }
}

void TokenMatcher::allowed(std::vector<uint8_t>* allowed, int64_t n) {
  allowed->assign((size_t)std::max<int64_t>(n, 0), 0);
  if (n > v_->size()) allowed->resize((size_t)v_->size());
  // The walk's frames live until it ends; then the arena returns to the committed state.
  const size_t mark = m_.mark();
  states_.clear();
  state_ids_.clear();
  steps_.clear();
  walk(0, intern(Matcher::State(m_.state())), allowed);
  m_.rollback(mark);
  if (m_.can_end())
    for (int32_t id = 0; id < (int32_t)allowed->size(); ++id)
      if (v_->is_eog(id)) (*allowed)[(size_t)id] = 1;
  allowed->resize((size_t)std::max<int64_t>(n, 0), 0);
}

int64_t TokenMatcher::mask_logits(float* logits, int64_t n) {
  allowed(&ok_, n);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i)
    if (!ok_[(size_t)i]) logits[i] = -std::numeric_limits<float>::infinity();
    else ++kept;
  return kept;
}

}  // namespace osprey::grammar
