// Go template executor and template analysis (Ollama's Vars, thinking / tool-call tags).
// Errors are Status values; limits on output and loop iterations bound hostile templates.
#include "go_template.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <deque>

#include "go_template_ast.h"
#include "json_text.h"

namespace osprey::chat {
namespace gotmpl {
namespace {

enum class Flow { Normal, Break, Continue };

bool truthy(const Json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  return !v.empty();
}

// Go's fmt %v for the value kinds templates print; objects are Ollama structs whose String()
// methods marshal JSON.
std::string print(const Json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (d == std::floor(d) && std::fabs(d) < 1e21) return std::to_string(static_cast<long long>(d));
    return go_json(v);
  }
  if (v.is_number()) return v.dump();
  if (v.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += ' ';
      out += print(v[i]);
    }
    return out + "]";
  }
  return go_json(v);
}

const Json* field(const Json& obj, const std::string& name) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(name);
  if (it != obj.end()) return &*it;
  std::string lc = name;
  lc[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(lc[0])));
  it = obj.find(lc);
  if (it != obj.end()) return &*it;
  if (name == "Defs" && (it = obj.find("$defs")) != obj.end()) return &*it;
  return nullptr;
}

// Function arguments: pointers into the data where an argument is a plain field or variable
// path (so `len $.Messages` inside a loop copies nothing), owned values otherwise.
struct Args {
  std::vector<const Json*> p;
  std::deque<Json> own;
  const Json& operator[](size_t i) const { return *p[i]; }
  size_t size() const { return p.size(); }
  bool empty() const { return p.empty(); }
  void push_ref(const Json* j) { p.push_back(j); }
  void push_value(Json j) {
    own.push_back(std::move(j));
    p.push_back(&own.back());
  }
};

class Exec {
 public:
  Exec(const GoTemplate& t, const Json& root, std::time_t now, int cut_id)
      : t_(t), root_(root), now_(now), cut_id_(cut_id) {}

  std::string run(const Node& root) {
    vars_.push_back({"$", root_});
    exec_list(root, root_);
    return std::move(out_);
  }

 private:
  const GoTemplate& t_;
  const Json& root_;
  std::time_t now_;
  int cut_id_;
  std::string out_;
  std::vector<std::pair<std::string, Json>> vars_;
  size_t iters_ = 0;

  void emit(const std::string& s, int line) {
    out_ += s;
    if (out_.size() > t_.max_output) fail(line, "output too large");
  }

  Flow exec_list(const Node& list, const Json& dot) {
    size_t mark = vars_.size();
    Flow f = Flow::Normal;
    for (const auto& c : list.children) {
      if (cut_id_ >= 0 && c->id > cut_id_) break;
      f = exec_node(*c, dot);
      if (f != Flow::Normal) break;
    }
    vars_.resize(mark);
    return f;
  }

  Flow exec_node(const Node& n, const Json& dot) {
    switch (n.kind) {
      case NK::Text: emit(n.text, n.line); return Flow::Normal;
      case NK::Action: {
        Json v = eval_pipe(*n.pipe, dot);
        if (n.pipe->decl.empty()) emit(print(v), n.line);
        return Flow::Normal;
      }
      case NK::If: {
        Json v = eval_pipe(*n.pipe, dot);
        if (truthy(v)) return exec_list(*n.list, dot);
        return n.else_list ? exec_list(*n.else_list, dot) : Flow::Normal;
      }
      case NK::With: {
        Json v = eval_pipe(*n.pipe, dot);
        if (truthy(v)) return exec_list(*n.list, v);
        return n.else_list ? exec_list(*n.else_list, dot) : Flow::Normal;
      }
      case NK::Range: return exec_range(n, dot);
      case NK::Break: return Flow::Break;
      case NK::Continue: return Flow::Continue;
      default: return Flow::Normal;
    }
  }

