// Internal: runtime values of the Jinja evaluator and the built-in filters/tests/methods.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "jinja_ast.h"

namespace osprey::chat::jinja {

struct Callable;

// Undefined is distinct from none (jinja2: `x is defined` vs `x is none`). Namespaces are shared
// by reference so `{% set ns.x = ... %}` inside a loop is visible after it.
struct Value {
  enum class K { Undef, Data, Ns, Fn };
  K k = K::Undef;
  Json j;
  std::shared_ptr<Json> ns;
  std::shared_ptr<Callable> fn;

  static Value data(Json v) {
    Value r;
    r.k = K::Data;
    r.j = std::move(v);
    return r;
  }
  bool undef() const { return k == K::Undef; }
  bool is_data() const { return k == K::Data; }
};

struct Frame {
  std::unordered_map<std::string, Value> vars;
};
using Scope = std::vector<std::shared_ptr<Frame>>;

struct Callable {
  std::string builtin;          // a global function ("range", "namespace", ...)
  const Stmt* def = nullptr;    // a macro, or a call block when used as caller()
  Scope closure;                // names visible to the macro body
};

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  const Value* get(size_t i, const char* name) const {
    if (i < pos.size()) return &pos[i];
    for (const auto& [k, v] : kw)
      if (k == name) return &v;
    return nullptr;
  }
};

[[noreturn]] inline void fail_at(int line, const std::string& msg) {
  throw Error("line " + std::to_string(line) + ": " + msg);
}

bool truthy(const Value& v);
std::string to_str(const Value& v);              // what {{ v }} prints
bool is_int(const Json& j);
double to_num(const Json& j);
Json as_data(const Value& v);                     // for storing inside lists/dicts
bool values_equal(const Value& a, const Value& b);
std::vector<Json> iterate(const Value& v, int line);  // for-loop / filter iteration items

// Filters / tests that need to call back into the evaluator (map to another filter, select with a
// test) only use these same entry points.
Value apply_filter(const std::string& name, const Value& in, const CallArgs& args, int line);
bool apply_test(const std::string& name, const Value& in, const CallArgs& args, int line);
// obj.method(args) for strings, dicts, lists; nullopt when obj has no such method.
std::optional<Value> call_method(const Value& obj, const std::string& name, const CallArgs& args, int line);

}  // namespace osprey::chat::jinja
