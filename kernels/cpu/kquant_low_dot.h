// The Q2_K and Q3_K kernels of each SIMD ISA, in their own translation units
// (kquant_low_dot_<isa>.cpp, built with that ISA's flags). The ISA's main tables
// (quant_dot_<isa>.cpp) hand these two types to them; nullptr: not covered.
#pragma once
#include "kernels/cpu/quant_dot.h"

namespace osprey::kernels {
namespace avx2 {
VecDotFn low_kquant_vec_dot_for(DType weight);
VecDot4Fn low_kquant_vec_dot4_for(DType weight);
GemmFn low_kquant_gemm_for(DType weight);
}  // namespace avx2
namespace avx512 {
VecDotFn low_kquant_vec_dot_for(DType weight);
VecDot4Fn low_kquant_vec_dot4_for(DType weight);
GemmFn low_kquant_gemm_for(DType weight);
}  // namespace avx512
// aarch64 only (kquant_low_dot_neon.cpp, built twice like quant_dot_neon.cpp).
namespace neon {
VecDotFn low_kquant_vec_dot_for(DType weight);
VecDot4Fn low_kquant_vec_dot4_for(DType weight);
GemmFn low_kquant_gemm_for(DType weight);
}  // namespace neon
namespace neon_dotprod {
VecDotFn low_kquant_vec_dot_for(DType weight);
VecDot4Fn low_kquant_vec_dot4_for(DType weight);
GemmFn low_kquant_gemm_for(DType weight);
}  // namespace neon_dotprod
}  // namespace osprey::kernels
