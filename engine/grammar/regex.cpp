#include "engine/grammar/regex.h"

#include <string>

namespace osprey::grammar {
namespace {

constexpr int64_t kMaxRepeat = 4096;

struct RegexError {
  std::string msg;
};

CharSet digit() { return CharSet::range('0', '9'); }
CharSet word() { return CharSet::range('0', '9').add('A', 'Z').add('a', 'z').add('_', '_'); }
CharSet space() { return CharSet::of(" \t\n\r\f\v"); }

class RegexParser {
 public:
  RegexParser(GrammarBuilder& b, std::string_view p) : b_(b), p_(p) {}

  Seq parse() {
    Seq out = alternation();
    if (i_ < p_.size()) fail(p_[i_] == ')' ? "unbalanced ')'" : "unexpected character");
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    throw RegexError{"invalid pattern " + std::string(p_) + ": " + why + " at offset " + std::to_string(i_)};
  }
  bool more() const { return i_ < p_.size(); }
  char peek() const { return p_[i_]; }

  Seq alternation() {
    std::vector<Seq> alts{concatenation()};
    while (more() && peek() == '|') {
      ++i_;
      alts.push_back(concatenation());
    }
    return alts.size() == 1 ? alts[0] : b_.rule(std::move(alts));
  }

  Seq concatenation() {
    Seq out;
    while (more() && peek() != '|' && peek() != ')') {
      Seq a = atom();
      out = out + quantified(std::move(a));
    }
    return out;
  }

  int64_t number() {
    if (!more() || peek() < '0' || peek() > '9') fail("expected a number in {}");
    int64_t v = 0;
    while (more() && peek() >= '0' && peek() <= '9') {
      v = v * 10 + (peek() - '0');
      if (v > kMaxRepeat) fail("repetition count above " + std::to_string(kMaxRepeat));
      ++i_;
    }
    return v;
  }

  Seq quantified(Seq a) {
    if (!more()) return a;
    int64_t lo = 1, hi = 1;
    const char c = peek();
    if (c == '*') lo = 0, hi = -1, ++i_;
    else if (c == '+') lo = 1, hi = -1, ++i_;
    else if (c == '?') lo = 0, hi = 1, ++i_;
    else if (c == '{') {
      ++i_;
      lo = hi = number();
      if (more() && peek() == ',') {
        ++i_;
        hi = (more() && peek() == '}') ? -1 : number();
      }
      if (!more() || peek() != '}') fail("unterminated {}");
      ++i_;
      if (hi >= 0 && hi < lo) fail("{n,m} with m < n");
    } else {
      return a;
    }
    if (more() && peek() == '?') ++i_;  // lazy: the same language
    if (more() && (peek() == '*' || peek() == '+' || peek() == '?' || peek() == '{')) fail("nothing to repeat");
    return b_.repeat(a, lo, hi);
  }

  uint32_t hex(int n) {
    uint32_t v = 0;
    for (int k = 0; k < n; ++k) {
      if (!more() || !isxdigit((unsigned char)peek())) fail("bad hex escape");
      const char h = peek();
      v = v * 16 + (uint32_t)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
      ++i_;
    }
    return v;
  }

  // After a backslash: the set it stands for.
  CharSet escape() {
    if (!more()) fail("trailing backslash");
    const char c = p_[i_++];
    switch (c) {
      case 'd': return digit();
      case 'D': return digit().negated();
      case 'w': return word();
      case 'W': return word().negated();
      case 's': return space();
      case 'S': return space().negated();
      case 'n': return CharSet::of("\n");
      case 't': return CharSet::of("\t");
      case 'r': return CharSet::of("\r");
      case 'f': return CharSet::of("\f");
      case 'v': return CharSet::of("\v");
      case 'x': { const uint32_t v = hex(2); return CharSet::range(v, v); }
      case 'u': { const uint32_t v = hex(4); return CharSet::range(v, v); }
      case 'b': case 'B': fail("word boundaries are not supported");
      default:
        if (isalnum((unsigned char)c)) fail(std::string("unsupported escape \\") + c);
        return CharSet::range((unsigned char)c, (unsigned char)c);
    }
  }

  uint32_t literal_cp() {
    size_t j = i_;
    const uint32_t cp = next_code_point(p_, &j);
    i_ = j;
    return cp;
  }

