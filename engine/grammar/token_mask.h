// Grammar-constrained token choice: which tokens of a vocabulary can extend the output so far.
// A model's token byte strings are gathered once (Vocab) into a trie, so a full mask walks each
// shared prefix once and abandons a whole subtree at its first impossible byte. Samplers check
// the token they drew first (allows) and compute the full mask only when it was rejected.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/grammar/matcher.h"

namespace osprey::grammar {

class Vocab {
 public:
  // pieces[id]: the bytes token id adds to the text ("" for control tokens: never allowed);
  // eog[id]: ends generation (allowed exactly when the output is complete).
  Vocab(std::vector<std::string> pieces, std::vector<bool> eog);
  int32_t size() const { return (int32_t)pieces_.size(); }
  const std::string& piece(int32_t id) const { return pieces_[(size_t)id]; }
  bool is_eog(int32_t id) const { return eog_[(size_t)id]; }
  int32_t first_eog() const { return first_eog_; }

  struct TrieNode {
    uint32_t first_child = 0, n_children = 0;  // into children()
    uint32_t first_token = 0, n_tokens = 0;    // into tokens(): ids whose piece ends here
  };
  const std::vector<TrieNode>& trie() const { return trie_; }
  const std::vector<std::pair<uint8_t, uint32_t>>& children() const { return children_; }
  const std::vector<int32_t>& tokens() const { return token_ids_; }

 private:
  std::vector<std::string> pieces_;
  std::vector<bool> eog_;
  int32_t first_eog_ = -1;
  std::vector<TrieNode> trie_;
  std::vector<std::pair<uint8_t, uint32_t>> children_;
  std::vector<int32_t> token_ids_;
};

class TokenMatcher {
 public:
  TokenMatcher(std::shared_ptr<const Grammar> g, std::shared_ptr<const Vocab> v);
  bool allows(int32_t id);
  // Advances past the token; false (state unchanged) if it is not allowed.
  bool accept(int32_t id);
  // allowed[id] for every id < n (ids beyond the vocabulary are never allowed).
  void allowed(std::vector<uint8_t>* allowed, int64_t n);
  // Sets the logits of disallowed ids to -infinity; returns how many ids are allowed.
  int64_t mask_logits(float* logits, int64_t n);
  bool can_end() const { return m_.can_end(); }
  bool must_end() const { return m_.must_end(); }
  const Vocab& vocab() const { return *v_; }

 private:
  void walk(uint32_t node, int32_t state, std::vector<uint8_t>* allowed);
  int32_t intern(Matcher::State&& s);
  std::shared_ptr<const Vocab> v_;
  Matcher m_;
  // Memo of one mask computation: distinct parse states met in the trie walk, and the state
  // each (state, byte) steps to (-1: none). Many trie nodes share a state (inside a string,
  // every prefix of plain characters of the same length does), so most bytes are a lookup.
  std::vector<Matcher::State> states_;
  std::unordered_multimap<uint64_t, int32_t> state_ids_;
  std::vector<int32_t> steps_;  // [state * 256 + byte]: next state, -1 none, -2 not yet known
  std::vector<uint8_t> ok_;
};

}  // namespace osprey::grammar
