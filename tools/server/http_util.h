// Request decoding with the Go encoding/json semantics Ollama's clients rely on, error
// bodies, durations, timestamps, and the CORS / Host-header guards (ollama-api.md §1).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace osprey::server {

using json = nlohmann::json;

// An HTTP error: status plus message. Thrown by decoders inside handlers and turned into
// {"error": message} (native) or OpenAI's shape at the route boundary, so no bad input
// can escape as a crash.
struct HttpError {
  int status;
  std::string message;
};

// Parses a request body: empty → 400 "missing request body"; malformed → 400 with a
// decoder-style message; literal null → {}; a non-object → 400 naming `go_type`. Keys of
// the top-level object are lower-cased (Go matches struct fields case-insensitively).
json decode_body(const std::string& body, const char* go_type);
// Lower-cases the keys of an object (last duplicate wins); non-objects are returned as is.
json lower_keys(const json& j);

// The JSON type name Go's decoder reports ("string", "number", "bool", "array", "object").
std::string go_type_of(const json& v);

// Typed field readers: absent or null → nullopt; wrong type → HttpError 400 with Go's
// "json: cannot unmarshal X into Go struct field T.f of type Y".
std::optional<std::string> get_string(const json& o, const char* key, const char* go_type);
std::optional<bool> get_bool(const json& o, const char* key, const char* go_type);
std::optional<int64_t> get_int(const json& o, const char* key, const char* go_type);
std::optional<double> get_number(const json& o, const char* key, const char* go_type);
// An object/array field (absent or null → nullopt).
std::optional<json> get_object(const json& o, const char* key, const char* go_type);
std::optional<json> get_array(const json& o, const char* key, const char* go_type);

// keep_alive: a number of seconds or a Go duration string ("5m", "1h30m", "-1"→ invalid,
// "0" ok). Returns nanoseconds (negative: forever). HttpError 400 on bad input.
int64_t parse_keep_alive(const json& v);
// Go time.ParseDuration; false on error (sets *err to Go's message).
bool parse_go_duration(const std::string& s, int64_t* ns, std::string* err);
// Environment forms of keep-alive: a duration string or plain integer seconds.
int64_t keep_alive_from_env(const char* value, int64_t fallback_ns);

// RFC 3339 timestamps: UTC with Z (created_at) and local time with offset (expires_at).
std::string now_utc_rfc3339();
std::string local_rfc3339(int64_t unix_ns);
int64_t unix_now_ns();

// CORS (§1.5): the built-in allow-list plus extra patterns with one '*' each.
class OriginPolicy {
 public:
  explicit OriginPolicy(const std::string& extra_csv);
  bool allowed(const std::string& origin) const;
  bool allow_all() const { return allow_all_; }

 private:
  std::vector<std::string> patterns_;
  bool allow_all_ = false;
};

// DNS-rebinding guard for a loopback listener: true if the Host header names this machine.
bool host_allowed(const std::string& host_header);
bool is_loopback_bind(const std::string& host);

// Splits OSPREY_HOST / OLLAMA_HOST forms ("host", "host:port", ":port", "http://h:p",
// "[v6]:port") into host and port, with 127.0.0.1:11434 defaults.
void parse_host_env(const std::string& value, std::string* host, int* port);

}  // namespace osprey::server