  Flow exec_range(const Node& n, const Json& dot) {
    Pipe body_pipe = *n.pipe;
    std::vector<std::string> decl = body_pipe.decl;
    body_pipe.decl.clear();
    Json v = eval_pipe(body_pipe, dot);
    std::vector<std::pair<Json, Json>> items;  // key/index, element
    if (v.is_array()) {
      for (size_t i = 0; i < v.size(); ++i) items.emplace_back(i, v[i]);
    } else if (v.is_object()) {
      std::vector<std::string> keys;
      for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(it.key());
      std::sort(keys.begin(), keys.end());  // Go ranges over maps in key order
      for (const auto& k : keys) items.emplace_back(k, v[k]);
    } else if (v.is_number_integer() || v.is_number_unsigned()) {
      long long cnt = v.get<long long>();
      if (cnt > static_cast<long long>(t_.max_iterations)) fail(n.line, "range count too large");
      for (long long i = 0; i < cnt; ++i) items.emplace_back(i, i);
    } else if (!v.is_null()) {
      fail(n.line, std::string("range can't iterate over ") + v.type_name());
    }
    if (items.empty()) return n.else_list ? exec_list(*n.else_list, dot) : Flow::Normal;
    for (auto& [k, e] : items) {
      if (++iters_ > t_.max_iterations) fail(n.line, "loop iteration limit exceeded");
      size_t mark = vars_.size();
      if (decl.size() == 1) vars_.push_back({decl[0], e});
      else if (decl.size() == 2) {
        vars_.push_back({decl[0], k});
        vars_.push_back({decl[1], e});
      }
      Flow f = exec_list(*n.list, e);
      vars_.resize(mark);
      if (f == Flow::Break) break;
    }
    return Flow::Normal;
  }

