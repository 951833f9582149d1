#include "server/http_util.h"

#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <unistd.h>

namespace osprey::server {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = (char)std::tolower((unsigned char)c);
  return s;
}

[[noreturn]] void type_error(const json& v, const char* key, const char* go_type, const char* want) {
  throw HttpError{400, std::string("json: cannot unmarshal ") + go_type_of(v) + " into Go struct field " + go_type +
                           "." + key + " of type " + want};
}

const json* find(const json& o, const char* key) {
  if (!o.is_object()) return nullptr;
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return nullptr;
  return &*it;
}

}  // namespace

std::string go_type_of(const json& v) {
  if (v.is_string()) return "string";
  if (v.is_number()) return "number";
  if (v.is_boolean()) return "bool";
  if (v.is_array()) return "array";
  if (v.is_object()) return "object";
  return "null";
}

json lower_keys(const json& j) {
  if (!j.is_object()) return j;
  json out = json::object();
  for (auto it = j.begin(); it != j.end(); ++it) out[lower(it.key())] = it.value();
  return out;
}

json decode_body(const std::string& body, const char* go_type) {
  if (body.empty()) throw HttpError{400, "missing request body"};
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    // Go reports a truncated document as "unexpected EOF" and anything else by the first
    // offending character.
    const size_t at = e.byte > 0 ? e.byte - 1 : 0;
    bool only_space = true;
    for (size_t i = at; i < body.size(); ++i)
      if (!std::isspace((unsigned char)body[i])) only_space = false;
    if (at >= body.size() || only_space) throw HttpError{400, "unexpected EOF"};
    std::string c(1, body[at]);
    throw HttpError{400, "invalid character '" + c + "' looking for beginning of value"};
  }
  if (j.is_null()) return json::object();
  if (!j.is_object())
    throw HttpError{400, "json: cannot unmarshal " + go_type_of(j) + " into Go value of type api." + go_type};
  return lower_keys(j);
}

std::optional<std::string> get_string(const json& o, const char* key, const char* go_type) {
  const json* v = find(o, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) type_error(*v, key, go_type, "string");
  return v->get<std::string>();
}

std::optional<bool> get_bool(const json& o, const char* key, const char* go_type) {
  const json* v = find(o, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) type_error(*v, key, go_type, "bool");
  return v->get<bool>();
}

std::optional<int64_t> get_int(const json& o, const char* key, const char* go_type) {
  const json* v = find(o, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) type_error(*v, key, go_type, "int");
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (d != std::floor(d) || std::fabs(d) > 9e18) type_error(*v, key, go_type, "int");
    return (int64_t)d;
  }
  return v->get<int64_t>();
}

std::optional<double> get_number(const json& o, const char* key, const char* go_type) {
  const json* v = find(o, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) type_error(*v, key, go_type, "float64");
  return v->get<double>();
}

std::optional<json> get_object(const json& o, const char* key, const char* go_type) {
  const json* v = find(o, key);
  if (!v) return std::nullopt;
  if (!v->is_object()) type_error(*v, key, go_type, "map[string]interface {}");
  return *v;
}

std::optional<json> get_array(const json& o, const char* key, const char* go_type) {
  const json* v = find(o, key);
  if (!v) return std::nullopt;
  if (!v->is_array()) type_error(*v, key, go_type, "[]");
  return *v;
}

