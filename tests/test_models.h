// Where tests find the real models fetched by tools/fetch_models.py. A missing model is a
// test failure, not a skip: CI fetches them before running ctest.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

namespace osprey::testing {

inline std::string model_cache_dir() {
  if (const char* c = std::getenv("OSPREY_CACHE")) return c;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/osprey";
}

// Returns the path, or "" if absent (callers FAIL() with a message naming the fetch script).
inline std::string model_path(const std::string& file) {
  std::string p = model_cache_dir() + "/" + file;
  return std::filesystem::exists(p) ? p : std::string();
}

inline constexpr const char* kSmolLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf";
inline constexpr const char* kGemma3 = "gemma-3-270m-q4_k_m.gguf";
inline constexpr const char* kQwen25 = "qwen2.5-coder-0.5b-instruct.gguf";

}  // namespace osprey::testing

#define OSPREY_REQUIRE_MODEL(var, file)                                                    \
  const std::string var = ::osprey::testing::model_path(file);                           \
  if (var.empty())                                                                         \
    FAIL() << "model " << (file) << " not found in " << ::osprey::testing::model_cache_dir() \
           << "; run tools/fetch_models.py"
