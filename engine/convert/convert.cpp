// Checkpoint -> GGUF. Which keys, names, types and transforms follow llama.cpp's
// convert_hf_to_gguf.py (read for the facts): hyperparameters from config.json under
// "<arch>.*", 1-D tensors and norms in f32, Q/K rows of llama permuted for its RoPE layout,
// Gemma's norms stored as 1 + w, BERT's vocabulary in phantom-space form.
#include "engine/convert/convert.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "engine/model/tensor_names.h"
#include "formats/gguf.h"
#include "formats/hf_tokenizer.h"
#include "formats/safetensors.h"
#include "kernels/base/fp16.h"
#include "kernels/quantize.h"

namespace osprey::convert {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using gguf::Writer;

// Bumped whenever the converter's output changes, so stale cached conversions are redone.
constexpr int kConverterVersion = 1;

struct HfArch {
  const char* hf;
  const char* arch;
  bool bare;  // a headless "...Model" class: tensor names lack the "model." prefix
};
constexpr HfArch kHfArchs[] = {
    {"LlamaForCausalLM", "llama", false},        {"LlamaModel", "llama", true},
    {"MistralForCausalLM", "llama", false},      {"Qwen2ForCausalLM", "qwen2", false},
    {"Qwen2Model", "qwen2", true},               {"Gemma3ForCausalLM", "gemma3", false},
    {"Gemma3ForConditionalGeneration", "gemma3", false}, {"BertModel", "bert", false},
    {"BertForMaskedLM", "bert", false},
};

struct Checkpoint {
  std::string dir;
  json config;  // with text_config merged into the top level
  const HfArch* hf = nullptr;
};

Result<Checkpoint> open_config(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::error(dir + ": not a folder");
  auto cfg = hf::read_json((fs::path(dir) / "config.json").string());
  if (!cfg) return cfg.status();
  if (!cfg->is_object()) return Status::error(dir + "/config.json: not a JSON object");
  Checkpoint c;
  c.dir = dir;
  c.config = cfg.value();
  if (c.config.contains("text_config") && c.config["text_config"].is_object())
    for (auto it = c.config["text_config"].begin(); it != c.config["text_config"].end(); ++it)
      c.config[it.key()] = it.value();
  std::string name;
  if (c.config.contains("architectures") && c.config["architectures"].is_array() &&
      !c.config["architectures"].empty() && c.config["architectures"][0].is_string())
    name = c.config["architectures"][0].get<std::string>();
  if (name.empty()) return Status::error(dir + "/config.json: no \"architectures\" entry");
  for (const HfArch& a : kHfArchs)
    if (name == a.hf) c.hf = &a;
  if (!c.hf) {
    std::string known;
    for (const HfArch& a : kHfArchs) known += (known.empty() ? "" : ", ") + std::string(a.hf);
    return Status::error(dir + ": architecture " + name + " cannot be converted (supported: " + known + ")");
  }
  return c;
}

// config.json values: the first of several names that is present (models disagree on names).
std::optional<int64_t> cfg_int(const json& c, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = c.find(k);
    if (it != c.end() && it->is_number_integer()) return it->get<int64_t>();
  }
  return std::nullopt;
}

std::optional<double> cfg_float(const json& c, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = c.find(k);
    if (it != c.end() && it->is_number()) return it->get<double>();
  }
  return std::nullopt;
}

Result<int64_t> require_int(const Checkpoint& c, std::initializer_list<const char*> keys, int64_t max) {
  auto v = cfg_int(c.config, keys);
  if (!v) return Status::error(c.dir + "/config.json: " + *keys.begin() + " is missing");
  if (*v <= 0 || *v > max) return Status::error(c.dir + "/config.json: " + *keys.begin() + " = " + std::to_string(*v) + " is out of range");
  return *v;
}

struct Dims {
  int64_t n_layer = 0, n_embd = 0, n_head = 0, n_head_kv = 0, n_vocab = 0;
};

// "/a/b/SmolLM2/" -> "SmolLM2": names the model and its cache file.
std::string folder_name(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  const std::string s = p.filename().string();
  return s.empty() || s == "." ? std::string("model") : s;
}

