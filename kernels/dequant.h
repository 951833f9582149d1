// Scalar reference dequantization: any supported tensor type -> float32.
// These are the correctness oracle for every faster kernel, so they favour clarity and
// bit-exact agreement with gguf-py's `gguf.quants.dequantize` over speed.
#pragma once
#include <cstdint>

#include "kernels/base/dtype.h"

namespace osprey::kernels {

// True if dequantize_row handles type t.
bool has_dequantizer(DType t);

// Convert n elements (a whole number of t's blocks) starting at src into dst.
// Returns false, writing nothing, if t has no dequantizer or n is not a whole number of blocks.
bool dequantize_row(DType t, const void* src, float* dst, int64_t n);

// Reference Q8_0 quantizer (n a multiple of 32), bit-identical to gguf-py's Q8_0 quantize
// and ggml's reference: d = max|x| / 127, q = round-half-away(x / d).
void quantize_row_q8_0(const float* x, void* dst, int64_t n);

// Reference Q4_0 quantizer (n a multiple of 32), as ggml's: d = -max/8 for the signed value
// of largest magnitude, q = min(15, trunc(x / d + 8.5)).
void quantize_row_q4_0(const float* x, void* dst, int64_t n);

// f32 -> t for the types with a quantizer here (F32, F16, BF16, Q8_0, Q4_0); false otherwise.
bool quantize_row(DType t, const float* x, void* dst, int64_t n);
bool has_quantizer(DType t);

}  // namespace osprey::kernels
