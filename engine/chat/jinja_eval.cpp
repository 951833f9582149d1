// Jinja evaluator: walks the tree from jinja_parse.cpp against a JSON context. Sandboxed: no
// I/O, no attribute access beyond dict keys and a fixed method list, and hard limits on output
// size, loop iterations and macro depth so a hostile template fails instead of hanging.
#include <algorithm>
#include <cmath>
#include <ctime>

#include "jinja.h"
#include "jinja_value.h"
#include "json_text.h"

namespace osprey::chat {
namespace jinja {

bool is_int(const Json& j) { return j.is_number_integer() || j.is_number_unsigned(); }
double to_num(const Json& j) { return j.is_number() ? j.get<double>() : j.is_boolean() ? double(j.get<bool>()) : 0; }

bool truthy(const Value& v) {
  switch (v.k) {
    case Value::K::Undef: return false;
    case Value::K::Ns:
    case Value::K::Fn: return true;
    case Value::K::Data: break;
  }
  const Json& j = v.j;
  if (j.is_null()) return false;
  if (j.is_boolean()) return j.get<bool>();
  if (j.is_number()) return to_num(j) != 0;
  if (j.is_string()) return !j.get_ref<const std::string&>().empty();
  if (j.is_array() || j.is_object()) return !j.empty();
  return true;
}

std::string to_str(const Value& v) {
  switch (v.k) {
    case Value::K::Undef: return "";
    case Value::K::Ns: return "<Namespace " + py_repr(*v.ns) + ">";
    case Value::K::Fn: return "<function>";
    case Value::K::Data: return py_str(v.j);
  }
  return "";
}

Json as_data(const Value& v) {
  if (v.k == Value::K::Data) return v.j;
  if (v.k == Value::K::Ns) return *v.ns;
  return nullptr;
}

bool values_equal(const Value& a, const Value& b) {
  if (a.undef() || b.undef()) return a.undef() && b.undef();
  if (a.k == Value::K::Ns || b.k == Value::K::Ns) return a.ns == b.ns;
  if (a.j.is_boolean() != b.j.is_boolean()) return false;  // nlohmann compares bool vs number as unequal too
  return a.j == b.j;
}

std::vector<Json> iterate(const Value& v, int line) {
  std::vector<Json> out;
  if (v.undef()) return out;
  if (v.k == Value::K::Ns) {
    for (auto it = v.ns->begin(); it != v.ns->end(); ++it) out.push_back(it.key());
    return out;
  }
  if (v.k != Value::K::Data) fail_at(line, "value is not iterable");
  const Json& j = v.j;
  if (j.is_array()) return std::vector<Json>(j.begin(), j.end());
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) out.push_back(it.key());
    return out;
  }
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    for (size_t i = 0; i < s.size();) {
      size_t k = i + 1;
      while (k < s.size() && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) ++k;
      out.push_back(s.substr(i, k - i));
      i = k;
    }
    return out;
  }
  fail_at(line, std::string("'") + j.type_name() + "' object is not iterable");
}

namespace {

enum class Flow { Normal, Break, Continue };

// Python's slice.indices(): clamps start/stop for the step's direction.
std::vector<long long> slice_indices(long long len, const std::optional<long long>& start,
                                     const std::optional<long long>& stop, long long step) {
  auto clamp = [&](std::optional<long long> v, long long dflt) {
    if (!v) return dflt;
    long long x = *v < 0 ? *v + len : *v;
    if (step > 0) return std::clamp(x, 0LL, len);
    return std::clamp(x, -1LL, len - 1);
  };
  long long b = clamp(start, step > 0 ? 0 : len - 1), e = clamp(stop, step > 0 ? len : -1);
  std::vector<long long> idx;
  for (long long i = b; step > 0 ? i < e : i > e; i += step) idx.push_back(i);
  return idx;
}

class Renderer {
 public:
  Renderer(const JinjaLimits& lim, std::time_t now) : lim_(lim), now_(now) {}
  // A macro's closure holds the frame the macro is stored in, a reference cycle; emptying every
  // frame when the render ends (normally or by error) frees them.
  ~Renderer() {
    for (auto& w : frames_)
      if (auto f = w.lock()) f->vars.clear();
  }

