// Elementwise activations (SiLU, GELU tanh form, GELU erf form, and their gated SwiGLU /
// GEGLU forms), one table per ISA. All tables come from the same source,
// activation_math.h, compiled once per ISA with that ISA's flags so the compiler
// vectorises it at the ISA's width; kernels/ref_ops.cpp (double) is the reference.
#pragma once
#include <cstdint>

namespace osprey::kernels {

struct ActKernels {
  const char* name;
  void (*silu)(const float* x, int64_t n, float* y);
  void (*gelu)(const float* x, int64_t n, float* y);      // tanh approximation
  void (*gelu_erf)(const float* x, int64_t n, float* y);  // exact form, with erf
  void (*swiglu)(const float* g, const float* u, int64_t n, float* y);  // silu(g) * u
  void (*geglu)(const float* g, const float* u, int64_t n, float* y);   // gelu(g) * u
};

namespace scalar {
const ActKernels& act_kernels();  // portable build (SSE2 on x86-64)
}
namespace avx2 {
const ActKernels* act_kernels();  // nullptr when not built
}
namespace avx512 {
const ActKernels* act_kernels();  // nullptr when not built
}

// The table of a named variant (isa_variants() names; the portable table for a variant
// without its own), and the one for active_isa().
const ActKernels& act_kernels_for(const char* isa_name);
const ActKernels& act_kernels();

}  // namespace osprey::kernels
