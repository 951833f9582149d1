// The portable activation table (vectorised at the baseline width, SSE2 on x86-64) and the
// choice of table for the running CPU.
#include <cstring>

#include "kernels/cpu/activation_math.h"
#include "kernels/cpu/quant_dot.h"

namespace osprey::kernels {
namespace scalar {
const ActKernels& act_kernels() {
  static const ActKernels k{"scalar", silu_loop, gelu_loop, gelu_erf_loop, swiglu_loop, geglu_loop};
  return k;
}
}  // namespace scalar

const ActKernels& act_kernels_for(const char* isa_name) {
  const ActKernels* k = nullptr;
#if defined(__x86_64__) || defined(__i386__)
  if (std::strcmp(isa_name, "avx2") == 0) k = avx2::act_kernels();
  if (std::strcmp(isa_name, "avx512") == 0) k = avx512::act_kernels();
#endif
  return k ? *k : scalar::act_kernels();
}

const ActKernels& act_kernels() {
  static const ActKernels& k = act_kernels_for(active_isa().name);
  return k;
}

}  // namespace osprey::kernels