bool parse_go_duration(const std::string& s0, int64_t* ns, std::string* err) {
  std::string s = s0;
  const std::string quoted = "\"" + s0 + "\"";
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.erase(0, 1);
  }
  if (s == "0") {
    *ns = 0;
    return true;
  }
  if (s.empty()) {
    *err = "time: invalid duration " + quoted;
    return false;
  }
  long double total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && (std::isdigit((unsigned char)s[j]) || s[j] == '.')) ++j;
    if (j == i) {
      *err = "time: invalid duration " + quoted;
      return false;
    }
    const long double num = std::strtold(s.substr(i, j - i).c_str(), nullptr);
    size_t k = j;
    while (k < s.size() && !std::isdigit((unsigned char)s[k]) && s[k] != '.') ++k;
    const std::string unit = s.substr(j, k - j);
    long double mul;
    if (unit == "ns") mul = 1;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") mul = 1e3;
    else if (unit == "ms") mul = 1e6;
    else if (unit == "s") mul = 1e9;
    else if (unit == "m") mul = 60e9;
    else if (unit == "h") mul = 3600e9;
    else if (unit.empty()) {
      *err = "time: missing unit in duration " + quoted;
      return false;
    } else {
      *err = "time: unknown unit \"" + unit + "\" in duration " + quoted;
      return false;
    }
    total += num * mul;
    i = k;
  }
  if (total > 9.2e18L) {
    *err = "time: invalid duration " + quoted;
    return false;
  }
  *ns = (int64_t)(neg ? -total : total);
  return true;
}

int64_t parse_keep_alive(const json& v) {
  if (v.is_number()) {
    const double sec = v.get<double>();
    if (sec < 0) return -1;
    return (int64_t)(sec * 1e9);
  }
  if (v.is_string()) {
    int64_t ns = 0;
    std::string err;
    if (!parse_go_duration(v.get<std::string>(), &ns, &err)) throw HttpError{400, err};
    return ns < 0 ? -1 : ns;
  }
  throw HttpError{400, "Unsupported type: '" + go_type_of(v) + "'"};
}

int64_t keep_alive_from_env(const char* value, int64_t fallback_ns) {
  if (!value || !*value) return fallback_ns;
  std::string s = value;
  char* end = nullptr;
  const long long n = std::strtoll(s.c_str(), &end, 10);
  if (end && *end == '\0') return n < 0 ? -1 : (int64_t)n * 1000000000LL;
  int64_t ns = 0;
  std::string err;
  if (parse_go_duration(s, &ns, &err)) return ns < 0 ? -1 : ns;
  return fallback_ns;
}

int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {
std::string frac(int64_t nanos) {
  if (nanos == 0) return "";
  char buf[16];
  std::snprintf(buf, sizeof buf, ".%09lld", (long long)nanos);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  return s;
}
}  // namespace

std::string now_utc_rfc3339() {
  const int64_t ns = unix_now_ns();
  const time_t t = (time_t)(ns / 1000000000);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(buf) + frac(ns % 1000000000) + "Z";
}

std::string local_rfc3339(int64_t unix_ns) {
  const time_t t = (time_t)(unix_ns / 1000000000);
  struct tm tm {};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  const long off = tm.tm_gmtoff;
  char z[32];
  if (off == 0) std::snprintf(z, sizeof z, "Z");
  else std::snprintf(z, sizeof z, "%c%02ld:%02ld", off < 0 ? '-' : '+', std::labs(off) / 3600, (std::labs(off) % 3600) / 60);
  return std::string(buf) + frac(unix_ns % 1000000000) + z;
}

// ---- CORS ----

OriginPolicy::OriginPolicy(const std::string& extra_csv) {
  for (const char* scheme : {"http", "https"})
    for (const char* h : {"localhost", "127.0.0.1", "0.0.0.0"}) {
      patterns_.push_back(std::string(scheme) + "://" + h);
      patterns_.push_back(std::string(scheme) + "://" + h + ":*");
    }
  for (const char* p : {"app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*"})
    patterns_.push_back(p);
  size_t i = 0;
  while (i <= extra_csv.size()) {
    size_t j = extra_csv.find(',', i);
    if (j == std::string::npos) j = extra_csv.size();
    std::string p = extra_csv.substr(i, j - i);
    p.erase(0, p.find_first_not_of(" \t\"'"));
    while (!p.empty() && std::strchr(" \t\"'", p.back())) p.pop_back();
    if (p == "*") allow_all_ = true;
    else if (!p.empty()) patterns_.push_back(p);
    i = j + 1;
  }
}

