// Per-tensor type choice for the quantization mixes. See tensor_types.h; the rules are
// llama.cpp's (src/llama-quant.cpp, llama_tensor_get_type) for dense models, restated.
#include "engine/quantize/tensor_types.h"

#include <cctype>

namespace osprey::quantize {
namespace {

// llama.cpp's LLAMA_FTYPE_* numbering.
constexpr Mix kMixes[] = {
    {"F32", 0, DType::F32},        {"F16", 1, DType::F16},        {"BF16", 32, DType::BF16},
    {"Q4_0", 2, DType::Q4_0},      {"Q4_1", 3, DType::Q4_1},      {"Q5_0", 8, DType::Q5_0},
    {"Q5_1", 9, DType::Q5_1},      {"Q8_0", 7, DType::Q8_0},      {"Q2_K", 10, DType::Q2_K},
    {"Q3_K_S", 11, DType::Q3_K},   {"Q3_K_M", 12, DType::Q3_K},   {"Q3_K_L", 13, DType::Q3_K},
    {"Q4_K_S", 14, DType::Q4_K},   {"Q4_K_M", 15, DType::Q4_K},   {"Q5_K_S", 16, DType::Q5_K},
    {"Q5_K_M", 17, DType::Q5_K},   {"Q6_K", 18, DType::Q6_K},     {"IQ4_NL", 25, DType::IQ4_NL},
    {"IQ4_XS", 30, DType::IQ4_XS},
};

bool is(const Mix& m, const char* name) { return std::string_view(m.name) == name; }

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// The layers that get more bits in the _M mixes: the first and last eighth, and every third
// layer in between.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// N from a "blk.N." name, or -1. llama.cpp visits tensors in layer order, so its running
// counters of V and FFN-down tensors are the layer index; using the index itself keeps the
// choice independent of the file's tensor order.
int layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int n = 0;
  size_t i = 4;
  if (i >= name.size() || !std::isdigit((unsigned char)name[i])) return -1;
  for (; i < name.size() && std::isdigit((unsigned char)name[i]) && n < 1000000; ++i) n = n * 10 + (name[i] - '0');
  return i < name.size() && name[i] == '.' ? n : -1;
}

// A type whose block fits a row of ncols, as llama.cpp falls back.
DType fit_row(DType t, int64_t ncols, bool* fallback) {
  const DTypeTraits* tr = dtype_traits(t);
  if (ncols % tr->block_elems == 0) return t;
  *fallback = true;
  DType alt = t;
  switch (t) {
    case DType::IQ4_XS: alt = DType::IQ4_NL; break;
    case DType::Q2_K: case DType::Q3_K: alt = DType::Q4_0; break;
    case DType::Q4_K: alt = DType::Q5_0; break;
    case DType::Q5_K: alt = DType::Q5_1; break;
    case DType::Q6_K: alt = DType::Q8_0; break;
    default: break;
  }
  return ncols % dtype_traits(alt)->block_elems == 0 ? alt : DType::F16;
}

}  // namespace

const Mix* find_mix(std::string_view name) {
  std::string up;
  for (char c : name) up += (char)std::toupper((unsigned char)c);
  if (up == "Q4_K") up = "Q4_K_M";
  if (up == "Q3_K") up = "Q3_K_M";
  if (up == "Q5_K") up = "Q5_K_M";
  for (const Mix& m : kMixes)
    if (up == m.name) return &m;
  return nullptr;
}

std::vector<std::string> mix_names() {
  std::vector<std::string> v;
  for (const Mix& m : kMixes) v.push_back(m.name);
  return v;
}

bool quantizable(const std::string& name, const std::vector<int64_t>& ne) {
  int dims = 0;
  for (size_t i = 0; i < ne.size(); ++i)
    if (ne[i] > 1) dims = (int)i + 1;
  if (dims < 2) return false;
  if (name.size() < 6 || name.compare(name.size() - 6, 6, "weight") != 0) return false;
  for (const char* keep : {"_norm.weight", "ffn_gate_inp.weight", "position_embd.weight", "token_types.weight",
                           "ssm_conv1d", "attn_rel_b.weight"})
    if (contains(name, keep)) return false;
  return true;
}

DType choose_type(const Mix& mix, const std::string& name, const std::vector<int64_t>& ne, const ModelFacts& facts,
                  Position* pos, bool* fallback, bool pure) {
  *fallback = false;
  DType t = mix.base;
  if (!dtype_traits(t)->quantized) return t;  // F32/F16/BF16 mixes: every weight alike
  const int64_t ncols = ne[0];
  if (pure) return fit_row(t, ncols, fallback);
  const bool output = name == "output.weight" || (facts.tied_embeddings && name == "token_embd.weight");

  if (output) {
    if (ncols % dtype_traits(t)->block_elems != 0) t = DType::Q8_0;
    else if (t != DType::Q8_0) t = DType::Q6_K;
  } else if (contains(name, "attn_v.weight") || contains(name, "attn_qkv.weight") ||
             contains(name, "attn_kv_b.weight")) {
    const int layer = layer_of(name), counted = pos->i_attn_v++;
    const int i = layer >= 0 ? layer : counted, n = facts.n_attn_v;
    if (is(mix, "Q2_K")) t = facts.n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
    else if (is(mix, "Q3_K_M")) t = i < 2 ? DType::Q5_K : DType::Q4_K;
    else if (is(mix, "Q3_K_L")) t = DType::Q5_K;
    else if ((is(mix, "IQ4_NL") || is(mix, "IQ4_XS")) && facts.n_gqa >= 4) t = DType::Q5_K;
    else if ((is(mix, "Q4_K_M") || is(mix, "Q5_K_M")) && use_more_bits(i, n)) t = DType::Q6_K;
    else if (is(mix, "Q4_K_S") && i < 4) t = DType::Q5_K;
  } else if (contains(name, "ffn_down")) {
    const int layer = layer_of(name), counted = pos->i_ffn_down++;
    const int i = layer >= 0 ? layer : counted, n = facts.n_layer;
    if (is(mix, "Q2_K")) t = DType::Q3_K;
    else if (is(mix, "Q3_K_M")) t = i < n / 16 ? DType::Q5_K : DType::Q4_K;
    else if (is(mix, "Q3_K_L")) t = DType::Q5_K;
    else if (is(mix, "Q4_K_M")) { if (use_more_bits(i, n)) t = DType::Q6_K; }
    else if (i < n / 8 && (is(mix, "IQ4_NL") || is(mix, "IQ4_XS")) && !facts.has_imatrix) t = DType::Q5_K;
    else if (is(mix, "Q5_K_M") && use_more_bits(i, n)) t = DType::Q6_K;
    else if (is(mix, "Q4_K_S") && i < n / 8) t = DType::Q5_K;
    else if ((is(mix, "Q4_0") || is(mix, "Q5_0")) && facts.has_imatrix && i < n / 8)
      t = is(mix, "Q4_0") ? DType::Q4_1 : DType::Q5_1;
  } else if (contains(name, "attn_output.weight")) {
    if (is(mix, "Q2_K")) t = DType::Q3_K;
    else if (is(mix, "Q3_K_M")) t = DType::Q4_K;
    else if (is(mix, "Q3_K_L")) t = DType::Q5_K;
  }
  return fit_row(t, ncols, fallback);
}

}  // namespace osprey::quantize
