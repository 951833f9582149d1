// GGUF writer. Output goes to `path + ".tmp.<pid>"` and is renamed over `path` only after every
// byte was written and flushed, so a crash or a full disk never leaves a half-written model
// under the real name, and two processes writing the same path (two conversions of one
// checkpoint into the cache) never write into one temporary file.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <unordered_set>

#include <unistd.h>

#include "formats/gguf.h"

namespace osprey::gguf {

Value Writer::str(std::string s) {
  Value v;
  v.type = ValueType::STRING;
  v.s = std::move(s);
  return v;
}

Value Writer::u32(uint32_t x) {
  Value v;
  v.type = ValueType::UINT32;
  v.u = x;
  return v;
}

Value Writer::i32(int32_t x) {
  Value v;
  v.type = ValueType::INT32;
  v.i = x;
  return v;
}

Value Writer::f32(float x) {
  Value v;
  v.type = ValueType::FLOAT32;
  v.f = x;
  return v;
}

Value Writer::boolean(bool x) {
  Value v;
  v.type = ValueType::BOOL;
  v.u = x ? 1 : 0;
  return v;
}

Value Writer::str_array(const std::vector<std::string>& items) {
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = ValueType::STRING;
  v.array.reserve(items.size());
  for (const std::string& s : items) v.array.push_back(str(s));
  return v;
}

void Writer::add(std::string key, Value v) { kv_.push_back({std::move(key), std::move(v)}); }

Result<uint64_t> Writer::checked_size(const std::string& name, DType type, const std::vector<int64_t>& ne) const {
  const std::string who = "gguf writer: tensor '" + name + "': ";
  const DTypeTraits* tr = dtype_traits(type);
  if (!tr) return Status::error(who + "unknown type id " + std::to_string((uint32_t)type));
  if (ne.size() > 4) return Status::error(who + std::to_string(ne.size()) + " dimensions (at most 4)");
  for (const PendingTensor& t : tensors_)
    if (t.name == name) return Status::error(who + "duplicate tensor name");
  for (int64_t d : ne)
    if (d < 0) return Status::error(who + "negative dimension " + std::to_string(d));
  const int64_t ne0 = ne.empty() ? 1 : ne[0];
  const int64_t row = dtype_row_bytes(type, ne0);
  if (row < 0)
    return Status::error(who + "row of " + std::to_string(ne0) + " elements is not a whole number of " +
                         tr->name + " blocks of " + std::to_string(tr->block_elems));
  uint64_t bytes = (uint64_t)row;
  int64_t elems = ne0;
  for (size_t k = 1; k < ne.size(); ++k)
    if (__builtin_mul_overflow(bytes, (uint64_t)ne[k], &bytes) || __builtin_mul_overflow(elems, ne[k], &elems))
      return Status::error(who + "size overflows");
  if (bytes > (uint64_t)std::numeric_limits<int64_t>::max() || bytes > std::numeric_limits<size_t>::max())
    return Status::error(who + "size overflows");
  return bytes;
}

Status Writer::add_tensor(std::string name, DType type, std::vector<int64_t> ne, const void* data, size_t nbytes) {
  auto size = checked_size(name, type, ne);
  if (!size.ok()) return size.status();
  const std::string who = "gguf writer: tensor '" + name + "': ";
  if (*size != nbytes)
    return Status::error(who + "got " + std::to_string(nbytes) + " bytes of data, shape needs " +
                         std::to_string(*size));
  if (nbytes && !data) return Status::error(who + "null data");
  auto copy = std::make_shared<std::vector<uint8_t>>(static_cast<const uint8_t*>(data),
                                                     static_cast<const uint8_t*>(data) + nbytes);
  tensors_.push_back({std::move(name), type, std::move(ne), nbytes, [copy](uint8_t* dst, size_t n) {
                        if (n) std::memcpy(dst, copy->data(), n);
                        return Status();
                      }});
  return Status();
}

Status Writer::add_tensor(std::string name, DType type, std::vector<int64_t> ne, Fill fill) {
  auto size = checked_size(name, type, ne);
  if (!size.ok()) return size.status();
  if (!fill) return Status::error("gguf writer: tensor '" + name + "': no data");
  tensors_.push_back({std::move(name), type, std::move(ne), *size, std::move(fill)});
  return Status();
}

namespace {

// Serializes into memory; the header part of a GGUF is small next to the tensor data.
class Out {
 public:
  std::vector<uint8_t> buf;
  template <class T>
  void pod(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    buf.insert(buf.end(), p, p + sizeof(T));
  }
  void string(const std::string& s) {
    pod<uint64_t>(s.size());
    buf.insert(buf.end(), s.begin(), s.end());
  }
};

Status encode_value(const Value& v, ValueType t, Out* out, const std::string& key, int depth) {
  auto bad = [&](const std::string& msg) { return Status::error("gguf writer: metadata '" + key + "': " + msg); };
  if (v.type != t)
    return bad(std::string("array element of type ") + value_type_name(v.type) + " in an array of " +
               value_type_name(t));
  auto fits_u = [&](uint64_t max) { return v.u <= max; };
  auto fits_i = [&](int64_t lo, int64_t hi) { return v.i >= lo && v.i <= hi; };
  switch (t) {
    case ValueType::UINT8: if (!fits_u(0xff)) return bad("u8 out of range"); out->pod<uint8_t>((uint8_t)v.u); break;
    case ValueType::UINT16: if (!fits_u(0xffff)) return bad("u16 out of range"); out->pod<uint16_t>((uint16_t)v.u); break;
    case ValueType::UINT32: if (!fits_u(0xffffffffu)) return bad("u32 out of range"); out->pod<uint32_t>((uint32_t)v.u); break;
    case ValueType::UINT64: out->pod<uint64_t>(v.u); break;
    case ValueType::BOOL: if (!fits_u(1)) return bad("bool is neither 0 nor 1"); out->pod<uint8_t>((uint8_t)v.u); break;
    case ValueType::INT8: if (!fits_i(-128, 127)) return bad("i8 out of range"); out->pod<int8_t>((int8_t)v.i); break;
    case ValueType::INT16: if (!fits_i(-32768, 32767)) return bad("i16 out of range"); out->pod<int16_t>((int16_t)v.i); break;
    case ValueType::INT32:
      if (!fits_i(std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max())) return bad("i32 out of range");
      out->pod<int32_t>((int32_t)v.i);
      break;
    case ValueType::INT64: out->pod<int64_t>(v.i); break;
    case ValueType::FLOAT32: out->pod<float>((float)v.f); break;
    case ValueType::FLOAT64: out->pod<double>(v.f); break;
    case ValueType::STRING: out->string(v.s); break;
    case ValueType::ARRAY:
      if (depth >= 16) return bad("arrays nested too deep");
      if ((uint32_t)v.elem_type > (uint32_t)ValueType::FLOAT64) return bad("unknown array element type");
      out->pod<uint32_t>((uint32_t)v.elem_type);
      out->pod<uint64_t>(v.array.size());
      for (const Value& e : v.array) OSPREY_TRY(encode_value(e, v.elem_type, out, key, depth + 1));
      break;
    default:
      return bad("unknown value type " + std::to_string((uint32_t)t));
  }
  return Status();
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

Status write_all(std::FILE* f, const void* p, size_t n, const std::string& tmp) {
  if (n && std::fwrite(p, 1, n, f) != n) return Status::error(tmp + ": write failed: " + std::strerror(errno));
  return Status();
}

}  // namespace

Status Writer::write(const std::string& path) const {
  if (version_ != 2 && version_ != 3)
    return Status::error("gguf writer: version " + std::to_string(version_) + " (only 2 and 3 can be written)");
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0 || alignment_ > 0xffffffffu)
    return Status::error("gguf writer: alignment " + std::to_string(alignment_) + " is not a power of two");