  std::string run(const Body& body, const Json& ctx) {
    auto globals = new_frame();
    if (ctx.is_object())
      for (auto it = ctx.begin(); it != ctx.end(); ++it) globals->vars[it.key()] = Value::data(it.value());
    scope_.push_back(globals);
    std::string out;
    exec(body, out);
    return out;
  }

 private:
  const JinjaLimits& lim_;
  std::time_t now_;
  Scope scope_;
  size_t iterations_ = 0;
  int depth_ = 0;
  std::vector<std::weak_ptr<Frame>> frames_;

  std::shared_ptr<Frame> new_frame() {
    auto f = std::make_shared<Frame>();
    if (frames_.size() >= 1024 && frames_.size() % 1024 == 0)  // keep the list bounded in long loops
      std::erase_if(frames_, [](const std::weak_ptr<Frame>& w) { return w.expired(); });
    frames_.push_back(f);
    return f;
  }

  void emit(std::string& out, const std::string& s, int line) {
    out += s;
    if (out.size() > lim_.max_output) fail_at(line, "output exceeds " + std::to_string(lim_.max_output) + " bytes");
  }

  Value lookup(const std::string& name) {
    for (auto it = scope_.rbegin(); it != scope_.rend(); ++it) {
      auto f = (*it)->vars.find(name);
      if (f != (*it)->vars.end()) return f->second;
    }
    static const char* builtins[] = {"range", "namespace", "raise_exception", "strftime_now", "dict", nullptr};
    for (int i = 0; builtins[i]; ++i)
      if (name == builtins[i]) {
        Value v;
        v.k = Value::K::Fn;
        v.fn = std::make_shared<Callable>();
        v.fn->builtin = name;
        return v;
      }
    return Value();
  }

