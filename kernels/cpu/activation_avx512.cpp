// activation_math.h built with this file's ISA flags (kernels/CMakeLists.txt): the same
// loops, vectorised AVX512-wide.
#include "kernels/cpu/activation_kernels.h"

#if defined(__AVX512F__)
#include "kernels/cpu/activation_math.h"

namespace osprey::kernels::avx512 {
const ActKernels* act_kernels() {
  static const ActKernels k{"avx512", silu_loop, gelu_loop, gelu_erf_loop, swiglu_loop, geglu_loop};
  return &k;
}
}  // namespace osprey::kernels::avx512

#else

namespace osprey::kernels::avx512 {
const ActKernels* act_kernels() { return nullptr; }
}  // namespace osprey::kernels::avx512

#endif
