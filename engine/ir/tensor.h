// Tensor: storage that lives in a backend buffer and outlives a graph (weights, KV cache).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/base/dtype.h"

namespace osprey {
class Buffer;
namespace ir {

constexpr int kMaxDims = 4;

struct Tensor {
  std::string name;
  DType dtype = DType::F32;
  std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};
  Buffer* buffer = nullptr;
  size_t offset = 0;  // bytes into buffer

  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  size_t row_bytes() const { return (size_t)dtype_row_bytes(dtype, ne[0]); }
  size_t nbytes() const { return row_bytes() * (size_t)n_rows(); }
};

}  // namespace ir
}  // namespace osprey
