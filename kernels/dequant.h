// Scalar reference dequantization: any supported tensor type -> float32.
// These are the correctness oracle for every faster kernel, so they favour clarity and
// bit-exact agreement with gguf-py's `gguf.quants.dequantize` over speed.
#pragma once
#include <cstdint>

#include "kernels/base/dtype.h"
#include "kernels/quantize.h"

namespace osprey::kernels {

// True if dequantize_row handles type t.
bool has_dequantizer(DType t);

// Convert n elements (a whole number of t's blocks) starting at src into dst.
// Returns false, writing nothing, if t has no dequantizer or n is not a whole number of blocks.
bool dequantize_row(DType t, const void* src, float* dst, int64_t n);

// The quantizers moved to kernels/quantize.h; included here for the callers that use both.
}  // namespace osprey::kernels
