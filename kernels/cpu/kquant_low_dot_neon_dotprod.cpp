// The Q2_K / Q3_K kernels of kquant_low_dot_neon.cpp again, as namespace neon_dotprod: built
// with -march=armv8.2-a+dotprod (kernels/CMakeLists.txt), so their 16-byte products use SDOT.
#define OSPREY_NEON_NS neon_dotprod
#define OSPREY_NEON_REQUIRE_DOTPROD 1
#include "kquant_low_dot_neon.cpp"
