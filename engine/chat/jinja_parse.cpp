// Jinja lexer and recursive-descent parser. Whitespace control follows HF's environment:
// trim_blocks (drop the newline after a block/comment tag) and lstrip_blocks (drop spaces and
// tabs before a block/comment tag that starts its line), plus explicit `-`/`+` markers.
#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "jinja_ast.h"

namespace osprey::chat::jinja {
namespace {

constexpr int kMaxNesting = 200;  // expression / block nesting, bounds parser recursion

enum class TK { Name, Int, Float, String, Op, End };
struct Tok {
  TK kind;
  std::string s;
  long long i = 0;
  double f = 0;
};

enum class SegKind { Text, Expr, Stmt };
struct Segment {
  SegKind kind;
  std::string text;
  std::vector<Tok> toks;
  int line;
};

[[noreturn]] void fail(int line, const std::string& msg) {
  throw Error("line " + std::to_string(line) + ": " + msg);
}

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Decodes a quoted literal's escapes the way Jinja does (Python unicode-escape).
std::string unescape(const std::string& raw, int line) {
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c != '\\' || i + 1 >= raw.size()) { out += c; continue; }
    char n = raw[++i];
    auto append_cp = [&](unsigned long cp) {
      if (cp < 0x80) out += static_cast<char>(cp);
      else if (cp < 0x800) { out += static_cast<char>(0xC0 | (cp >> 6)); out += static_cast<char>(0x80 | (cp & 0x3F)); }
      else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12)); out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        out += static_cast<char>(0xF0 | (cp >> 18)); out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)); out += static_cast<char>(0x80 | (cp & 0x3F));
      }
    };
    auto hex = [&](int digits) {
      std::string h = raw.substr(i + 1, digits);
      if (h.size() != static_cast<size_t>(digits) || h.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        fail(line, "bad escape in string literal");
      i += digits;
      append_cp(std::stoul(h, nullptr, 16));
    };
    switch (n) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '0': out += '\0'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case 'a': out += '\a'; break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case '\n': break;
      case 'x': hex(2); break;
      case 'u': hex(4); break;
      case 'U': hex(8); break;
      default: out += '\\'; out += n;
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(const std::string& s) : s_(s) {}

  std::vector<Segment> run() {
    std::vector<Segment> out;
    size_t pos = 0;
    bool line_starting = true;  // previous tag ended a line (or start of template)
    bool strip_next = false;    // previous tag ended with '-'
    while (pos <= s_.size()) {
      size_t open = find_open(pos);
      std::string text = s_.substr(pos, open - pos);
      if (strip_next) {
        size_t k = 0;
        while (k < text.size() && is_ws(text[k])) ++k;
        text.erase(0, k);
      }
      if (open == s_.size()) {
        if (!text.empty()) out.push_back({SegKind::Text, text, {}, line_at(pos)});
        break;
      }
      char kind = s_[open + 1];
      size_t p = open + 2;
      char mark = p < s_.size() ? s_[p] : 0;
      if (mark == '-') {
        while (!text.empty() && is_ws(text.back())) text.pop_back();
        ++p;
      } else if (mark == '+') {
        ++p;
      } else if (kind != '{') {
        // lstrip_blocks: only whitespace between the line start and the tag.
        size_t nl = text.rfind('\n');
        size_t l = nl == std::string::npos ? 0 : nl + 1;
        if (nl != std::string::npos || line_starting) {
          bool all_ws = true;
          for (size_t k = l; k < text.size(); ++k)
            if (text[k] != ' ' && text[k] != '\t') all_ws = false;
          if (all_ws) text.erase(l);
        }
      }
      if (!text.empty()) out.push_back({SegKind::Text, text, {}, line_at(pos)});
      int line = line_at(open);
      if (kind == '#') {
        size_t end = s_.find("#}", p);
        if (end == std::string::npos) fail(line, "unterminated comment");
        strip_next = end > p && s_[end - 1] == '-';
        pos = end + 2;
      } else {
        Segment seg{kind == '{' ? SegKind::Expr : SegKind::Stmt, "", {}, line};
        pos = lex_tag(p, kind == '{' ? '}' : '%', seg.toks, strip_next, line);
        if (kind == '%' && is_raw(seg.toks)) {
          pos = lex_raw(pos, out, line);
          line_starting = pos > 0 && s_[pos - 1] == '\n';
          continue;
        }
        out.push_back(std::move(seg));
      }
      // trim_blocks: a block or comment tag swallows the newline right after it.
      if (kind != '{' && !strip_next && pos < s_.size() && s_[pos] == '\n') ++pos;
      line_starting = pos > 0 && s_[pos - 1] == '\n';
    }
    return out;
  }

 private:
  const std::string& s_;

  int line_at(size_t pos) const {
    int n = 1;
    for (size_t i = 0; i < pos && i < s_.size(); ++i) n += s_[i] == '\n';
    return n;
  }

  size_t find_open(size_t pos) const {
    for (size_t i = pos; i + 1 < s_.size(); ++i)
      if (s_[i] == '{' && (s_[i + 1] == '{' || s_[i + 1] == '%' || s_[i + 1] == '#')) return i;
    return s_.size();
  }

  static bool is_raw(const std::vector<Tok>& t) { return t.size() == 1 && t[0].kind == TK::Name && t[0].s == "raw"; }

  // {% raw %}...{% endraw %}: the body is text, untouched.
  size_t lex_raw(size_t pos, std::vector<Segment>& out, int line) {
    size_t p = pos;
    while (true) {
      size_t open = s_.find("{%", p);
      if (open == std::string::npos) fail(line, "unterminated raw block");
      size_t q = open + 2;
      if (q < s_.size() && (s_[q] == '-' || s_[q] == '+')) ++q;
      while (q < s_.size() && is_ws(s_[q])) ++q;
      if (s_.compare(q, 6, "endraw") == 0) {
        std::string text = s_.substr(pos, open - pos);
        if (s_[open + 2] == '-')
          while (!text.empty() && is_ws(text.back())) text.pop_back();
        out.push_back({SegKind::Text, text, {}, line});
        size_t end = s_.find("%}", q);
        if (end == std::string::npos) fail(line, "unterminated raw block");
        return end + 2;
      }
      p = open + 2;
    }
  }

  // Tokens of one {{ }} / {% %} tag starting at p; returns the position after the closer.
  size_t lex_tag(size_t p, char closer, std::vector<Tok>& toks, bool& strip_after, int line) {
    int depth = 0;
    while (true) {
      while (p < s_.size() && is_ws(s_[p])) ++p;
      if (p >= s_.size()) fail(line, closer == '}' ? "unterminated '{{' tag" : "unterminated '{%' tag");
      char c = s_[p];
      if (depth == 0) {
        if (c == '-' && p + 2 < s_.size() + 0 && s_[p + 1] == closer && s_[p + 2] == '}') {
          strip_after = true;
          return p + 3;
        }
        if (c == closer && p + 1 < s_.size() && s_[p + 1] == '}') {
          strip_after = false;
          return p + 2;
        }
      }
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t q = p;
        while (q < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[q])) || s_[q] == '_')) ++q;
        toks.push_back({TK::Name, s_.substr(p, q - p)});
        p = q;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t q = p;
        bool is_float = false;
        while (q < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[q])) || s_[q] == '_')) ++q;
        if (q + 1 < s_.size() && s_[q] == '.' && std::isdigit(static_cast<unsigned char>(s_[q + 1]))) {
          is_float = true;
          ++q;
          while (q < s_.size() && std::isdigit(static_cast<unsigned char>(s_[q]))) ++q;
        }
        if (q < s_.size() && (s_[q] == 'e' || s_[q] == 'E')) {
          size_t r = q + 1;
          if (r < s_.size() && (s_[r] == '+' || s_[r] == '-')) ++r;
          if (r < s_.size() && std::isdigit(static_cast<unsigned char>(s_[r]))) {
            is_float = true;
            q = r;
            while (q < s_.size() && std::isdigit(static_cast<unsigned char>(s_[q]))) ++q;
          }
        }
        std::string num;
        for (size_t k = p; k < q; ++k)
          if (s_[k] != '_') num += s_[k];
        Tok t{is_float ? TK::Float : TK::Int, num};
        try {
          if (is_float) t.f = std::stod(num);
          else t.i = std::stoll(num);
        } catch (const std::exception&) {
          fail(line, "bad number literal '" + num + "'");
        }
        toks.push_back(t);
        p = q;
      } else if (c == '\'' || c == '"') {
        size_t q = p + 1;
        while (q < s_.size() && s_[q] != c) q += s_[q] == '\\' ? 2 : 1;
        if (q >= s_.size()) fail(line, "unterminated string literal");
        toks.push_back({TK::String, unescape(s_.substr(p + 1, q - p - 1), line)});
        p = q + 1;
      } else {
        static const char* ops[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">",
                                    "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "=", nullptr};
        const char* m = nullptr;
        for (int k = 0; ops[k]; ++k)
          if (s_.compare(p, std::strlen(ops[k]), ops[k]) == 0) { m = ops[k]; break; }
        if (!m) fail(line, std::string("unexpected character '") + c + "'");
        std::string op = m;
        if (op == "(" || op == "[" || op == "{") ++depth;
        if (op == ")" || op == "]" || op == "}") --depth;
        toks.push_back({TK::Op, op});
        p += op.size();
      }
    }
  }
};

