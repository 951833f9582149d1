#include "engine/grammar/json_schema.h"

#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "engine/grammar/regex.h"

namespace osprey::grammar {
namespace {

using nlohmann::json;

constexpr int64_t kIntCap = 999999999999999;  // 15 digits: beyond this doubles lose integers
constexpr size_t kMaxGrammarElements = 4'000'000;
constexpr int64_t kMaxCount = 4096;            // minItems/maxItems/minLength/maxLength

struct SchemaError {
  std::string msg;
};

[[noreturn]] void fail(const std::string& msg) { throw SchemaError{msg}; }

const std::set<std::string>& annotations() {
  static const std::set<std::string> k = {"title",    "description", "$schema",    "$id",       "$comment", "default",
                                          "examples", "deprecated",  "readOnly",   "writeOnly", "$anchor",  "nullable",
                                          "$defs",    "definitions", "contentMediaType", "contentEncoding"};
  return k;
}

const std::set<std::string>& constraints() {
  static const std::set<std::string> k = {
      "type",      "properties", "required",  "additionalProperties", "items",   "minItems",         "maxItems",
      "enum",      "const",      "anyOf",     "oneOf",                "allOf",   "$ref",             "pattern",
      "format",    "minLength",  "maxLength", "minimum",              "maximum", "exclusiveMinimum", "exclusiveMaximum"};
  return k;
}

// Formats as regexes (regex.h), chosen so every match also passes the usual validators
// (days stop at 28 so no date is out of its month).
const std::map<std::string, std::string>& formats() {
  static const std::string date = "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])";
  static const std::string time =
      "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])";
  static const std::string label = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?";
  static const std::string octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])";
  static const std::map<std::string, std::string> k = {
      {"date", "^" + date + "$"},
      {"time", "^" + time + "$"},
      {"date-time", "^" + date + "T" + time + "$"},
      {"uuid", "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
      {"email", "^[a-zA-Z0-9._+-]{1,32}@" + label + "(\\." + label + "){0,2}\\.[a-zA-Z]{2,8}$"},
      {"ipv4", "^" + octet + "(\\." + octet + "){3}$"},
      {"hostname", "^" + label + "(\\." + label + "){0,3}$"},
      {"uri", "^https?://" + label + "(\\." + label + "){0,3}(/[a-zA-Z0-9._~-]{1,24}){0,4}$"},
  };
  return k;
}

std::string type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "boolean";
    case json::value_t::string: return "string";
    case json::value_t::array: return "array";
    case json::value_t::object: return "object";
    default: return "number";
  }
}

class SchemaCompiler {
 public:
  explicit SchemaCompiler(const json& root) : root_(root) {}

  Grammar run() {
    Seq top = compile(root_, "#");
    if (b_.size() > kMaxGrammarElements) fail("schema too large (its grammar exceeds the limit)");
    return std::move(b_).build(top);
  }

  Grammar any_object() {
    any_value();
    return std::move(b_).build(object_rule_);
  }

 private:
  Seq ws() {
    if (ws_.empty()) ws_ = b_.rule({{}, b_.literal(" "), b_.literal("\n") + b_.repeat(b_.chars(CharSet::of(" ")), 0, 32)});
    return ws_;
  }

  Seq plain_string(int64_t min, int64_t max) {
    if (string_char_.empty()) string_char_ = json_string_char(b_, CharSet::range(0, 0x10FFFF));
    return b_.literal("\"") + b_.repeat(string_char_, min, max) + b_.literal("\"");
  }

  Seq digits(int64_t min, int64_t max) { return b_.repeat(b_.chars(CharSet::range('0', '9')), min, max); }

  Seq plain_integer() {
    return b_.optional(b_.literal("-")) +
           b_.rule({b_.literal("0"), b_.chars(CharSet::range('1', '9')) + digits(0, 14)});
  }

