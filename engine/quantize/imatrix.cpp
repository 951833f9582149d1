// Importance matrix GGUF file: see imatrix.h for the layout.
#include "engine/quantize/imatrix.h"

#include <cmath>
#include <cstring>

#include "formats/gguf.h"

namespace osprey {

namespace {

const std::string kSumSuffix = ".in_sum2";
const std::string kCountSuffix = ".counts";

bool strip_suffix(std::string* s, const std::string& suffix) {
  if (s->size() <= suffix.size() || s->compare(s->size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  s->resize(s->size() - suffix.size());
  return true;
}

std::vector<float> read_f32(const gguf::TensorInfo& t) {
  std::vector<float> v((size_t)t.n_elements());
  std::memcpy(v.data(), t.data, v.size() * sizeof(float));  // GGUF data is little-endian f32
  return v;
}

}  // namespace

Result<Imatrix> load_imatrix(const std::string& path) {
  auto file = gguf::File::open(path);
  if (!file) return Status::error("imatrix: " + file.error());
  const gguf::File& f = **file;
  const std::string who = "imatrix " + path + ": ";
  auto type = f.get_string("general.type", "");
  if (!type) return Status::error(who + type.error());
  if (*type != "imatrix")
    return Status::error(who + "not an importance matrix (general.type is '" + *type + "', want 'imatrix')");

  Imatrix m;
  auto chunks = f.get_int("imatrix.chunk_count", 0);
  auto chunk_size = f.get_int("imatrix.chunk_size", 0);
  if (!chunks) return Status::error(who + chunks.error());
  if (!chunk_size) return Status::error(who + chunk_size.error());
  if (*chunks < 0 || *chunks > INT32_MAX || *chunk_size < 0 || *chunk_size > INT32_MAX)
    return Status::error(who + "chunk count or size out of range");
  m.n_chunks = (int32_t)*chunks;
  m.chunk_size = (int32_t)*chunk_size;
  if (f.find("imatrix.datasets")) {
    auto ds = f.get_string_array("imatrix.datasets");
    if (!ds) return Status::error(who + ds.error());
    m.datasets = std::move(*ds);
  }

  std::map<std::string, std::pair<const gguf::TensorInfo*, const gguf::TensorInfo*>> pairs;
  for (const gguf::TensorInfo& t : f.tensors()) {
    std::string name = t.name;
    if (strip_suffix(&name, kSumSuffix)) pairs[name].first = &t;
    else if (strip_suffix(&name, kCountSuffix)) pairs[name].second = &t;
    else return Status::error(who + "unexpected tensor '" + t.name + "' (want NAME.in_sum2 / NAME.counts)");
  }
  for (const auto& [name, pc] : pairs) {
    const gguf::TensorInfo* sums = pc.first;
    const gguf::TensorInfo* counts = pc.second;
    if (!sums || !counts) return Status::error(who + "tensor '" + name + "' lacks its " + (sums ? "counts" : "in_sum2"));
    if (sums->type != DType::F32 || counts->type != DType::F32)
      return Status::error(who + "tensor '" + name + "': sums and counts must be F32");
    const int64_t n_mat = counts->n_elements();
    const int64_t n_val = sums->n_elements();
    if (n_mat < 1 || n_val < 1 || n_val % n_mat != 0)
      return Status::error(who + "tensor '" + name + "': " + std::to_string(n_val) + " sums do not split into " +
                           std::to_string(n_mat) + " matrices");
    const std::vector<float> s = read_f32(*sums);
    const std::vector<float> c = read_f32(*counts);
    const int64_t n_col = n_val / n_mat;
    std::vector<float> mean((size_t)n_val);
    for (int64_t k = 0; k < n_mat; ++k) {
      if (!std::isfinite(c[k]) || c[k] <= 0)
        return Status::error(who + "tensor '" + name + "': count " + std::to_string(c[k]) + " is not positive");
      for (int64_t j = 0; j < n_col; ++j) {
        const float v = s[k * n_col + j];
        if (!std::isfinite(v) || v < 0)
          return Status::error(who + "tensor '" + name + "': sum of squares " + std::to_string(v) + " at column " +
                               std::to_string(j) + " is negative or not finite");
        mean[k * n_col + j] = v / c[k];
      }
    }
    m.values[name] = std::move(mean);
  }
  return m;
}

Status save_imatrix(const Imatrix& m, const std::string& path) {
  gguf::Writer w;
  w.add("general.type", gguf::Writer::str("imatrix"));
  w.add("imatrix.datasets", gguf::Writer::str_array(m.datasets));
  w.add("imatrix.chunk_count", gguf::Writer::u32((uint32_t)std::max<int32_t>(m.n_chunks, 0)));
  w.add("imatrix.chunk_size", gguf::Writer::u32((uint32_t)std::max<int32_t>(m.chunk_size, 0)));
  // llama.cpp stores raw sums and the number of rows summed; the count is the number of
  // tokens collected over, so a llama.cpp merge weights this file by how much text it saw.
  const int64_t tokens = (int64_t)m.n_chunks * m.chunk_size;
  const float count = tokens > 0 ? (float)tokens : 1.0f;
  for (const auto& [name, mean] : m.values) {
    if (mean.empty()) return Status::error("imatrix: tensor '" + name + "' has no values");
    std::vector<float> sums(mean.size());
    for (size_t j = 0; j < mean.size(); ++j) sums[j] = mean[j] * count;
    OSPREY_TRY(w.add_tensor(name + kSumSuffix, DType::F32, {(int64_t)mean.size(), 1}, sums.data(),
                            sums.size() * sizeof(float)));
    OSPREY_TRY(w.add_tensor(name + kCountSuffix, DType::F32, {1, 1}, &count, sizeof(float)));
  }
  return w.write(path).with_context("imatrix");
}

}  // namespace osprey
