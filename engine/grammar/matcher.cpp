#include "engine/grammar/matcher.h"

#include <algorithm>

namespace osprey::grammar {
namespace {

// Bounds that keep a hostile or recursive grammar from exhausting memory or the C++ stack:
// alternatives beyond them are dropped (the output stays valid, just less varied).
constexpr int kMaxExpandDepth = 256;
constexpr uint32_t kMaxStackDepth = 4096;
constexpr size_t kMaxStacks = 1024;

constexpr uint32_t kMinForLength[5] = {0, 0, 0x80, 0x800, 0x10000};

}  // namespace

Matcher::Matcher(std::shared_ptr<const Grammar> g) : g_(std::move(g)) {
  for (uint32_t start : g_->alternatives(g_->root())) expand(start, -1, &state_.stacks, 0);
}

int32_t Matcher::push(uint32_t pos, int32_t parent) {
  const uint32_t depth = parent < 0 ? 1 : nodes_[(size_t)parent].depth + 1;
  if (depth > kMaxStackDepth) return -2;
  nodes_.push_back({pos, parent, depth});
  return (int32_t)nodes_.size() - 1;
}

bool Matcher::same_stack(int32_t a, int32_t b) const {
  while (a >= 0 && b >= 0) {
    if (a == b) return true;
    if (nodes_[(size_t)a].pos != nodes_[(size_t)b].pos) return false;
    a = nodes_[(size_t)a].parent;
    b = nodes_[(size_t)b].parent;
  }
  return a == b;
}

void Matcher::add_unique(std::vector<int32_t>* out, int32_t s) const {
  if (out->size() >= kMaxStacks) return;
  for (int32_t t : *out)
    if (same_stack(s, t)) return;
  out->push_back(s);
}

// Brings a position to a normal form where every stack top is a CHARS element (or the stack is
// empty): rules are expanded into one stack per alternative, finished frames are popped.
void Matcher::expand(uint32_t pos, int32_t parent, std::vector<int32_t>* out, int guard) {
  if (guard > kMaxExpandDepth) return;
  const std::vector<Element>& el = g_->elements();
  const Element e = el[pos];
  if (e.kind == Element::END) {
    if (parent < 0) add_unique(out, -1);
    else expand(nodes_[(size_t)parent].pos, nodes_[(size_t)parent].parent, out, guard + 1);
  } else if (e.kind == Element::CHARS) {
    const int32_t n = push(pos, parent);
    if (n >= 0) add_unique(out, n);
  } else {
    // A frame that would only pop is not pushed: right recursion then runs in constant depth.
    int32_t cont = parent;
    if (el[pos + 1].kind != Element::END) {
      cont = push(pos + 1, parent);
      if (cont == -2) return;
    }
    for (uint32_t start : g_->alternatives(e.index)) expand(start, cont, out, guard + 1);
  }
}

bool Matcher::advance(const std::vector<int32_t>& in, uint32_t cp, std::vector<int32_t>* out) {
  out->clear();
  const std::vector<Element>& el = g_->elements();
  for (int32_t s : in) {
    if (s < 0) continue;
    const Node n = nodes_[(size_t)s];
    if (g_->charset(el[n.pos].index).contains(cp)) expand(n.pos + 1, n.parent, out, 0);
  }
  return !out->empty();
}

// Whether some code point that starts with the partial sequence is allowed at a stack top.
bool Matcher::feasible(const State& s) const {
  const int shift = 6 * s.need;
  uint32_t lo = s.partial << shift, hi = lo | ((1u << shift) - 1);
  lo = std::max(lo, kMinForLength[s.len]);
  hi = std::min<uint32_t>(hi, 0x10FFFF);
  if (lo > hi || (lo >= 0xD800 && hi <= 0xDFFF)) return false;
  const std::vector<Element>& el = g_->elements();
  for (int32_t t : s.stacks)
    if (t >= 0 && g_->charset(el[nodes_[(size_t)t].pos].index).intersects(lo, hi)) return true;
  return false;
}

bool Matcher::step(const State& in, uint8_t b, State* out) {
  out->need = out->len = 0;
  out->partial = 0;
  if (in.need == 0) {
    if (b < 0x80) return advance(in.stacks, b, &out->stacks);
    const int len = (b >= 0xC2 && b <= 0xDF) ? 2 : (b >= 0xE0 && b <= 0xEF) ? 3 : (b >= 0xF0 && b <= 0xF4) ? 4 : 0;
    if (len == 0) return false;
    out->stacks = in.stacks;
    out->partial = b & (0x7F >> len);
    out->need = (uint8_t)(len - 1);
    out->len = (uint8_t)len;
    return feasible(*out);
  }
  if ((b & 0xC0) != 0x80) return false;
  const uint32_t cp = (in.partial << 6) | (b & 0x3F);
  if (in.need > 1) {
    out->stacks = in.stacks;
    out->partial = cp;
    out->need = (uint8_t)(in.need - 1);
    out->len = in.len;
    return feasible(*out);
  }
  if (cp < kMinForLength[in.len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
  return advance(in.stacks, cp, &out->stacks);
}

uint64_t Matcher::hash(const State& s) const {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)s.partial << 16) ^ ((uint64_t)s.need << 8) ^ s.len;
  for (int32_t t : s.stacks) {
    h = (h ^ 0xFF) * 0x100000001B3ull;
    for (; t >= 0; t = nodes_[(size_t)t].parent) h = (h ^ nodes_[(size_t)t].pos) * 0x100000001B3ull;
  }
  return h;
}

bool Matcher::same(const State& a, const State& b) const {
  if (a.partial != b.partial || a.need != b.need || a.len != b.len || a.stacks.size() != b.stacks.size()) return false;
  for (size_t i = 0; i < a.stacks.size(); ++i)
    if (!same_stack(a.stacks[i], b.stacks[i])) return false;
  return true;
}

bool Matcher::accept(std::string_view bytes) {
  State cur = state_;
  for (unsigned char b : bytes) {
    if (!step(cur, b, &scratch_)) return false;
    std::swap(cur, scratch_);
  }
  state_ = std::move(cur);
  return true;
}

bool Matcher::can_end() const {
  return state_.need == 0 && std::find(state_.stacks.begin(), state_.stacks.end(), -1) != state_.stacks.end();
}

bool Matcher::must_end() const { return state_.need == 0 && state_.stacks.size() == 1 && state_.stacks[0] == -1; }

}  // namespace osprey::grammar