  // Any JSON value, one recursive rule shared by every use.
  Seq any_value() {
    if (!value_.empty()) return value_;
    const uint32_t v = b_.new_rule();
    value_ = {Element{Element::RULE, v}};
    const Seq kv = b_.rule({plain_string(0, -1) + ws() + b_.literal(":") + ws() + value_});
    object_rule_ = b_.literal("{") + ws() + b_.optional(kv + b_.star(ws() + b_.literal(",") + ws() + kv)) + ws() +
                   b_.literal("}");
    const Seq array = b_.literal("[") + ws() + b_.optional(value_ + b_.star(ws() + b_.literal(",") + ws() + value_)) +
                      ws() + b_.literal("]");
    const Seq number = plain_integer() + b_.optional(b_.literal(".") + digits(1, 15)) +
                       b_.optional(b_.chars(CharSet::of("eE")) + b_.optional(b_.chars(CharSet::of("+-"))) + digits(1, 3));
    b_.define(v, {object_rule_, array, plain_string(0, -1), number, b_.literal("true"), b_.literal("false"),
                  b_.literal("null")});
    return value_;
  }

  // Digit strings (no leading zeros) for every integer in [lo, hi] of the same length.
  std::vector<Seq> same_length(const std::string& x, const std::string& y) {
    const size_t n = x.size();
    if (x == y) return {b_.literal(x)};
    if (n == 1) return {b_.chars(CharSet::range((uint32_t)x[0], (uint32_t)y[0]))};
    const std::string xr = x.substr(1), yr = y.substr(1);
    if (x[0] == y[0]) return {b_.literal(x.substr(0, 1)) + b_.rule(same_length(xr, yr))};
    const bool x_low = xr.find_first_not_of('0') == std::string::npos;
    const bool y_high = yr.find_first_not_of('9') == std::string::npos;
    std::vector<Seq> out;
    const char mid_lo = x_low ? x[0] : (char)(x[0] + 1), mid_hi = y_high ? y[0] : (char)(y[0] - 1);
    if (!x_low) out.push_back(b_.literal(x.substr(0, 1)) + b_.rule(same_length(xr, std::string(n - 1, '9'))));
    if (mid_lo <= mid_hi) out.push_back(b_.chars(CharSet::range((uint32_t)mid_lo, (uint32_t)mid_hi)) + digits((int64_t)n - 1, (int64_t)n - 1));
    if (!y_high) out.push_back(b_.literal(y.substr(0, 1)) + b_.rule(same_length(std::string(n - 1, '0'), yr)));
    return out;
  }

  std::vector<Seq> unsigned_range(int64_t a, int64_t b) {
    std::vector<Seq> out;
    int64_t p = 1;  // 10^(d-1)
    for (int d = 1; d <= 16 && (d == 1 || p <= b); ++d, p *= 10) {
      const int64_t lo = std::max(a, d == 1 ? 0 : p), hi = std::min(b, p * 10 - 1);
      if (lo > hi) continue;
      for (Seq& s : same_length(std::to_string(lo), std::to_string(hi))) out.push_back(std::move(s));
    }
    return out;
  }

  std::vector<Seq> integer_range(int64_t lo, int64_t hi) {
    std::vector<Seq> out;
    if (lo > hi) return out;
    if (lo < 0) {
      const int64_t nlo = hi < 0 ? -hi : 1;
      for (Seq& s : unsigned_range(nlo, -lo)) out.push_back(b_.literal("-") + s);
    }
    if (hi >= 0)
      for (Seq& s : unsigned_range(std::max<int64_t>(lo, 0), hi)) out.push_back(std::move(s));
    return out;
  }

  std::optional<double> bound(const json& s, const char* key, const std::string& path) {
    auto it = s.find(key);
    if (it == s.end()) return std::nullopt;
    if (it->is_boolean()) fail(std::string("boolean ") + key + " (draft 4) is not supported at " + path);
    if (!it->is_number()) fail(std::string(key) + " at " + path + " must be a number");
    return it->get<double>();
  }

  static int64_t clamp(double v) { return (int64_t)std::max<double>(-kIntCap, std::min<double>(kIntCap, v)); }

