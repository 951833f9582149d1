// Helpers shared by the store's .cpp files; not part of the public API.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/store/model_store.h"

namespace osprey::store::detail {

// Incremental SHA-256 (OpenSSL EVP underneath, for SHA-NI speed on multi-GB blobs).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  std::string hex();  // finalises; call once
 private:
  void* ctx_;
};
std::string sha256_hex(std::string_view bytes);
Result<std::string> sha256_file(const std::string& path);  // hex of a file's bytes
// Reads a file in 1 MiB chunks, stopping at the first error fn returns.
Status for_each_chunk(const std::string& path, const std::function<Status(const char*, size_t)>& fn);

// Writes `bytes` to `path` via a temp file in the same directory + fsync + rename.
// `before_rename`, when set, runs between the synced temp file and the rename; an error
// from it discards the temp file (crash-simulation hook).
Status write_file_atomic(const std::string& path, std::string_view bytes,
                         const std::function<Status()>& before_rename = {});
Result<std::string> read_file(const std::string& path, size_t max_bytes = 64u << 20);
// A unique temp name beside `path` (same directory, so rename stays atomic).
std::string temp_path_for(const std::string& path);
Status make_dirs(const std::string& dir);

std::string to_lower(std::string_view s);
// j[key] when j is an object and that member is a string, else "": manifests come from disk
// and the network, and json::value() throws on a member of the wrong type.
std::string str_field(const nlohmann::json& j, const char* key);
// dump() that replaces invalid UTF-8 instead of throwing (GGUF strings and Modelfile text
// are not guaranteed UTF-8).
std::string dump(const nlohmann::json& j);
std::string rfc3339_local(int64_t unix_ns);
std::string digest_to_file(std::string_view digest);  // "sha256:x" → "sha256-x"

// Fills details + config from a GGUF file: {"model_format","model_family",
// "model_families","model_type","file_type"} (config blob form).
Result<nlohmann::json> gguf_config(const std::string& path, std::string* architecture);
std::string format_parameter_count(int64_t n);  // 134.52M, 3.2B, 8B, 500K

}  // namespace osprey::store::detail
