// An incremental matcher: feeds bytes (UTF-8) through a Grammar and says whether they can
// still continue a sentence of it. The parse state is the set of all ways the input so far can
// continue: a set of stacks of grammar positions. Stacks are linked lists in an arena, so a step
// shares every frame below the top, and a caller exploring many continuations (token masks)
// can mark the arena and roll it back.
#pragma once
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "engine/grammar/grammar.h"

namespace osprey::grammar {

class Matcher {
 public:
  // A parse state: stack ids (-1: the empty stack, i.e. the input is complete) and the code
  // point being assembled when the input stops inside a UTF-8 sequence.
  struct State {
    std::vector<int32_t> stacks;
    uint32_t partial = 0;  // bits of the unfinished code point so far
    uint8_t need = 0;      // continuation bytes still missing
    uint8_t len = 0;       // byte length of the unfinished sequence
  };

  explicit Matcher(std::shared_ptr<const Grammar> g);

  // Feeds bytes; false (and the state is left unchanged) if they cannot continue a valid prefix.
  bool accept(std::string_view bytes);
  bool can_end() const;   // what was fed is a complete sentence
  bool must_end() const;  // complete, and nothing may follow
  const State& state() const { return state_; }

  // The primitive behind accept(): the state after one more byte, built in *out; false if
  // there is none. Appends frames to the arena (see mark/rollback).
  bool step(const State& in, uint8_t byte, State* out);
  // Structural identity of states (equal stacks in the same order), so callers can memoize.
  uint64_t hash(const State& s) const;
  bool same(const State& a, const State& b) const;
  size_t mark() const { return nodes_.size(); }
  void rollback(size_t mark) { nodes_.resize(mark); }

 private:
  struct Node {
    uint32_t pos;    // element index: the next element to match in this frame
    int32_t parent;  // the frame below, -1 at the bottom
    uint32_t depth;
  };
  int32_t push(uint32_t pos, int32_t parent);
  void expand(uint32_t pos, int32_t parent, std::vector<int32_t>* out, int guard);
  void add_unique(std::vector<int32_t>* out, int32_t s) const;
  bool same_stack(int32_t a, int32_t b) const;
  bool advance(const std::vector<int32_t>& in, uint32_t cp, std::vector<int32_t>* out);
  bool feasible(const State& s) const;

  std::shared_ptr<const Grammar> g_;
  std::vector<Node> nodes_;
  State state_, scratch_;
};

}  // namespace osprey::grammar