  Seq numeric(const json& s, const std::string& path, bool integer) {
    const auto mn = bound(s, "minimum", path), mx = bound(s, "maximum", path);
    const auto xmn = bound(s, "exclusiveMinimum", path), xmx = bound(s, "exclusiveMaximum", path);
    if (!mn && !mx && !xmn && !xmx) {
      if (integer) return plain_integer();
      return plain_integer() + b_.optional(b_.literal(".") + digits(1, 15)) +
             b_.optional(b_.chars(CharSet::of("eE")) + b_.optional(b_.chars(CharSet::of("+-"))) + digits(1, 3));
    }
    // Whole numbers in [ilo, ihi]; numbers with a fraction as "I.ddd" / "-K.ddd", each of
    // whose values lies in [I, I+1) or (-(K+1), -K], with I and K chosen so that whole range fits.
    double ilo = -INFINITY, ihi = INFINITY, flo = -INFINITY, fhi = INFINITY;  // flo/fhi: raw bounds
    if (mn) ilo = std::ceil(*mn), flo = *mn;
    if (xmn) ilo = std::max(ilo, std::floor(*xmn) + 1), flo = std::max(flo, *xmn);
    if (mx) ihi = std::floor(*mx), fhi = *mx;
    if (xmx) ihi = std::min(ihi, std::ceil(*xmx) - 1), fhi = std::min(fhi, *xmx);
    std::vector<Seq> alts = integer_range(clamp(ilo), clamp(ihi));
    if (!integer) {
      const Seq frac = b_.literal(".") + digits(1, 6);
      for (Seq& s : unsigned_range(std::max<int64_t>(clamp(ilo), 0), clamp(std::floor(fhi) - 1)))
        alts.push_back(s + frac);
      for (Seq& s : unsigned_range(std::max<int64_t>(0, -clamp(ihi)), clamp(std::floor(-flo) - 1)))
        alts.push_back(b_.literal("-") + s + frac);
    }
    if (alts.empty()) fail("no " + std::string(integer ? "integer" : "number") + " satisfies the bounds at " + path);
    return b_.rule(std::move(alts));
  }

  int64_t count(const json& s, const char* key, const std::string& path, int64_t dflt) {
    auto it = s.find(key);
    if (it == s.end()) return dflt;
    if (!it->is_number_integer() && !(it->is_number() && std::floor(it->get<double>()) == it->get<double>()))
      fail(std::string(key) + " at " + path + " must be a non-negative integer");
    const double v = it->get<double>();
    if (v < 0) fail(std::string(key) + " at " + path + " must be a non-negative integer");
    if (v > kMaxCount) fail(std::string(key) + " at " + path + " is above the supported " + std::to_string(kMaxCount));
    return (int64_t)v;
  }

  Seq string_schema(const json& s, const std::string& path) {
    const int64_t min = count(s, "minLength", path, 0), max = count(s, "maxLength", path, -1);
    if (max >= 0 && min > max) fail("minLength > maxLength at " + path);
    const bool lengths = s.contains("minLength") || s.contains("maxLength");
    std::string pattern;
    if (auto it = s.find("format"); it != s.end()) {
      if (!it->is_string()) fail("format at " + path + " must be a string");
      auto f = formats().find(it->get<std::string>());
      if (f == formats().end()) fail("unsupported string format \"" + it->get<std::string>() + "\" at " + path);
      if (s.contains("pattern")) fail("format together with pattern is not supported at " + path);
      pattern = f->second;
    } else if (auto p = s.find("pattern"); p != s.end()) {
      if (!p->is_string()) fail("pattern at " + path + " must be a string");
      pattern = p->get<std::string>();
    } else {
      return plain_string(min, max);
    }
    if (lengths) fail("pattern or format together with minLength/maxLength is not supported at " + path);
    auto body = regex_to_grammar(b_, pattern);
    if (!body) fail(body.error() + " (at " + path + ")");
    return b_.literal("\"") + body.value() + b_.literal("\"");
  }

