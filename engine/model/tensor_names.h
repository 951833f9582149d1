// The one list of weight tensors per architecture: the GGUF name the loader looks up, and the
// Hugging Face checkpoint name the converter reads it from (with the transform llama.cpp's
// conventions need on the way). Names follow llama.cpp's GGUF conventions so files load there too.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace osprey::tn {

enum class T {
  TOKEN_EMBD, TOKEN_TYPES, POS_EMBD, TOKEN_EMBD_NORM, OUTPUT_NORM, OUTPUT,
  // per layer
  ATTN_NORM, ATTN_Q, ATTN_K, ATTN_V, ATTN_OUT, ATTN_Q_NORM, ATTN_K_NORM, ATTN_POST_NORM, ATTN_OUT_NORM,
  FFN_NORM, FFN_GATE, FFN_UP, FFN_DOWN, FFN_POST_NORM, LAYER_OUT_NORM,
};

// "token_embd.weight", "blk.3.attn_q.bias", ... `layer` is ignored for whole-model tensors.
std::string gguf(T t, int64_t layer = -1, std::string_view suffix = "weight");
bool per_layer(T t);

// What the converter does to a checkpoint tensor besides renaming it.
enum Transform : uint32_t {
  NONE = 0,
  PERMUTE_HEADS_Q = 1,   // llama: reorder rows of q so RoPE pairs adjacent elements (by n_head)
  PERMUTE_HEADS_K = 2,   // the same for k (by n_head_kv)
  ADD_ONE = 4,           // Gemma's RMSNorm multiplies by (1 + w); GGUF stores 1 + w
};

struct HfTensor {
  T t;
  const char* hf;       // checkpoint name without ".weight"/".bias"; "{L}" is the layer number
  uint32_t transform;
};

struct ArchTensors {
  const char* arch;                          // GGUF general.architecture
  std::vector<HfTensor> tensors;
  std::vector<std::string> strip_prefixes;   // removed from checkpoint names first ("bert.")
  std::vector<std::string> ignore;           // checkpoint names (after stripping) not converted
};

// nullptr for an architecture without a table.
const ArchTensors* arch_tensors(std::string_view arch);

}  // namespace osprey::tn
