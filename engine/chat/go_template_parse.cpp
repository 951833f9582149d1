// Go template lexer and parser: {{ }} actions with `{{- ` / ` -}}` trimming, comments, pipelines,
// variables, and if / else if / range / with / break / continue blocks.
#include <algorithm>
#include <cctype>

#include "go_template_ast.h"

namespace osprey::chat::gotmpl {
namespace {

enum class TK { Field, Var, Dot, Ident, String, Number, LParen, RParen, Pipe, Decl, Assign, Comma, End };
struct Tok {
  TK kind;
  std::string s;
  Json num;
  bool space_before = false;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_ident(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || (c & 0x80); }

// One {{ }} action: its tokens, or a comment (no tokens, `comment` set).
struct Action {
  std::vector<Tok> toks;
  bool comment = false;
  int line = 0;
};

struct Item {  // lexer output: text or action
  bool is_text;
  std::string text;
  Action action;
};

class Lexer {
 public:
  explicit Lexer(const std::string& s) : s_(s) {}
  std::vector<Item> run() {
    std::vector<Item> out;
    size_t pos = 0;
    bool trim_next = false;
    while (true) {
      size_t open = s_.find("{{", pos);
      std::string text = s_.substr(pos, open == std::string::npos ? std::string::npos : open - pos);
      if (trim_next) {
        size_t k = 0;
        while (k < text.size() && is_space(text[k])) ++k;
        text.erase(0, k);
      }
      if (open == std::string::npos) {
        if (!text.empty()) out.push_back({true, text, {}});
        break;
      }
      size_t p = open + 2;
      // "{{- " trims the text before; the dash must be followed by a space.
      if (p + 1 < s_.size() && s_[p] == '-' && is_space(s_[p + 1])) {
        while (!text.empty() && is_space(text.back())) text.pop_back();
        p += 2;
      }
      if (!text.empty()) out.push_back({true, text, {}});
      Item it{false, "", {}};
      it.action.line = line_at(open);
      pos = lex_action(p, it.action, trim_next);
      out.push_back(std::move(it));
    }
    return out;
  }

 private:
  const std::string& s_;
  int line_at(size_t pos) const { return 1 + static_cast<int>(std::count(s_.begin(), s_.begin() + pos, '\n')); }

  // Returns the position after "}}"; sets trim when the action ends with " -}}".
  size_t lex_action(size_t p, Action& a, bool& trim) {
    int line = a.line;
    auto close_at = [&](size_t q, size_t& after, bool& t) {
      if (q + 3 < s_.size() + 1 && s_.compare(q, 3, "-}}") == 0 && q > 0 && is_space(s_[q - 1])) {
        t = true;
        after = q + 3;
        return true;
      }
      if (s_.compare(q, 2, "}}") == 0) {
        t = false;
        after = q + 2;
        return true;
      }
      return false;
    };
    while (p < s_.size() && is_space(s_[p])) ++p;
    if (s_.compare(p, 2, "/*") == 0) {
      size_t end = s_.find("*/", p + 2);
      if (end == std::string::npos) fail(line, "unclosed comment");
      size_t q = end + 2;
      while (q < s_.size() && is_space(s_[q])) ++q;
      size_t after;
      if (!close_at(q, after, trim)) fail(line, "comment ends before closing delimiter");
      a.comment = true;
      return after;
    }
    while (true) {
      bool space = false;
      while (p < s_.size() && is_space(s_[p])) { ++p; space = true; }
      if (p >= s_.size()) fail(line, "unclosed action");
      size_t after;
      if (close_at(p, after, trim)) return after;
      char c = s_[p];
      Tok t{TK::End, "", nullptr, space};
      if (c == '.' && p + 1 < s_.size() && is_ident(s_[p + 1]) && !std::isdigit(static_cast<unsigned char>(s_[p + 1]))) {
        size_t q = p + 1;
        while (q < s_.size() && is_ident(s_[q])) ++q;
        t.kind = TK::Field;
        t.s = s_.substr(p + 1, q - p - 1);
        p = q;
      } else if (c == '.' && !(p + 1 < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p + 1])))) {
        t.kind = TK::Dot;
        ++p;
      } else if (c == '$') {
        size_t q = p + 1;
        while (q < s_.size() && is_ident(s_[q])) ++q;
        t.kind = TK::Var;
        t.s = s_.substr(p, q - p);
        p = q;
      } else if (c == '"' || c == '`') {
        size_t q = p + 1;
        std::string v;
        while (q < s_.size() && s_[q] != c) {
          if (c == '"' && s_[q] == '\\' && q + 1 < s_.size()) {
            char n = s_[++q];
            switch (n) {
              case 'n': v += '\n'; break;
              case 't': v += '\t'; break;
              case 'r': v += '\r'; break;
              case '\\': v += '\\'; break;
              case '"': v += '"'; break;
              case '\'': v += '\''; break;
              default: v += '\\'; v += n;
            }
            ++q;
            continue;
          }
          if (c == '"' && s_[q] == '\n') fail(line, "unterminated quoted string");
          v += s_[q++];
        }
        if (q >= s_.size()) fail(line, "unterminated string");
        t.kind = TK::String;
        t.s = v;
        p = q + 1;
      } else if (std::isdigit(static_cast<unsigned char>(c)) || ((c == '-' || c == '+' || c == '.') && p + 1 < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p + 1])))) {
        size_t q = p + 1;
        while (q < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[q])) || s_[q] == '.' || s_[q] == '_')) ++q;
        std::string n = s_.substr(p, q - p);
        t.kind = TK::Number;
        try {
          size_t used = 0;
          if (n.find_first_of(".eE") == std::string::npos) {
            long long v = std::stoll(n, &used, 0);
            t.num = v;
          } else {
            t.num = std::stod(n, &used);
          }
          if (used != n.size()) fail(line, "bad number syntax: " + n);
        } catch (const std::logic_error&) {
          fail(line, "bad number syntax: " + n);
        }
        p = q;
      } else if (is_ident(c)) {
        size_t q = p;
        while (q < s_.size() && is_ident(s_[q])) ++q;
        t.kind = TK::Ident;
        t.s = s_.substr(p, q - p);
        p = q;
      } else if (c == '(') { t.kind = TK::LParen; ++p; }
      else if (c == ')') { t.kind = TK::RParen; ++p; }
      else if (c == '|') { t.kind = TK::Pipe; ++p; }
      else if (c == ',') { t.kind = TK::Comma; ++p; }
      else if (c == ':' && p + 1 < s_.size() && s_[p + 1] == '=') { t.kind = TK::Decl; p += 2; }
      else if (c == '=') { t.kind = TK::Assign; ++p; }
      else fail(line, std::string("unexpected character '") + c + "' in action");
      a.toks.push_back(std::move(t));
    }
  }
};