class Parser {
 public:
  explicit Parser(std::vector<Segment> segs) : segs_(std::move(segs)) {}

  Body parse_all() {
    std::string end;
    Body b = parse_body({}, end);
    return b;
  }

 private:
  std::vector<Segment> segs_;
  size_t si_ = 0;
  const std::vector<Tok>* toks_ = nullptr;
  size_t ti_ = 0;
  int line_ = 0;
  int nesting_ = 0;

  struct Nest {
    explicit Nest(Parser& p) : p_(p) {
      if (++p_.nesting_ > kMaxNesting) fail(p_.line_, "template nested too deeply");
    }
    ~Nest() { --p_.nesting_; }
    Parser& p_;
  };

  // ---- token helpers ----
  const Tok& peek(size_t k = 0) const {
    static const Tok end{TK::End, ""};
    return ti_ + k < toks_->size() ? (*toks_)[ti_ + k] : end;
  }
  bool at_end() const { return ti_ >= toks_->size(); }
  bool is_op(const char* s, size_t k = 0) const { return peek(k).kind == TK::Op && peek(k).s == s; }
  bool is_name(const char* s, size_t k = 0) const { return peek(k).kind == TK::Name && peek(k).s == s; }
  bool accept_op(const char* s) {
    if (!is_op(s)) return false;
    ++ti_;
    return true;
  }
  bool accept_name(const char* s) {
    if (!is_name(s)) return false;
    ++ti_;
    return true;
  }
  void expect_op(const char* s) {
    if (!accept_op(s)) fail(line_, std::string("expected '") + s + "'" + got());
  }
  std::string expect_name() {
    if (peek().kind != TK::Name) fail(line_, "expected a name" + got());
    return (*toks_)[ti_++].s;
  }
  std::string got() const { return at_end() ? " at end of tag" : " near '" + peek().s + "'"; }
  void expect_end() {
    if (!at_end()) fail(line_, "unexpected '" + peek().s + "' in tag");
  }
  ExprPtr node(EK k) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = line_;
    return e;
  }

  // ---- statements ----
  // Parses until a {% tag %} whose first word is in `ends`; that word is returned in `end`
  // and the tag's tokens are left current for the caller.
  Body parse_body(const std::vector<std::string>& ends, std::string& end) {
    Nest guard(*this);
    Body body;
    while (si_ < segs_.size()) {
      Segment& seg = segs_[si_++];
      line_ = seg.line;
      if (seg.kind == SegKind::Text) {
        auto s = std::make_unique<Stmt>();
        s->kind = SK::Text;
        s->text = seg.text;
        body.push_back(std::move(s));
        continue;
      }
      toks_ = &seg.toks;
      ti_ = 0;
      if (seg.kind == SegKind::Expr) {
        auto s = std::make_unique<Stmt>();
        s->kind = SK::Output;
        s->line = line_;
        s->expr = parse_expr();
        expect_end();
        body.push_back(std::move(s));
        continue;
      }
      std::string kw = expect_name();
      for (const auto& e : ends)
        if (kw == e) { end = kw; return body; }
      body.push_back(parse_stmt(kw));
    }
    if (!ends.empty()) fail(line_, "missing '{% " + ends.back() + " %}'");
    return body;
  }

  std::unique_ptr<Stmt> parse_stmt(const std::string& kw) {
    auto s = std::make_unique<Stmt>();
    s->line = line_;
    std::string end;
    if (kw == "if") {
      s->kind = SK::If;
      ExprPtr cond = parse_expr();
      expect_end();
      while (true) {
        Body b = parse_body({"elif", "else", "endif"}, end);
        s->branches.push_back({std::move(cond), std::move(b)});
        if (end == "endif") break;
        if (end == "elif") { cond = parse_expr(); expect_end(); continue; }
        expect_end();
        s->branches.push_back({nullptr, parse_body({"endif"}, end)});
        break;
      }
      expect_end();
    } else if (kw == "for") {
      s->kind = SK::For;
      do s->targets.push_back(expect_name());
      while (accept_op(","));
      if (!accept_name("in")) fail(line_, "expected 'in' in for loop");
      s->expr = parse_or_ternary(false);
      if (accept_name("if")) s->filter = parse_or();
      accept_name("recursive");
      expect_end();
      s->body = parse_body({"else", "endfor"}, end);
      if (end == "else") {
        expect_end();
        s->else_body = parse_body({"endfor"}, end);
      }
      expect_end();
    } else if (kw == "set") {
      std::string first = expect_name();
      if (accept_op(".")) {
        s->attr_target = true;
        s->targets = {first, expect_name()};
      } else {
        s->targets.push_back(first);
        while (accept_op(",")) s->targets.push_back(expect_name());
      }
      if (accept_op("=")) {
        s->kind = SK::Set;
        s->expr = parse_expr();
        expect_end();
      } else {
        s->kind = SK::SetBlock;
        expect_end();
        s->body = parse_body({"endset"}, end);
        expect_end();
      }
    } else if (kw == "macro") {
      s->kind = SK::Macro;
      s->name = expect_name();
      parse_params(*s);
      expect_end();
      s->body = parse_body({"endmacro"}, end);
    } else if (kw == "call") {
      s->kind = SK::CallBlock;
      if (is_op("(")) parse_params(*s);
      s->expr = parse_expr();
      if (s->expr->kind != EK::Call) fail(line_, "{% call %} needs a macro call");
      expect_end();
      s->body = parse_body({"endcall"}, end);
    } else if (kw == "with") {
      s->kind = SK::With;
      while (!at_end()) {
        s->params.push_back(expect_name());
        expect_op("=");
        s->defaults.push_back(parse_or_ternary(true));
        if (!at_end()) expect_op(",");
      }
      s->body = parse_body({"endwith"}, end);
      expect_end();
    } else if (kw == "filter") {
      // {% filter name(args) %}body{% endfilter %}: the filter applies to the rendered body,
      // which the evaluator substitutes for the Literal placeholder.
      s->kind = SK::FilterBlock;
      auto f = node(EK::Filter);
      f->name = expect_name();
      f->a = node(EK::Literal);
      if (accept_op("(")) parse_call_args(f->args);
      s->expr = std::move(f);
      expect_end();
      s->body = parse_body({"endfilter"}, end);
      expect_end();
    } else if (kw == "generation") {
      // HF's assistant-mask marker: renders its body unchanged.
      s->kind = SK::If;
      auto t = node(EK::Literal);
      t->literal = true;
      expect_end();
      s->branches.push_back({std::move(t), parse_body({"endgeneration"}, end)});
    } else if (kw == "break" || kw == "continue") {
      s->kind = kw == "break" ? SK::Break : SK::Continue;
      expect_end();
    } else {
      fail(line_, "unknown tag '" + kw + "'");
    }
    return s;
  }

  void parse_params(Stmt& s) {
    expect_op("(");
    while (!accept_op(")")) {
      s.params.push_back(expect_name());
      s.defaults.push_back(accept_op("=") ? parse_expr() : nullptr);
      if (!is_op(")")) expect_op(",");
    }
  }

  // ---- expressions (Jinja precedence) ----
  ExprPtr parse_expr() {
    ExprPtr e = parse_or_ternary(true);
    if (is_op(",")) {  // bare tuple: `set a, b = 1, 2`
      auto t = node(EK::Tuple);
      t->items.push_back(std::move(e));
      while (accept_op(",")) {
        if (at_end()) break;
        t->items.push_back(parse_or_ternary(true));
      }
      return t;
    }
    return e;
  }

  ExprPtr parse_or_ternary(bool allow_ternary) {
    Nest guard(*this);
    ExprPtr e = parse_or();
    if (allow_ternary && is_name("if")) {
      ++ti_;
      auto t = node(EK::Ternary);
      t->b = parse_or();
      t->a = std::move(e);
      if (accept_name("else")) t->c = parse_or_ternary(true);
      return t;
    }
    return e;
  }

  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r) {
    auto e = node(EK::Binary);
    e->name = op;
    e->a = std::move(l);
    e->b = std::move(r);
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (accept_name("or")) e = binary("or", std::move(e), parse_and());
    return e;
  }
  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (accept_name("and")) e = binary("and", std::move(e), parse_not());
    return e;
  }
  ExprPtr parse_not() {
    Nest guard(*this);
    if (accept_name("not")) {
      auto e = node(EK::Unary);
      e->name = "not";
      e->a = parse_not();
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    ExprPtr e = parse_math1();
    while (true) {
      std::string op;
      if (peek().kind == TK::Op && (peek().s == "==" || peek().s == "!=" || peek().s == "<" || peek().s == ">" ||
                                    peek().s == "<=" || peek().s == ">=")) {
        op = peek().s;
        ++ti_;
      } else if (accept_name("in")) {
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        ti_ += 2;
        op = "not in";
      } else {
        return e;
      }
      e = binary(op, std::move(e), parse_math1());
    }
  }
  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = (*toks_)[ti_++].s;
      e = binary(op, std::move(e), parse_concat());
    }
    return e;
  }
  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (accept_op("~")) e = binary("~", std::move(e), parse_math2());
    return e;
  }
  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = (*toks_)[ti_++].s;
      e = binary(op, std::move(e), parse_pow());
    }
    return e;
  }
  ExprPtr parse_pow() {
    ExprPtr e = parse_unary();
    while (accept_op("**")) e = binary("**", std::move(e), parse_unary());
    return e;
  }
  ExprPtr parse_unary() {
    Nest guard(*this);
    if (is_op("-") || is_op("+")) {
      auto e = node(EK::Unary);
      e->name = (*toks_)[ti_++].s;
      e->a = parse_unary();
      return parse_filters(std::move(e));
    }
    return parse_filters(parse_postfix(parse_primary()));
  }

  ExprPtr parse_primary() {
    Nest guard(*this);
    const Tok& t = peek();
    if (t.kind == TK::End) fail(line_, "expected an expression" + got());
    ++ti_;
    if (t.kind == TK::Int || t.kind == TK::Float) {
      auto e = node(EK::Literal);
      if (t.kind == TK::Int) e->literal = t.i;
      else e->literal = t.f;
      return e;
    }
    if (t.kind == TK::String) {
      auto e = node(EK::Literal);
      std::string s = t.s;
      while (peek().kind == TK::String) s += (*toks_)[ti_++].s;  // adjacent literals concatenate
      e->literal = s;
      return e;
    }
    if (t.kind == TK::Name) {
      auto e = node(EK::Literal);
      if (t.s == "true" || t.s == "True") e->literal = true;
      else if (t.s == "false" || t.s == "False") e->literal = false;
      else if (t.s == "none" || t.s == "None") e->literal = nullptr;
      else {
        e->kind = EK::Name;
        e->name = t.s;
      }
      return e;
    }
    if (t.s == "(") {
      if (accept_op(")")) return node(EK::Tuple);
      ExprPtr first = parse_or_ternary(true);
      if (accept_op(")")) return first;
      auto tup = node(EK::Tuple);
      tup->items.push_back(std::move(first));
      while (accept_op(",")) {
        if (is_op(")")) break;
        tup->items.push_back(parse_or_ternary(true));
      }
      expect_op(")");
      return tup;
    }
    if (t.s == "[") {
      auto l = node(EK::List);
      while (!accept_op("]")) {
        l->items.push_back(parse_or_ternary(true));
        if (!is_op("]")) expect_op(",");
      }
      return l;
    }
    if (t.s == "{") {
      auto d = node(EK::Dict);
      while (!accept_op("}")) {
        d->items.push_back(parse_or_ternary(true));
        expect_op(":");
        d->items.push_back(parse_or_ternary(true));
        if (!is_op("}")) expect_op(",");
      }
      return d;
    }
    fail(line_, "unexpected '" + t.s + "'");
  }

  void parse_call_args(std::vector<Arg>& args) {
    // '(' already consumed
    while (!accept_op(")")) {
      Arg a;
      if (peek().kind == TK::Name && is_op("=", 1)) {
        a.name = peek().s;
        ti_ += 2;
      }
      a.value = parse_or_ternary(true);
      args.push_back(std::move(a));
      if (!is_op(")")) expect_op(",");
    }
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (accept_op(".")) {
        auto a = node(EK::Attr);
        if (peek().kind == TK::Int) a->name = std::to_string((*toks_)[ti_++].i);
        else a->name = expect_name();
        a->a = std::move(e);
        e = std::move(a);
      } else if (accept_op("[")) {
        ExprPtr start, stop, step;
        bool slice = false;
        if (!is_op(":")) start = parse_or_ternary(true);
        if (accept_op(":")) {
          slice = true;
          if (!is_op(":") && !is_op("]")) stop = parse_or_ternary(true);
          if (accept_op(":") && !is_op("]")) step = parse_or_ternary(true);
        }
        expect_op("]");
        auto x = node(slice ? EK::Slice : EK::Index);
        x->a = std::move(e);
        x->b = std::move(start);
        x->c = std::move(stop);
        x->d = std::move(step);
        e = std::move(x);
      } else if (accept_op("(")) {
        auto c = node(EK::Call);
        c->a = std::move(e);
        parse_call_args(c->args);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_filters(ExprPtr e) {
    while (true) {
      if (accept_op("|")) {
        auto f = node(EK::Filter);
        f->name = expect_name();
        while (accept_op(".")) f->name += "." + expect_name();
        f->a = std::move(e);
        if (accept_op("(")) parse_call_args(f->args);
        e = std::move(f);
      } else if (accept_name("is")) {
        auto t = node(EK::Test);
        t->negate = accept_name("not");
        t->name = expect_name();
        t->a = std::move(e);
        if (accept_op("(")) {
          parse_call_args(t->args);
        } else if (peek().kind == TK::Int || peek().kind == TK::Float || peek().kind == TK::String || is_op("[") ||
                   is_op("{") ||
                   (peek().kind == TK::Name && !is_name("and") && !is_name("or") && !is_name("else") &&
                    !is_name("if") && !is_name("in") && !is_name("not") && !is_name("is"))) {
          Arg a;
          a.value = parse_postfix(parse_primary());  // `is equalto 3`, `is sameas none`
          t->args.push_back(std::move(a));
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }
};

}  // namespace

Body parse_template(const std::string& src) {
  Lexer lx(src);
  Parser p(lx.run());
  return p.parse_all();
}

}  // namespace osprey::chat::jinja