// Hyperparameters as llama.cpp's TextModel.set_gguf_parameters and the per-model classes write them.
Status write_hparams(const Checkpoint& c, const std::string& arch, Writer* w, Dims* d) {
  const json& h = c.config;
  auto key = [&](const char* suffix) { return arch + "." + suffix; };
  const bool gemma = arch == "gemma3";
  auto n_layer = require_int(c, {"num_hidden_layers", "n_layers", "n_layer", "num_layers"}, 4096);
  if (!n_layer) return n_layer.status();
  auto n_embd = require_int(c, {"hidden_size", "n_embd", "dim"}, 1 << 20);
  if (!n_embd) return n_embd.status();
  auto n_ff = require_int(c, {"intermediate_size", "n_inner", "hidden_dim"}, 1 << 24);
  if (!n_ff) return n_ff.status();
  std::optional<int64_t> n_head = cfg_int(h, {"num_attention_heads", "n_head", "n_heads"});
  if (!n_head && gemma) n_head = 8;
  if (!n_head || *n_head <= 0 || *n_head > 4096) return Status::error(c.dir + "/config.json: num_attention_heads is missing or out of range");
  std::optional<int64_t> n_head_kv = cfg_int(h, {"num_key_value_heads", "n_kv_heads"});
  if (!n_head_kv && gemma) n_head_kv = 4;
  if (n_head_kv && (*n_head_kv <= 0 || *n_head % *n_head_kv != 0))
    return Status::error(c.dir + "/config.json: num_key_value_heads = " + std::to_string(*n_head_kv) +
                         " does not divide num_attention_heads = " + std::to_string(*n_head));
  d->n_layer = n_layer.value();
  d->n_embd = n_embd.value();
  d->n_head = *n_head;
  d->n_head_kv = n_head_kv.value_or(*n_head);

  w->add(key("block_count"), Writer::u32((uint32_t)d->n_layer));
  std::optional<int64_t> n_ctx = cfg_int(h, {"max_position_embeddings", "n_ctx", "n_positions", "max_length"});
  if (!n_ctx && gemma) n_ctx = 131072;
  if (n_ctx) w->add(key("context_length"), Writer::u32((uint32_t)*n_ctx));
  w->add(key("embedding_length"), Writer::u32((uint32_t)d->n_embd));
  w->add(key("feed_forward_length"), Writer::u32((uint32_t)n_ff.value()));
  w->add(key("attention.head_count"), Writer::u32((uint32_t)d->n_head));
  if (n_head_kv) w->add(key("attention.head_count_kv"), Writer::u32((uint32_t)*n_head_kv));
  if (h.value("is_causal", true) == false) w->add(key("attention.causal"), Writer::boolean(false));

  // RoPE scaling: only "linear" has a GGUF form Osprey runs; others would silently change outputs.
  const json* rope = nullptr;
  for (const char* k : {"rope_parameters", "rope_scaling"})
    if (h.contains(k) && h[k].is_object()) rope = &h[k];
  if (rope && rope->contains("full_attention") && (*rope)["full_attention"].is_object()) rope = &(*rope)["full_attention"];
  if (rope) {
    const std::string type = rope->value("rope_type", rope->value("type", std::string("default")));
    if (type == "linear" && rope->contains("factor") && (*rope)["factor"].is_number()) {
      w->add(key("rope.scaling.type"), Writer::str("linear"));
      w->add(key("rope.scaling.factor"), Writer::f32((*rope)["factor"].get<float>()));
    } else if (type != "default") {
      return Status::error(c.dir + "/config.json: RoPE scaling type '" + type + "' is not supported by the converter");
    }
  }
  std::optional<double> theta = cfg_float(h, {"rope_theta", "rotary_emb_base"});
  if (!theta && rope && rope->contains("rope_theta") && (*rope)["rope_theta"].is_number())
    theta = (*rope)["rope_theta"].get<double>();
  if (!theta && gemma) theta = 1000000.0;
  if (theta) w->add(key("rope.freq_base"), Writer::f32((float)*theta));
  if (auto local = cfg_float(h, {"rope_local_base_freq", "local_rope_theta"}))
    w->add(key("rope.freq_base_swa"), Writer::f32((float)*local));
  std::optional<double> rms = cfg_float(h, {"rms_norm_eps", "norm_eps"});
  if (!rms && gemma) rms = 1e-6;
  if (rms) w->add(key("attention.layer_norm_rms_epsilon"), Writer::f32((float)*rms));
  if (auto ln = cfg_float(h, {"layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"}))
    w->add(key("attention.layer_norm_epsilon"), Writer::f32((float)*ln));
  std::optional<int64_t> head_dim = cfg_int(h, {"head_dim"});
  if (!head_dim && gemma) head_dim = 256;
  // transformers' LlamaConfig always carries head_dim (default n_embd / n_head), and llama.cpp
  // writes what the config object holds.
  if (!head_dim && arch == "llama") head_dim = d->n_embd / d->n_head;
  if (head_dim) {
    if (*head_dim <= 0 || *head_dim > 4096) return Status::error(c.dir + "/config.json: head_dim out of range");
    w->add(key("attention.key_length"), Writer::u32((uint32_t)*head_dim));
    w->add(key("attention.value_length"), Writer::u32((uint32_t)*head_dim));
  }

  if (arch == "llama") {
    const int64_t rope_dim = head_dim.value_or(d->n_embd / d->n_head);
    w->add(key("rope.dimension_count"), Writer::u32((uint32_t)rope_dim));
  }
  if (gemma) {
    if (h.contains("attn_logit_softcapping") && !h["attn_logit_softcapping"].is_null())
      return Status::error(c.dir + "/config.json: attn_logit_softcapping is set; Gemma 3 has none");
    if (auto cap = cfg_float(h, {"final_logit_softcapping"}); cap && *cap != 0)
      w->add(key("final_logit_softcapping"), Writer::f32((float)*cap));
    if (h.value("sliding_window_pattern", 6) != 1) {
      auto window = cfg_int(h, {"sliding_window"});
      if (!window) return Status::error(c.dir + "/config.json: sliding_window is missing");
      w->add(key("attention.sliding_window"), Writer::u32((uint32_t)*window));
    }
    // GGUF leaves these implicit; llama.cpp (and Osprey) derive them, so refuse a checkpoint that
    // disagrees rather than convert it into a model that computes something else.
    if (h.value("sliding_window_pattern", 6) != 6)
      return Status::error(c.dir + "/config.json: sliding_window_pattern must be 6 for GGUF gemma3");
    const int64_t hd = head_dim.value_or(256);
    const double implied = d->n_layer == 62 ? (double)d->n_embd / (double)d->n_head : (double)hd;
    if (auto q = cfg_float(h, {"query_pre_attn_scalar"}); q && std::fabs(*q - implied) > 1e-6)
      return Status::error(c.dir + "/config.json: query_pre_attn_scalar " + std::to_string(*q) +
                           " differs from the " + std::to_string(implied) + " GGUF gemma3 implies");
  }
  if (arch == "bert") w->add(key("attention.causal"), Writer::boolean(false));
  return Status();
}

