// The little harness of the gtest-free kernel tests (test_quant_dot_standalone.cpp,
// test_float_attn_standalone.cpp), which are cross-compiled and run under qemu-aarch64 where
// no gtest is built: counted checks, and a run of per-variant checks over every ISA variant
// this build and CPU can use.
#pragma once
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/quant_dot.h"

namespace osprey::testing {

inline int g_checks = 0, g_failures = 0;

inline void check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok && ++g_failures <= 20) std::printf("FAIL: %s\n", what.c_str());
}

inline bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

// Runs check_variant on every usable variant (a note for each other one: the no-SDOT ctest
// looks for "note: neon_dotprod not tested"); fails unless each of `required` is built in.
// Returns the exit status: 0 when every check passed.
template <class CheckVariant>
int run_on_variants(const std::vector<std::string>& required, CheckVariant check_variant) {
  using kernels::IsaVariant;
  for (const std::string& r : required) {
    bool found = false;
    for (const IsaVariant& v : kernels::isa_variants()) found |= (r == v.name && v.built);
    check(found, "variant " + r + " is not built in");
  }
  int tested = 0;
  for (const IsaVariant& v : kernels::isa_variants()) {
    if (!v.usable()) {
      std::printf("note: %s not tested (built %d, cpu %d)\n", v.name, v.built, v.supported);
      continue;
    }
    const int before = g_failures;
    check_variant(v);
    ++tested;
    std::printf("%s: %s\n", v.name, g_failures == before ? "ok" : "FAILED");
  }
  std::printf("dispatcher uses %s; %d variants, %d checks, %d failures\n", kernels::active_isa().name, tested,
              g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}

}  // namespace osprey::testing
