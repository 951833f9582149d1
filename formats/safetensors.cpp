// safetensors reader. Everything in the header is untrusted: the JSON must be an object of
// tensor entries (plus an optional "__metadata__" of strings), each entry's byte range must lie
// inside the data section, match its shape times its dtype size, and not overlap another.
#include "formats/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "formats/mapped_file.h"
#include "kernels/base/fp16.h"

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace osprey::safetensors {

namespace {

struct DTypeInfo {
  DType t;
  const char* name;
  size_t size;
  bool is_float;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::BOOL, "BOOL", 1, false},       {DType::U8, "U8", 1, false},     {DType::I8, "I8", 1, false},
    {DType::U16, "U16", 2, false},         {DType::I16, "I16", 2, false},   {DType::U32, "U32", 4, false},
    {DType::I32, "I32", 4, false},         {DType::U64, "U64", 8, false},   {DType::I64, "I64", 8, false},
    {DType::F16, "F16", 2, true},          {DType::BF16, "BF16", 2, true},  {DType::F32, "F32", 4, true},
    {DType::F64, "F64", 8, true},          {DType::F8_E4M3, "F8_E4M3", 1, true},
    {DType::F8_E5M2, "F8_E5M2", 1, true},
};

const DTypeInfo& info(DType t) {
  for (const DTypeInfo& d : kDTypes)
    if (d.t == t) return d;
  return kDTypes[0];
}

// Headers of real checkpoints are a few hundred KB; this bounds what a hostile length can make
// us parse.
constexpr uint64_t kMaxHeader = 100u << 20;

}  // namespace

const char* dtype_name(DType t) { return info(t).name; }
size_t dtype_size(DType t) { return info(t).size; }
bool dtype_is_float(DType t) { return info(t).is_float; }

int64_t TensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated not to overflow when parsed
  return n;
}

struct HeaderParser {
  static Result<std::unique_ptr<File>> run(const uint8_t* data, size_t size, const std::string& name) {
    auto fail = [&](const std::string& msg) { return Status::error(name + ": " + msg); };
    if (size < 8) return fail("file is " + std::to_string(size) + " bytes, too short for a safetensors header");
    uint64_t n;
    std::memcpy(&n, data, 8);
    if (n > size - 8)
      return fail("header length " + std::to_string(n) + " is past the end of the file (" + std::to_string(size) +
                  " bytes)");
    if (n > kMaxHeader) return fail("header length " + std::to_string(n) + " is over the 100 MB limit");
    if (n < 2 || data[8] != '{') return fail("header is not a JSON object");
    const char* h = reinterpret_cast<const char*>(data + 8);

    // Reject duplicate keys at the top level: a second entry for a name would silently win.
    std::string dup;
    std::set<std::string> seen;
    nlohmann::json::parser_callback_t cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
      if (ev == nlohmann::json::parse_event_t::key && depth == 1 && parsed.is_string() &&
          !seen.insert(parsed.get<std::string>()).second && dup.empty())
        dup = parsed.get<std::string>();
      return true;
    };
    nlohmann::json j = nlohmann::json::parse(h, h + n, cb, /*allow_exceptions=*/false);
    if (j.is_discarded()) return fail("header is not valid JSON");
    if (!j.is_object()) return fail("header is not a JSON object");
    if (!dup.empty()) return fail("header names '" + dup + "' twice");

