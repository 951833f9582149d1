// GGUF reader. Layout (little-endian, v2/v3):
//   "GGUF" u32 version, u64 n_tensors, u64 n_kv,
//   n_kv × (string key, u32 type, value), n_tensors × (string name, u32 n_dims,
//   u64 dims[n_dims], u32 type, u64 offset), padding to `general.alignment`, tensor data.
// Strings are u64 length + bytes; arrays are u32 element type + u64 count + elements.
//
// Everything read from the file is untrusted: each count is checked against the bytes left
// before anything is allocated for it, and all size arithmetic is overflow-checked.
#include <bit>
#include <cerrno>
#include <cmath>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <unordered_set>

#include "formats/gguf.h"
#include "formats/mapped_file.h"

static_assert(std::endian::native == std::endian::little, "GGUF I/O assumes a little-endian host");

namespace osprey::gguf {

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8: return "u8";
    case ValueType::INT8: return "i8";
    case ValueType::UINT16: return "u16";
    case ValueType::INT16: return "i16";
    case ValueType::UINT32: return "u32";
    case ValueType::INT32: return "i32";
    case ValueType::FLOAT32: return "f32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::UINT64: return "u64";
    case ValueType::INT64: return "i64";
    case ValueType::FLOAT64: return "f64";
  }
  return "unknown";
}

// ---- Value ----

bool Value::is_integer() const {
  switch (type) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::UINT16: case ValueType::INT16:
    case ValueType::UINT32: case ValueType::INT32: case ValueType::UINT64: case ValueType::INT64:
    case ValueType::BOOL:
      return true;
    default:
      return false;
  }
}

bool Value::is_float() const { return type == ValueType::FLOAT32 || type == ValueType::FLOAT64; }

static bool is_signed_type(ValueType t) {
  return t == ValueType::INT8 || t == ValueType::INT16 || t == ValueType::INT32 || t == ValueType::INT64;
}

bool Value::as_int64(int64_t* out) const {
  if (is_integer()) {
    if (is_signed_type(type)) {
      *out = i;
      return true;
    }
    if (u > (uint64_t)std::numeric_limits<int64_t>::max()) return false;
    *out = (int64_t)u;
    return true;
  }
  if (is_float()) {
    // Only whole numbers that fit; 2^63 itself is out of range.
    if (!std::isfinite(f) || f != std::trunc(f) || f < -9223372036854775808.0 || f >= 9223372036854775808.0)
      return false;
    *out = (int64_t)f;
    return true;
  }
  return false;
}

bool Value::as_double(double* out) const {
  if (is_float()) {
    *out = f;
    return true;
  }
  if (is_integer()) {
    *out = is_signed_type(type) ? (double)i : (double)u;
    return true;
  }
  return false;
}

static void append_quoted(std::string* out, const std::string& s, size_t max_chars = 200) {
  out->push_back('"');
  size_t n = 0;
  for (unsigned char c : s) {
    if (n++ >= max_chars) {
      out->append("...");
      break;
    }
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back((char)c);
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out->append("\\x");
      out->push_back(hex[c >> 4]);
      out->push_back(hex[c & 15]);
    } else {
      out->push_back((char)c);
    }
  }
  out->push_back('"');
}

static std::string format_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string Value::to_display(size_t max_array_items) const {
  std::string out;
  switch (type) {
    case ValueType::BOOL: return u ? "true" : "false";
    case ValueType::STRING: append_quoted(&out, s); return out;
    case ValueType::FLOAT32: case ValueType::FLOAT64: return format_double(f);
    case ValueType::ARRAY: {
      out = "[";
      for (size_t k = 0; k < array.size() && k < max_array_items; ++k) {
        if (k) out += ", ";
        out += array[k].to_display(max_array_items);
      }
      if (array.size() > max_array_items) out += ", ... (" + std::to_string(array.size()) + " items)";
      out += "]";
      return out;
    }
    default:
      return is_signed_type(type) ? std::to_string(i) : std::to_string(u);
  }
}

int64_t TensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;  // validated by the parser not to overflow
  return n;
}

// ---- Parser ----

