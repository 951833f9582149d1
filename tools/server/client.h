// A small client for a running `osprey serve` (the CLI's list/ps/run/pull/... commands):
// the address comes from OSPREY_HOST / OLLAMA_HOST like the server's.
#pragma once
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace osprey::server {

class ApiClient {
 public:
  ApiClient();
  const std::string& base() const { return base_; }
  // A JSON request. Returns the HTTP status (0: no connection) and fills *out with the body
  // (parsed when JSON, else {"raw": text}).
  int call(const std::string& method, const std::string& path, const nlohmann::json* body, nlohmann::json* out);
  // A streamed NDJSON request: each line goes to on_line (return false to stop). Returns
  // the status; an error body is put in *error.
  int stream(const std::string& path, const nlohmann::json& body, const std::function<bool(const nlohmann::json&)>& on_line,
             std::string* error);
  // Uploads a file as a blob; returns the status.
  int upload_blob(const std::string& digest, const std::string& path, std::string* error);

 private:
  std::string host_;
  int port_ = 11434;
  std::string base_;
};

// "1.2 GB" style sizes, as `ollama list` prints them.
std::string human_size(int64_t bytes);

}  // namespace osprey::server