  Json* find_var(const std::string& name) {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it)
      if (it->first == name) return &it->second;
    return nullptr;
  }

  Json eval_pipe(const Pipe& p, const Json& dot) {
    Json v;
    bool have = false;
    for (const auto& c : p.cmds) {
      v = eval_cmd(c, dot, have ? &v : nullptr, p.line);
      have = true;
    }
    if (!p.decl.empty()) {
      if (p.assign) {
        Json* slot = find_var(p.decl[0]);
        if (!slot) fail(p.line, "undefined variable: " + p.decl[0]);
        *slot = v;
      } else {
        vars_.push_back({p.decl[0], v});
      }
    }
    return v;
  }

  Json walk_chain(Json v, const std::vector<std::string>& chain, size_t from) {
    for (size_t i = from; i < chain.size(); ++i) {
      const Json* f = field(v, chain[i]);
      if (!f) return nullptr;
      Json next = *f;
      v = std::move(next);
    }
    return v;
  }

  // The value a field / variable path names, without copying it; nullptr for other operands.
  const Json* peek_arg(const Arg& a, const Json& dot, int line) {
    static const Json null_json;
    const Json* v = nullptr;
    if (a.kind == AK::Dot) return &dot;
    if (a.kind == AK::Field) v = &dot;
    else if (a.kind == AK::Var) {
      v = find_var(a.name);
      if (!v) fail(line, "undefined variable \"" + a.name + "\"");
    } else {
      return nullptr;
    }
    for (const auto& name : a.chain) {
      v = field(*v, name);
      if (!v) return &null_json;
    }
    return v;
  }

  Json eval_arg(const Arg& a, const Json& dot, int line) {
    switch (a.kind) {
      case AK::Dot:
      case AK::Field:
      case AK::Var: return *peek_arg(a, dot, line);  // copies the value named, not its container
      case AK::Literal: return a.literal;
      case AK::Pipe: return walk_chain(eval_pipe(*a.pipe, dot), a.chain, 0);
      case AK::Func: return call(a.name, {}, dot, nullptr, line);
    }
    return nullptr;
  }

  Json eval_cmd(const Cmd& c, const Json& dot, const Json* piped, int line) {
    const Arg& head = c.args[0];
    if (head.kind == AK::Func) {
      std::vector<const Arg*> rest;
      for (size_t i = 1; i < c.args.size(); ++i) rest.push_back(&c.args[i]);
      return call(head.name, rest, dot, piped, line);
    }
    if (c.args.size() > 1 || piped) fail(line, "can't give argument to non-function");
    return eval_arg(head, dot, line);
  }

  static int compare(const Json& a, const Json& b, int line, const std::string& fn) {
    if (a.is_number() && b.is_number()) {
      double x = a.get<double>(), y = b.get<double>();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.is_string() && b.is_string()) return a.get<std::string>().compare(b.get<std::string>());
    if (fn == "eq" || fn == "ne") {
      if (a.is_boolean() && b.is_boolean()) return a == b ? 0 : 1;
      if (a.is_null() && b.is_null()) return 0;
      if (a.is_null() || b.is_null()) return 1;
    }
    fail(line, "error calling " + fn + ": incompatible types for comparison");
  }

  std::string date(int days_back) const {
    std::time_t t = now_ - static_cast<std::time_t>(days_back) * 86400;
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
  }

  std::string printf(const Args& args, int line) {
    if (args.empty() || !args[0].is_string()) fail(line, "printf needs a format string");
    const std::string& f = args[0].get_ref<const std::string&>();
    std::string out;
    size_t ai = 1;
    for (size_t i = 0; i < f.size(); ++i) {
      if (f[i] != '%' || i + 1 >= f.size()) { out += f[i]; continue; }
      char verb = f[++i];
      if (verb == '%') { out += '%'; continue; }
      if (ai >= args.size()) { out += std::string("%!") + verb + "(MISSING)"; continue; }
      const Json& a = args[ai++];
      if (verb == 'q') out += go_json(Json(a.is_string() ? a.get<std::string>() : print(a)));
      else out += print(a);
    }
    return out;
  }

  Json call(const std::string& fn, const std::vector<const Arg*>& argx, const Json& dot, const Json* piped, int line) {
    // and/or evaluate lazily and return the deciding operand, like Go.
    if (fn == "and" || fn == "or") {
      Json v;
      size_t n = argx.size() + (piped ? 1 : 0);
      if (n == 0) fail(line, fn + " needs arguments");
      for (size_t i = 0; i < n; ++i) {
        v = i < argx.size() ? eval_arg(*argx[i], dot, line) : *piped;
        if (truthy(v) == (fn == "or")) return v;
      }
      return v;
    }
    // len (slice X i) — Ollama templates' "is this the last message" idiom — without
    // materializing the slice, which would make rendering quadratic in conversation length.
    if (fn == "len" && argx.size() == 1 && !piped && argx[0]->kind == AK::Pipe && argx[0]->chain.empty() &&
        argx[0]->pipe->decl.empty() && argx[0]->pipe->cmds.size() == 1) {
      const Cmd& c = argx[0]->pipe->cmds[0];
      if (c.args[0].kind == AK::Func && c.args[0].name == "slice" && c.args.size() >= 2 && c.args.size() <= 4) {
        if (const Json* x = peek_arg(c.args[1], dot, line); x && x->is_array()) {
          long long n = static_cast<long long>(x->size());
          long long b = c.args.size() > 2 ? eval_arg(c.args[2], dot, line).get<long long>() : 0;
          long long e = c.args.size() > 3 ? eval_arg(c.args[3], dot, line).get<long long>() : n;
          if (b < 0 || e < b || e > n) fail(line, "error calling slice: index out of range");
          return e - b;
        }
      }
    }
    Args a;
    for (const Arg* x : argx) {
      if (const Json* p = peek_arg(*x, dot, line)) a.push_ref(p);
      else a.push_value(eval_arg(*x, dot, line));
    }
    if (piped) a.push_ref(piped);
    auto need = [&](size_t n) {
      if (a.size() < n) fail(line, "wrong number of args for " + fn);
    };
    if (fn == "not") { need(1); return !truthy(a[0]); }
    if (fn == "len") {
      need(1);
      if (a[0].is_string()) return a[0].get_ref<const std::string&>().size();
      if (a[0].is_array() || a[0].is_object()) return a[0].size();
      if (a[0].is_null()) return 0;
      fail(line, "error calling len: len of type " + std::string(a[0].type_name()));
    }
    if (fn == "eq") {
      need(2);
      for (size_t i = 1; i < a.size(); ++i)
        if (compare(a[0], a[i], line, fn) == 0) return true;
      return false;
    }
    if (fn == "ne") { need(2); return compare(a[0], a[1], line, fn) != 0; }
    if (fn == "lt") { need(2); return compare(a[0], a[1], line, fn) < 0; }
    if (fn == "le") { need(2); return compare(a[0], a[1], line, fn) <= 0; }
    if (fn == "gt") { need(2); return compare(a[0], a[1], line, fn) > 0; }
    if (fn == "ge") { need(2); return compare(a[0], a[1], line, fn) >= 0; }
    if (fn == "index") {
      need(1);
      Json v = a[0];
      for (size_t i = 1; i < a.size(); ++i) {
        if (v.is_array() && a[i].is_number_integer()) {
          long long k = a[i].get<long long>();
          if (k < 0 || k >= static_cast<long long>(v.size())) fail(line, "error calling index: index out of range: " + std::to_string(k));
          Json next = v[static_cast<size_t>(k)];
          v = std::move(next);
        } else if (v.is_object() && a[i].is_string()) {
          auto it = v.find(a[i].get<std::string>());
          if (it == v.end()) return nullptr;
          Json next = *it;
          v = std::move(next);
        } else if (v.is_null()) {
          return nullptr;
        } else {
          fail(line, "error calling index: cannot index " + std::string(v.type_name()));
        }
      }
      return v;
    }
    if (fn == "slice") {
      need(1);
      const Json& x = a[0];
      long long len = x.is_string() ? static_cast<long long>(x.get_ref<const std::string&>().size())
                                    : x.is_array() ? static_cast<long long>(x.size()) : -1;
      if (len < 0) fail(line, "error calling slice: can't slice " + std::string(x.type_name()));
      long long b = a.size() > 1 ? a[1].get<long long>() : 0, e = a.size() > 2 ? a[2].get<long long>() : len;
      if (b < 0 || e < b || e > len) fail(line, "error calling slice: index out of range");
      if (x.is_string()) return x.get<std::string>().substr(b, e - b);
      return Json(std::vector<Json>(x.begin() + b, x.begin() + e));
    }
    if (fn == "json") { need(1); return go_json(a[0]); }
    if (fn == "print" || fn == "println") {
      std::string out;
      for (size_t i = 0; i < a.size(); ++i) {
        if (i && (fn == "println" || (!a[i].is_string() && !a[i - 1].is_string()))) out += ' ';
        out += print(a[i]);
      }
      return fn == "println" ? out + "\n" : out;
    }
    if (fn == "printf") return printf(a, line);
    if (fn == "currentDate") return date(0);
    if (fn == "yesterdayDate") return date(1);
    if (fn == "html") {
      std::string s, out;
      for (size_t i = 0; i < a.size(); ++i) s += print(a[i]);
      for (char c : s) {
        if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '&') out += "&amp;";
        else if (c == '"') out += "&#34;";
        else if (c == '\'') out += "&#39;";
        else out += c;
      }
      return out;
    }
    fail(line, "function \"" + fn + "\" not supported");
  }
};

