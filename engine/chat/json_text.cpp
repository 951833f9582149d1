#include "json_text.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace osprey::chat {
namespace {

// Shortest round-trip digits of d: "d1d2d3..." and decimal exponent of the first digit.
void shortest_digits(double d, std::string& digits, int& exp10) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string s(buf, r.ptr);
  size_t e = s.find('e');
  std::string mant = s.substr(0, e);
  exp10 = std::stoi(s.substr(e + 1));
  digits.clear();
  for (char c : mant)
    if (c >= '0' && c <= '9') digits += c;
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
}

// Digits placed with the decimal point after position exp10+1 (fixed notation).
std::string fixed_from_digits(const std::string& digits, int exp10) {
  std::string out;
  if (exp10 < 0) {
    out = "0." + std::string(static_cast<size_t>(-exp10 - 1), '0') + digits;
  } else if (static_cast<size_t>(exp10) + 1 >= digits.size()) {
    out = digits + std::string(static_cast<size_t>(exp10) + 1 - digits.size(), '0');
  } else {
    out = digits.substr(0, exp10 + 1) + "." + digits.substr(exp10 + 1);
  }
  return out;
}

void append_utf8_escaped_u(std::string& out, unsigned c) {
  char b[8];
  std::snprintf(b, sizeof b, "\\u%04x", c);
  out += b;
}

std::string py_quote_json(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) append_utf8_escaped_u(out, c);
        else out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string py_quote_repr(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos, has_double = s.find('"') != std::string::npos;
  char q = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == static_cast<unsigned char>(q) || c == '\\') { out += '\\'; out += static_cast<char>(c); }
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) { char b[8]; std::snprintf(b, sizeof b, "\\x%02x", c); out += b; }
    else out += static_cast<char>(c);
  }
  out += q;
  return out;
}

// Client-supplied JSON (tool arguments) can nest arbitrarily; recursion stops well before the
// stack does. Callers turn the exception into a Status.
constexpr int kMaxDepth = 512;
void check_depth(int depth) {
  if (depth > kMaxDepth) throw std::runtime_error("value nested too deeply");
}

void dumps(const OJson& v, std::optional<int> indent, int depth, std::string& out) {
  check_depth(depth);
  auto newline = [&](int d) {
    out += '\n';
    out.append(static_cast<size_t>(*indent) * d, ' ');
  };
  const char* item_sep = indent ? "," : ", ";
  switch (v.type()) {
    case OJson::value_t::object: {
      if (v.empty()) { out += "{}"; return; }
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += item_sep;
        first = false;
        if (indent) newline(depth + 1);
        out += py_quote_json(it.key());
        out += ": ";
        dumps(it.value(), indent, depth + 1, out);
      }
      if (indent) newline(depth);
      out += '}';
      return;
    }
    case OJson::value_t::array: {
      if (v.empty()) { out += "[]"; return; }
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += item_sep;
        first = false;
        if (indent) newline(depth + 1);
        dumps(e, indent, depth + 1, out);
      }
      if (indent) newline(depth);
      out += ']';
      return;
    }
    case OJson::value_t::string: out += py_quote_json(v.get_ref<const std::string&>()); return;
    case OJson::value_t::boolean: out += v.get<bool>() ? "true" : "false"; return;
    case OJson::value_t::null: out += "null"; return;
    case OJson::value_t::number_float: {
      double d = v.get<double>();
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d > 0 ? "Infinity" : "-Infinity";
      else out += py_float(d);
      return;
    }
    default: out += v.dump(); return;  // integers
  }
}

