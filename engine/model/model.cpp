#include "engine/model/model.h"
#include "engine/convert/convert.h"
#include "engine/model/tensor_names.h"

#include <cmath>
#include <unordered_map>

namespace osprey {

extern const Architecture kLlamaArch;
extern const Architecture kQwen2Arch;
extern const Architecture kGemma3Arch;
extern const Architecture kBertArch;

namespace {

const Architecture* const kArchitectures[] = {&kLlamaArch, &kQwen2Arch, &kGemma3Arch, &kBertArch};

std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

// Common hyperparameters every decoder architecture declares the same way.
Status load_common_hparams(const gguf::File& f, HParams* hp) {
  auto get = [&](const char* suffix, int64_t def, int64_t* out) -> Status {
    auto r = f.get_int(arch_key(*hp, suffix), def);
    if (!r) return r.status();
    *out = r.value();
    return Status();
  };
  auto getf = [&](const char* suffix, double def, float* out) -> Status {
    auto r = f.get_float(arch_key(*hp, suffix), def);
    if (!r) return r.status();
    *out = (float)r.value();
    return Status();
  };
  OSPREY_TRY(get("embedding_length", 0, &hp->n_embd));
  OSPREY_TRY(get("block_count", 0, &hp->n_layer));
  OSPREY_TRY(get("attention.head_count", 0, &hp->n_head));
  OSPREY_TRY(get("attention.head_count_kv", hp->n_head, &hp->n_head_kv));
  OSPREY_TRY(get("feed_forward_length", 0, &hp->n_ff));
  OSPREY_TRY(get("context_length", 2048, &hp->n_ctx_train));
  if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0 || hp->n_ff <= 0 ||
      hp->n_head % hp->n_head_kv != 0 || hp->n_layer > 4096 || hp->n_embd > (1 << 20) || hp->n_ctx_train <= 0)
    return Status::error("bad hyperparameters: n_embd " + std::to_string(hp->n_embd) + ", n_layer " +
                         std::to_string(hp->n_layer) + ", n_head " + std::to_string(hp->n_head) + ", n_head_kv " +
                         std::to_string(hp->n_head_kv) + ", n_ff " + std::to_string(hp->n_ff));
  OSPREY_TRY(get("attention.key_length", hp->n_embd / hp->n_head, &hp->head_dim_k));
  OSPREY_TRY(get("attention.value_length", hp->head_dim_k, &hp->head_dim_v));
  OSPREY_TRY(get("rope.dimension_count", hp->head_dim_k, &hp->n_rot));
  OSPREY_TRY(getf("attention.layer_norm_rms_epsilon", 1e-5, &hp->rms_eps));
  OSPREY_TRY(getf("rope.freq_base", 10000.0, &hp->rope_base));
  float factor = 1.f;
  OSPREY_TRY(getf("rope.scaling.factor", 1.0, &factor));
  auto type = f.get_string(arch_key(*hp, "rope.scaling.type"), "none");
  if (!type) return type.status();
  if (type.value() == "linear" && factor > 0) hp->rope_scale = 1.f / factor;
  else if (type.value() != "none" && type.value() != "linear")
    return Status::error("rope scaling type '" + type.value() + "' is not supported yet");
  hp->layer_is_swa.assign((size_t)hp->n_layer, false);
  if (hp->head_dim_k <= 0 || hp->head_dim_v <= 0 || hp->head_dim_k > 4096 || hp->head_dim_v > 4096 ||
      hp->n_rot <= 0 || hp->n_rot > hp->head_dim_k || hp->n_rot % 2 != 0)
    return Status::error("bad head dimensions: key " + std::to_string(hp->head_dim_k) + ", value " +
                         std::to_string(hp->head_dim_v) + ", rope " + std::to_string(hp->n_rot));
  hp->rope_base_swa = hp->rope_base;
  hp->rope_scale_swa = hp->rope_scale;
  int64_t pooling = -1;
  OSPREY_TRY(get("pooling_type", -1, &pooling));
  if (pooling > (int64_t)Pooling::LAST) return Status::error("pooling type " + std::to_string(pooling) + " is not supported");
  if (pooling >= 0) hp->pooling = pooling == 0 ? Pooling::LAST : (Pooling)pooling;
  return Status();
}

}  // namespace

std::string arch_key(const HParams& hp, const char* suffix) { return hp.arch + "." + suffix; }

