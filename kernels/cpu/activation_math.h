// The activation loops behind every ActKernels table. Included only by the
// activation_<isa>.cpp files, each built with its own flags: everything here is in an
// anonymous namespace so the linker never merges, say, the AVX-512 copy of an inline
// function into the portable table.
//
// Written for the auto-vectoriser: plain loops over float arrays, no libm calls and no
// branches (selects only), so each loop becomes SIMD at the width its file is built for.
#pragma once
#include <bit>
#include <cstdint>

#include "kernels/cpu/activation_kernels.h"

namespace osprey::kernels {
namespace {

// e^x with about 1 ulp of error for x in [-87, 88]; x is clamped to that range, so a huge
// argument gives about 1e-38 or 3e38 instead of 0 or inf (the callers divide by 1 + e^x
// or multiply by it, where that is the same answer). NaN comes out as a finite value: the
// callers' own multiplication by x carries NaN through.
inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  // x = n ln2 + r with |r| <= ln2 / 2: n by round-to-nearest via the 1.5 * 2^23 shifter,
  // ln2 split in two so n * ln2_hi is exact.
  const float shifter = 12582912.0f;
  const float t = x * 1.44269504088896341f + shifter;
  const float n = t - shifter;
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
  // Taylor series of e^r to r^7: truncation error below 6e-9 relative on |r| <= 0.347.
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t e = (int32_t)n + 127;  // n in [-126, 127]: a normal power of two
  return p * std::bit_cast<float>((uint32_t)e << 23);
}

// x * sigmoid(x).
inline float silu_one(float x) { return x / (1.0f + exp_approx(-x)); }

// 0.5 x (1 + tanh(z)) is x * sigmoid(2z), which has no cancellation for negative z.
inline float gelu_one(float x) {
  const float z = 0.7978845608028654f * (x + 0.044715f * x * x * x);  // sqrt(2/pi) (x + 0.044715 x^3)
  return x / (1.0f + exp_approx(-2.0f * z));
}

// 0.5 x (1 + erf(x / sqrt 2)) = x (1 - erfc(a) / 2) for x >= 0, x erfc(a) / 2 for x < 0,
// a = |x| / sqrt 2. erfc(a) = t exp(-a^2 + P(t)), t = 1 / (1 + a / 2): the Chebyshev fit
// in Numerical Recipes (erfcc), relative error below 1.2e-7 for every a >= 0, so the
// result keeps its relative accuracy in the far negative tail too.
inline float gelu_erf_one(float x) {
  const float a = (x < 0 ? -x : x) * 0.70710678118654752f;
  const float t = 1.0f / (1.0f + 0.5f * a);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const float half_erfc = 0.5f * t * exp_approx(p - a * a);
  return x * (x < 0 ? half_erfc : 1.0f - half_erfc);
}

void silu_loop(const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = silu_one(x[i]);
}
void gelu_loop(const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_one(x[i]);
}
void gelu_erf_loop(const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_erf_one(x[i]);
}
void swiglu_loop(const float* g, const float* u, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = silu_one(g[i]) * u[i];
}
void geglu_loop(const float* g, const float* u, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_one(g[i]) * u[i];
}

}  // namespace
}  // namespace osprey::kernels
