// Integer dot products between quantized weight rows and activations quantized on the fly
// to 8 bits — the fast path of matmul for quantized weights. One translation unit per ISA
// (quant_dot_scalar.cpp; quant_dot_avx2.cpp, quant_dot_avx512.cpp, quant_dot_neon.cpp and
// quant_dot_neon_dotprod.cpp each built with its own flags); vec_dot_for() picks the best
// variant the running CPU supports, once. OSPREY_CPU_ISA=<variant name> (scalar, avx2,
// avx512 / scalar, neon, neon_dotprod) caps that choice, for benchmarks and tests.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

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

// The same 32-element activation block for the packed kernels (packed_gemm.h), which
// multiply unsigned weight codes and subtract offset * sum(qs) exactly in integers.
struct block_q8_act_isum {
  float d;
  int32_t isum;  // sum(qs)
  int8_t qs[32];
};
static_assert(sizeof(block_q8_act_isum) == 40);

enum class ActQuant { NONE, Q8_32, Q8_K, Q8_32_ISUM };

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

// One weight row against four activation rows (x, x + x_stride, ...): out[r] = dot(w, x_r).
// Prompt processing uses it to unpack each weight block once for four tokens.
using VecDot4Fn = void (*)(const void* w, const void* x, size_t x_stride, int64_t K, float* out);
VecDot4Fn vec_dot4_for(DType weight);  // nullptr: none for this type or CPU

// Register-tiled matrix product for prompt processing: y[c * ldy + r] = dot(weight row r,
// activation row c) for r < rows, c < cols; rows are w_stride / x_stride bytes apart. x holds
// activations quantized as act_quant_for(weight) says, or f32 rows for F16/BF16 weights. Each
// (row, column) result is bit for bit what the variant's one-row path gives (vec_dot_for),
// so a token's logits never depend on how many other tokens share its batch. F16/BF16 have
// no one-row kernel to match: every variant's GEMM gives exactly gemm_float_reference() (a
// one-token matmul streams vec_f32().dot_f16 / dot_bf16 instead: close, not bit-equal).
using GemmFn = void (*)(const void* w, size_t w_stride, int64_t rows, const void* x, size_t x_stride, int64_t cols,
                        int64_t K, float* y, int64_t ldy);
// nullptr: none for this type or CPU. OSPREY_GEMM=0 turns them off (A/B benchmarks).
GemmFn gemm_for(DType weight);

// The F16/BF16 GEMM's defining order, written plainly: y = fma chain over k = 0..K-1 of
// w[k] * x[k] from 0 (each weight widened to f32 exactly). K-blocked SIMD kernels reproduce it
// bit for bit, so results do not depend on the tile, the batch or the ISA.
void gemm_float_reference(DType weight, const void* w, size_t w_stride, int64_t rows, const void* x, size_t x_stride,
                          int64_t cols, int64_t K, float* y, int64_t ldy);

// f32 vector primitives (attention, norms, the exact matmul path).
struct VecF32 {
  float (*dot)(const float* a, const float* b, int64_t n);
  void (*axpy)(float a, const float* x, float* y, int64_t n);  // y += a * x
  void (*f16_to_f32)(const uint16_t* h, float* out, int64_t n);
  float (*dot_f16)(const uint16_t* w, const float* x, int64_t n);  // f16 weights, f32 activations
  float (*dot_bf16)(const uint16_t* w, const float* x, int64_t n);  // bf16 weights (widened exactly)
};
const VecF32& vec_f32();  // best for this CPU

// Per-ISA tables (tests compare them with the scalar one). nullptr: type not covered, or
// the ISA was not built in.
namespace scalar {
VecDotFn vec_dot_for(DType weight);
GemmFn float_gemm_for(DType weight);  // gemm_float_reference's order (float_dot_scalar.cpp)
const VecF32& vec_f32();
}
namespace avx2 {
VecDotFn vec_dot_for(DType weight);
VecDot4Fn vec_dot4_for(DType weight);
GemmFn gemm_for(DType weight);
GemmFn float_gemm_for(DType weight);  // F16/BF16 weights, f32 activations (float_dot_avx2.cpp)
const VecF32* vec_f32();  // nullptr when not built
bool built();
}
namespace avx512 {  // AVX-512 F/BW/VL + VNNI
VecDotFn vec_dot_for(DType weight);
VecDot4Fn vec_dot4_for(DType weight);
GemmFn gemm_for(DType weight);
GemmFn float_gemm_for(DType weight);  // F16/BF16 weights, f32 activations (float_dot_avx512.cpp)
const VecF32* vec_f32();  // nullptr when not built
bool built();
}
// aarch64 only (the files are not compiled elsewhere): plain Advanced SIMD, and the same
// source rebuilt with +dotprod (SDOT).
namespace neon {
VecDotFn vec_dot_for(DType weight);
VecDot4Fn vec_dot4_for(DType weight);
GemmFn gemm_for(DType weight);
GemmFn float_gemm_for(DType weight);  // F16/BF16 weights, f32 activations (float_dot_neon.cpp)
const VecF32* vec_f32();              // float_dot_neon.cpp
bool built();
}
namespace neon_dotprod {
VecDotFn vec_dot_for(DType weight);
VecDot4Fn vec_dot4_for(DType weight);
GemmFn gemm_for(DType weight);
GemmFn float_gemm_for(DType weight);  // neon's: the float kernels need no SDOT
const VecF32* vec_f32();              // neon's
bool built();
}
bool cpu_has_avx2();
bool cpu_has_avx512();   // avx512f, avx512bw, avx512vl and avx512vnni
bool cpu_has_dotprod();  // aarch64 HWCAP_ASIMDDP

// Every variant this target knows, scalar first, best last.
struct IsaVariant {
  const char* name;
  bool built;      // compiled in
  bool supported;  // the running CPU has the instructions
  VecDotFn (*vec_dot_for)(DType weight);  // call only when usable()
  const VecF32* (*vec_f32)();
  bool usable() const { return built && supported; }
};
std::span<const IsaVariant> isa_variants();
// The variant vec_dot_for() / vec_f32() prefer: the best usable one at or below the
// OSPREY_CPU_ISA cap (an unknown name is reported on stderr once and ignored).
const IsaVariant& active_isa();

}  // namespace osprey::kernels
