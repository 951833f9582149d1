// Whole-model quantization. See quantize_model.h.
#include "engine/quantize/quantize_model.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "engine/quantize/tensor_types.h"
#include "formats/gguf.h"
#include "kernels/dequant.h"
#include "kernels/quantize.h"

namespace osprey::quantize {
namespace {

// Version of the block layouts written, as llama.cpp records it (general.quantization_version).
constexpr uint32_t kQuantizationVersion = 2;

ModelFacts gather_facts(const gguf::File& f, bool has_imatrix) {
  ModelFacts m;
  m.has_imatrix = has_imatrix;
  int n_ffn_down = 0;
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (t.name == "output.weight") m.tied_embeddings = false;
    if (t.name.find("attn_v.weight") != std::string::npos || t.name.find("attn_qkv.weight") != std::string::npos ||
        t.name.find("attn_kv_b.weight") != std::string::npos)
      ++m.n_attn_v;
    if (t.name.find("ffn_down") != std::string::npos) ++n_ffn_down;
  }
  m.n_layer = n_ffn_down;
  auto arch = f.get_string("general.architecture");
  if (arch.ok() && !arch->empty()) {
    auto blocks = f.get_int(*arch + ".block_count", 0);
    if (blocks.ok() && *blocks > 0) m.n_layer = (int)*blocks;
    auto heads = f.get_int(*arch + ".attention.head_count", 0);
    auto kv_heads = f.get_int(*arch + ".attention.head_count_kv", 0);
    if (heads.ok() && kv_heads.ok() && *heads > 0 && *kv_heads > 0) m.n_gqa = (int)(*heads / *kv_heads);
  }
  return m;
}

// The importance row(s) for a tensor: one per matrix (ne[0] values each), or nullptr.
Result<const float*> importance_for(const Options& opt, const gguf::TensorInfo& t) {
  if (!opt.imatrix) return (const float*)nullptr;
  auto it = opt.imatrix->find(t.name);
  if (it == opt.imatrix->end()) return (const float*)nullptr;
  const int64_t matrices = t.ne.size() > 2 ? t.n_elements() / (t.ne[0] * t.ne[1]) : 1;
  if ((int64_t)it->second.size() != t.ne[0] * matrices)
    return Status::error("imatrix entry for '" + t.name + "' has " + std::to_string(it->second.size()) +
                         " values, the tensor needs " + std::to_string(t.ne[0] * matrices) +
                         " (was the imatrix made for another model?)");
  return it->second.data();
}

// Decode every row of t and re-encode it as `to` into out (nbytes), rows split across threads.
Status convert_tensor(const gguf::TensorInfo& t, DType to, const float* importance, int threads, uint8_t* out,
                      size_t nbytes) {
  const int64_t ncols = t.ne[0], nrows = t.n_elements() / std::max<int64_t>(1, ncols);
  const int64_t rows_per_matrix = t.ne.size() > 1 ? t.ne[1] : 1;
  const int64_t in_rb = dtype_row_bytes(t.type, ncols), out_rb = dtype_row_bytes(to, ncols);
  if (in_rb < 0 || out_rb < 0) return Status::error("tensor '" + t.name + "': bad row length " + std::to_string(ncols));
  if ((uint64_t)out_rb * (uint64_t)nrows != nbytes)
    return Status::error("tensor '" + t.name + "': " + std::to_string(nbytes) + " bytes for " + std::to_string(nrows) +
                         " rows of " + std::to_string(out_rb));
  std::atomic<bool> failed{false};
  // Threads take runs of rows as they finish the last one: rows differ in cost (the scale
  // searches stop early on zero groups, importance changes nothing for the reference
  // roundings), and another program on the machine can hold up one thread, so fixed
  // shares would leave one thread idle while the other works through its half.
  const int64_t n_threads = std::clamp<int64_t>(threads, 1, std::max<int64_t>(1, nrows / 8));
  const int64_t run = std::max<int64_t>(1, nrows / (n_threads * 32));
  std::atomic<int64_t> next{0};
  auto work = [&] {
    std::vector<float> row((size_t)ncols);
    for (int64_t r0; !failed && (r0 = next.fetch_add(run)) < nrows;)
      for (int64_t r = r0; r < std::min(nrows, r0 + run) && !failed; ++r) {
        const float* imp = importance ? importance + (r / rows_per_matrix) * ncols : nullptr;
        if (!kernels::dequantize_row(t.type, t.data + r * in_rb, row.data(), ncols) ||
            !kernels::quantize_row(to, row.data(), out + r * out_rb, ncols, imp))
          failed = true;
      }
  };
  std::vector<std::thread> pool;
  for (int64_t k = 1; k < n_threads; ++k) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  if (failed) return Status::error("tensor '" + t.name + "': cannot convert " + dtype_name(t.type) + " to " + dtype_name(to));
  return Status();
}

}  // namespace