  Seq object_schema(const json& s, const std::string& path) {
    const json props = s.value("properties", json::object());
    if (!props.is_object()) fail("properties at " + path + " must be an object");
    std::set<std::string> required;
    if (auto r = s.find("required"); r != s.end()) {
      if (!r->is_array()) fail("required at " + path + " must be an array of strings");
      for (const auto& n : *r) {
        if (!n.is_string()) fail("required at " + path + " must be an array of strings");
        if (!props.contains(n.get<std::string>()))
          fail("required property \"" + n.get<std::string>() + "\" at " + path + " is not defined in properties");
        required.insert(n.get<std::string>());
      }
    }
    const json addl = s.value("additionalProperties", json(true));
    if (!addl.is_boolean() && !addl.is_object()) fail("additionalProperties at " + path + " must be a boolean or a schema");
    const Seq open = b_.literal("{") + ws(), close = ws() + b_.literal("}");
    if (props.empty()) {
      if (addl == json(false)) return open + close;
      const Seq value = addl.is_object() ? compile(addl, path + "/additionalProperties") : any_value();
      const Seq kv = b_.rule({plain_string(0, -1) + ws() + b_.literal(":") + ws() + value});
      return open + b_.optional(kv + b_.star(ws() + b_.literal(",") + ws() + kv)) + close;
    }
    // Members in declaration order; after(i): the members from i on once one was written (each
    // with its comma), first(i): the same before any was written.
    std::vector<std::pair<std::string, Seq>> kvs;
    for (const auto& [key, sub] : props.items())
      kvs.push_back({key, b_.rule({b_.literal(json(key).dump()) + ws() + b_.literal(":") + ws() +
                                   compile(sub, path + "/properties/" + key)})});
    Seq after, first;
    for (size_t i = kvs.size(); i-- > 0;) {
      const bool req = required.count(kvs[i].first) > 0;
      const Seq with = ws() + b_.literal(",") + ws() + kvs[i].second + after;
      const Seq first_with = kvs[i].second + after;
      Seq next_after = req ? b_.rule({with}) : b_.rule({with, after});
      first = req ? first_with : b_.rule({first_with, first});
      after = std::move(next_after);
    }
    return open + first + close;
  }

  Seq array_schema(const json& s, const std::string& path) {
    const int64_t min = count(s, "minItems", path, 0), max = count(s, "maxItems", path, -1);
    if (max >= 0 && min > max) fail("minItems > maxItems at " + path);
    const Seq open = b_.literal("[") + ws(), close = ws() + b_.literal("]");
    if (max == 0) return open + close;
    Seq item;
    auto it = s.find("items");
    if (it == s.end() || *it == json(true)) item = any_value();
    else if (it->is_object() || it->is_boolean()) item = b_.rule({compile(*it, path + "/items")});
    else fail("items at " + path + " must be a schema (tuple arrays are not supported)");
    const Seq list = item + b_.repeat(ws() + b_.literal(",") + ws() + item, std::max<int64_t>(min - 1, 0),
                                      max < 0 ? -1 : max - 1);
    return open + (min == 0 ? b_.optional(list) : list) + close;
  }

  Seq ref(const std::string& r, const std::string& path) {
    if (auto it = refs_.find(r); it != refs_.end()) return {Element{Element::RULE, it->second}};
    if (r.empty() || r[0] != '#') fail("$ref \"" + r + "\" at " + path + ": only local references (#/...) are supported");
    const json* target = nullptr;
    try {
      target = &root_.at(json::json_pointer(r.substr(1)));
    } catch (const json::exception&) {
      fail("$ref to unknown definition \"" + r + "\" at " + path);
    }
    const uint32_t id = b_.new_rule();
    refs_[r] = id;
    b_.define(id, {compile(*target, r)});
    return {Element{Element::RULE, id}};
  }

  std::vector<Seq> branches(const json& list, const std::string& key, const std::string& path) {
    if (!list.is_array() || list.empty()) fail(key + " at " + path + " must be a non-empty array of schemas");
    std::vector<Seq> alts;
    for (size_t i = 0; i < list.size(); ++i) alts.push_back(compile(list[i], path + "/" + key + "/" + std::to_string(i)));
    return alts;
  }

