// Hugging Face checkpoint folder (config.json, tokenizer files, safetensors) -> GGUF, in
// llama.cpp's conventions (tensor names, metadata keys, tokenizer fields, Q/K permutation for
// llama), so the output loads in llama.cpp as well as in Osprey. Architectures: llama, qwen2,
// gemma3, bert; the tensor list per architecture is engine/model/tensor_names.h, shared with
// the loader.
#pragma once
#include <functional>
#include <string>

#include "kernels/base/status.h"

namespace osprey::convert {

// AUTO: the type of the checkpoint's first 2-D float tensor (F32, F16 or BF16; FP8 -> BF16).
enum class OutType { AUTO, F32, F16, BF16, Q8_0 };
Result<OutType> parse_outtype(const std::string& s);  // "auto", "f32", "f16", "bf16", "q8_0"
const char* outtype_name(OutType t);

struct Options {
  OutType outtype = OutType::AUTO;
  // Called as each tensor is written: (tensors written, tensors in the output, its GGUF name).
  std::function<void(size_t, size_t, const std::string&)> progress;
};

// The GGUF architecture a checkpoint folder would convert to, or an error saying why not
// (no config.json, an unsupported architecture, ...).
Result<std::string> checkpoint_arch(const std::string& dir);

// True if `path` is a folder holding config.json and at least one .safetensors file (or an index).
bool is_checkpoint_dir(const std::string& path);

// Converts checkpoint folder `dir` into `out` (written to a temporary name, renamed on success).
Status convert_checkpoint(const std::string& dir, const std::string& out, const Options& opt = {});

// The GGUF converted from `dir` in the conversion cache ($OSPREY_CACHE, else ~/.cache/osprey,
// under converted/), converting first when there is none for the folder's current contents
// (keyed by every file's name, size and modification time).
Result<std::string> cached_conversion(const std::string& dir, const Options& opt = {});

}  // namespace osprey::convert