namespace {

constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 16;       // nesting beyond this is malformed, not useful
constexpr uint32_t kMaxValueType = 12;   // FLOAT64
// Array elements across all metadata. Real tokenizers hold under 1M (gemma-3: 262k tokens × 3
// arrays); the bound (~800 MB of Values at worst) keeps a hostile file from turning each byte
// into a ~100-byte Value without limit.
constexpr uint64_t kMaxMetadataValues = uint64_t{1} << 23;

// The fewest bytes one element of an array of type t can occupy: used to bound an array
// count by the bytes left before allocating anything for it.
uint64_t min_encoded_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    case ValueType::STRING: return 8;        // length prefix
    case ValueType::ARRAY: return 4 + 8;     // element type + count
  }
  return 1;
}

}  // namespace

class Parser {
 public:
  Parser(const uint8_t* data, size_t size, const std::string& name) : p_(data), size_(size), name_(name) {}

  Result<std::unique_ptr<File>> run();

 private:
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& name_;
  std::string where_;  // what is being read, for messages ("kv 3 'general.name'")
  uint64_t n_values_ = 0;

  Status fail(const std::string& msg) const {
    std::string m = name_ + ": ";
    if (!where_.empty()) m += where_ + ": ";
    return Status::error(m + msg + " (at byte " + std::to_string(pos_) + ")");
  }
  size_t left() const { return size_ - pos_; }