const char* const kFuncs[] = {"and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne",
                               "lt", "le", "gt", "ge", "json", "currentDate", "yesterdayDate", "html", "urlquery",
                               "js", nullptr};

class Parser {
 public:
  explicit Parser(std::vector<Item> items) : items_(std::move(items)) {}
  std::unique_ptr<Node> parse_root(std::vector<std::string>& vars) {
    vars_ = &vars;
    std::string end;
    auto root = parse_list(false, end);
    return root;
  }

 private:
  std::vector<Item> items_;
  size_t ii_ = 0;
  const std::vector<Tok>* toks_ = nullptr;
  size_t ti_ = 0;
  int line_ = 0;
  int next_id_ = 0;
  int depth_ = 0;
  std::vector<std::string>* vars_ = nullptr;

  std::unique_ptr<Node> node(NK k) {
    auto n = std::make_unique<Node>();
    n->kind = k;
    n->id = next_id_++;
    n->line = line_;
    return n;
  }
  const Tok& peek() const {
    static const Tok end{TK::End, "", nullptr, false};
    return ti_ < toks_->size() ? (*toks_)[ti_] : end;
  }
  bool at_end() const { return ti_ >= toks_->size(); }

  // A list of nodes up to {{end}} / {{else ...}} (inside a block) or the end of input. On return
  // `end` is "end", "else" or "" and the tokens after the keyword are current.
  std::unique_ptr<Node> parse_list(bool in_block, std::string& end) {
    if (++depth_ > 200) fail(line_, "template nested too deeply");
    auto list = node(NK::List);
    while (ii_ < items_.size()) {
      Item& it = items_[ii_++];
      if (it.is_text) {
        auto t = node(NK::Text);
        t->text = it.text;
        list->children.push_back(std::move(t));
        continue;
      }
      if (it.action.comment) continue;
      toks_ = &it.action.toks;
      ti_ = 0;
      line_ = it.action.line;
      if (at_end()) fail(line_, "missing value for command");
      const Tok& first = peek();
      if (first.kind == TK::Ident) {
        const std::string& kw = first.s;
        if (kw == "end" || kw == "else") {
          if (!in_block) fail(line_, "unexpected {{" + kw + "}}");
          ++ti_;
          end = kw;
          --depth_;
          return list;
        }
        if (kw == "if" || kw == "range" || kw == "with") {
          ++ti_;
          list->children.push_back(parse_block(kw == "if" ? NK::If : kw == "range" ? NK::Range : NK::With));
          continue;
        }
        if (kw == "break" || kw == "continue") {
          ++ti_;
          list->children.push_back(node(kw == "break" ? NK::Break : NK::Continue));
          continue;
        }
        if (kw == "define" || kw == "template" || kw == "block")
          fail(line_, "{{" + kw + "}} is not supported");
      }
      auto a = node(NK::Action);
      a->pipe = parse_pipe(true);
      list->children.push_back(std::move(a));
    }
    if (in_block) fail(line_, "unexpected EOF: missing {{end}}");
    --depth_;
    return list;
  }

