// Integer dot products between quantized weight rows and activations quantized on the fly
// to 8 bits — the fast path of matmul for quantized weights. One translation unit per ISA
// (quant_dot_scalar.cpp, quant_dot_avx2.cpp built with its own flags); vec_dot_for() picks
// the best variant the running CPU supports, once.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/base/dtype.h"
#include "kernels/quant_blocks.h"

namespace osprey::kernels {

// Activation block for the 32-element weight formats: s = d * sum(qs) folds the weight
// minimum (Q4_1/Q5_1) into one multiply.
struct block_q8_act {
  float d;
  float s;
  int8_t qs[32];
};
static_assert(sizeof(block_q8_act) == 40);

enum class ActQuant { NONE, Q8_32, Q8_K };

// Which activation format pairs with a weight type; NONE: no integer kernel (dequantize).
ActQuant act_quant_for(DType weight);
// Bytes of one quantized activation row of K elements (K a multiple of the block size).
size_t act_row_bytes(ActQuant q, int64_t K);
// Quantizes one row: d = max|x| / 127, q = round(x / d).
void quantize_act_row(ActQuant q, const float* x, void* dst, int64_t K);

// dot(weight row, activation row) over K elements.
using VecDotFn = float (*)(const void* w, const void* x, int64_t K);

// The best kernel for this CPU, or nullptr when the type has none.
VecDotFn vec_dot_for(DType weight);

// f32 vector primitives (attention, norms, the exact matmul path).
struct VecF32 {
  float (*dot)(const float* a, const float* b, int64_t n);
  void (*axpy)(float a, const float* x, float* y, int64_t n);  // y += a * x
  void (*f16_to_f32)(const uint16_t* h, float* out, int64_t n);
};
const VecF32& vec_f32();  // best for this CPU

// Per-ISA tables (tests compare them with the scalar one). nullptr: type not covered, or
// the ISA was not built in.
namespace scalar {
VecDotFn vec_dot_for(DType weight);
const VecF32& vec_f32();
}
namespace avx2 {
VecDotFn vec_dot_for(DType weight);
const VecF32* vec_f32();  // nullptr when not built
bool built();
}
bool cpu_has_avx2();

}  // namespace osprey::kernels