const Architecture* find_architecture(const std::string& name) {
  for (const Architecture* a : kArchitectures)
    if (name == a->name) return a;
  return nullptr;
}

std::vector<std::string> architecture_names() {
  std::vector<std::string> v;
  for (const Architecture* a : kArchitectures) v.push_back(a->name);
  return v;
}

Result<const ir::Tensor*> Model::tensor(const std::string& name, std::vector<int64_t> shape, bool optional) const {
  for (const ir::Tensor& t : tensors_) {
    if (t.name != name) continue;
    std::vector<int64_t> have(t.ne.begin(), t.ne.end());
    while (have.size() > shape.size() && have.back() == 1) have.pop_back();
    if (have != shape)
      return Status::error("tensor '" + name + "' has shape " + shape_str(have) + ", expected " + shape_str(shape));
    return &t;
  }
  if (optional) return (const ir::Tensor*)nullptr;
  return Status::error("tensor '" + name + "' is missing");
}

Result<std::unique_ptr<Model>> Model::load(const std::string& path, Backend& backend) {
  // A Hugging Face checkpoint folder loads through its cached GGUF conversion.
  if (convert::is_checkpoint_dir(path)) {
    auto gguf_path = convert::cached_conversion(path);
    if (!gguf_path) return gguf_path.status().with_context("converting " + path);
    return load(gguf_path.value(), backend);
  }
  auto file = gguf::File::open(path);
  if (!file) return file.status();
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(file.value());
  m->backend_ = &backend;
  const gguf::File& f = *m->file_;
  auto ctx = [&](const Status& s) { return s.with_context(path); };

  auto arch = f.get_string("general.architecture");
  if (!arch) return ctx(arch.status());
  if (arch.value().empty()) return ctx(Status::error("general.architecture is missing"));
  m->arch_ = find_architecture(arch.value());
  if (!m->arch_) {
    std::string known;
    for (const auto& n : architecture_names()) known += (known.empty() ? "" : ", ") + n;
    return ctx(Status::error("unknown architecture '" + arch.value() + "' (supported: " + known + ")"));
  }
  m->hp_.arch = arch.value();
  if (Status s = load_common_hparams(f, &m->hp_); !s.ok()) return ctx(s);
  if (Status s = m->arch_->load_hparams(f, &m->hp_); !s.ok()) return ctx(s);

  auto tok = Tokenizer::from_gguf(f);
  if (!tok) return ctx(tok.status().with_context("tokenizer"));
  m->tok_ = std::move(tok.value());

  // Weights: the whole data section as one buffer, zero-copy where the backend can read
  // host memory, else one upload.
  const size_t data_bytes = f.size() - f.data_offset();
  const uint8_t* data = f.bytes() + f.data_offset();
  auto buf = backend.map_host(data, data_bytes);
  if (!buf) {
    buf = backend.alloc(data_bytes);
    if (!buf) return ctx(buf.status().with_context("allocating weights"));
    if (Status s = backend.upload(*buf.value(), 0, data, data_bytes); !s.ok()) return ctx(s);
  }
  m->weights_buffer_ = std::move(buf.value());
  for (const gguf::TensorInfo& ti : f.tensors()) {
    ir::Tensor t;
    t.name = ti.name;
    t.dtype = ti.type;
    for (size_t i = 0; i < ti.ne.size() && i < (size_t)ir::kMaxDims; ++i) t.ne[i] = ti.ne[i];
    t.buffer = m->weights_buffer_.get();
    t.offset = ti.offset;
    m->tensors_.push_back(std::move(t));
  }
  const ir::Tensor* embd = nullptr;
  for (const ir::Tensor& t : m->tensors_)
    if (t.name == tn::gguf(tn::T::TOKEN_EMBD)) embd = &t;
  if (!embd) return ctx(Status::error("tensor '" + tn::gguf(tn::T::TOKEN_EMBD) + "' is missing"));
  m->hp_.n_vocab = embd->ne[1];
  if (m->hp_.n_vocab != m->tok_->n_vocab())
    return ctx(Status::error("vocabulary has " + std::to_string(m->tok_->n_vocab()) + " tokens but token_embd has " +
                             std::to_string(m->hp_.n_vocab) + " rows"));
  if (Status s = m->arch_->load_weights(*m, &m->w_); !s.ok()) return ctx(s);
  return m;
}

}  // namespace osprey