  template <class T>
  Status read_pod(T* out, const char* what) {
    if (left() < sizeof(T))
      return fail(std::string("file truncated reading ") + what + ": need " + std::to_string(sizeof(T)) +
                  " bytes, " + std::to_string(left()) + " left");
    std::memcpy(out, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status();
  }

  Status read_string(std::string* out, const char* what) {
    uint64_t len;
    OSPREY_TRY(read_pod(&len, what));
    if (len > left())
      return fail(std::string(what) + " length " + std::to_string(len) + " exceeds the " +
                  std::to_string(left()) + " bytes left in the file");
    out->assign(reinterpret_cast<const char*>(p_ + pos_), (size_t)len);
    pos_ += (size_t)len;
    return Status();
  }

  Status read_type(ValueType* t, const char* what) {
    uint32_t raw;
    OSPREY_TRY(read_pod(&raw, what));
    if (raw > kMaxValueType) {
      pos_ -= 4;
      return fail(std::string("unknown ") + what + " " + std::to_string(raw));
    }
    *t = (ValueType)raw;
    return Status();
  }

  Status read_value(ValueType t, Value* v, int depth);
  Status read_kv(uint64_t index, std::unordered_set<std::string>* seen, File* f);
  Status read_tensor_info(uint64_t index, std::unordered_set<std::string>* seen, TensorInfo* ti);
  Status apply_alignment(File* f);
  Status check_tensor_data(const File& f, TensorInfo* ti);
};

Status Parser::read_value(ValueType t, Value* v, int depth) {
  v->type = t;
  switch (t) {
    case ValueType::UINT8: { uint8_t x; OSPREY_TRY(read_pod(&x, "u8 value")); v->u = x; return Status(); }
    case ValueType::INT8: { int8_t x; OSPREY_TRY(read_pod(&x, "i8 value")); v->i = x; return Status(); }
    case ValueType::UINT16: { uint16_t x; OSPREY_TRY(read_pod(&x, "u16 value")); v->u = x; return Status(); }
    case ValueType::INT16: { int16_t x; OSPREY_TRY(read_pod(&x, "i16 value")); v->i = x; return Status(); }
    case ValueType::UINT32: { uint32_t x; OSPREY_TRY(read_pod(&x, "u32 value")); v->u = x; return Status(); }
    case ValueType::INT32: { int32_t x; OSPREY_TRY(read_pod(&x, "i32 value")); v->i = x; return Status(); }
    case ValueType::UINT64: { uint64_t x; OSPREY_TRY(read_pod(&x, "u64 value")); v->u = x; return Status(); }
    case ValueType::INT64: { int64_t x; OSPREY_TRY(read_pod(&x, "i64 value")); v->i = x; return Status(); }
    case ValueType::FLOAT32: { float x; OSPREY_TRY(read_pod(&x, "f32 value")); v->f = x; return Status(); }
    case ValueType::FLOAT64: { double x; OSPREY_TRY(read_pod(&x, "f64 value")); v->f = x; return Status(); }
    case ValueType::BOOL: {
      uint8_t x;
      OSPREY_TRY(read_pod(&x, "bool value"));
      if (x > 1) {
        --pos_;
        return fail("bool value " + std::to_string(x) + " is neither 0 nor 1");
      }
      v->u = x;
      return Status();
    }
    case ValueType::STRING: return read_string(&v->s, "string value");
    case ValueType::ARRAY: {
      if (depth >= kMaxArrayDepth) return fail("arrays nested deeper than " + std::to_string(kMaxArrayDepth));
      OSPREY_TRY(read_type(&v->elem_type, "array element type"));
      uint64_t count;
      OSPREY_TRY(read_pod(&count, "array length"));
      const uint64_t min_size = min_encoded_size(v->elem_type);
      if (count > left() / min_size)
        return fail("array length " + std::to_string(count) + " of " + value_type_name(v->elem_type) +
                    " cannot fit in the " + std::to_string(left()) + " bytes left in the file");
      // Grow as elements actually parse instead of trusting `count` up front: a Value is
      // ~100 bytes in memory for as little as 1 byte on disk, so a lying count in a large
      // file could otherwise demand gigabytes before the truncation is noticed.
      v->array.reserve((size_t)std::min<uint64_t>(count, 4096));
      for (uint64_t k = 0; k < count; ++k) {
        if (++n_values_ > kMaxMetadataValues)
          return fail("metadata holds more than " + std::to_string(kMaxMetadataValues) + " values");
        v->array.emplace_back();
        OSPREY_TRY(read_value(v->elem_type, &v->array.back(), depth + 1));
      }
      return Status();
    }
  }
  return fail("unknown value type " + std::to_string((uint32_t)t));
}

Status Parser::read_kv(uint64_t index, std::unordered_set<std::string>* seen, File* f) {
  where_ = "metadata entry " + std::to_string(index);
  KeyValue kv;
  OSPREY_TRY(read_string(&kv.key, "key"));
  where_ += " '" + kv.key + "'";
  if (!seen->insert(kv.key).second) return fail("duplicate metadata key");
  ValueType t;
  OSPREY_TRY(read_type(&t, "value type"));
  OSPREY_TRY(read_value(t, &kv.value, 0));
  f->kv_.push_back(std::move(kv));
  return Status();
}

Status Parser::read_tensor_info(uint64_t index, std::unordered_set<std::string>* seen, TensorInfo* ti) {
  where_ = "tensor info " + std::to_string(index);
  OSPREY_TRY(read_string(&ti->name, "tensor name"));
  where_ = "tensor '" + ti->name + "'";
  if (!seen->insert(ti->name).second) return fail("duplicate tensor name");
  uint32_t n_dims;
  OSPREY_TRY(read_pod(&n_dims, "dimension count"));
  if (n_dims > kMaxDims) return fail(std::to_string(n_dims) + " dimensions (at most 4 are allowed)");
  ti->ne.resize(n_dims);
  int64_t n_elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    uint64_t dim;
    OSPREY_TRY(read_pod(&dim, "dimension"));
    if (dim > (uint64_t)std::numeric_limits<int64_t>::max())
      return fail("dimension " + std::to_string(d) + " is " + std::to_string(dim) + " (negative or too large)");
    ti->ne[d] = (int64_t)dim;
    if (__builtin_mul_overflow(n_elements, (int64_t)dim, &n_elements))
      return fail("element count overflows (dimension " + std::to_string(d) + " = " + std::to_string(dim) + ")");
  }
  uint32_t type;
  OSPREY_TRY(read_pod(&type, "tensor type"));
  if (!dtype_traits((DType)type)) return fail("unknown tensor type id " + std::to_string(type));
  ti->type = (DType)type;
  OSPREY_TRY(read_pod(&ti->offset, "tensor data offset"));

  const int64_t ne0 = n_dims > 0 ? ti->ne[0] : 1;
  const DTypeTraits* tr = dtype_traits(ti->type);
  if (ne0 % tr->block_elems != 0)
    return fail("row of " + std::to_string(ne0) + " elements is not a whole number of " + tr->name + " blocks (" +
                std::to_string(tr->block_elems) + " elements each)");
  // Rows = n_elements / ne0 is unusable when ne0 == 0, so multiply the outer dims instead.
  uint64_t nbytes;
  bool overflow = __builtin_mul_overflow((uint64_t)(ne0 / tr->block_elems), (uint64_t)tr->block_bytes, &nbytes);
  for (uint32_t d = 1; d < n_dims && !overflow; ++d) overflow = __builtin_mul_overflow(nbytes, (uint64_t)ti->ne[d], &nbytes);
  if (overflow) return fail("byte size overflows");
  ti->nbytes = nbytes;
  return Status();
}