// sentence-transformers pooling (modules.json -> <path>/config.json), as llama.cpp reads it.
Status write_pooling(const Checkpoint& c, const std::string& arch, Writer* w) {
  std::error_code ec;
  const fs::path modules = fs::path(c.dir) / "modules.json";
  if (!fs::is_regular_file(modules, ec)) return Status();
  auto m = hf::read_json(modules.string());
  if (!m) return m.status();
  std::string path;
  if (m->is_array())
    for (const json& mod : m.value())
      if (mod.is_object() && mod.value("type", "").ends_with("Pooling") && mod.contains("path") && mod["path"].is_string()) {
        path = mod["path"].get<std::string>();
        break;
      }
  if (path.empty()) return Status();
  if (path.find("..") != std::string::npos || path.starts_with("/"))
    return Status::error(modules.string() + ": pooling path '" + path + "' leaves the checkpoint folder");
  auto p = hf::read_json((fs::path(c.dir) / path / "config.json").string());
  if (!p) return p.status();
  uint32_t type;
  if (p->value("pooling_mode_mean_tokens", false)) type = 1;
  else if (p->value("pooling_mode_cls_token", false)) type = 2;
  else if (p->value("pooling_mode_lasttoken", false)) type = 3;
  else {
    const std::string mode = p->value("pooling_mode", "");
    if (mode == "mean") type = 1;
    else if (mode == "cls") type = 2;
    else if (mode == "lasttoken") type = 3;
    else return Status::error(c.dir + "/" + path + "/config.json: only mean, CLS and last-token pooling are supported");
  }
  w->add(arch + ".pooling_type", Writer::u32(type));
  return Status();
}