  CharSet char_class() {
    bool negate = false;
    if (more() && peek() == '^') negate = true, ++i_;
    CharSet s;
    bool first = true;
    while (more() && (peek() != ']' || first)) {
      first = false;
      CharSet lo_set;
      uint32_t lo;
      bool single = true;
      if (peek() == '\\') {
        ++i_;
        lo_set = escape();
        single = lo_set.ranges().size() == 1 && lo_set.ranges()[0].first == lo_set.ranges()[0].second;
        lo = single ? lo_set.ranges()[0].first : 0;
      } else {
        lo = literal_cp();
        lo_set = CharSet::range(lo, lo);
      }
      if (single && i_ + 1 < p_.size() && peek() == '-' && p_[i_ + 1] != ']') {
        ++i_;
        uint32_t hi;
        if (peek() == '\\') {
          ++i_;
          CharSet h = escape();
          if (h.ranges().size() != 1 || h.ranges()[0].first != h.ranges()[0].second) fail("bad class range");
          hi = h.ranges()[0].first;
        } else {
          hi = literal_cp();
        }
        if (hi < lo) fail("class range out of order");
        s.add(lo, hi);
      } else {
        s.add(lo_set);
      }
    }
    if (!more()) fail("unterminated [");
    ++i_;  // ]
    return negate ? s.negated() : s;
  }

  Seq atom() {
    const char c = peek();
    if (c == '(') {
      ++i_;
      if (i_ + 1 < p_.size() && peek() == '?') {
        if (p_[i_ + 1] != ':') fail("lookaround and named groups are not supported");
        i_ += 2;
      }
      Seq inner = alternation();
      if (!more() || peek() != ')') fail("unbalanced '('");
      ++i_;
      return inner.empty() ? inner : b_.rule({inner});
    }
    if (c == '[') {
      ++i_;
      return json_string_char(b_, char_class());
    }
    if (c == '.') {
      ++i_;
      return json_string_char(b_, CharSet::of("\n").negated());
    }
    if (c == '\\') {
      ++i_;
      return json_string_char(b_, escape());
    }
    if (c == '^' || c == '$') fail("anchors are only supported at the start and end");
    if (c == '*' || c == '+' || c == '?' || c == '{') fail("nothing to repeat");
    const uint32_t cp = literal_cp();
    return json_string_char(b_, CharSet::range(cp, cp));
  }

  GrammarBuilder& b_;
  std::string_view p_;
  size_t i_ = 0;
};

}  // namespace

Seq json_string_char(GrammarBuilder& b, const CharSet& decoded) {
  const CharSet raw = decoded.minus(CharSet::of("\"\\").add(0, 0x1F));
  std::vector<Seq> alts;
  if (!raw.empty()) alts.push_back(b.chars(raw));
  // Escapes share one alternative (backslash, then a set of letters): fewer alternatives are
  // fewer parse stacks per byte, which is what a token mask inside a string costs.
  static const std::pair<uint32_t, char> kEscaped[] = {
      {'"', '"'}, {'\\', '\\'}, {'\n', 'n'}, {'\t', 't'}, {'\r', 'r'}, {'\f', 'f'}, {'\b', 'b'}};
  CharSet letters;
  for (const auto& [c, letter] : kEscaped)
    if (decoded.contains(c)) letters.add((uint32_t)letter, (uint32_t)letter);
  if (!letters.empty()) alts.push_back(b.literal("\\") + b.chars(letters));
  return b.rule(std::move(alts));
}

Result<Seq> regex_to_grammar(GrammarBuilder& b, std::string_view pattern) {
  std::string_view p = pattern;
  const bool anchored_start = !p.empty() && p.front() == '^';
  if (anchored_start) p.remove_prefix(1);
  // A final `$` anchors unless it is escaped (an odd run of backslashes before it).
  bool anchored_end = false;
  if (!p.empty() && p.back() == '$') {
    size_t bs = 0;
    while (bs + 1 < p.size() && p[p.size() - 2 - bs] == '\\') ++bs;
    if (bs % 2 == 0) anchored_end = true, p.remove_suffix(1);
  }
  try {
    Seq body = RegexParser(b, p).parse();
    const Seq any = b.star(json_string_char(b, CharSet::range(0, 0x10FFFF)));
    if (!anchored_start) body = any + body;
    if (!anchored_end) body = body + any;
    return body;
  } catch (const RegexError& e) {
    return Status::error(e.msg);
  }
}

}  // namespace osprey::grammar