std::string go_quote(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '<': case '>': case '&': append_utf8_escaped_u(out, c); break;
      default:
        if (c < 0x20) append_utf8_escaped_u(out, c);
        // U+2028 / U+2029 break JavaScript string literals, so Go escapes them.
        else if (c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                 (static_cast<unsigned char>(s[i + 2]) == 0xA8 || static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
          append_utf8_escaped_u(out, static_cast<unsigned char>(s[i + 2]) == 0xA8 ? 0x2028 : 0x2029);
          i += 2;
        } else out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string go_float(double d) {
  if (!std::isfinite(d)) return "null";
  if (d == 0) return std::signbit(d) ? "-0" : "0";
  std::string digits;
  int e;
  shortest_digits(std::fabs(d), digits, e);
  std::string sign = d < 0 ? "-" : "";
  double a = std::fabs(d);
  if (a >= 1e-6 && a < 1e21) return sign + fixed_from_digits(digits, e);
  std::string m = digits.substr(0, 1);
  if (digits.size() > 1) m.append(".").append(digits, 1, std::string::npos);
  std::string es = std::to_string(std::abs(e));
  return sign + m + "e" + (e < 0 ? "-" : "+") + es;
}

// An object's members ("key<colon>value") or an array's elements, joined by `sep` between
// brackets: Python's repr and Go's JSON differ only in the separators and the string quoting.
template <class QuoteKey, class Render>
std::string join_container(const OJson& v, const char* sep, const char* colon, QuoteKey quote_key, Render render) {
  const bool object = v.is_object();
  std::string out = object ? "{" : "[";
  bool first = true;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!first) out += sep;
    first = false;
    if (object) out += quote_key(it.key()) + colon;
    out += render(it.value());
  }
  return out + (object ? "}" : "]");
}

}  // namespace

std::string py_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  std::string digits;
  int e;
  shortest_digits(std::fabs(d), digits, e);
  std::string sign = d < 0 ? "-" : "";
  if (e >= -4 && e < 16) {
    std::string f = fixed_from_digits(digits, e);
    if (f.find('.') == std::string::npos) f += ".0";
    return sign + f;
  }
  std::string m = digits.substr(0, 1);
  if (digits.size() > 1) m.append(".").append(digits, 1, std::string::npos);
  std::string es = std::to_string(std::abs(e));
  if (es.size() < 2) es.insert(es.begin(), '0');
  return sign + m + "e" + (e < 0 ? "-" : "+") + es;
}

std::string py_json_dumps(const OJson& v, std::optional<int> indent) {
  std::string out;
  dumps(v, indent, 0, out);
  return out;
}

std::string py_repr(const OJson& v) { return py_repr_at(v, 0); }

std::string py_repr_at(const OJson& v, int depth) {
  check_depth(depth);
  switch (v.type()) {
    case OJson::value_t::object:
    case OJson::value_t::array:
      return join_container(v, ", ", ": ", py_quote_repr, [&](const OJson& e) { return py_repr_at(e, depth + 1); });
    case OJson::value_t::string: return py_quote_repr(v.get_ref<const std::string&>());
    case OJson::value_t::boolean: return v.get<bool>() ? "True" : "False";
    case OJson::value_t::null: return "None";
    case OJson::value_t::number_float: return py_float(v.get<double>());
    default: return v.dump();
  }
}

std::string py_str(const OJson& v) {
  return v.is_string() ? v.get<std::string>() : py_repr(v);
}

std::string go_json(const OJson& v) { return go_json_at(v, 0); }

std::string go_json_at(const OJson& v, int depth) {
  check_depth(depth);
  switch (v.type()) {
    case OJson::value_t::object:
    case OJson::value_t::array:
      return join_container(v, ",", ":", go_quote, [&](const OJson& e) { return go_json_at(e, depth + 1); });
    case OJson::value_t::string: return go_quote(v.get_ref<const std::string&>());
    case OJson::value_t::number_float: return go_float(v.get<double>());
    case OJson::value_t::discarded: return "null";
    default: return v.dump();
  }
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

size_t utf8_offset(const std::string& s, size_t cp) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (n == cp) return i;
      ++n;
    }
  }
  return s.size();
}

}  // namespace osprey::chat