  std::unique_ptr<Node> parse_block(NK kind) {
    auto n = node(kind);
    n->pipe = parse_pipe(true);
    std::string end;
    n->list = parse_list(true, end);
    if (end == "else") {
      if (!at_end() && peek().kind == TK::Ident && (peek().s == "if" || peek().s == "with")) {
        // {{else if x}} / {{else with x}}: a nested block that shares this block's {{end}}.
        NK k = peek().s == "if" ? NK::If : NK::With;
        ++ti_;
        n->else_list = node(NK::List);
        n->else_list->children.push_back(parse_block(k));
        return n;
      }
      if (!at_end()) fail(line_, "unexpected tokens after {{else}}");
      n->else_list = parse_list(true, end);
      if (end != "end") fail(line_, "expected {{end}}");
    }
    if (!at_end()) fail(line_, "unexpected tokens after {{end}}");
    return n;
  }

  std::shared_ptr<Pipe> parse_pipe(bool top) {
    auto p = std::make_shared<Pipe>();
    p->line = line_;
    // Declarations: $x := / $x = / $i, $e :=
    size_t save = ti_;
    if (top && peek().kind == TK::Var) {
      std::vector<std::string> names{peek().s};
      size_t k = ti_ + 1;
      if (k < toks_->size() && (*toks_)[k].kind == TK::Comma && k + 1 < toks_->size() && (*toks_)[k + 1].kind == TK::Var) {
        names.push_back((*toks_)[k + 1].s);
        k += 2;
      }
      if (k < toks_->size() && ((*toks_)[k].kind == TK::Decl || (*toks_)[k].kind == TK::Assign)) {
        p->decl = names;
        p->assign = (*toks_)[k].kind == TK::Assign;
        ti_ = k + 1;
      } else {
        ti_ = save;
      }
    }
    while (true) {
      Cmd c;
      while (!at_end() && peek().kind != TK::Pipe && peek().kind != TK::RParen) c.args.push_back(parse_operand());
      if (c.args.empty()) fail(line_, "missing value for command");
      p->cmds.push_back(std::move(c));
      if (!at_end() && peek().kind == TK::Pipe) { ++ti_; continue; }
      break;
    }
    if (top && !at_end()) fail(line_, "unexpected ')' in action");
    return p;
  }

  Arg parse_operand() {
    Tok t = peek();
    ++ti_;
    Arg a;
    switch (t.kind) {
      case TK::Field:
        a.kind = AK::Field;
        a.chain.push_back(t.s);
        vars_->push_back(t.s);
        break;
      case TK::Dot: a.kind = AK::Dot; break;
      case TK::Var: a.kind = AK::Var; a.name = t.s; break;
      case TK::String: a.kind = AK::Literal; a.literal = t.s; break;
      case TK::Number: a.kind = AK::Literal; a.literal = t.num; break;
      case TK::LParen:
        a.kind = AK::Pipe;
        a.pipe = parse_pipe(false);
        if (at_end() || peek().kind != TK::RParen) fail(line_, "unclosed left paren");
        ++ti_;
        break;
      case TK::Ident:
        if (t.s == "true" || t.s == "false") { a.kind = AK::Literal; a.literal = t.s == "true"; break; }
        if (t.s == "nil") { a.kind = AK::Literal; a.literal = nullptr; break; }
        {
          bool known = false;
          for (int i = 0; kFuncs[i]; ++i) known |= t.s == kFuncs[i];
          if (!known) fail(line_, "function \"" + t.s + "\" not defined");
        }
        a.kind = AK::Func;
        a.name = t.s;
        break;
      default: fail(line_, "unexpected '" + t.s + "' in command");
    }
    // Field chains directly attached: $x.Field, (pipe).Field, .A.B
    while (!at_end() && peek().kind == TK::Field && !peek().space_before && a.kind != AK::Func && a.kind != AK::Literal) {
      a.chain.push_back(peek().s);
      vars_->push_back(peek().s);
      ++ti_;
    }
    return a;
  }
};

}  // namespace

std::unique_ptr<Node> parse_template(const std::string& src, std::vector<std::string>& vars) {
  Lexer lexer(src);
  Parser p(lexer.run());
  return p.parse_root(vars);
}

}  // namespace osprey::chat::gotmpl
