#include "engine/grammar/grammar.h"

#include <algorithm>

namespace osprey::grammar {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;

CharSet CharSet::range(uint32_t lo, uint32_t hi) { return CharSet().add(lo, hi); }

CharSet CharSet::of(std::string_view ascii) {
  CharSet s;
  for (unsigned char c : ascii) s.ranges_.push_back({c, c});
  s.normalize();
  return s;
}

CharSet& CharSet::add(uint32_t lo, uint32_t hi) {
  if (lo <= hi) ranges_.push_back({lo, std::min(hi, kMaxCodePoint)});
  normalize();
  return *this;
}

CharSet& CharSet::add(const CharSet& o) {
  ranges_.insert(ranges_.end(), o.ranges_.begin(), o.ranges_.end());
  normalize();
  return *this;
}

void CharSet::normalize() {
  std::sort(ranges_.begin(), ranges_.end());
  std::vector<std::pair<uint32_t, uint32_t>> out;
  for (const auto& r : ranges_) {
    if (!out.empty() && r.first <= out.back().second + 1) out.back().second = std::max(out.back().second, r.second);
    else out.push_back(r);
  }
  ranges_ = std::move(out);
  ascii_[0] = ascii_[1] = 0;
  for (const auto& [lo, hi] : ranges_)
    for (uint32_t c = lo; c <= hi && c < 128; ++c) ascii_[c >> 6] |= 1ull << (c & 63);
}

CharSet CharSet::negated() const {
  CharSet s;
  uint32_t next = 0;
  for (const auto& [lo, hi] : ranges_) {
    if (lo > next) s.ranges_.push_back({next, lo - 1});
    next = hi + 1;
  }
  if (next <= kMaxCodePoint) s.ranges_.push_back({next, kMaxCodePoint});
  s.normalize();
  return s;
}

CharSet CharSet::minus(const CharSet& o) const {
  CharSet keep = o.negated();
  CharSet s;
  for (const auto& [a, b] : ranges_)
    for (const auto& [c, d] : keep.ranges_)
      if (std::max(a, c) <= std::min(b, d)) s.ranges_.push_back({std::max(a, c), std::min(b, d)});
  s.normalize();
  return s;
}

bool CharSet::intersects(uint32_t lo, uint32_t hi) const {
  for (const auto& [a, b] : ranges_)
    if (a <= hi && lo <= b) return true;
  return false;
}

uint32_t next_code_point(std::string_view s, size_t* i) {
  const unsigned char c = (unsigned char)s[*i];
  int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
  if (n < 0 || *i + (size_t)n >= s.size()) {
    ++*i;
    return c;
  }
  uint32_t cp = n == 0 ? c : c & (0x3F >> n);
  for (int k = 1; k <= n; ++k) {
    const unsigned char d = (unsigned char)s[*i + (size_t)k];
    if ((d & 0xC0) != 0x80) {
      ++*i;
      return c;
    }
    cp = (cp << 6) | (d & 0x3F);
  }
  *i += (size_t)n + 1;
  return cp;
}

Seq operator+(Seq a, const Seq& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Seq GrammarBuilder::chars(const CharSet& s) {
  auto it = set_ids_.find(s);
  if (it == set_ids_.end()) {
    it = set_ids_.emplace(s, (uint32_t)sets_.size()).first;
    sets_.push_back(s);
  }
  return {Element{Element::CHARS, it->second}};
}

Seq GrammarBuilder::literal(std::string_view utf8) {
  Seq out;
  for (size_t i = 0; i < utf8.size();) {
    const uint32_t c = next_code_point(utf8, &i);
    out.push_back(chars(CharSet::range(c, c))[0]);
  }
  return out;
}

uint32_t GrammarBuilder::new_rule() {
  rules_.emplace_back();
  return (uint32_t)rules_.size() - 1;
}

void GrammarBuilder::define(uint32_t rule, std::vector<Seq> alts) {
  for (const Seq& a : alts) n_elems_ += a.size() + 1;
  rules_[rule] = std::move(alts);
}

Seq GrammarBuilder::rule(std::vector<Seq> alts) {
  // A rule of one single-element alternative is that element.
  if (alts.size() == 1 && alts[0].size() == 1) return alts[0];
  const uint32_t r = new_rule();
  define(r, std::move(alts));
  return {Element{Element::RULE, r}};
}

Seq GrammarBuilder::star(const Seq& s) {
  const uint32_t r = new_rule();
  define(r, {s + Seq{Element{Element::RULE, r}}, {}});
  return {Element{Element::RULE, r}};
}

Seq GrammarBuilder::repeat(const Seq& s0, int64_t min, int64_t max) {
  const Seq s = s0.size() == 1 ? s0 : rule({s0});
  Seq out;
  for (int64_t i = 0; i < min; ++i) out = out + s;
  if (max < 0) return out + star(s);
  // s{0,k} as (s (s (...)?)?)?: right-nested, so the matcher's stacks stay flat.
  Seq tail;
  for (int64_t i = min; i < max; ++i) tail = optional(s + tail);
  return out + tail;
}

Grammar GrammarBuilder::build(const Seq& root) && {
  Grammar g;
  const uint32_t r = new_rule();
  define(r, {root});
  g.alts_.resize(rules_.size());
  for (size_t i = 0; i < rules_.size(); ++i)
    for (const Seq& alt : rules_[i]) {
      g.alts_[i].push_back((uint32_t)g.elems_.size());
      g.elems_.insert(g.elems_.end(), alt.begin(), alt.end());
      g.elems_.push_back(Element{Element::END, 0});
    }
  g.sets_ = std::move(sets_);
  g.root_ = r;
  return g;
}

}  // namespace osprey::grammar
