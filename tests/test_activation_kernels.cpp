// The activation tables (kernels/cpu/activation_kernels.h) of every ISA variant this build
// and CPU can run, against ref:: (double): NMSE (aesthetics.md §8.5, f32 elementwise 1e-7),
// a per-element relative bound, NaN/Inf agreement, and guard cells after the output. Sizes
// 1, 31, 32, 33 and 1000 cover every vector tail; the inputs include the far tails, where the
// exp argument is clamped, and values near zero.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/activation_kernels.h"
#include "kernels/cpu/quant_dot.h"
#include "kernels/ops.h"

namespace osprey::kernels {
namespace {

std::vector<const ActKernels*> usable_tables() {
  std::vector<const ActKernels*> out;
  for (const IsaVariant& v : isa_variants()) {
    if (v.usable()) out.push_back(&act_kernels_for(v.name));
    else std::printf("note: %s variant not tested (built %d, cpu %d)\n", v.name, v.built, v.supported);
  }
  return out;
}

// Uniform in [-8, 8], with every 7th value spread over [-100, 100] and a fixed set of
// awkward values at the front.
std::vector<float> inputs(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> near(-8.f, 8.f), far(-100.f, 100.f);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i % 7 == 3 ? far(rng) : near(rng);
  const float special[] = {0.f, -0.f, 1e-30f, -1e-30f, 1e-6f, -1e-6f, 86.9f, -86.9f, 87.5f, -87.5f, 200.f, -200.f,
                           1e4f, -1e4f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()};
  if (n == 1000)
    for (size_t i = 0; i < std::size(special); ++i) v[i] = special[i];
  return v;
}

// y (n values followed by guard cells) against the reference r. scale[i] bounds the
// reference's own error: ref:: forms 1 + tanh and 1 + erf in double, which keeps about 1e-16
// of |x| (times |u| when gated) in absolute terms, so in the far negative tail it is no
// better than that. Values below 1e-9 |x| are therefore checked in absolute terms only.
void expect_close(const std::vector<float>& y, const std::vector<float>& r, const std::vector<double>& scale, size_t n,
                  const char* what) {
  constexpr float kGuard = 12345.f;
  double err = 0, ref = 0, worst_rel = 0;
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(r[i]) || std::isinf(r[i])) {
      EXPECT_EQ(std::isnan(y[i]), std::isnan(r[i])) << what << " i=" << i;
      if (std::isinf(r[i])) {
        EXPECT_EQ(y[i], r[i]) << what << " i=" << i;
      }
      continue;
    }
    ASSERT_TRUE(std::isfinite(y[i])) << what << " i=" << i << " got " << y[i] << " want " << r[i];
    const double d = (double)y[i] - r[i];
    err += d * d;
    ref += (double)r[i] * r[i];
    // Relative error, with a floor well above the reference's own error, and of 1e-30 for
    // the clamped exp argument (which gives about 1e-38 where the true value underflows).
    const double rel = std::fabs(d) / (std::fabs(r[i]) + 1e-9 * scale[i] + 1e-30);
    worst_rel = std::max(worst_rel, rel);
  }
  for (size_t i = n; i < y.size(); ++i) EXPECT_EQ(y[i], kGuard) << what << " wrote past the end";
  if (ref > 0) {
    EXPECT_LE(err / ref, 1e-7) << what;
  }
  // The exp and erfc approximations are near 1 ulp; the rest is the float rounding of the
  // exp argument, amplified by its own size: about 20 where the 1e-9 floor takes over, so
  // 20 * 2^-24 at worst, a little over 1e-6.
  EXPECT_LE(worst_rel, 4e-6) << what;
  if (n == 1000) std::printf("%-22s nmse %.2e  worst relative error %.2e\n", what, ref > 0 ? err / ref : 0.0, worst_rel);
}

TEST(ActivationKernels, EveryVariantMatchesReference) {
  using Unary = void (*)(const float*, int64_t, float*);
  using Binary = void (*)(const float*, const float*, int64_t, float*);
  for (const ActKernels* k : usable_tables()) {
    for (size_t n : {1, 31, 32, 33, 1000}) {
      const std::vector<float> x = inputs(n, 1 + (uint32_t)n), u = inputs(n, 2 + (uint32_t)n);
      std::vector<double> abs_x(n), abs_xu(n);
      for (size_t i = 0; i < n; ++i) {
        abs_x[i] = std::fabs((double)x[i]);
        abs_xu[i] = std::fabs((double)x[i] * u[i]);
      }
      struct U { const char* name; Unary fast, ref; };
      for (const U& f : {U{"silu", k->silu, ref::silu}, U{"gelu", k->gelu, ref::gelu}, U{"gelu_erf", k->gelu_erf, ref::gelu_erf}}) {
        std::vector<float> y(n + 16, 12345.f), r(n);
        f.fast(x.data(), (int64_t)n, y.data());
        f.ref(x.data(), (int64_t)n, r.data());
        expect_close(y, r, abs_x, n, (std::string(k->name) + " " + f.name).c_str());
      }
      struct B { const char* name; Binary fast, ref; };
      for (const B& f : {B{"swiglu", k->swiglu, ref::swiglu}, B{"geglu", k->geglu, ref::geglu}}) {
        std::vector<float> y(n + 16, 12345.f), r(n);
        f.fast(x.data(), u.data(), (int64_t)n, y.data());
        f.ref(x.data(), u.data(), (int64_t)n, r.data());
        expect_close(y, r, abs_xu, n, (std::string(k->name) + " " + f.name).c_str());
      }
    }
  }
}

}  // namespace
}  // namespace osprey::kernels