Result<hf::Vocab> write_vocab(const Checkpoint& c, const std::string& arch, Writer* w) {
  std::error_code ec;
  const bool has_spm = fs::is_regular_file(fs::path(c.dir) / "tokenizer.model", ec);
  const int64_t vocab_size = cfg_int(c.config, {"vocab_size"}).value_or(0);
  hf::VocabKind kind = hf::VocabKind::BPE;
  if (arch == "bert") kind = hf::VocabKind::WORDPIECE;
  else if (has_spm && arch != "qwen2" ) kind = hf::VocabKind::SENTENCEPIECE;
  else if (arch == "gemma3" && !has_spm) return Status::error(c.dir + ": gemma3 needs tokenizer.model");
  auto vr = hf::load_vocab(c.dir, kind, vocab_size);
  if (!vr) return vr.status();
  hf::Vocab& v = vr.value();
  if (arch == "bert") {
    // llama.cpp names the WordPiece pre-tokenizer by hashing a test tokenization; uncased BERT
    // vocabularies come out as "jina-v2-en". Osprey's WordPiece ignores the name.
    if (v.normalizer_lowercase.value_or(false)) v.pre = "jina-v2-en";
    w->add("tokenizer.ggml.token_type_count", Writer::u32((uint32_t)cfg_int(c.config, {"type_vocab_size"}).value_or(1)));
  }
  w->add("tokenizer.ggml.model", Writer::str(v.model));
  w->add("tokenizer.ggml.pre", Writer::str(v.pre));
  w->add("tokenizer.ggml.tokens", Writer::str_array(v.tokens));
  if (!v.scores.empty()) {
    gguf::Value s;
    s.type = gguf::ValueType::ARRAY;
    s.elem_type = gguf::ValueType::FLOAT32;
    for (float f : v.scores) s.array.push_back(Writer::f32(f));
    w->add("tokenizer.ggml.scores", std::move(s));
  }
  gguf::Value types;
  types.type = gguf::ValueType::ARRAY;
  types.elem_type = gguf::ValueType::INT32;
  for (int32_t t : v.types) types.array.push_back(Writer::i32(t));
  w->add("tokenizer.ggml.token_type", std::move(types));
  if (!v.merges.empty()) w->add("tokenizer.ggml.merges", Writer::str_array(v.merges));
  static const std::pair<const char*, const char*> kIdKeys[] = {
      {"bos", "tokenizer.ggml.bos_token_id"},     {"eos", "tokenizer.ggml.eos_token_id"},
      {"unk", "tokenizer.ggml.unknown_token_id"}, {"sep", "tokenizer.ggml.seperator_token_id"},
      {"pad", "tokenizer.ggml.padding_token_id"}, {"mask", "tokenizer.ggml.mask_token_id"},
      {"eot", "tokenizer.ggml.eot_token_id"},
  };
  for (const auto& [typ, k] : kIdKeys)
    if (auto it = v.special_ids.find(typ); it != v.special_ids.end()) w->add(k, Writer::u32((uint32_t)it->second));
  // gguf-py has no handler for cls / add_cls / add_pad / add_unk / add_mask: skipped there too.
  for (const char* typ : {"bos", "eos", "sep", "eot"})
    if (auto it = v.add_special.find(typ); it != v.add_special.end())
      w->add(std::string("tokenizer.ggml.add_") + typ + "_token", Writer::boolean(it->second));
  // llama.cpp's LlamaModel: 49152-token vocabularies (Granite, SmolLM) do not add BOS.
  if (arch == "llama" && vocab_size == 49152 && !v.add_special.count("bos"))
    w->add("tokenizer.ggml.add_bos_token", Writer::boolean(false));
  // llama.cpp's LlamaModel copies tokenizer_config.json's add_prefix_space; Gemma 3 never adds one.
  if (arch == "llama") {
    auto cfg = hf::read_json((fs::path(c.dir) / "tokenizer_config.json").string());
    if (cfg && cfg->is_object() && cfg->contains("add_prefix_space") && (*cfg)["add_prefix_space"].is_boolean())
      w->add("tokenizer.ggml.add_space_prefix", Writer::boolean((*cfg)["add_prefix_space"].get<bool>()));
  }
  if (arch == "gemma3") w->add("tokenizer.ggml.add_space_prefix", Writer::boolean(false));
  if (v.chat_template) w->add("tokenizer.chat_template", Writer::str(*v.chat_template));
  if (v.normalizer_lowercase) w->add("tokenizer.ggml.normalizer.lowercase", Writer::boolean(*v.normalizer_lowercase));
  if (v.normalizer_strip_accents)
    w->add("tokenizer.ggml.normalizer.strip_accents", Writer::boolean(*v.normalizer_strip_accents));
  return vr;
}