Status Parser::apply_alignment(File* f) {
  where_ = "metadata 'general.alignment'";
  const Value* v = f->find("general.alignment");
  if (!v) return Status();
  if (!v->is_integer() || v->type == ValueType::BOOL)
    return fail(std::string("has type ") + value_type_name(v->type) + ", expected an unsigned integer");
  int64_t a;
  if (!v->as_int64(&a) || a <= 0 || (a & (a - 1)) != 0)
    return fail("alignment " + v->to_display() + " is not a nonzero power of two");
  f->alignment_ = (uint64_t)a;
  return Status();
}

Status Parser::check_tensor_data(const File& f, TensorInfo* ti) {
  where_ = "tensor '" + ti->name + "'";
  if (ti->offset % f.alignment_ != 0)
    return fail("data offset " + std::to_string(ti->offset) + " is not a multiple of the alignment " +
                std::to_string(f.alignment_));
  uint64_t start, end;
  if (__builtin_add_overflow(f.data_offset_, ti->offset, &start))
    return fail("data offset " + std::to_string(ti->offset) + " overflows");
  if (__builtin_add_overflow(start, ti->nbytes, &end) || end > size_) {
    // Absolute file offsets, so the message can be checked against the file size directly.
    return Status::error(name_ + ": tensor '" + ti->name + "': data [offset " + std::to_string(start) + ", " +
                         std::to_string(ti->nbytes) + " bytes] extends past end of file (size " +
                         std::to_string(size_) + ")");
  }
  ti->data = p_ + start;
  return Status();
}

Result<std::unique_ptr<File>> Parser::run() {
  std::unique_ptr<File> f(new File());
  f->path_ = name_;
  f->base_ = p_;
  f->size_ = size_;

  where_ = "header";
  char magic[4];
  if (size_ < 4) return fail("file too small to be GGUF (" + std::to_string(size_) + " bytes)");
  OSPREY_TRY(read_pod(&magic, "magic"));
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    pos_ = 0;
    return fail("not a GGUF file (bad magic)");
  }
  uint32_t version;
  OSPREY_TRY(read_pod(&version, "version"));
  if (version == 1) return fail("GGUF version 1 is not supported (only versions 2 and 3)");
  if (version != 2 && version != 3) {
    if (__builtin_bswap32(version) == 2 || __builtin_bswap32(version) == 3)
      return fail("big-endian GGUF files are not supported");
    return fail("unsupported GGUF version " + std::to_string(version) + " (only versions 2 and 3)");
  }
  f->version_ = version;

  uint64_t n_tensors, n_kv;
  OSPREY_TRY(read_pod(&n_tensors, "tensor count"));
  OSPREY_TRY(read_pod(&n_kv, "metadata count"));
  // Minimum encodings: a kv is key length + type + 1-byte value (13 bytes); a tensor info
  // is name length + n_dims + type + offset (24 bytes).
  if (n_kv > left() / 13)
    return fail("metadata count " + std::to_string(n_kv) + " cannot fit in the " + std::to_string(left()) +
                " bytes left in the file");
  if (n_tensors > left() / 24)
    return fail("tensor count " + std::to_string(n_tensors) + " cannot fit in the " + std::to_string(left()) +
                " bytes left in the file");

  // Entries are appended as they parse (no reserve from the counts, which may lie).
  std::unordered_set<std::string> seen;
  for (uint64_t k = 0; k < n_kv; ++k) OSPREY_TRY(read_kv(k, &seen, f.get()));
  OSPREY_TRY(apply_alignment(f.get()));

  seen.clear();
  for (uint64_t k = 0; k < n_tensors; ++k) {
    f->tensors_.emplace_back();
    OSPREY_TRY(read_tensor_info(k, &seen, &f->tensors_.back()));
  }

  // The data section starts at the next multiple of the alignment. A file without tensors
  // may end before that padding; with tensors, check_tensor_data bounds every range.
  uint64_t data_offset;
  if (__builtin_add_overflow((uint64_t)pos_, f->alignment_ - 1, &data_offset)) {
    where_ = "header";
    return fail("data section offset overflows");
  }
  f->data_offset_ = data_offset / f->alignment_ * f->alignment_;
  for (TensorInfo& ti : f->tensors_) OSPREY_TRY(check_tensor_data(*f, &ti));
  return f;
}