bool OriginPolicy::allowed(const std::string& origin) const {
  if (allow_all_) return true;
  for (const std::string& p : patterns_) {
    const size_t star = p.find('*');
    if (star == std::string::npos) {
      if (p == origin) return true;
      continue;
    }
    const std::string pre = p.substr(0, star), post = p.substr(star + 1);
    if (origin.size() >= pre.size() + post.size() && origin.compare(0, pre.size(), pre) == 0 &&
        origin.compare(origin.size() - post.size(), post.size(), post) == 0)
      return true;
  }
  return false;
}

namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

bool local_ip(const std::string& h) {
  in_addr a4{};
  if (inet_pton(AF_INET, h.c_str(), &a4) == 1) {
    const uint32_t ip = ntohl(a4.s_addr);
    const uint8_t b0 = ip >> 24, b1 = (ip >> 16) & 0xff;
    return b0 == 127 || b0 == 10 || ip == 0 || (b0 == 172 && (b1 & 0xf0) == 16) || (b0 == 192 && b1 == 168) ||
           (b0 == 169 && b1 == 254);
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, h.c_str(), &a6) == 1) {
    static const uint8_t zero[16] = {};
    if (std::memcmp(a6.s6_addr, zero, 15) == 0 && (a6.s6_addr[15] == 1 || a6.s6_addr[15] == 0)) return true;
    return (a6.s6_addr[0] & 0xfe) == 0xfc || (a6.s6_addr[0] == 0xfe && (a6.s6_addr[1] & 0xc0) == 0x80);
  }
  return false;
}

}  // namespace

bool host_allowed(const std::string& host_header) {
  std::string h = lower(host_header);
  if (h.empty()) return true;
  // Strip the port: "[v6]:p", "host:p".
  if (h[0] == '[') {
    const size_t e = h.find(']');
    h = e == std::string::npos ? h : h.substr(1, e - 1);
  } else if (std::count(h.begin(), h.end(), ':') == 1) {
    h = h.substr(0, h.find(':'));
  }
  if (h == "localhost" || ends_with(h, ".localhost") || ends_with(h, ".local") || ends_with(h, ".internal"))
    return true;
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) == 0 && h == lower(name)) return true;
  return local_ip(h);
}

bool is_loopback_bind(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr a4{};
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

void parse_host_env(const std::string& value0, std::string* host, int* port) {
  *host = "127.0.0.1";
  *port = 11434;
  std::string v = value0;
  v.erase(0, v.find_first_not_of(" \t\"'"));
  while (!v.empty() && std::strchr(" \t\"'", v.back())) v.pop_back();
  if (v.empty()) return;
  int default_port = 11434;
  if (v.rfind("http://", 0) == 0) {
    v = v.substr(7);
    default_port = 80;
  } else if (v.rfind("https://", 0) == 0) {
    v = v.substr(8);
    default_port = 443;
  }
  const size_t slash = v.find('/');
  if (slash != std::string::npos) v = v.substr(0, slash);
  std::string h = v, p;
  if (!v.empty() && v[0] == '[') {
    const size_t e = v.find(']');
    if (e != std::string::npos) {
      h = v.substr(1, e - 1);
      if (e + 1 < v.size() && v[e + 1] == ':') p = v.substr(e + 2);
    }
  } else if (const size_t c = v.rfind(':'); c != std::string::npos && v.find(':') == c) {
    h = v.substr(0, c);
    p = v.substr(c + 1);
  }
  *host = h.empty() ? "0.0.0.0" : h;
  *port = default_port;
  if (!p.empty()) {
    char* end = nullptr;
    const long n = std::strtol(p.c_str(), &end, 10);
    if (end && *end == '\0' && n > 0 && n < 65536) *port = (int)n;
  }
}

}  // namespace osprey::server
