// Quantize a whole GGUF model to a mix (tensor_types.h): every quantizable tensor is decoded
// to float32 and re-encoded with kernels::quantize_row, on several threads, optionally
// steered by an importance matrix; everything else is copied. The output is written to a
// temporary name and renamed into place.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kernels/base/dtype.h"
#include "kernels/base/status.h"

namespace osprey::quantize {

struct TensorDone {
  int index = 0, total = 0;  // this tensor's position among all tensors
  std::string name;
  DType from = DType::F32, to = DType::F32;
  int64_t bytes_in = 0, bytes_out = 0;
  bool fallback = false;     // the row length forced another type than the mix wanted
};

struct Options {
  std::string mix;                  // "Q4_K_M", "q8_0", ... (find_mix)
  bool allow_requantize = false;    // accept already-quantized input tensors
  bool pure = false;                // no per-tensor upgrades: every quantizable tensor at the mix's base type
  int threads = 0;                  // 0: hardware concurrency
  // Importance per weight tensor name: mean squared activation per input column (an
  // imatrix's values); nullptr for none.
  const std::map<std::string, std::vector<float>>* imatrix = nullptr;
  std::string imatrix_file;         // recorded in the output's metadata when given
  int32_t imatrix_chunks = 0;
  std::function<void(const TensorDone&)> on_tensor;  // called after each tensor, in order
};

struct Summary {
  int64_t bytes_in = 0, bytes_out = 0;  // tensor data only
  int n_tensors = 0, n_quantized = 0, n_fallback = 0, n_imatrix = 0;
  std::map<DType, int> type_counts;     // output types
  uint32_t file_type = 0;
  double seconds = 0;
};

// Errors (the input unreadable, an unknown mix, quantized input without allow_requantize,
// a tensor type that cannot be decoded, an imatrix row of the wrong length, the output not
// writable) name the file or tensor at fault.
Result<Summary> quantize_model(const std::string& in_path, const std::string& out_path, const Options& opt);

}  // namespace osprey::quantize
