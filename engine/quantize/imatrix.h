// Importance matrix: for each weight tensor that multiplies activations, the mean squared
// input activation per input column (per element of a weight row), collected by
// `osprey imatrix` over a text. The K and IQ quantizers weight their per-block error by it, so
// columns that carry large activations are reproduced more precisely.
//
// File format: llama.cpp's GGUF imatrix layout, so either tool reads the other's files:
// metadata general.type = "imatrix", imatrix.chunk_count, imatrix.chunk_size (u32),
// imatrix.datasets (string array); per tensor NAME two F32 tensors, NAME.in_sum2 with ne =
// [n_cols, 1] (the sum of squared activations) and NAME.counts with ne = [1, 1] (the number of
// activation rows summed). values = in_sum2 / counts. Files with several matrices per tensor
// (mixture-of-experts, ne[1] > 1) are read with one row of values per matrix, concatenated.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kernels/base/status.h"

namespace osprey {

struct Imatrix {
  std::map<std::string, std::vector<float>> values;  // weight tensor name -> mean x^2 per column
  int32_t n_chunks = 0;                               // chunks of text collected over
  int32_t chunk_size = 0;                             // tokens per chunk (metadata only)
  std::vector<std::string> datasets;                  // text files collected over (metadata only)
};

// Errors name the file and what is wrong (not GGUF, a sum without its count, a zero or
// negative count, non-finite values, wrong tensor types or shapes).
Result<Imatrix> load_imatrix(const std::string& path);
// Writes to a temporary name and renames into place.
Status save_imatrix(const Imatrix& m, const std::string& path);

}  // namespace osprey