Result<Summary> quantize_model(const std::string& in_path, const std::string& out_path, const Options& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const Mix* mix = find_mix(opt.mix);
  if (!mix) {
    std::string all;
    for (const std::string& n : mix_names()) all += (all.empty() ? "" : ", ") + n;
    return Status::error("unknown quantization type '" + opt.mix + "' (one of: " + all + ")");
  }
  auto opened = gguf::File::open(in_path);
  if (!opened.ok()) return opened.status();
  const gguf::File& in = **opened;
  const ModelFacts facts = gather_facts(in, opt.imatrix != nullptr);
  const int threads = opt.threads > 0 ? opt.threads : (int)std::max(1u, std::thread::hardware_concurrency());

  // Plan every tensor's type (and find its importance row) first, so a refusal comes before
  // any work.
  struct Plan { DType to; bool fallback; const float* importance; };
  std::vector<Plan> plan;
  Position pos;
  for (const gguf::TensorInfo& t : in.tensors()) {
    Plan p{t.type, false, nullptr};
    if (quantizable(t.name, t.ne)) {
      p.to = choose_type(*mix, t.name, t.ne, facts, &pos, &p.fallback, opt.pure);
    }
    if (p.to != t.type) {
      if (dtype_traits(t.type)->quantized && !opt.allow_requantize)
        return Status::error("tensor '" + t.name + "' in " + in_path + " is already quantized (" + dtype_name(t.type) +
                             "); quantizing it again loses quality. Start from an F32/F16/BF16 model, or pass "
                             "--allow-requantize to do it anyway");
      if (!kernels::has_dequantizer(t.type))
        return Status::error("tensor '" + t.name + "': cannot decode type " + dtype_name(t.type));
      auto imp = importance_for(opt, t);
      if (!imp.ok()) return imp.status();
      p.importance = *imp;
    }
    plan.push_back(p);
  }

  gguf::Writer w(3, in.alignment());
  for (const gguf::KeyValue& kv : in.metadata()) {
    if (kv.key == "general.file_type" || kv.key == "general.quantization_version" || kv.key.rfind("quantize.", 0) == 0)
      continue;
    w.add(kv.key, kv.value);
  }
  w.add("general.quantization_version", gguf::Writer::u32(kQuantizationVersion));
  w.add("general.file_type", gguf::Writer::u32(mix->file_type));
  if (opt.imatrix) {
    w.add("quantize.imatrix.file", gguf::Writer::str(opt.imatrix_file));
    w.add("quantize.imatrix.entries_count", gguf::Writer::i32((int32_t)opt.imatrix->size()));
    w.add("quantize.imatrix.chunks_count", gguf::Writer::i32(opt.imatrix_chunks));
  }

  // The tensors are converted as the writer reaches them, one at a time.
  Summary s;
  s.file_type = mix->file_type;
  s.n_tensors = (int)in.tensors().size();
  for (size_t i = 0; i < in.tensors().size(); ++i) {
    const gguf::TensorInfo& t = in.tensors()[i];
    const Plan& p = plan[i];
    auto fill = [&t, &p, &s, &opt, i, threads](uint8_t* dst, size_t nbytes) -> Status {
      if (p.to == t.type) {
        if (nbytes != t.nbytes) return Status::error("tensor '" + t.name + "': size changed");
        if (nbytes) std::memcpy(dst, t.data, nbytes);
      } else {
        OSPREY_TRY(convert_tensor(t, p.to, p.importance, threads, dst, nbytes));
        s.n_imatrix += p.importance != nullptr;
        s.n_quantized += dtype_traits(p.to)->quantized;
      }
      s.n_fallback += p.fallback;
      s.bytes_in += (int64_t)t.nbytes, s.bytes_out += (int64_t)nbytes;
      ++s.type_counts[p.to];
      if (opt.on_tensor) {
        TensorDone done;
        done.index = (int)i, done.total = s.n_tensors, done.name = t.name, done.from = t.type, done.to = p.to;
        done.fallback = p.fallback;
        done.bytes_in = (int64_t)t.nbytes, done.bytes_out = (int64_t)nbytes;
        opt.on_tensor(done);
      }
      return Status();
    };
    OSPREY_TRY(w.add_tensor(t.name, p.to, t.ne, fill));
  }
  OSPREY_TRY(w.write(out_path));
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return s;
}

}  // namespace osprey::quantize
