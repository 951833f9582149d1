// Jinja filters, tests and Python string/dict methods, with Python's semantics where templates
// can observe them (strip's character sets, split on whitespace runs, code-point lengths).
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "jinja_value.h"
#include "json_text.h"

namespace osprey::chat::jinja {
namespace {

const char* kPyWs = " \t\n\r\v\f";

std::string strip(const std::string& s, const std::string& chars, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left) b = s.find_first_not_of(chars);
  if (b == std::string::npos) return "";
  if (right) {
    size_t r = s.find_last_not_of(chars);
    e = r == std::string::npos ? b : r + 1;
  }
  return e > b ? s.substr(b, e - b) : "";
}

std::string str_arg(const CallArgs& a, size_t i, const char* name, const std::string& dflt) {
  const Value* v = a.get(i, name);
  if (!v || v->undef() || (v->is_data() && v->j.is_null())) return dflt;
  return to_str(*v);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string title(std::string s) {
  bool start = true;
  for (auto& c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      c = static_cast<char>(start ? std::toupper(u) : std::tolower(u));
      start = false;
    } else {
      start = !(std::isdigit(u) || u == '\'' || u >= 0x80);
    }
  }
  return s;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, long long count) {
  if (from.empty()) {
    // Python inserts `to` around every code point.
    std::string out;
    long long n = 0;
    for (size_t i = 0; i < s.size();) {
      if (count < 0 || n < count) { out += to; ++n; }
      size_t j = i + 1;
      while (j < s.size() && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80) ++j;
      out += s.substr(i, j - i);
      i = j;
    }
    if (count < 0 || n < count) out += to;
    return out;
  }
  std::string out;
  size_t pos = 0;
  long long n = 0;
  while (count < 0 || n < count) {
    size_t f = s.find(from, pos);
    if (f == std::string::npos) break;
    out += s.substr(pos, f - pos) + to;
    pos = f + from.size();
    ++n;
  }
  return out + s.substr(pos);
}

Json split(const std::string& s, const Value* sep, long long maxsplit) {
  Json out = Json::array();
  if (!sep || sep->undef() || sep->j.is_null()) {
    size_t i = 0;
    long long n = 0;
    while (true) {
      while (i < s.size() && std::strchr(kPyWs, s[i]) && s[i]) ++i;
      if (i >= s.size()) break;
      if (maxsplit >= 0 && n >= maxsplit) {
        out.push_back(strip(s.substr(i), kPyWs, false, true));
        break;
      }
      size_t j = i;
      while (j < s.size() && !(std::strchr(kPyWs, s[j]) && s[j])) ++j;
      out.push_back(s.substr(i, j - i));
      ++n;
      i = j;
    }
    return out;
  }
  std::string d = to_str(*sep);
  if (d.empty()) throw Error("split: empty separator");
  size_t pos = 0;
  long long n = 0;
  while (maxsplit < 0 || n < maxsplit) {
    size_t f = s.find(d, pos);
    if (f == std::string::npos) break;
    out.push_back(s.substr(pos, f - pos));
    pos = f + d.size();
    ++n;
  }
  out.push_back(s.substr(pos));
  return out;
}

Value attr_of(const Json& item, const std::string& path) {
  // `attribute="a.b"` walks nested keys; integer parts index lists.
  const Json* cur = &item;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (cur->is_object()) {
      auto it = cur->find(part);
      if (it == cur->end()) return Value();
      cur = &*it;
    } else if (cur->is_array() && !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit)) {
      size_t i = std::stoul(part);
      if (i >= cur->size()) return Value();
      cur = &(*cur)[i];
    } else {
      return Value();
    }
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return Value::data(*cur);
}

