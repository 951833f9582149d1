// GGUF reader (v2, v3) and writer. The reader maps the file and validates every count,
// length, offset and shape against the file size before anything is used; a malformed file
// yields an error naming what is wrong and where, never a crash.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/base/dtype.h"
#include "kernels/base/status.h"

namespace osprey::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* value_type_name(ValueType t);

// One metadata value. Scalars live in the matching field; arrays hold their elements in
// `array` (each element a Value of type `elem_type`; arrays may nest).
struct Value {
  ValueType type = ValueType::UINT8;
  uint64_t u = 0;      // UINT8/16/32/64 and BOOL
  int64_t i = 0;       // INT8/16/32/64
  double f = 0;        // FLOAT32/64
  std::string s;       // STRING
  ValueType elem_type = ValueType::UINT8;  // ARRAY
  std::vector<Value> array;                // ARRAY

  bool is_integer() const;          // any (u)int type or BOOL
  bool is_float() const;
  // Numeric conversions; ok=false if the value is not numeric or does not fit.
  bool as_int64(int64_t* out) const;
  bool as_double(double* out) const;
  std::string to_display(size_t max_array_items = 8) const;  // for `osprey show`
};

struct KeyValue {
  std::string key;
  Value value;
};

struct TensorInfo {
  std::string name;
  DType type = DType::F32;
  std::vector<int64_t> ne;      // dims, innermost (contiguous) first, as GGUF stores them
  uint64_t offset = 0;          // relative to the start of the data section
  uint64_t nbytes = 0;          // computed from type and dims (validated to fit in the file)
  const uint8_t* data = nullptr;  // points into the mapping
  int64_t n_elements() const;
};

class File {
 public:
  // Map and parse a file. Errors name the file and what is wrong.
  static Result<std::unique_ptr<File>> open(const std::string& path);
  // Parse a buffer the caller keeps alive (fuzzing, tests). `name` is used in messages.
  static Result<std::unique_ptr<File>> parse(const uint8_t* data, size_t size,
                                             const std::string& name = "<memory>");
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute offset of the data section
  size_t size() const { return size_; }
  const uint8_t* bytes() const { return base_; }
  const std::string& path() const { return path_; }

  const std::vector<KeyValue>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;  // nullptr if absent
  // Typed getters: the default if absent; an error only if present with an incompatible type.
  Result<std::string> get_string(std::string_view key, std::string def = "") const;
  Result<int64_t> get_int(std::string_view key, int64_t def) const;
  Result<double> get_float(std::string_view key, double def) const;
  Result<bool> get_bool(std::string_view key, bool def) const;
  // Arrays: error if absent, not an array, or elements of the wrong type.
  Result<std::vector<std::string>> get_string_array(std::string_view key) const;
  Result<std::vector<double>> get_float_array(std::string_view key) const;   // numeric elements
  Result<std::vector<int64_t>> get_int_array(std::string_view key) const;    // integer elements

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;  // nullptr if absent

 private:
  File() = default;
  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  void* map_ = nullptr;  // non-null when we own an mmap
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<KeyValue> kv_;
  std::vector<TensorInfo> tensors_;
  friend class Parser;
};

// Writer: metadata + tensors, to a temporary file renamed into place on success.
class Writer {
 public:
  // Makes a tensor's bytes when write() reaches it: it must set all nbytes of `dst` (the size
  // its shape needs), and it runs once per write(). A failure stops the write (no file is
  // left). Tensors given this way are never all in memory at once: quantizing or converting a
  // model takes memory for one tensor, not the model.
  using Fill = std::function<Status(uint8_t* dst, size_t nbytes)>;

  explicit Writer(uint32_t version = 3, uint64_t alignment = 32) : version_(version), alignment_(alignment) {}
  void add(std::string key, Value v);
  // `data` must hold dtype_row_bytes(type, ne[0]) * (product of the other dims) bytes (copied).
  Status add_tensor(std::string name, DType type, std::vector<int64_t> ne, const void* data, size_t nbytes);
  Status add_tensor(std::string name, DType type, std::vector<int64_t> ne, Fill fill);
  Status write(const std::string& path) const;
  // Convenience constructors for values.
  static Value str(std::string s);
  static Value u32(uint32_t v);
  static Value i32(int32_t v);
  static Value f32(float v);
  static Value boolean(bool v);
  static Value str_array(const std::vector<std::string>& v);

 private:
  Result<uint64_t> checked_size(const std::string& name, DType type, const std::vector<int64_t>& ne) const;
  uint32_t version_;
  uint64_t alignment_;
  std::vector<KeyValue> kv_;
  struct PendingTensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    uint64_t nbytes;
    Fill fill;
  };
  std::vector<PendingTensor> tensors_;
};

}  // namespace osprey::gguf
