// Test data of the chat tests (tests/data/chat): real templates and reference renders.
#pragma once
#include <fstream>
#include <sstream>
#include <string>

namespace osprey::test {

// The whole file, or "" if it cannot be read (the tests then fail on the empty text).
inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::string chat_data_path(const std::string& rel) { return std::string(OSPREY_TEST_DATA) + "/chat/" + rel; }

}  // namespace osprey::test
