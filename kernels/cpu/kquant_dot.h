// The K-quant kernels (x86: Q4_K, Q5_K, Q6_K and IQ4_XS; NEON: Q5_K, the others being in
// quant_dot_neon.cpp) in their own translation units, kquant_dot_<isa>.cpp, built with that
// ISA's flags. The ISA's main tables (quant_dot_<isa>.cpp) delegate these types to them.
// nullptr: not covered.
#pragma once
#include <cstring>

#include "kernels/cpu/quant_dot.h"

namespace osprey::kernels {

// The eight 6-bit scales (*sc8) and mins (*m8) of a Q4_K / Q5_K super-block, one per byte:
// bytes 0..3 of scales hold sc[0..3] (their top two bits are sc[4..7]'s), 4..7 the same for
// the mins, 8..11 the low 4 bits of sc[4..7] | m[4..7] << 4 (osprey_k4_scale_min, unrolled).
inline void k4_scales_mins(const uint8_t* scales, uint64_t* sc8, uint64_t* m8) {
  uint32_t s0, s1, s2;
  std::memcpy(&s0, scales, 4);
  std::memcpy(&s1, scales + 4, 4);
  std::memcpy(&s2, scales + 8, 4);
  *sc8 = (s0 & 0x3F3F3F3Fu) | ((uint64_t)((s2 & 0x0F0F0F0Fu) | ((s0 >> 2) & 0x30303030u)) << 32);
  *m8 = (s1 & 0x3F3F3F3Fu) | ((uint64_t)(((s2 >> 4) & 0x0F0F0F0Fu) | ((s1 >> 2) & 0x30303030u)) << 32);
}

namespace avx2 {
VecDotFn kquant_vec_dot_for(DType weight);
VecDot4Fn kquant_vec_dot4_for(DType weight);
GemmFn kquant_gemm_for(DType weight);
}  // namespace avx2
namespace avx512 {
VecDotFn kquant_vec_dot_for(DType weight);
VecDot4Fn kquant_vec_dot4_for(DType weight);
GemmFn kquant_gemm_for(DType weight);
}  // namespace avx512
// aarch64 only (kquant_dot_neon.cpp, built twice like quant_dot_neon.cpp): Q5_K.
namespace neon {
VecDotFn kquant_vec_dot_for(DType weight);
VecDot4Fn kquant_vec_dot4_for(DType weight);
GemmFn kquant_gemm_for(DType weight);
}  // namespace neon
namespace neon_dotprod {
VecDotFn kquant_vec_dot_for(DType weight);
VecDot4Fn kquant_vec_dot4_for(DType weight);
GemmFn kquant_gemm_for(DType weight);
}  // namespace neon_dotprod
}  // namespace osprey::kernels