  Out out;
  out.buf.insert(out.buf.end(), {'G', 'G', 'U', 'F'});
  out.pod<uint32_t>(version_);
  out.pod<uint64_t>(tensors_.size());

  // A non-default alignment must be recorded, or readers would assume 32.
  const Value* align_kv = nullptr;
  for (const KeyValue& kv : kv_)
    if (kv.key == "general.alignment") align_kv = &kv.value;
  const bool add_align = !align_kv && alignment_ != 32;
  if (align_kv) {
    int64_t a;
    if (!align_kv->is_integer() || !align_kv->as_int64(&a) || (uint64_t)a != alignment_)
      return Status::error("gguf writer: metadata 'general.alignment' = " + align_kv->to_display() +
                           " disagrees with the writer's alignment " + std::to_string(alignment_));
  }
  out.pod<uint64_t>(kv_.size() + (add_align ? 1 : 0));

  std::unordered_set<std::string> seen;
  for (const KeyValue& kv : kv_) {
    if (!seen.insert(kv.key).second) return Status::error("gguf writer: duplicate metadata key '" + kv.key + "'");
    out.string(kv.key);
    out.pod<uint32_t>((uint32_t)kv.value.type);
    OSPREY_TRY(encode_value(kv.value, kv.value.type, &out, kv.key, 0));
  }
  if (add_align) {
    out.string("general.alignment");
    out.pod<uint32_t>((uint32_t)ValueType::UINT32);
    out.pod<uint32_t>((uint32_t)alignment_);
  }

  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    out.string(t.name);
    out.pod<uint32_t>((uint32_t)t.ne.size());
    for (int64_t d : t.ne) out.pod<uint64_t>((uint64_t)d);
    out.pod<uint32_t>((uint32_t)t.type);
    out.pod<uint64_t>(offset);
    offset = align_up(offset + t.nbytes, alignment_);
  }
  out.buf.resize(align_up(out.buf.size(), alignment_), 0);