// name matches pattern (which may hold "{L}", a layer number) exactly.
bool match_pattern(const std::string& pattern, const std::string& name, int64_t* layer) {
  const size_t l = pattern.find("{L}");
  if (l == std::string::npos) return pattern == name;
  const std::string pre = pattern.substr(0, l), post = pattern.substr(l + 3);
  if (name.size() <= pre.size() + post.size() || name.compare(0, pre.size(), pre) != 0 ||
      name.compare(name.size() - post.size(), post.size(), post) != 0)
    return false;
  const std::string digits = name.substr(pre.size(), name.size() - pre.size() - post.size());
  if (digits.empty() || digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  *layer = std::stoll(digits);
  return true;
}

bool ignored(const tn::ArchTensors& a, const std::string& name) {
  int64_t layer;
  for (const std::string& p : a.ignore) {
    if (p.ends_with(".*") ? name.starts_with(p.substr(0, p.size() - 1)) : match_pattern(p, name, &layer)) return true;
    if (!p.ends_with(".*") && (match_pattern(p + ".weight", name, &layer) || match_pattern(p + ".bias", name, &layer)))
      return true;
  }
  return false;
}

// llama.cpp's LlamaModel.permute: within each head, rows [0, d/2) and [d/2, d) interleave, so
// that the GGUF rotation of adjacent pairs equals the checkpoint's rotation of halves.
void permute_heads(std::vector<float>& x, int64_t rows, int64_t cols, int64_t n_head) {
  const int64_t hd = rows / n_head, half = hd / 2;
  std::vector<float> out(x.size());
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t k = 0; k < half; ++k)
        std::memcpy(&out[(size_t)((h * hd + 2 * k + j) * cols)], &x[(size_t)((h * hd + j * half + k) * cols)],
                    (size_t)cols * sizeof(float));
  x.swap(out);
}

DType pick_type(OutType want, tn::T t, const std::string& gguf_name, const std::vector<int64_t>& ne) {
  // As llama.cpp: 1-D tensors, norms, position/type embeddings and non-weights stay f32.
  if (ne.size() <= 1 || gguf_name.ends_with("_norm.weight") || t == tn::T::POS_EMBD || t == tn::T::TOKEN_TYPES ||
      !gguf_name.ends_with(".weight"))
    return DType::F32;
  switch (want) {
    case OutType::F16: return DType::F16;
    case OutType::BF16: return DType::BF16;
    case OutType::Q8_0: return ne[0] % 32 == 0 ? DType::Q8_0 : DType::F16;  // rows must be whole blocks
    default: return DType::F32;
  }
}

// x as `type` into out (the nbytes the writer's shape check gave for x's rows of ne0).
Status encode(const std::vector<float>& x, DType type, int64_t ne0, uint8_t* out, size_t nbytes) {
  const int64_t rows = ne0 > 0 ? (int64_t)x.size() / ne0 : 0, row_bytes = dtype_row_bytes(type, ne0);
  if (row_bytes < 0 || (uint64_t)rows * (uint64_t)row_bytes != nbytes || rows * ne0 != (int64_t)x.size())
    return Status::error("convert: " + std::to_string(x.size()) + " values do not fill " + std::to_string(nbytes) +
                         " bytes of " + dtype_name(type));
  switch (type) {
    case DType::F32:
      if (nbytes) std::memcpy(out, x.data(), nbytes);
      break;
    case DType::F16:
    case DType::BF16:
      for (size_t i = 0; i < x.size(); ++i) {
        const uint16_t h = type == DType::F16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      break;
    default:  // Q8_0
      for (int64_t r = 0; r < rows; ++r) kernels::quantize_row_q8_0(&x[(size_t)(r * ne0)], out + r * row_bytes, ne0);
  }
  return Status();
}

uint32_t file_type(OutType t) {
  switch (t) {
    case OutType::F16: return 1;
    case OutType::Q8_0: return 7;
    case OutType::BF16: return 32;
    default: return 0;
  }
}

}  // namespace

Result<OutType> parse_outtype(const std::string& s) {
  for (OutType t : {OutType::AUTO, OutType::F32, OutType::F16, OutType::BF16, OutType::Q8_0})
    if (s == outtype_name(t)) return t;
  return Status::error("unknown output type '" + s + "' (auto, f32, f16, bf16, q8_0)");
}

