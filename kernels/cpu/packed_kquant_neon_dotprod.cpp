// The K-quant packed products of packed_kquant_neon.cpp again, as namespace neon_dotprod:
// built with -march=armv8.2-a+dotprod (kernels/CMakeLists.txt), so each lane product is one
// SDOT. The dispatcher calls it only where getauxval(AT_HWCAP) has HWCAP_ASIMDDP.
#define OSPREY_NEON_NS neon_dotprod
#define OSPREY_NEON_REQUIRE_DOTPROD 1
#include "packed_kquant_neon.cpp"