// Whether a pipeline reads `field` (as .A.Field or $x.Field). Searches run depth-first in tree
// order, the order Ollama's deleteNode walks.
bool pipe_mentions(const Pipe& p, const std::string& field, bool via_vars = true) {
  for (const auto& c : p.cmds)
    for (const auto& a : c.args) {
      if ((a.kind == AK::Field || (via_vars && a.kind == AK::Var)) &&
          std::find(a.chain.begin(), a.chain.end(), field) != a.chain.end())
        return true;
      if (a.kind == AK::Pipe && pipe_mentions(*a.pipe, field, via_vars)) return true;
    }
  return false;
}
int find_response(const Node& n) {
  // Ollama matches field nodes only, so $.Response does not cut.
  if (n.kind == NK::Action && pipe_mentions(*n.pipe, "Response", false)) return n.id;
  for (const auto& c : n.children)
    if (int id = find_response(*c); id >= 0) return id;
  if (n.list)
    if (int id = find_response(*n.list); id >= 0) return id;
  if (n.else_list)
    if (int id = find_response(*n.else_list); id >= 0) return id;
  return -1;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// The list that directly holds a {{ .Thinking }} action, searched inside ranges over .Messages.
const Node* thinking_list(const Node& n, bool in_messages) {
  if (n.kind == NK::List && in_messages)
    for (const auto& c : n.children)
      if (c->kind == NK::Action && pipe_mentions(*c->pipe, "Thinking")) return &n;
  bool inner = in_messages || (n.kind == NK::Range && pipe_mentions(*n.pipe, "Messages"));
  for (const auto& c : n.children)
    if (auto r = thinking_list(*c, inner)) return r;
  if (n.list)
    if (auto r = thinking_list(*n.list, inner)) return r;
  if (n.else_list)
    if (auto r = thinking_list(*n.else_list, inner)) return r;
  return nullptr;
}

const Node* tool_calls_if(const Node& n) {
  if ((n.kind == NK::If || n.kind == NK::Range) && pipe_mentions(*n.pipe, "ToolCalls")) return &n;
  for (const auto& c : n.children)
    if (auto r = tool_calls_if(*c)) return r;
  if (n.list)
    if (auto r = tool_calls_if(*n.list)) return r;
  if (n.else_list)
    if (auto r = tool_calls_if(*n.else_list)) return r;
  return nullptr;
}

const Node* first_text(const Node& n) {
  if (n.kind == NK::Text && !trim(n.text).empty()) return &n;
  for (const auto& c : n.children)
    if (auto r = first_text(*c)) return r;
  if (n.list)
    if (auto r = first_text(*n.list)) return r;
  return nullptr;
}

}  // namespace
}  // namespace gotmpl