    std::unique_ptr<File> f(new File());
    f->path_ = name;
    f->base_ = data;
    f->size_ = size;
    const uint64_t data_start = 8 + n;
    const uint64_t data_size = size - data_start;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& key = it.key();
      const nlohmann::json& v = it.value();
      if (key == "__metadata__") {
        if (!v.is_object()) return fail("__metadata__ is not an object");
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (!m.value().is_string()) return fail("__metadata__ '" + m.key() + "' is not a string");
          f->metadata_[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      const std::string who = "tensor '" + key + "': ";
      if (!v.is_object()) return fail(who + "entry is not an object");
      auto dt = v.find("dtype");
      auto sh = v.find("shape");
      auto off = v.find("data_offsets");
      if (dt == v.end() || !dt->is_string()) return fail(who + "missing or non-string dtype");
      if (sh == v.end() || !sh->is_array()) return fail(who + "missing or non-array shape");
      if (off == v.end() || !off->is_array() || off->size() != 2) return fail(who + "data_offsets is not [begin, end]");
      TensorInfo t;
      t.name = key;
      const std::string dts = dt->get<std::string>();
      bool known = false;
      for (const DTypeInfo& d : kDTypes)
        if (dts == d.name) {
          t.dtype = d.t;
          known = true;
        }
      if (!known) return fail(who + "unknown dtype '" + dts + "'");
      if (sh->size() > 8) return fail(who + std::to_string(sh->size()) + " dimensions (at most 8)");
      uint64_t bytes = dtype_size(t.dtype);
      int64_t elems = 1;
      for (const nlohmann::json& d : *sh) {
        if (!d.is_number_unsigned()) return fail(who + "shape has a dimension that is not a non-negative integer");
        const uint64_t dim = d.get<uint64_t>();
        if (dim > (uint64_t)INT64_MAX || __builtin_mul_overflow(bytes, dim, &bytes) ||
            __builtin_mul_overflow(elems, (int64_t)dim, &elems))
          return fail(who + "size overflows");
        t.shape.push_back((int64_t)dim);
      }
      if (!(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
        return fail(who + "data_offsets are not non-negative integers");
      const uint64_t b = (*off)[0].get<uint64_t>(), e = (*off)[1].get<uint64_t>();
      if (b > e) return fail(who + "data_offsets begin " + std::to_string(b) + " > end " + std::to_string(e));
      if (e > data_size)
        return fail(who + "data ends at " + std::to_string(e) + ", past the data section of " +
                    std::to_string(data_size) + " bytes");
      if (e - b != bytes)
        return fail(who + "holds " + std::to_string(e - b) + " bytes but its shape and dtype " + dts + " need " +
                    std::to_string(bytes));
      t.begin = b;
      t.nbytes = bytes;
      t.data = data + data_start + b;
      f->tensors_.push_back(std::move(t));
    }
    std::sort(f->tensors_.begin(), f->tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.nbytes < b.nbytes;
    });
    for (size_t k = 1; k < f->tensors_.size(); ++k) {
      const TensorInfo& p = f->tensors_[k - 1];
      const TensorInfo& c = f->tensors_[k];
      if (c.begin < p.begin + p.nbytes) return fail("tensors '" + p.name + "' and '" + c.name + "' overlap");
    }
    return f;
  }
};

Result<std::unique_ptr<File>> File::parse(const uint8_t* data, size_t size, const std::string& name) {
  if (!data && size != 0) return Status::error(name + ": null buffer");
  static const uint8_t kEmpty[1] = {0};
  try {
    return HeaderParser::run(data ? data : kEmpty, size, name);
  } catch (const std::bad_alloc&) {
    return Status::error(name + ": out of memory while parsing the header");
  } catch (const std::exception& e) {  // nlohmann's get<> on a type we did not check
    return Status::error(name + ": bad header: " + e.what());
  }
}

Result<std::unique_ptr<File>> File::open(const std::string& path) {
  return parse_mapped<File>(path, [](const uint8_t* d, size_t n, const std::string& name) { return parse(d, n, name); },
                            [](File& f, void* map) { f.map_ = map; });
}

File::~File() { unmap_file(MappedFile{map_, base_, size_}); }

const TensorInfo* File::find(std::string_view name) const {
  for (const TensorInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

// ---- sharded checkpoints ----

namespace {

namespace fs = std::filesystem;

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error(path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Result<std::unique_ptr<Checkpoint>> Checkpoint::open(const std::string& path) {
  std::error_code ec;
  std::unique_ptr<Checkpoint> c(new Checkpoint());
  std::string index_path;
  std::vector<std::string> shard_paths;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::is_regular_file(dir / "model.safetensors.index.json", ec)) {
      index_path = (dir / "model.safetensors.index.json").string();
    } else if (fs::is_regular_file(dir / "model.safetensors", ec)) {
      shard_paths.push_back((dir / "model.safetensors").string());
    } else {
      for (const fs::directory_entry& e : fs::directory_iterator(dir, ec))
        if (e.is_regular_file() && e.path().extension() == ".safetensors") shard_paths.push_back(e.path().string());
      std::sort(shard_paths.begin(), shard_paths.end());
      if (shard_paths.empty()) return Status::error(path + ": no .safetensors files in this folder");
    }
  } else if (path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
    index_path = path;
  } else {
    shard_paths.push_back(path);
  }

  // weight_map: which shard holds each tensor; every listed tensor must be found there.
  std::vector<std::pair<std::string, std::string>> wanted;  // tensor -> shard file name
  if (!index_path.empty()) {
    auto text = read_text(index_path);
    if (!text) return text.status();
    nlohmann::json j = nlohmann::json::parse(text.value(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Status::error(index_path + ": not a JSON object");
    auto wm = j.find("weight_map");
    if (wm == j.end() || !wm->is_object() || wm->empty())
      return Status::error(index_path + ": missing or empty \"weight_map\"");
    std::set<std::string> files;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string()) return Status::error(index_path + ": weight_map['" + it.key() + "'] is not a string");
      const std::string file = it.value().get<std::string>();
      // Shards live next to the index: no paths, so an index cannot point elsewhere.
      if (file.empty() || file.find('/') != std::string::npos || file.find('\\') != std::string::npos ||
          file == "." || file == "..")
        return Status::error(index_path + ": shard name '" + file + "' is not a plain file name");
      wanted.emplace_back(it.key(), file);
      files.insert(file);
    }
    const fs::path dir = fs::path(index_path).parent_path();
    for (const std::string& file : files) shard_paths.push_back((dir / file).string());
  }

  std::map<std::string, size_t> file_index;
  for (const std::string& p : shard_paths) {
    auto f = File::open(p);
    if (!f) return f.status();
    file_index[fs::path(p).filename().string()] = c->files_.size();
    c->files_.push_back(std::move(f.value()));
  }
  if (!wanted.empty()) {
    for (const auto& [tensor, file] : wanted) {
      const File& f = *c->files_[file_index.at(file)];
      const TensorInfo* t = f.find(tensor);
      if (!t) return Status::error(index_path + ": tensor '" + tensor + "' is not in " + f.path());
      c->by_name_[tensor] = t;
    }
    for (const auto& f : c->files_)
      for (const TensorInfo& t : f->tensors())
        if (c->by_name_.count(t.name) && c->by_name_.at(t.name) == &t) c->order_.push_back(&t);
  } else {
    for (const auto& f : c->files_)
      for (const TensorInfo& t : f->tensors()) {
        if (!c->by_name_.emplace(t.name, &t).second)
          return Status::error(f->path() + ": tensor '" + t.name + "' is also in another shard");
        c->order_.push_back(&t);
      }
  }
  return c;
}

const TensorInfo* Checkpoint::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

// ---- conversions ----

float f8_e4m3_to_f32(uint8_t v) {
  const float sign = (v & 0x80) ? -1.f : 1.f;
  const int exp = (v >> 3) & 0xf, mant = v & 0x7;
  if (exp == 0xf && mant == 0x7) return std::nanf("");  // the only NaN; e4m3fn has no infinities
  if (exp == 0) return sign * std::ldexp((float)mant / 8.f, -6);
  return sign * std::ldexp(1.f + (float)mant / 8.f, exp - 7);
}

float f8_e5m2_to_f32(uint8_t v) { return f16_to_f32((uint16_t)(v << 8)); }  // e5m2 is the top byte of an f16

Status to_f32(const TensorInfo& t, float* out) {
  const int64_t n = t.n_elements();
  const uint8_t* p = t.data;
  if (n == 0) return dtype_is_float(t.dtype) ? Status() : Status::error("tensor '" + t.name + "' is not a float type");
  switch (t.dtype) {
    case DType::F32: std::memcpy(out, p, (size_t)n * 4); break;
    case DType::F64:
      for (int64_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, p + 8 * i, 8);
        out[i] = (float)d;
      }
      break;
    case DType::F16:
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = t.dtype == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
      break;
    case DType::F8_E4M3: for (int64_t i = 0; i < n; ++i) out[i] = f8_e4m3_to_f32(p[i]); break;
    case DType::F8_E5M2: for (int64_t i = 0; i < n; ++i) out[i] = f8_e5m2_to_f32(p[i]); break;
    default:
      return Status::error("tensor '" + t.name + "' has dtype " + dtype_name(t.dtype) + ", not a float type");
  }
  return Status();
}

}  // namespace osprey::safetensors
