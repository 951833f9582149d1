// A context-free grammar over Unicode code points, the form JSON schemas and regexes compile
// to. Rules are alternatives of sequences; an element matches one code point from a set or
// expands a rule. Grammars are built with GrammarBuilder and are immutable once built, so one
// grammar can drive many matchers (one per request) at once.
//
// Built grammars must not be left-recursive and a repeated body must not match the empty
// string (the builder's users guarantee both); the matcher also caps expansion depth, so a
// grammar that breaks this loses alternatives instead of hanging.
#pragma once
#include <cstdint>
#include <map>
#include <string_view>
#include <utility>
#include <vector>

namespace osprey::grammar {

// A set of code points: sorted, disjoint, inclusive ranges plus an ASCII bitmap, because
// nearly every test a matcher makes is on an ASCII byte.
class CharSet {
 public:
  CharSet() = default;
  static CharSet range(uint32_t lo, uint32_t hi);
  static CharSet of(std::string_view ascii);  // each byte of `ascii`
  CharSet& add(uint32_t lo, uint32_t hi);
  CharSet& add(const CharSet& o);
  CharSet negated() const;  // over [0, 0x10FFFF]
  CharSet minus(const CharSet& o) const;
  bool contains(uint32_t c) const {
    if (c < 128) return (ascii_[c >> 6] >> (c & 63)) & 1;
    for (const auto& [lo, hi] : ranges_)
      if (c >= lo && c <= hi) return true;
    return false;
  }
  bool intersects(uint32_t lo, uint32_t hi) const;
  bool empty() const { return ranges_.empty(); }
  const std::vector<std::pair<uint32_t, uint32_t>>& ranges() const { return ranges_; }
  bool operator<(const CharSet& o) const { return ranges_ < o.ranges_; }

 private:
  void normalize();
  std::vector<std::pair<uint32_t, uint32_t>> ranges_;
  uint64_t ascii_[2] = {0, 0};
};

struct Element {
  enum Kind : uint8_t { CHARS, RULE, END } kind;
  uint32_t index;  // CHARS: charset id; RULE: rule id; END: unused
};
using Seq = std::vector<Element>;

// The built form: each rule's alternatives are runs in one flat element array, each ending
// with END, so a parse position is a single index.
class Grammar {
 public:
  const std::vector<Element>& elements() const { return elems_; }
  const std::vector<uint32_t>& alternatives(uint32_t rule) const { return alts_[rule]; }
  const CharSet& charset(uint32_t id) const { return sets_[id]; }
  uint32_t root() const { return root_; }
  size_t size() const { return elems_.size(); }

 private:
  friend class GrammarBuilder;
  std::vector<Element> elems_;
  std::vector<std::vector<uint32_t>> alts_;  // per rule: start index of each alternative
  std::vector<CharSet> sets_;
  uint32_t root_ = 0;
};

class GrammarBuilder {
 public:
  Seq chars(const CharSet& s);
  Seq literal(std::string_view utf8);  // one element per code point
  uint32_t new_rule();                  // declared now, defined later (recursion)
  void define(uint32_t rule, std::vector<Seq> alts);
  Seq rule(std::vector<Seq> alts);      // a new rule with these alternatives, as one element
  Seq optional(const Seq& s) { return rule({s, {}}); }
  Seq star(const Seq& s);                          // s must not match ""
  Seq repeat(const Seq& s, int64_t min, int64_t max);  // max < 0: unbounded
  size_t size() const { return n_elems_; }
  Grammar build(const Seq& root) &&;

 private:
  std::vector<std::vector<Seq>> rules_;
  std::vector<CharSet> sets_;
  std::map<CharSet, uint32_t> set_ids_;
  size_t n_elems_ = 0;
};

Seq operator+(Seq a, const Seq& b);

// Decodes one UTF-8 code point at s[*i] (advancing *i); invalid bytes decode as themselves.
uint32_t next_code_point(std::string_view s, size_t* i);

}  // namespace osprey::grammar
