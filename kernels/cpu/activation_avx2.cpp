// activation_math.h built with this file's ISA flags (kernels/CMakeLists.txt): the same
// loops, vectorised AVX2-wide.
#include "kernels/cpu/activation_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "kernels/cpu/activation_math.h"

namespace osprey::kernels::avx2 {
const ActKernels* act_kernels() {
  static const ActKernels k{"avx2", silu_loop, gelu_loop, gelu_erf_loop, swiglu_loop, geglu_loop};
  return &k;
}
}  // namespace osprey::kernels::avx2

#else

namespace osprey::kernels::avx2 {
const ActKernels* act_kernels() { return nullptr; }
}  // namespace osprey::kernels::avx2

#endif