const char* outtype_name(OutType t) {
  switch (t) {
    case OutType::AUTO: return "auto";
    case OutType::F32: return "f32";
    case OutType::F16: return "f16";
    case OutType::BF16: return "bf16";
    case OutType::Q8_0: return "q8_0";
  }
  return "?";
}

Result<std::string> checkpoint_arch(const std::string& dir) {
  auto c = open_config(dir);
  if (!c) return c.status();
  return std::string(c->hf->arch);
}

bool is_checkpoint_dir(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec) || !fs::is_regular_file(fs::path(path) / "config.json", ec)) return false;
  for (const fs::directory_entry& e : fs::directory_iterator(path, ec))
    if (e.path().extension() == ".safetensors") return true;
  return false;
}

Status convert_checkpoint(const std::string& dir, const std::string& out, const Options& opt) {
  auto cr = open_config(dir);
  if (!cr) return cr.status();
  const Checkpoint& c = cr.value();
  const std::string arch = c.hf->arch;
  const tn::ArchTensors* table = tn::arch_tensors(arch);
  if (!table) return Status::error("no tensor table for architecture " + arch);
  // config.json and the tokenizer are checked before the (large) weights are opened.
  Writer w;
  w.add("general.architecture", Writer::str(arch));
  w.add("general.type", Writer::str("model"));
  w.add("general.name", Writer::str(folder_name(dir)));
  Dims d;
  OSPREY_TRY(write_hparams(c, arch, &w, &d));
  auto weights = safetensors::Checkpoint::open(dir);
  if (!weights) return weights.status();

  OutType outtype = opt.outtype;
  if (outtype == OutType::AUTO) {
    outtype = OutType::F16;
    for (const safetensors::TensorInfo* t : weights.value()->tensors())
      if (t->shape.size() == 2 && safetensors::dtype_is_float(t->dtype)) {
        outtype = t->dtype == safetensors::DType::F32 || t->dtype == safetensors::DType::F64 ? OutType::F32
                  : t->dtype == safetensors::DType::F16                                    ? OutType::F16
                                                                                           : OutType::BF16;
        break;
      }
  }

  w.add("general.file_type", Writer::u32(file_type(outtype)));
  if (arch == "qwen2" || arch == "bert") OSPREY_TRY(write_pooling(c, arch, &w));
  w.add("general.quantization_version", Writer::u32(2));
  auto vocab = write_vocab(c, arch, &w);
  if (!vocab) return vocab.status();
  if (arch == "llama") w.add("llama.vocab_size", Writer::u32((uint32_t)vocab->tokens.size()));
  d.n_vocab = (int64_t)vocab->tokens.size();

  const auto& list = weights.value()->tensors();
  std::set<std::string> written;
  size_t n_out = 0;  // tensors written
  for (const safetensors::TensorInfo* t : list) {
    std::string name = t->name;
    for (const std::string& p : table->strip_prefixes)
      if (name.starts_with(p)) name = name.substr(p.size());
    if (name.ends_with(".gamma")) name = name.substr(0, name.size() - 6) + ".weight";
    if (name.ends_with(".beta")) name = name.substr(0, name.size() - 5) + ".bias";
    if (c.hf->bare && !name.starts_with("model.") && name != "lm_head.weight") name = "model." + name;
    if (ignored(*table, name)) continue;
    const size_t dot = name.rfind('.');
    const std::string base = dot == std::string::npos ? name : name.substr(0, dot);
    const std::string suffix = dot == std::string::npos ? "" : name.substr(dot + 1);
    const tn::HfTensor* hit = nullptr;
    int64_t layer = -1;
    if (suffix == "weight" || suffix == "bias")
      for (const tn::HfTensor& h : table->tensors)
        if (match_pattern(h.hf, base, &layer)) {
          hit = &h;
          break;
        }
    if (!hit) return Status::error(dir + ": checkpoint tensor '" + t->name + "' has no GGUF name for " + arch);
    if (tn::per_layer(hit->t) && (layer < 0 || layer >= d.n_layer))
      return Status::error(dir + ": tensor '" + t->name + "' is for layer " + std::to_string(layer) + " of " +
                           std::to_string(d.n_layer));
    const std::string gname = tn::gguf(hit->t, layer, suffix);
    if (!written.insert(gname).second) return Status::error(dir + ": two checkpoint tensors map to " + gname);
    if (!safetensors::dtype_is_float(t->dtype))
      return Status::error(dir + ": tensor '" + t->name + "' has dtype " + safetensors::dtype_name(t->dtype) +
                           "; only float tensors can be converted");
    if (t->shape.empty() || t->shape.size() > 4)
      return Status::error(dir + ": tensor '" + t->name + "' has " + std::to_string(t->shape.size()) + " dimensions");
    std::vector<int64_t> shape = t->shape;  // outermost first
    const int64_t rows = shape[0], cols = shape.size() > 1 ? t->n_elements() / std::max<int64_t>(rows, 1) : 1;
    int64_t heads = 0;
    if (hit->transform & (tn::PERMUTE_HEADS_Q | tn::PERMUTE_HEADS_K)) {
      heads = (hit->transform & tn::PERMUTE_HEADS_Q) ? d.n_head : d.n_head_kv;
      if (heads <= 0 || rows % heads != 0 || (rows / heads) % 2 != 0)
        return Status::error(dir + ": tensor '" + t->name + "' has " + std::to_string(rows) + " rows, not " +
                             std::to_string(heads) + " heads of an even size");
    }
    // Gemma pads the embedding past the vocabulary; llama.cpp drops the extra rows.
    if (arch == "gemma3" && hit->t == tn::T::TOKEN_EMBD && rows > d.n_vocab) shape[0] = d.n_vocab;
    std::vector<int64_t> ne(shape.rbegin(), shape.rend());
    const DType type = pick_type(outtype, hit->t, gname, ne);
    // The data is read and encoded when the writer reaches this tensor: one tensor in memory at a time.
    const bool add_one = hit->transform & tn::ADD_ONE;
    const int64_t kept = shape[0] * cols;
    auto fill = [t, heads, rows, cols, add_one, kept, type, ne0 = ne[0], gname, k = ++n_out, &n_out,
                 &opt](uint8_t* dst, size_t nbytes) -> Status {
      std::vector<float> x((size_t)t->n_elements());
      OSPREY_TRY(safetensors::to_f32(*t, x.data()));
      if (heads > 0) permute_heads(x, rows, cols, heads);
      if (add_one)
        for (float& f : x) f += 1.f;
      x.resize((size_t)kept);
      OSPREY_TRY(encode(x, type, ne0, dst, nbytes));
      if (opt.progress) opt.progress(k, n_out, gname);  // n_out is final by now
      return Status();
    };
    OSPREY_TRY(w.add_tensor(gname, type, ne, fill));
  }
  if (!written.count(tn::gguf(tn::T::TOKEN_EMBD)))
    return Status::error(dir + ": the checkpoint has no token embedding (" + table->tensors[0].hf + ".weight)");
  return w.write(out);
}

