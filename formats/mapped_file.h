// A read-only memory mapping of a whole regular file, shared by the GGUF and safetensors
// readers. MAP_PRIVATE + PROT_READ: data is used in place, never copied, and nothing can be
// written back through the mapping.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/base/status.h"

namespace osprey {

struct MappedFile {
  void* map = nullptr;  // the mapping; release with unmap_file
  const uint8_t* data = nullptr;
  size_t size = 0;
};

// Errors name the path: missing, not a regular file, empty, or mmap failure.
Result<MappedFile> map_file(const std::string& path);
void unmap_file(const MappedFile& m);

// Maps `path`, parses it with parse(data, size, path) and lets the parsed object adopt the
// mapping (adopt(object, map)); on a parse error the mapping is released.
template <class T, class Parse, class Adopt>
Result<std::unique_ptr<T>> parse_mapped(const std::string& path, Parse parse, Adopt adopt) {
  auto m = map_file(path);
  if (!m.ok()) return m.status();
  Result<std::unique_ptr<T>> r = parse(m.value().data, m.value().size, path);
  if (!r.ok()) {
    unmap_file(m.value());
    return r;
  }
  adopt(*r.value(), m.value().map);
  return r;
}

}  // namespace osprey