  Seq typed(const json& s, const std::string& type, const std::string& path) {
    if (type == "null") return b_.literal("null");
    if (type == "boolean") return b_.rule({b_.literal("true"), b_.literal("false")});
    if (type == "string") return string_schema(s, path);
    if (type == "integer") return numeric(s, path, true);
    if (type == "number") return numeric(s, path, false);
    if (type == "object") return object_schema(s, path);
    if (type == "array") return array_schema(s, path);
    fail("invalid type \"" + type + "\" at " + path);
  }

  Seq compile(const json& s, const std::string& path) {
    if (++depth_ > 256) fail("schema nested too deeply at " + path);
    struct Leave {
      int& d;
      ~Leave() { --d; }
    } leave{depth_};
    if (s.is_boolean()) {
      if (!s.get<bool>()) fail("schema false at " + path + " matches nothing");
      return any_value();
    }
    if (!s.is_object()) fail("schema at " + path + " must be an object or a boolean, not " + type_name(s));
    std::vector<std::string> used;
    for (const auto& [k, v] : s.items()) {
      if (annotations().count(k)) continue;
      if (!constraints().count(k)) fail("unsupported schema keyword \"" + k + "\" at " + path);
      used.push_back(k);
    }
    auto alone = [&](const char* key) {
      if (used.size() > 1) fail(std::string(key) + " together with other keywords is not supported at " + path);
    };
    if (auto it = s.find("$ref"); it != s.end()) {
      alone("$ref");
      if (!it->is_string()) fail("$ref at " + path + " must be a string");
      return ref(it->get<std::string>(), path);
    }
    for (const char* key : {"anyOf", "oneOf"})
      if (auto it = s.find(key); it != s.end()) {
        alone(key);
        return b_.rule(branches(*it, key, path));
      }
    if (auto it = s.find("allOf"); it != s.end()) {
      alone("allOf");
      if (!it->is_array() || it->size() != 1) fail("allOf with more than one schema is not supported at " + path);
      return compile((*it)[0], path + "/allOf/0");
    }
    if (auto it = s.find("const"); it != s.end()) return b_.literal(it->dump());
    if (auto it = s.find("enum"); it != s.end()) {
      if (!it->is_array() || it->empty()) fail("enum at " + path + " must be a non-empty array");
      std::vector<Seq> alts;
      for (const auto& v : *it) alts.push_back(b_.literal(v.dump()));
      return b_.rule(std::move(alts));
    }
    std::vector<std::string> types;
    if (auto it = s.find("type"); it != s.end()) {
      if (it->is_string()) types.push_back(it->get<std::string>());
      else if (it->is_array() && !it->empty())
        for (const auto& t : *it) {
          if (!t.is_string()) fail("type at " + path + " must be a string or an array of strings");
          types.push_back(t.get<std::string>());
        }
      else fail("type at " + path + " must be a string or an array of strings");
    } else {
      auto has = [&](std::initializer_list<const char*> ks) {
        for (const char* k : ks)
          if (s.contains(k)) return true;
        return false;
      };
      if (has({"properties", "additionalProperties", "required"})) types = {"object"};
      else if (has({"items", "minItems", "maxItems"})) types = {"array"};
      else if (has({"pattern", "format", "minLength", "maxLength"})) types = {"string"};
      else if (has({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})) types = {"number"};
      else return any_value();
    }
    std::vector<Seq> alts;
    for (const std::string& t : types) alts.push_back(typed(s, t, path));
    return alts.size() == 1 ? alts[0] : b_.rule(std::move(alts));
  }

  const json& root_;
  GrammarBuilder b_;
  std::map<std::string, uint32_t> refs_;
  Seq ws_, string_char_, value_, object_rule_;
  int depth_ = 0;
};

}  // namespace

Result<std::shared_ptr<const Grammar>> compile_json_schema(const nlohmann::json& schema) {
  try {
    return std::make_shared<const Grammar>(SchemaCompiler(schema).run());
  } catch (const SchemaError& e) {
    return Status::error(e.msg);
  }
}

std::shared_ptr<const Grammar> json_object_grammar() {
  static const json none;
  static const std::shared_ptr<const Grammar> g = std::make_shared<const Grammar>(SchemaCompiler(none).any_object());
  return g;
}

}  // namespace osprey::grammar