int compare_json(const Json& a, const Json& b, bool case_sensitive) {
  if (a.is_number() && b.is_number()) {
    double x = to_num(a), y = to_num(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    std::string x = a.get<std::string>(), y = b.get<std::string>();
    if (!case_sensitive) { x = lower(x); y = lower(y); }
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_boolean() && b.is_boolean()) return int(a.get<bool>()) - int(b.get<bool>());
  throw Error("cannot compare " + std::string(a.type_name()) + " with " + b.type_name());
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// selectattr/rejectattr/select/reject share one loop.
Value select_items(const Value& in, const CallArgs& args, bool by_attr, bool keep, int line) {
  Json out = Json::array();
  size_t first_test_arg = by_attr ? 1 : 0;
  std::string attr = by_attr ? str_arg(args, 0, "attribute", "") : "";
  const Value* test = args.get(first_test_arg, "test");
  CallArgs targs;
  for (size_t i = first_test_arg + 1; i < args.pos.size(); ++i) targs.pos.push_back(args.pos[i]);
  if (!truthy(in)) return Value::data(std::move(out));  // jinja2 treats none/empty input as no items
  for (const Json& item : iterate(in, line)) {
    Value v = by_attr ? attr_of(item, attr) : Value::data(item);
    bool ok = test ? apply_test(to_str(*test), v, targs, line) : truthy(v);
    if (ok == keep) out.push_back(item);
  }
  return Value::data(std::move(out));
}

}  // namespace

Value apply_filter(const std::string& name, const Value& in, const CallArgs& args, int line) {
  const Json& j = in.j;
  bool data = in.is_data();
  if (name == "safe") return in;
  if (name == "trim") {
    return Value::data(strip(to_str(in), str_arg(args, 0, "chars", kPyWs), true, true));
  }
  if (name == "length" || name == "count") {
    if (in.undef()) return Value::data(0);
    if (data && j.is_string()) return Value::data(utf8_length(j.get_ref<const std::string&>()));
    if (data && (j.is_array() || j.is_object())) return Value::data(j.size());
    if (in.k == Value::K::Ns) return Value::data(in.ns->size());
    fail_at(line, "object of type " + std::string(data ? j.type_name() : "value") + " has no length");
  }
  if (name == "tojson") {
    std::optional<int> indent;
    if (const Value* v = args.get(0, "indent"); v && v->is_data() && v->j.is_number()) indent = static_cast<int>(to_num(v->j));
    Json val = as_data(in);
    if (const Value* v = args.get(99, "sort_keys"); v && truthy(*v)) {
      // A sorted copy: nlohmann::json (std::map) orders keys, then back to insertion order.
      val = Json::parse(nlohmann::json(val).dump());
    }
    return Value::data(py_json_dumps(val, indent));
  }
  if (name == "upper") return Value::data(upper(to_str(in)));
  if (name == "lower") return Value::data(lower(to_str(in)));
  if (name == "title") return Value::data(title(to_str(in)));
  if (name == "capitalize") {
    std::string s = lower(to_str(in));
    if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    return Value::data(s);
  }
  if (name == "string") return Value::data(to_str(in));
  if (name == "escape" || name == "e") return Value::data(html_escape(to_str(in)));
  if (name == "int" || name == "float") {
    const Value* d = args.get(0, "default");
    Json dflt = d ? as_data(*d) : (name == "int" ? Json(0) : Json(0.0));
    double x;
    if (data && j.is_number()) x = to_num(j);
    else if (data && j.is_boolean()) x = j.get<bool>();
    else if (data && j.is_string()) {
      std::string s = strip(j.get<std::string>(), kPyWs, true, true);
      char* end = nullptr;
      x = std::strtod(s.c_str(), &end);
      if (s.empty() || *end) return Value::data(dflt);
    } else return Value::data(dflt);
    if (name == "int") return Value::data(static_cast<long long>(std::trunc(x)));
    return Value::data(x);
  }
  if (name == "abs") {
    if (!data || !j.is_number()) fail_at(line, "abs needs a number");
    return is_int(j) ? Value::data(std::llabs(j.get<long long>())) : Value::data(std::fabs(j.get<double>()));
  }
  if (name == "join") {
    std::string sep = str_arg(args, 0, "d", "");
    const Value* attr = args.get(1, "attribute");
    std::string out;
    bool first = true;
    for (const Json& item : iterate(in, line)) {
      if (!first) out += sep;
      first = false;
      out += to_str(attr ? attr_of(item, to_str(*attr)) : Value::data(item));
    }
    return Value::data(out);
  }
  if (name == "default" || name == "d") {
    const Value* b = args.get(1, "boolean");
    bool use = in.undef() || (b && truthy(*b) && !truthy(in));
    if (!use) return in;
    const Value* d = args.get(0, "default_value");
    return d ? *d : Value::data("");
  }
  if (name == "first" || name == "last") {
    if (data && j.is_string()) {
      const std::string& s = j.get_ref<const std::string&>();
      size_t n = utf8_length(s);
      if (n == 0) return Value();
      size_t cp = name == "first" ? 0 : n - 1;
      size_t b = utf8_offset(s, cp), e = utf8_offset(s, cp + 1);
      return Value::data(s.substr(b, e - b));
    }
    auto items = iterate(in, line);
    if (items.empty()) return Value();
    return Value::data(name == "first" ? items.front() : items.back());
  }
  if (name == "list") {
    Json out = Json::array();
    for (auto& x : iterate(in, line)) out.push_back(std::move(x));
    return Value::data(std::move(out));
  }
  if (name == "reverse") {
    if (data && j.is_string()) {
      std::string s = j.get<std::string>(), out;
      for (size_t n = utf8_length(s); n > 0; --n) {
        size_t b = utf8_offset(s, n - 1), e = utf8_offset(s, n);
        out += s.substr(b, e - b);
      }
      return Value::data(out);
    }
    auto items = iterate(in, line);
    std::reverse(items.begin(), items.end());
    return Value::data(Json(items));
  }
  if (name == "items" || name == "dictsort") {
    if (in.undef()) return Value::data(Json::array());
    if (!data || !j.is_object()) fail_at(line, name + " needs a mapping");
    Json out = Json::array();
    for (auto it = j.begin(); it != j.end(); ++it) out.push_back(Json::array({it.key(), it.value()}));
    if (name == "dictsort") {
      const Value* cs = args.get(0, "case_sensitive");
      bool sensitive = cs && truthy(*cs);
      std::stable_sort(out.begin(), out.end(), [&](const Json& a, const Json& b) {
        return compare_json(a[0], b[0], sensitive) < 0;
      });
    }
    return Value::data(std::move(out));
  }
  if (name == "selectattr") return select_items(in, args, true, true, line);
  if (name == "rejectattr") return select_items(in, args, true, false, line);
  if (name == "select") return select_items(in, args, false, true, line);
  if (name == "reject") return select_items(in, args, false, false, line);
  if (name == "map") {
    Json out = Json::array();
    const Value* attr = args.get(99, "attribute");
    const Value* dflt = args.get(99, "default");
    if (!truthy(in)) return Value::data(std::move(out));
    for (const Json& item : iterate(in, line)) {
      if (attr) {
        Value v = attr_of(item, to_str(*attr));
        out.push_back(v.undef() ? (dflt ? as_data(*dflt) : Json()) : v.j);
      } else {
        if (args.pos.empty()) fail_at(line, "map needs a filter name or attribute=");
        CallArgs rest;
        rest.pos.assign(args.pos.begin() + 1, args.pos.end());
        out.push_back(as_data(apply_filter(to_str(args.pos[0]), Value::data(item), rest, line)));
      }
    }
    return Value::data(std::move(out));
  }
  if (name == "replace") {
    const Value* c = args.get(2, "count");
    long long count = c && c->is_data() && c->j.is_number() ? static_cast<long long>(to_num(c->j)) : -1;
    return Value::data(replace_all(to_str(in), str_arg(args, 0, "old", ""), str_arg(args, 1, "new", ""), count));
  }
  if (name == "unique") {
    Json out = Json::array();
    for (const Json& item : iterate(in, line))
      if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
    return Value::data(std::move(out));
  }
  if (name == "sort") {
    auto items = iterate(in, line);
    const Value* rev = args.get(0, "reverse");
    const Value* cs = args.get(1, "case_sensitive");
    const Value* attr = args.get(2, "attribute");
    bool sensitive = cs && truthy(*cs);
    std::stable_sort(items.begin(), items.end(), [&](const Json& a, const Json& b) {
      Json x = attr ? as_data(attr_of(a, to_str(*attr))) : a, y = attr ? as_data(attr_of(b, to_str(*attr))) : b;
      return compare_json(x, y, sensitive) < 0;
    });
    if (rev && truthy(*rev)) std::reverse(items.begin(), items.end());
    return Value::data(Json(items));
  }
  if (name == "sum" || name == "min" || name == "max") {
    auto items = iterate(in, line);
    if (name == "sum") {
      Json acc = 0;
      for (const auto& x : items) {
        if (!x.is_number()) fail_at(line, "sum needs numbers");
        acc = is_int(acc) && is_int(x) ? Json(acc.get<long long>() + x.get<long long>()) : Json(to_num(acc) + to_num(x));
      }
      return Value::data(acc);
    }
    if (items.empty()) return Value();
    Json best = items[0];
    for (const auto& x : items)
      if ((compare_json(x, best, false) < 0) == (name == "min") && compare_json(x, best, false) != 0) best = x;
    return Value::data(best);
  }
  if (name == "indent") {
    const Value* w = args.get(0, "width");
    const Value* first = args.get(1, "first");
    std::string pad = w && w->is_data() && w->j.is_string() ? w->j.get<std::string>()
                                                            : std::string(w ? static_cast<size_t>(to_num(w->j)) : 4, ' ');
    std::string s = to_str(in), out;
    bool line_start = first && truthy(*first);
    for (char c : s) {
      if (line_start && c != '\n') out += pad;
      line_start = false;
      out += c;
      if (c == '\n') line_start = true;
    }
    return Value::data(out);
  }
  fail_at(line, "unknown filter '" + name + "'");
}

bool apply_test(const std::string& name, const Value& in, const CallArgs& args, int line) {
  const Json& j = in.j;
  bool data = in.is_data();
  auto arg = [&](size_t i) -> Value {
    if (i >= args.pos.size()) fail_at(line, "test '" + name + "' needs an argument");
    return args.pos[i];
  };
  if (name == "defined") return !in.undef();
  if (name == "undefined") return in.undef();
  if (name == "none") return data && j.is_null();
  if (name == "string") return data && j.is_string();
  if (name == "number") return data && j.is_number();
  if (name == "integer") return data && is_int(j);
  if (name == "float") return data && j.is_number_float();
  if (name == "boolean") return data && j.is_boolean();
  if (name == "true") return data && j.is_boolean() && j.get<bool>();
  if (name == "false") return data && j.is_boolean() && !j.get<bool>();
  if (name == "mapping") return (data && j.is_object()) || in.k == Value::K::Ns;
  if (name == "sequence" || name == "iterable") return data && (j.is_array() || j.is_string() || j.is_object());
  if (name == "callable") return in.k == Value::K::Fn;
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") return values_equal(in, arg(0));
  if (name == "ne" || name == "!=") return !values_equal(in, arg(0));
  if (name == "lt" || name == "gt" || name == "le" || name == "ge" || name == "lessthan" || name == "greaterthan") {
    int c = compare_json(as_data(in), as_data(arg(0)), true);
    if (name == "lt" || name == "lessthan") return c < 0;
    if (name == "gt" || name == "greaterthan") return c > 0;
    return name == "le" ? c <= 0 : c >= 0;
  }
  if (name == "in") {
    Value container = arg(0);
    for (const Json& x : iterate(container, line))
      if (x == as_data(in)) return true;
    if (container.is_data() && container.j.is_string() && data && j.is_string())
      return container.j.get<std::string>().find(j.get<std::string>()) != std::string::npos;
    return false;
  }
  if (name == "odd" || name == "even") {
    if (!data || !is_int(j)) return false;
    return (j.get<long long>() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    Value d = arg(0);
    if (!data || !is_int(j) || !d.is_data() || !is_int(d.j) || d.j.get<long long>() == 0) return false;
    return j.get<long long>() % d.j.get<long long>() == 0;
  }
  if (name == "lower") return data && j.is_string() && lower(j.get<std::string>()) == j.get<std::string>();
  if (name == "upper") return data && j.is_string() && upper(j.get<std::string>()) == j.get<std::string>();
  fail_at(line, "unknown test '" + name + "'");
}

std::optional<Value> call_method(const Value& obj, const std::string& name, const CallArgs& args, int line) {
  if (!obj.is_data()) return std::nullopt;
  const Json& j = obj.j;
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      std::string chars = str_arg(args, 0, "chars", kPyWs);
      return Value::data(strip(s, chars, name != "rstrip", name != "lstrip"));
    }
    if (name == "split" || name == "rsplit") {
      const Value* m = args.get(1, "maxsplit");
      long long maxsplit = m && m->is_data() && m->j.is_number() ? static_cast<long long>(to_num(m->j)) : -1;
      return Value::data(split(s, args.get(0, "sep"), name == "split" ? maxsplit : -1));
    }
    if (name == "startswith" || name == "endswith") {
      const Value* a = args.get(0, "prefix");
      if (!a) fail_at(line, name + " needs an argument");
      std::vector<std::string> cands;
      if (a->is_data() && a->j.is_array())
        for (const auto& x : a->j) cands.push_back(py_str(x));
      else cands.push_back(to_str(*a));
      for (const auto& c : cands) {
        if (c.size() > s.size()) continue;
        if (name == "startswith" ? s.compare(0, c.size(), c) == 0 : s.compare(s.size() - c.size(), c.size(), c) == 0)
          return Value::data(true);
      }
      return Value::data(false);
    }
    if (name == "upper") return Value::data(upper(s));
    if (name == "lower") return Value::data(lower(s));
    if (name == "title") return Value::data(title(s));
    if (name == "capitalize") return apply_filter("capitalize", obj, args, line);
    if (name == "replace") return apply_filter("replace", obj, args, line);
    if (name == "find") {
      size_t f = s.find(str_arg(args, 0, "sub", ""));
      return Value::data(f == std::string::npos ? -1LL : static_cast<long long>(utf8_length(s.substr(0, f))));
    }
    if (name == "count") {
      std::string sub = str_arg(args, 0, "sub", "");
      if (sub.empty()) return Value::data(utf8_length(s) + 1);
      long long n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value::data(n);
    }
    if (name == "join") {
      std::string out;
      bool first = true;
      for (const Json& x : iterate(args.pos.empty() ? Value() : args.pos[0], line)) {
        if (!first) out += s;
        first = false;
        out += py_str(x);
      }
      return Value::data(out);
    }
    if (name == "format") {
      // Python str.format for plain fields: {} / {0} / {name}, with {{ and }} escapes.
      std::string out;
      size_t auto_idx = 0;
      for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if ((c == '{' || c == '}') && i + 1 < s.size() && s[i + 1] == c) { out += c; ++i; continue; }
        if (c != '{') { out += c; continue; }
        size_t close = s.find('}', i);
        if (close == std::string::npos) fail_at(line, "format: unmatched '{'");
        std::string field = s.substr(i + 1, close - i - 1);
        const Value* v = nullptr;
        if (field.empty()) v = auto_idx < args.pos.size() ? &args.pos[auto_idx++] : nullptr;
        else if (std::all_of(field.begin(), field.end(), ::isdigit)) {
          size_t k = std::stoul(field);
          v = k < args.pos.size() ? &args.pos[k] : nullptr;
        } else {
          for (const auto& [kname, kv] : args.kw)
            if (kname == field) v = &kv;
        }
        if (!v) fail_at(line, "format: no value for field '{" + field + "}'");
        out += to_str(*v);
        i = close;
      }
      return Value::data(out);
    }
    if (name == "splitlines") {
      Json out = Json::array();
      size_t p = 0;
      while (p < s.size()) {
        size_t nl = s.find('\n', p);
        std::string l = s.substr(p, nl == std::string::npos ? std::string::npos : nl - p);
        if (!l.empty() && l.back() == '\r') l.pop_back();
        out.push_back(l);
        if (nl == std::string::npos) break;
        p = nl + 1;
      }
      return Value::data(std::move(out));
    }
    return std::nullopt;
  }
  if (j.is_object()) {
    if (name == "items") return apply_filter("items", obj, {}, line);
    if (name == "keys" || name == "values") {
      Json out = Json::array();
      for (auto it = j.begin(); it != j.end(); ++it) out.push_back(name == "keys" ? Json(it.key()) : it.value());
      return Value::data(std::move(out));
    }
    if (name == "get") {
      std::string key = str_arg(args, 0, "key", "");
      auto it = j.find(key);
      if (it != j.end()) return Value::data(*it);
      const Value* d = args.get(1, "default");
      return d ? *d : Value::data(nullptr);
    }
    // loop.cycle(a, b, ...)
    if (name == "cycle" && j.contains("index0") && !args.pos.empty())
      return args.pos[static_cast<size_t>(j["index0"].get<long long>()) % args.pos.size()];
    return std::nullopt;
  }
  if (j.is_array()) {
    if (name == "index") {
      Json x = args.pos.empty() ? Json() : as_data(args.pos[0]);
      for (size_t i = 0; i < j.size(); ++i)
        if (j[i] == x) return Value::data(i);
      fail_at(line, "value not in list");
    }
    if (name == "count") {
      Json x = args.pos.empty() ? Json() : as_data(args.pos[0]);
      return Value::data(std::count(j.begin(), j.end(), x));
    }
  }
  return std::nullopt;
}

}  // namespace osprey::chat::jinja