GoTemplate::~GoTemplate() = default;

Result<std::unique_ptr<GoTemplate>> GoTemplate::parse(std::string_view source) {
  try {
    std::unique_ptr<GoTemplate> t(new GoTemplate());
    std::string src(source);
    t->root_ = gotmpl::parse_template(src, t->vars_);
    for (auto& v : t->vars_)
      for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    t->response_id_ = gotmpl::find_response(*t->root_);
    return t;
  } catch (const std::exception& e) {
    return Status::error(std::string("template: ") + e.what());
  }
}

Result<std::string> GoTemplate::render(const nlohmann::ordered_json& data, std::optional<std::time_t> now) const {
  try {
    gotmpl::Exec ex(*this, data, now ? *now : std::time(nullptr), -1);
    return ex.run(*root_);
  } catch (const std::exception& e) {
    return Status::error(std::string("template: ") + e.what());
  }
}

Result<std::string> GoTemplate::render(const nlohmann::json& data) const {
  return render(nlohmann::ordered_json::parse(data.dump()));
}

Result<std::string> GoTemplate::render_cut_after_response(const nlohmann::ordered_json& data,
                                                          std::optional<std::time_t> now) const {
  try {
    gotmpl::Exec ex(*this, data, now ? *now : std::time(nullptr), response_id_);
    return ex.run(*root_);
  } catch (const std::exception& e) {
    return Status::error(std::string("template: ") + e.what());
  }
}

bool GoTemplate::uses(std::string_view field) const {
  std::string f(field);
  for (auto& c : f) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::find(vars_.begin(), vars_.end(), f) != vars_.end();
}

std::pair<std::string, std::string> GoTemplate::thinking_tags() const {
  const gotmpl::Node* list = gotmpl::thinking_list(*root_, false);
  if (!list) return {};
  std::string open, close;
  for (const auto& c : list->children)
    if (c->kind == gotmpl::NK::Text && !gotmpl::trim(c->text).empty()) {
      if (open.empty()) open = gotmpl::trim(c->text);
      close = gotmpl::trim(c->text);
    }
  if (open.empty() || close.empty() || open == close) return {};
  return {open, close};
}

std::string GoTemplate::tool_call_tag() const {
  const gotmpl::Node* n = gotmpl::tool_calls_if(*root_);
  if (!n) return "";
  const gotmpl::Node* t = gotmpl::first_text(*n->list);
  if (!t) return "";
  std::string s = t->text;
  size_t brace = s.find('{');
  if (brace != std::string::npos) s = s.substr(0, brace);
  return gotmpl::trim(s);
}

}  // namespace osprey::chat
