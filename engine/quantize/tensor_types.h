// Which type each tensor gets when a model is quantized to a named mix ("Q4_K_M", "Q8_0", ...).
//
// The mixes and their per-tensor upgrades follow llama.cpp's `llama-quantize` (the rules users
// of GGUF files expect): the output projection (or the tied token embedding) at Q6_K, attention
// V and FFN down at higher precision in the layers that matter most for the _M/_L/_S mixes,
// norms, biases and other 1-D tensors never quantized, and rows whose length is not a whole
// number of blocks falling back to a 32-element type (or F16).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/base/dtype.h"

namespace osprey::quantize {

struct Mix {
  const char* name;    // canonical spelling, e.g. "Q4_K_M"
  uint32_t file_type;  // llama.cpp's LLAMA_FTYPE_* value, stored as general.file_type
  DType base;          // the type most tensors get
};

// Case-insensitive; accepts llama-quantize's aliases (Q4_K = Q4_K_M, Q3_K = Q3_K_M,
// Q5_K = Q5_K_M). nullptr if unknown.
const Mix* find_mix(std::string_view name);
// Canonical names of every mix, for help and error messages.
std::vector<std::string> mix_names();

// What the choice depends on besides the tensor itself, gathered once per model.
struct ModelFacts {
  int n_layer = 0;               // <arch>.block_count (or the number of ffn_down tensors)
  int n_gqa = 1;                 // attention heads per KV head
  int n_attn_v = 0;              // tensors in the attention-V category
  bool tied_embeddings = true;   // no output.weight: token_embd is also the output projection
  bool has_imatrix = false;
};

// Running counters: the V and FFN-down upgrades depend on a tensor's position among its kind,
// which is its layer number for "blk.N." names and its count in file order otherwise.
struct Position {
  int i_attn_v = 0;
  int i_ffn_down = 0;
};

// Whether a tensor is a quantizable weight at all (2-D or more, named *weight, not a norm,
// not a positional or token-type embedding, not an expert router).
bool quantizable(const std::string& name, const std::vector<int64_t>& ne);

// The type for one tensor (already known to be quantizable); advances pos. *fallback is set
// when the row length forced a different type than the mix wanted. pure: no per-tensor
// upgrades, the mix's base type for every weight (row-length fallbacks still apply).
DType choose_type(const Mix& mix, const std::string& name, const std::vector<int64_t>& ne, const ModelFacts& facts,
                  Position* pos, bool* fallback, bool pure = false);

}  // namespace osprey::quantize
