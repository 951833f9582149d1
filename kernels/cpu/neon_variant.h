// Which NEON build a *_neon.cpp translation unit is. Each of those files is compiled twice: as
// itself (namespace neon, baseline armv8-a) and through its *_neon_dotprod.cpp, which defines
// OSPREY_NEON_NS as neon_dotprod and OSPREY_NEON_REQUIRE_DOTPROD, with -march=+dotprod.
// OSPREY_NEON_BUILD is 1 where the build has the instructions its namespace promises; else 0,
// and the file compiles to stubs that the dispatcher never picks (not aarch64, or the
// dotprod copy built without +dotprod).
#pragma once

#ifndef OSPREY_NEON_NS
#define OSPREY_NEON_NS neon
#endif

#if defined(__aarch64__) && defined(__ARM_NEON) && \
    (!defined(OSPREY_NEON_REQUIRE_DOTPROD) || defined(__ARM_FEATURE_DOTPROD))
#define OSPREY_NEON_BUILD 1
#include <arm_neon.h>
#else
#define OSPREY_NEON_BUILD 0
#endif
