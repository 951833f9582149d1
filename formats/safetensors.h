// safetensors reader: single files and sharded checkpoints (model.safetensors.index.json).
// A file is an 8-byte little-endian header length, a JSON header naming every tensor's dtype,
// shape and [begin, end) byte range in the data section, then the data. Like the GGUF reader,
// the file is mapped and every header field is checked against the file size before use:
// dtype known, shape non-negative, byte range inside the data section, size = elements x
// dtype size (overflow-checked), ranges not overlapping.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/base/status.h"

namespace osprey::safetensors {

enum class DType { BOOL, U8, I8, U16, I16, U32, I32, U64, I64, F16, BF16, F32, F64, F8_E4M3, F8_E5M2 };
const char* dtype_name(DType t);  // as the header spells it ("F16", "BF16", "F8_E4M3", ...)
size_t dtype_size(DType t);
bool dtype_is_float(DType t);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // outermost first (row-major), as safetensors stores it
  uint64_t begin = 0;          // byte range relative to the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // points into the mapping
  int64_t n_elements() const;
};

class File {
 public:
  static Result<std::unique_ptr<File>> open(const std::string& path);
  // Parse a buffer the caller keeps alive (fuzzing, tests). `name` prefixes every error.
  static Result<std::unique_ptr<File>> parse(const uint8_t* data, size_t size, const std::string& name = "<memory>");
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  size_t size() const { return size_; }
  const uint8_t* bytes() const { return base_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in data order
  const TensorInfo* find(std::string_view name) const;                 // nullptr if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // "__metadata__"

 private:
  File() = default;
  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  void* map_ = nullptr;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  friend struct HeaderParser;
};

// Every tensor of a checkpoint: one file, or the shards listed by a
// model.safetensors.index.json ("weight_map": tensor name -> shard file in the same folder).
class Checkpoint {
 public:
  // `path` is a .safetensors file, an index .json file, or a folder holding either
  // (model.safetensors.index.json first, then model.safetensors, then every *.safetensors).
  static Result<std::unique_ptr<Checkpoint>> open(const std::string& path);
  const std::vector<const TensorInfo*>& tensors() const { return order_; }  // shard order, then data order
  const TensorInfo* find(std::string_view name) const;
  const std::vector<std::unique_ptr<File>>& files() const { return files_; }

 private:
  std::vector<std::unique_ptr<File>> files_;
  std::vector<const TensorInfo*> order_;
  std::map<std::string, const TensorInfo*, std::less<>> by_name_;
};

// Widens n_elements() values of a float tensor (F32/F16/BF16/F64/F8_E4M3/F8_E5M2) to f32.
// `out` must hold n_elements() floats. An error for integer dtypes.
Status to_f32(const TensorInfo& t, float* out);

// FP8 decoders (OCP formats as PyTorch's float8_e4m3fn and float8_e5m2 store them).
float f8_e4m3_to_f32(uint8_t v);
float f8_e5m2_to_f32(uint8_t v);

}  // namespace osprey::safetensors