Result<std::string> cached_conversion(const std::string& dir, const Options& opt) {
  // Key: the converter version, the output type and every file's name, size and mtime.
  std::error_code ec;
  std::vector<fs::path> files;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file()) files.push_back(e.path());
  if (ec) return Status::error(dir + ": cannot list: " + ec.message());
  std::sort(files.begin(), files.end());
  std::string key = std::to_string(kConverterVersion) + "|" + outtype_name(opt.outtype);
  for (const fs::path& p : files) {
    struct stat st;
    if (::stat(p.c_str(), &st) != 0) continue;
    key += "|" + fs::relative(p, dir, ec).string() + ":" + std::to_string((long long)st.st_size) + ":" +
           std::to_string((long long)st.st_mtim.tv_sec) + "." + std::to_string((long long)st.st_mtim.tv_nsec);
  }
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char ch : key) h = (h ^ ch) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);

  std::string cache;
  if (const char* e = std::getenv("OSPREY_CACHE"); e && *e) cache = e;
  else if (const char* home = std::getenv("HOME"); home && *home) cache = std::string(home) + "/.cache/osprey";
  else return Status::error("cannot place the conversion cache: neither OSPREY_CACHE nor HOME is set");
  const fs::path folder = fs::path(cache) / "converted";
  fs::create_directories(folder, ec);
  if (ec) return Status::error(folder.string() + ": cannot create: " + ec.message());
  const std::string out = (folder / (folder_name(dir) + "-" + hex + ".gguf")).string();
  if (fs::is_regular_file(out, ec)) return out;
  OSPREY_TRY(convert_checkpoint(dir, out, opt));
  return out;
}

}  // namespace osprey::convert