  const std::string tmp = path + ".tmp." + std::to_string((long long)::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return Status::error(tmp + ": cannot create: " + std::strerror(errno));
  Status st = write_all(f, out.buf.data(), out.buf.size(), tmp);
  static const uint8_t kZeros[256] = {};
  std::vector<uint8_t> data;  // one tensor at a time
  // The fills run while the file is open (they allocate, start threads, call back): an
  // exception from one must still close and remove the temporary file.
  try {
    for (size_t k = 0; st.ok() && k < tensors_.size(); ++k) {
      const PendingTensor& t = tensors_[k];
      data.resize((size_t)t.nbytes);
      st = t.fill(data.data(), data.size());
      if (st.ok()) st = write_all(f, data.data(), data.size(), tmp);
      // Pad after every tensor, the last included, as gguf-py does.
      for (uint64_t pad = align_up(t.nbytes, alignment_) - t.nbytes; st.ok() && pad > 0;) {
        const size_t n = pad < sizeof kZeros ? (size_t)pad : sizeof kZeros;
        st = write_all(f, kZeros, n, tmp);
        pad -= n;
      }
    }
  } catch (const std::exception& e) {
    st = Status::error(tmp + ": " + e.what());
  }
  if (st.ok() && std::fflush(f) != 0) st = Status::error(tmp + ": flush failed: " + std::strerror(errno));
  if (std::fclose(f) != 0 && st.ok()) st = Status::error(tmp + ": close failed: " + std::strerror(errno));
  if (st.ok() && std::rename(tmp.c_str(), path.c_str()) != 0)
    st = Status::error(path + ": cannot rename " + tmp + " into place: " + std::strerror(errno));
  if (!st.ok()) std::remove(tmp.c_str());
  return st;
}

}  // namespace osprey::gguf
