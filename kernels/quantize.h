// Quantizers: float32 rows -> any type Osprey can write.
//
// The 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) use the reference rounding, byte for
// byte what gguf-py's `gguf.quants.quantize` writes. The K-quants and IQ4 formats search their
// scales by weighted least squares (kernels/quantize_fit.h); an importance matrix, when given,
// weights that search per column, and moves Q4_0/Q4_1/Q5_0/Q5_1 onto the same search.
#pragma once
#include <cstdint>

#include "kernels/base/dtype.h"

namespace osprey::kernels {

// True if quantize_row writes type t.
bool has_quantizer(DType t);

// Quantize n elements (a whole number of t's blocks) from x into dst. importance, if not
// null, holds n per-column weights (an importance matrix row: the mean squared activation
// each column sees); every type but F32/F16/BF16/Q8_0 uses it. Returns false,
// writing nothing, if t has no quantizer or n is not a whole number of blocks.
bool quantize_row(DType t, const float* x, void* dst, int64_t n, const float* importance = nullptr);

// Reference Q8_0 quantizer (n a multiple of 32), bit-identical to gguf-py's Q8_0 quantize
// and ggml's reference: d = max|x| / 127, q = round-half-away(x / d).
void quantize_row_q8_0(const float* x, void* dst, int64_t n);

// Reference Q4_0 quantizer (n a multiple of 32), as ggml's: d = -max/8 for the signed value
// of largest magnitude, q = min(15, trunc(x / d + 8.5)).
void quantize_row_q4_0(const float* x, void* dst, int64_t n);

}  // namespace osprey::kernels