  Flow exec(const Body& body, std::string& out) {
    for (const auto& s : body) {
      Flow f = exec_one(*s, out);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  void assign(const std::vector<std::string>& targets, const Value& v, int line) {
    Frame& f = *scope_.back();
    if (targets.size() == 1) {
      f.vars[targets[0]] = v;
      return;
    }
    if (!v.is_data() || !v.j.is_array() || v.j.size() != targets.size())
      fail_at(line, "cannot unpack into " + std::to_string(targets.size()) + " names");
    for (size_t i = 0; i < targets.size(); ++i) f.vars[targets[i]] = Value::data(v.j[i]);
  }

  Flow exec_one(const Stmt& s, std::string& out) {
    switch (s.kind) {
      case SK::Text: emit(out, s.text, s.line); return Flow::Normal;
      case SK::Output: emit(out, to_str(eval(*s.expr)), s.line); return Flow::Normal;
      case SK::If:
        for (const auto& br : s.branches)
          if (!br.cond || truthy(eval(*br.cond))) return exec(br.body, out);
        return Flow::Normal;
      case SK::For: return exec_for(s, out);
      case SK::Set: {
        Value v = eval(*s.expr);
        if (s.attr_target) {
          Value ns = lookup(s.targets[0]);
          if (ns.k != Value::K::Ns) fail_at(s.line, "cannot set attribute on '" + s.targets[0] + "' (not a namespace)");
          (*ns.ns)[s.targets[1]] = as_data(v);
          if (v.k == Value::K::Ns) (*ns.ns)[s.targets[1]] = *v.ns;
        } else {
          assign(s.targets, v, s.line);
        }
        return Flow::Normal;
      }
      case SK::SetBlock: {
        std::string captured;
        exec(s.body, captured);
        if (s.attr_target) {
          Value ns = lookup(s.targets[0]);
          if (ns.k != Value::K::Ns) fail_at(s.line, "cannot set attribute on a non-namespace");
          (*ns.ns)[s.targets[1]] = captured;
        } else {
          assign(s.targets, Value::data(captured), s.line);
        }
        return Flow::Normal;
      }
      case SK::Macro: {
        Value v;
        v.k = Value::K::Fn;
        v.fn = std::make_shared<Callable>();
        v.fn->def = &s;
        v.fn->closure = scope_;
        scope_.back()->vars[s.name] = v;
        return Flow::Normal;
      }
      case SK::CallBlock: {
        auto caller = std::make_shared<Callable>();
        caller->def = &s;
        caller->closure = scope_;
        Value cv;
        cv.k = Value::K::Fn;
        cv.fn = caller;
        emit(out, to_str(eval_call(*s.expr, &cv)), s.line);
        return Flow::Normal;
      }
      case SK::With: {
        // Values are evaluated in the outer scope, then bound in a scope of their own.
        auto frame = new_frame();
        for (size_t i = 0; i < s.params.size(); ++i) frame->vars[s.params[i]] = eval(*s.defaults[i]);
        scope_.push_back(frame);
        struct Pop {
          Scope& sc;
          ~Pop() { sc.pop_back(); }
        } pop{scope_};
        return exec(s.body, out);
      }
      case SK::FilterBlock: {
        std::string body;
        Flow f = exec(s.body, body);
        emit(out, to_str(apply_filter(s.expr->name, Value::data(body), eval_args(s.expr->args), s.line)), s.line);
        return f;
      }
      case SK::Break: return Flow::Break;
      case SK::Continue: return Flow::Continue;
    }
    return Flow::Normal;
  }

  Flow exec_for(const Stmt& s, std::string& out) {
    Value seq = eval(*s.expr);
    std::vector<Json> raw;
    if (seq.is_data() && seq.j.is_object() && s.targets.size() == 2)
      fail_at(s.line, "cannot unpack a mapping's keys; use .items()");
    raw = iterate(seq, s.line);
    scope_.push_back(new_frame());
    struct Pop {
      Scope& sc;
      ~Pop() { sc.pop_back(); }
    } pop{scope_};
    std::vector<Json> items;
    if (s.filter) {
      for (auto& x : raw) {
        assign(s.targets, Value::data(x), s.line);
        if (truthy(eval(*s.filter))) items.push_back(std::move(x));
      }
    } else {
      items = std::move(raw);
    }
    if (items.empty()) return exec(s.else_body, out) == Flow::Break ? Flow::Normal : Flow::Normal;
    size_t n = items.size();
    for (size_t i = 0; i < n; ++i) {
      if (++iterations_ > lim_.max_iterations) fail_at(s.line, "loop iteration limit exceeded");
      // Rebuilt each iteration: the body may have rebound `loop` in this frame.
      Value& lv = scope_.back()->vars["loop"];
      if (!lv.is_data() || !lv.j.is_object() || !lv.j.contains("depth0")) lv = Value::data(Json::object());
      Json& loop = lv.j;
      loop["index"] = i + 1;
      loop["index0"] = i;
      loop["revindex"] = n - i;
      loop["revindex0"] = n - i - 1;
      loop["first"] = i == 0;
      loop["last"] = i + 1 == n;
      loop["length"] = n;
      loop["depth"] = 1;
      loop["depth0"] = 0;
      if (i > 0) loop["previtem"] = items[i - 1];
      if (i + 1 < n) loop["nextitem"] = items[i + 1];
      else loop.erase("nextitem");
      assign(s.targets, Value::data(items[i]), s.line);
      if (exec(s.body, out) == Flow::Break) break;
    }
    return Flow::Normal;
  }

  CallArgs eval_args(const std::vector<Arg>& args) {
    CallArgs a;
    for (const auto& x : args) {
      if (x.name.empty()) a.pos.push_back(eval(*x.value));
      else a.kw.emplace_back(x.name, eval(*x.value));
    }
    return a;
  }

  Value get_attr(const Value& obj, const std::string& name) {
    if (obj.k == Value::K::Ns) {
      auto it = obj.ns->find(name);
      return it == obj.ns->end() ? Value() : Value::data(*it);
    }
    if (!obj.is_data()) return Value();
    if (obj.j.is_object()) {
      auto it = obj.j.find(name);
      return it == obj.j.end() ? Value() : Value::data(*it);
    }
    if (obj.j.is_array() && !name.empty() && std::all_of(name.begin(), name.end(), ::isdigit))
      return get_item(obj, Value::data(std::stoll(name)));
    return Value();
  }

  Value get_item(const Value& obj, const Value& key) {
    if (obj.k == Value::K::Ns) return key.is_data() && key.j.is_string() ? get_attr(obj, key.j.get<std::string>()) : Value();
    if (!obj.is_data() || !key.is_data()) return Value();
    const Json& j = obj.j;
    if (j.is_object()) {
      if (!key.j.is_string()) return Value();
      auto it = j.find(key.j.get<std::string>());
      return it == j.end() ? Value() : Value::data(*it);
    }
    if ((j.is_array() || j.is_string()) && is_int(key.j)) {
      long long i = key.j.get<long long>();
      long long n = j.is_array() ? static_cast<long long>(j.size()) : static_cast<long long>(utf8_length(j.get<std::string>()));
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value();
      if (j.is_array()) return Value::data(j[static_cast<size_t>(i)]);
      const std::string& s = j.get_ref<const std::string&>();
      size_t b = utf8_offset(s, i), e = utf8_offset(s, i + 1);
      return Value::data(s.substr(b, e - b));
    }
    return Value();
  }

  Value eval_slice(const Expr& e) {
    Value obj = eval(*e.a);
    auto opt = [&](const ExprPtr& p) -> std::optional<long long> {
      if (!p) return std::nullopt;
      Value v = eval(*p);
      if (v.is_data() && v.j.is_null()) return std::nullopt;
      if (!v.is_data() || !is_int(v.j)) fail_at(e.line, "slice indices must be integers");
      return v.j.get<long long>();
    };
    auto start = opt(e.b), stop = opt(e.c), step = opt(e.d);
    long long st = step.value_or(1);
    if (st == 0) fail_at(e.line, "slice step cannot be zero");
    if (!obj.is_data()) return Value();
    if (obj.j.is_array()) {
      Json out = Json::array();
      for (long long i : slice_indices(static_cast<long long>(obj.j.size()), start, stop, st)) out.push_back(obj.j[i]);
      return Value::data(std::move(out));
    }
    if (obj.j.is_string()) {
      const std::string& s = obj.j.get_ref<const std::string&>();
      std::string out;
      for (long long i : slice_indices(static_cast<long long>(utf8_length(s)), start, stop, st)) {
        size_t b = utf8_offset(s, i), en = utf8_offset(s, i + 1);
        out += s.substr(b, en - b);
      }
      return Value::data(out);
    }
    fail_at(e.line, "value cannot be sliced");
  }

  Value call_builtin(const std::string& name, const CallArgs& a, int line) {
    if (name == "raise_exception") throw Error(a.pos.empty() ? "raise_exception called" : to_str(a.pos[0]));
    if (name == "range") {
      std::vector<long long> n;
      for (const auto& v : a.pos) {
        if (!v.is_data() || !is_int(v.j)) fail_at(line, "range() needs integers");
        n.push_back(v.j.get<long long>());
      }
      if (n.empty() || n.size() > 3) fail_at(line, "range() takes 1 to 3 arguments");
      long long b = n.size() == 1 ? 0 : n[0], e = n.size() == 1 ? n[0] : n[1], st = n.size() == 3 ? n[2] : 1;
      if (st == 0) fail_at(line, "range() step must not be zero");
      Json out = Json::array();
      for (long long i = b; st > 0 ? i < e : i > e; i += st) {
        if (out.size() >= lim_.max_iterations) fail_at(line, "range() too large");
        out.push_back(i);
      }
      return Value::data(std::move(out));
    }
    if (name == "namespace" || name == "dict") {
      Json obj = Json::object();
      for (const auto& p : a.pos)
        if (p.is_data() && p.j.is_object()) obj.update(p.j);
      for (const auto& [k, v] : a.kw) obj[k] = as_data(v);
      if (name == "dict") return Value::data(std::move(obj));
      Value v;
      v.k = Value::K::Ns;
      v.ns = std::make_shared<Json>(std::move(obj));
      return v;
    }
    if (name == "strftime_now") {
      std::string fmt = a.pos.empty() ? "" : to_str(a.pos[0]);
      std::tm tm{};
      localtime_r(&now_, &tm);
      char buf[256];
      size_t n = fmt.empty() ? 0 : std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
      return Value::data(std::string(buf, n));
    }
    fail_at(line, "unknown function '" + name + "'");
  }

  Value call_macro(const Callable& fn, const CallArgs& a, const Value* caller, int line) {
    if (++depth_ > lim_.max_depth) fail_at(line, "macro recursion too deep");
    Scope saved = std::move(scope_);
    scope_ = fn.closure;
    auto frame = new_frame();
    scope_.push_back(frame);
    struct Restore {
      Renderer& r;
      Scope& saved;
      ~Restore() {
        r.scope_ = std::move(saved);
        --r.depth_;
      }
    } restore{*this, saved};
    const Stmt& def = *fn.def;
    for (size_t i = 0; i < def.params.size(); ++i) {
      const Value* v = a.get(i, def.params[i].c_str());
      if (v) frame->vars[def.params[i]] = *v;
      else if (def.defaults[i]) frame->vars[def.params[i]] = eval(*def.defaults[i]);
      else frame->vars[def.params[i]] = Value();
    }
    Json varargs = Json::array();
    for (size_t i = def.params.size(); i < a.pos.size(); ++i) varargs.push_back(as_data(a.pos[i]));
    frame->vars["varargs"] = Value::data(std::move(varargs));
    if (caller) frame->vars["caller"] = *caller;
    std::string out;
    exec(def.body, out);
    return Value::data(out);
  }

  Value eval_call(const Expr& e, const Value* caller = nullptr) {
    CallArgs a = eval_args(e.args);
    if (e.a->kind == EK::Attr) {
      Value obj = eval(*e.a->a);
      if (auto r = call_method(obj, e.a->name, a, e.line)) return *r;
      Value f = get_attr(obj, e.a->name);
      if (f.k != Value::K::Fn) fail_at(e.line, "'" + e.a->name + "' is not callable");
      return call_macro(*f.fn, a, caller, e.line);
    }
    Value f = eval(*e.a);
    if (f.k != Value::K::Fn) fail_at(e.line, (e.a->kind == EK::Name ? "'" + e.a->name + "'" : std::string("value")) + " is not callable");
    if (!f.fn->builtin.empty()) return call_builtin(f.fn->builtin, a, e.line);
    return call_macro(*f.fn, a, caller, e.line);
  }

  Value arith(const std::string& op, const Value& l, const Value& r, int line) {
    if (op == "~" || (op == "+" && l.is_data() && r.is_data() && l.j.is_string() && r.j.is_string())) {
      // Doubling a string in a loop would otherwise exhaust memory long before any output.
      std::string s = to_str(l);
      std::string t = to_str(r);
      if (s.size() + t.size() > lim_.max_output) fail_at(line, "string exceeds the output limit");
      return Value::data(s + t);
    }
    if (!l.is_data() || !r.is_data()) fail_at(line, "unsupported operand for '" + op + "' (undefined value)");
    const Json &x = l.j, &y = r.j;
    if (op == "+") {
      if (x.is_string() && y.is_string()) return Value::data(x.get<std::string>() + y.get<std::string>());
      if (x.is_array() && y.is_array()) {
        if (x.size() + y.size() > lim_.max_iterations) fail_at(line, "list exceeds the size limit");
        Json out = x;
        for (const auto& v : y) out.push_back(v);
        return Value::data(std::move(out));
      }
    }
    if (op == "*" && (x.is_string() || x.is_array()) && is_int(y)) {
      Json out = x.is_string() ? Json("") : Json::array();
      long long n = y.get<long long>();
      if (n * static_cast<long long>(x.is_string() ? x.get<std::string>().size() : x.size()) > static_cast<long long>(lim_.max_output))
        fail_at(line, "repetition too large");
      for (long long i = 0; i < n; ++i) {
        if (x.is_string()) out = out.get<std::string>() + x.get<std::string>();
        else for (const auto& v : x) out.push_back(v);
      }
      return Value::data(std::move(out));
    }
    bool xn = x.is_number() || x.is_boolean(), yn = y.is_number() || y.is_boolean();
    if (!xn || !yn) fail_at(line, std::string("unsupported operands for '") + op + "': " + x.type_name() + " and " + y.type_name());
    bool ints = !x.is_number_float() && !y.is_number_float();
    double a = to_num(x), b = to_num(y);
    if (op == "/") {
      if (b == 0) fail_at(line, "division by zero");
      return Value::data(a / b);
    }
    if (op == "//" || op == "%") {
      if (b == 0) fail_at(line, "division by zero");
      if (ints) {
        long long p = static_cast<long long>(a), q = static_cast<long long>(b);
        long long d = p / q, m = p % q;
        if (m != 0 && ((m < 0) != (q < 0))) { --d; m += q; }
        return Value::data(op == "//" ? d : m);
      }
      double d = std::floor(a / b);
      return Value::data(op == "//" ? d : a - d * b);
    }
    if (op == "**") {
      if (ints && b >= 0) return Value::data(static_cast<long long>(std::llround(std::pow(a, b))));
      return Value::data(std::pow(a, b));
    }
    double res = op == "+" ? a + b : op == "-" ? a - b : a * b;
    if (ints) return Value::data(static_cast<long long>(res));
    return Value::data(res);
  }

  bool contains(const Value& container, const Value& item, int line) {
    if (container.k == Value::K::Ns) return item.is_data() && item.j.is_string() && container.ns->contains(item.j.get<std::string>());
    if (container.undef()) return false;
    if (!container.is_data()) fail_at(line, "'in' needs a container");
    const Json& c = container.j;
    if (c.is_string()) {
      if (!item.is_data() || !item.j.is_string()) fail_at(line, "'in <string>' needs a string on the left");
      return c.get<std::string>().find(item.j.get<std::string>()) != std::string::npos;
    }
    if (c.is_object()) return item.is_data() && item.j.is_string() && c.contains(item.j.get<std::string>());
    if (c.is_array()) {
      for (const auto& x : c)
        if (values_equal(Value::data(x), item)) return true;
      return false;
    }
    fail_at(line, "'in' needs a container");
  }

  // Resolves a name and the attribute / index path below it to the data already held in scope,
  // so `messages[i].content` or `messages|length` inside a loop copy one element, not the whole
  // conversation. nullptr when the path is anything else or missing; callers then use eval().
  const Json* peek_data(const Expr& e) {
    switch (e.kind) {
      case EK::Name:
        for (auto it = scope_.rbegin(); it != scope_.rend(); ++it) {
          auto f = (*it)->vars.find(e.name);
          if (f != (*it)->vars.end()) return f->second.is_data() ? &f->second.j : nullptr;
        }
        return nullptr;
      case EK::Attr: {
        const Json* o = peek_data(*e.a);
        if (!o || !o->is_object()) return nullptr;
        auto it = o->find(e.name);
        return it == o->end() ? nullptr : &*it;
      }
      case EK::Index: {
        const Json* o = peek_data(*e.a);
        if (!o || !(o->is_object() || o->is_array())) return nullptr;
        Value k = eval(*e.b);
        if (!k.is_data()) return nullptr;
        if (o->is_object()) {
          if (!k.j.is_string()) return nullptr;
          auto it = o->find(k.j.get<std::string>());
          return it == o->end() ? nullptr : &*it;
        }
        if (!is_int(k.j)) return nullptr;
        long long i = k.j.get<long long>(), n = static_cast<long long>(o->size());
        if (i < 0) i += n;
        return i >= 0 && i < n ? &(*o)[static_cast<size_t>(i)] : nullptr;
      }
      default: return nullptr;
    }
  }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case EK::Literal: return Value::data(e.literal);
      case EK::Name: return lookup(e.name);
      case EK::List:
      case EK::Tuple: {
        Json out = Json::array();
        for (const auto& x : e.items) out.push_back(as_data(eval(*x)));
        return Value::data(std::move(out));
      }
      case EK::Dict: {
        Json out = Json::object();
        for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
          Value k = eval(*e.items[i]);
          out[k.is_data() && k.j.is_string() ? k.j.get<std::string>() : to_str(k)] = as_data(eval(*e.items[i + 1]));
        }
        return Value::data(std::move(out));
      }
      case EK::Attr:
        if (const Json* p = peek_data(e)) return Value::data(*p);
        return get_attr(eval(*e.a), e.name);
      case EK::Index:
        if (const Json* p = peek_data(e)) return Value::data(*p);
        return get_item(eval(*e.a), eval(*e.b));
      case EK::Slice: return eval_slice(e);
      case EK::Call: return eval_call(e);
      case EK::Filter:
        if ((e.name == "length" || e.name == "count") && e.args.empty())
          if (const Json* p = peek_data(*e.a); p && (p->is_array() || p->is_object())) return Value::data(p->size());
        return apply_filter(e.name, eval(*e.a), eval_args(e.args), e.line);
      case EK::Test: {
        bool r = apply_test(e.name, eval(*e.a), eval_args(e.args), e.line);
        return Value::data(e.negate ? !r : r);
      }
      case EK::Unary: {
        Value v = eval(*e.a);
        if (e.name == "not") return Value::data(!truthy(v));
        if (!v.is_data() || !v.j.is_number()) fail_at(e.line, "unary '" + e.name + "' needs a number");
        if (e.name == "+") return v;
        return is_int(v.j) ? Value::data(-v.j.get<long long>()) : Value::data(-v.j.get<double>());
      }
      case EK::Ternary:
        if (truthy(eval(*e.b))) return eval(*e.a);
        return e.c ? eval(*e.c) : Value();
      case EK::Binary: break;
    }
    const std::string& op = e.name;
    if (op == "and") {
      Value l = eval(*e.a);
      return truthy(l) ? eval(*e.b) : l;
    }
    if (op == "or") {
      Value l = eval(*e.a);
      return truthy(l) ? l : eval(*e.b);
    }
    Value l = eval(*e.a), r = eval(*e.b);
    if (op == "==") return Value::data(values_equal(l, r));
    if (op == "!=") return Value::data(!values_equal(l, r));
    if (op == "in") return Value::data(contains(r, l, e.line));
    if (op == "not in") return Value::data(!contains(r, l, e.line));
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      if (!l.is_data() || !r.is_data()) fail_at(e.line, "cannot compare undefined values");
      bool nums = (l.j.is_number() || l.j.is_boolean()) && (r.j.is_number() || r.j.is_boolean());
      int c;
      if (nums) {
        double a = to_num(l.j), b = to_num(r.j);
        c = a < b ? -1 : a > b ? 1 : 0;
      } else if (l.j.is_string() && r.j.is_string()) {
        c = l.j.get<std::string>().compare(r.j.get<std::string>());
      } else {
        fail_at(e.line, std::string("cannot compare ") + l.j.type_name() + " and " + r.j.type_name());
      }
      if (op == "<") return Value::data(c < 0);
      if (op == ">") return Value::data(c > 0);
      if (op == "<=") return Value::data(c <= 0);
      return Value::data(c >= 0);
    }
    return arith(op, l, r, e.line);
  }
};

}  // namespace
}  // namespace jinja

JinjaTemplate::~JinjaTemplate() = default;

Result<std::unique_ptr<JinjaTemplate>> JinjaTemplate::parse(std::string_view source) {
  try {
    std::unique_ptr<JinjaTemplate> t(new JinjaTemplate());
    t->body_ = jinja::parse_template(std::string(source));
    return t;
  } catch (const std::exception& e) {
    return Status::error(std::string("chat template: ") + e.what());
  }
}

Result<std::string> JinjaTemplate::render(const nlohmann::ordered_json& ctx, std::optional<std::time_t> now) const {
  try {
    jinja::Renderer r(limits, now ? *now : std::time(nullptr));
    return r.run(body_, ctx);
  } catch (const jinja::Error& e) {
    return Status::error(std::string("chat template: ") + e.what());
  } catch (const std::exception& e) {
    return Status::error(std::string("chat template: ") + e.what());
  }
}

Result<std::string> JinjaTemplate::render(const nlohmann::json& ctx) const {
  return render(nlohmann::ordered_json::parse(ctx.dump()));
}

}  // namespace osprey::chat
