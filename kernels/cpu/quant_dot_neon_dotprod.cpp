// The NEON kernels of quant_dot_neon.cpp again, as namespace neon_dotprod: this file is built
// with -march=armv8.2-a+dotprod (kernels/CMakeLists.txt), so their 16-byte products use SDOT
// (vdotq_s32). The dispatcher calls it only where getauxval(AT_HWCAP) has HWCAP_ASIMDDP.
#define OSPREY_NEON_NS neon_dotprod
#define OSPREY_NEON_REQUIRE_DOTPROD 1
#include "quant_dot_neon.cpp"