// ---- File ----

Result<std::unique_ptr<File>> File::parse(const uint8_t* data, size_t size, const std::string& name) {
  if (!data && size != 0) return Status::error(name + ": null buffer");
  static const uint8_t kEmpty[1] = {0};
  Parser p(data ? data : kEmpty, size, name);
  try {
    return p.run();
  } catch (const std::bad_alloc&) {
    // Allocation is bounded by the file's size, but a big file on a small machine can still fail.
    return Status::error(name + ": out of memory while parsing metadata");
  }
}

Result<std::unique_ptr<File>> File::open(const std::string& path) {
  return parse_mapped<File>(path, [](const uint8_t* d, size_t n, const std::string& name) { return parse(d, n, name); },
                            [](File& f, void* map) { f.map_ = map; });
}

File::~File() { unmap_file(MappedFile{map_, base_, size_}); }

const Value* File::find(std::string_view key) const {
  for (const KeyValue& kv : kv_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  for (const TensorInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

static Status type_error(const std::string& path, std::string_view key, const Value& v, const char* expected) {
  return Status::error(path + ": metadata '" + std::string(key) + "' has type " + value_type_name(v.type) +
                       (v.type == ValueType::ARRAY ? std::string(" of ") + value_type_name(v.elem_type) : "") +
                       ", expected " + expected);
}

Result<std::string> File::get_string(std::string_view key, std::string def) const {
  const Value* v = find(key);
  if (!v) return def;
  if (v->type != ValueType::STRING) return type_error(path_, key, *v, "string");
  return v->s;
}

Result<int64_t> File::get_int(std::string_view key, int64_t def) const {
  const Value* v = find(key);
  if (!v) return def;
  if (!v->is_integer()) return type_error(path_, key, *v, "an integer");
  int64_t out;
  if (!v->as_int64(&out))
    return Status::error(path_ + ": metadata '" + std::string(key) + "' value " + v->to_display() +
                         " does not fit in int64");
  return out;
}

Result<double> File::get_float(std::string_view key, double def) const {
  const Value* v = find(key);
  if (!v) return def;
  double out;
  if (v->type == ValueType::BOOL || !v->as_double(&out)) return type_error(path_, key, *v, "a number");
  return out;
}

Result<bool> File::get_bool(std::string_view key, bool def) const {
  const Value* v = find(key);
  if (!v) return def;
  if (!v->is_integer()) return type_error(path_, key, *v, "bool");
  return is_signed_type(v->type) ? v->i != 0 : v->u != 0;
}

Result<std::vector<std::string>> File::get_string_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return Status::error(path_ + ": metadata '" + std::string(key) + "' is missing");
  if (v->type != ValueType::ARRAY || v->elem_type != ValueType::STRING)
    return type_error(path_, key, *v, "array of string");
  std::vector<std::string> out;
  out.reserve(v->array.size());
  for (const Value& e : v->array) out.push_back(e.s);
  return out;
}

Result<std::vector<double>> File::get_float_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return Status::error(path_ + ": metadata '" + std::string(key) + "' is missing");
  Value probe;
  probe.type = v->elem_type;
  if (v->type != ValueType::ARRAY || v->elem_type == ValueType::BOOL || (!probe.is_integer() && !probe.is_float()))
    return type_error(path_, key, *v, "array of numbers");
  std::vector<double> out(v->array.size());
  for (size_t k = 0; k < out.size(); ++k) v->array[k].as_double(&out[k]);
  return out;
}

Result<std::vector<int64_t>> File::get_int_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return Status::error(path_ + ": metadata '" + std::string(key) + "' is missing");
  Value probe;
  probe.type = v->elem_type;
  if (v->type != ValueType::ARRAY || !probe.is_integer()) return type_error(path_, key, *v, "array of integers");
  std::vector<int64_t> out(v->array.size());
  for (size_t k = 0; k < out.size(); ++k)
    if (!v->array[k].as_int64(&out[k]))
      return Status::error(path_ + ": metadata '" + std::string(key) + "' element " + std::to_string(k) +
                           " does not fit in int64");
  return out;
}

}  // namespace osprey::gguf
