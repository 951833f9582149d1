// The integer dot kernels (kernels/cpu/quant_dot.h): scalar and every SIMD variant built in
// against the exact dot product of the dequantized weight row with the dequantized 8-bit
// activations (double accumulation). Both sides then compute the same number; only the
// float summation order differs, hence the 1e-5 relative tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>

#include "formats/gguf.h"
#include "kernels/base/fp16.h"
#include "kernels/cpu/quant_dot.h"
#include "kernels/dequant.h"

namespace osprey::kernels {
namespace {

std::vector<uint8_t> weight_rows(DType t, int64_t K, int64_t rows) {
  // Valid random blocks from the dequant fixtures (gen_dequant_ref.py), cycled to fill.
  auto f = gguf::File::open(std::string(OSPREY_TEST_DATA) + "/dequant/" + dtype_name(t) + ".gguf");
  EXPECT_TRUE(f.ok()) << f.error();
  std::vector<uint8_t> out((size_t)dtype_row_bytes(t, K) * (size_t)rows);
  if (!f) return out;
  const gguf::TensorInfo* q = f.value()->find_tensor("q");
  for (size_t i = 0; i < out.size(); ++i) out[i] = q->data[i % q->nbytes];
  return out;
}

// The activation row as the kernels see it: d * q per element.
std::vector<double> dequant_act(ActQuant aq, const void* xq, int64_t K) {
  std::vector<double> v((size_t)K);
  const int64_t bs = aq == ActQuant::Q8_K ? 256 : 32;
  for (int64_t i = 0; i < K / bs; ++i)
    for (int64_t j = 0; j < bs; ++j) {
      if (aq == ActQuant::Q8_K) {
        const auto* b = (const block_q8_K*)xq + i;
        v[(size_t)(i * bs + j)] = (double)b->d * b->qs[j];
      } else {
        const auto* b = (const block_q8_act*)xq + i;
        v[(size_t)(i * bs + j)] = (double)b->d * b->qs[j];
      }
    }
  return v;
}

// Every variant this build and CPU can run (a note for the others), with its kernel for t.
std::vector<std::pair<const char*, VecDotFn>> usable_variants(DType t) {
  std::vector<std::pair<const char*, VecDotFn>> out;
  for (const IsaVariant& v : isa_variants()) {
    if (v.usable()) out.push_back({v.name, v.vec_dot_for(t)});
    else std::printf("note: %s variant not tested (built %d, cpu %d)\n", v.name, v.built, v.supported);
  }
  return out;
}

class QuantDot : public ::testing::TestWithParam<DType> {};

TEST_P(QuantDot, KernelsMatchExactDotOfDequantizedOperands) {
  const DType t = GetParam();
  const ActQuant aq = act_quant_for(t);
  ASSERT_NE(aq, ActQuant::NONE);
  const VecDotFn sc = scalar::vec_dot_for(t);
  ASSERT_TRUE(sc);
  const auto variants = usable_variants(t);
  std::mt19937 rng(3);
  const int64_t bs = aq == ActQuant::Q8_K ? 256 : 32;
  for (int64_t blocks : {1, 2, 3, 7, 18}) {
    const int64_t K = blocks * bs;
    const auto w = weight_rows(t, K, 3);
    for (float range : {1.f, 1e-3f, 300.f}) {
      std::uniform_real_distribution<float> d(-range, range);
      std::vector<float> x((size_t)K);
      for (float& v : x) v = d(rng);
      std::vector<uint8_t> xq(act_row_bytes(aq, K));
      quantize_act_row(aq, x.data(), xq.data(), K);
      const std::vector<double> xa = dequant_act(aq, xq.data(), K);
      for (int64_t r = 0; r < 3; ++r) {
        const uint8_t* wr = w.data() + (size_t)r * (size_t)dtype_row_bytes(t, K);
        std::vector<float> wf((size_t)K);
        ASSERT_TRUE(dequantize_row(t, wr, wf.data(), K));
        double exact = 0, mag = 0;
        for (int64_t k = 0; k < K; ++k) {
          exact += wf[(size_t)k] * xa[(size_t)k];
          mag += std::fabs(wf[(size_t)k] * xa[(size_t)k]);
        }
        if (!std::isfinite(exact)) continue;
        for (const auto& [name, fn] : variants) {
          ASSERT_TRUE(fn) << name;
          const double got = fn(wr, xq.data(), K);
          EXPECT_LE(std::fabs(got - exact), 1e-5 * mag + 1e-30)
              << name << " K=" << K << " range=" << range << " row " << r << ": " << got << " vs " << exact;
        }
      }
    }
  }
}

// A four-row kernel must reproduce its variant's one-row kernel bit for bit, or a token's
// logits would depend on what else is in its batch (the server promises otherwise).
TEST_P(QuantDot, FourRowKernelEqualsSingleRowKernel) {
  const DType t = GetParam();
  struct Pair { const char* name; bool usable; VecDotFn one; VecDot4Fn four; };
  std::vector<Pair> pairs;
#if defined(__x86_64__) || defined(__i386__)
  pairs.push_back({"avx2", avx2::built() && cpu_has_avx2(), avx2::vec_dot_for(t), avx2::vec_dot4_for(t)});
  pairs.push_back({"avx512", avx512::built() && cpu_has_avx512(), avx512::vec_dot_for(t), avx512::vec_dot4_for(t)});
#endif
  // The dispatcher only pairs a four-row kernel with its own variant's one-row kernel.
  if (const VecDot4Fn d4 = vec_dot4_for(t)) {
    bool paired = false;
    for (const Pair& p : pairs) paired |= p.usable && d4 == p.four && vec_dot_for(t) == p.one;
    EXPECT_TRUE(paired);
  }
  const ActQuant aq = act_quant_for(t);
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> d(-2.f, 2.f);
  for (const Pair& p : pairs) {
    if (!p.usable || !p.four) {
      std::printf("note: no %s four-row kernel for %s tested here\n", p.name, dtype_name(t));
      continue;
    }
    for (int64_t blocks : {1, 2, 3, 5, 7, 8}) {
      const int64_t K = blocks * (aq == ActQuant::Q8_K ? 256 : 32);
      const auto w = weight_rows(t, K, 1);
      const size_t row = act_row_bytes(aq, K);
      std::vector<uint8_t> xq(row * 4);
      for (int r = 0; r < 4; ++r) {
        std::vector<float> x((size_t)K);
        for (float& v : x) v = d(rng);
        quantize_act_row(aq, x.data(), xq.data() + r * row, K);
      }
      float out[4];
      p.four(w.data(), xq.data(), row, K, out);
      for (int r = 0; r < 4; ++r)
        EXPECT_EQ(out[r], p.one(w.data(), xq.data() + r * row, K)) << p.name << " row " << r << ", K " << K;
    }
  }
}

// The register-tiled GEMM of every variant must give each (weight row, token) exactly what
// that variant's one-row kernel gives (so the one-row checks above carry over, and batching
// never changes a token's logits), over ragged tiles, odd K and long K, and must write
// nothing outside its rows x cols.
struct GemmVariant {
  const char* name;
  bool usable;
  GemmFn gemm;
  VecDotFn one;
};
std::vector<GemmVariant> gemm_variants(DType t) {
  std::vector<GemmVariant> out;
#if defined(__x86_64__) || defined(__i386__)
  out.push_back({"avx2", avx2::built() && cpu_has_avx2(), avx2::gemm_for(t), avx2::vec_dot_for(t)});
  out.push_back({"avx512", avx512::built() && cpu_has_avx512(), avx512::gemm_for(t), avx512::vec_dot_for(t)});
#endif
  return out;
}

// y[c * ldy + r] through g, with guard values around every element it must not touch.
void check_gemm(const char* name, GemmFn g, const uint8_t* w, size_t ws, int64_t rows, const uint8_t* x, size_t xs,
                int64_t cols, int64_t K, const std::function<float(int64_t, int64_t)>& want) {
  const int64_t ldy = rows + 3;
  std::vector<float> y((size_t)(ldy * cols + 5), -777.f);
  g(w, ws, rows, x, xs, cols, K, y.data(), ldy);
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = 0; r < ldy; ++r) {
      const float got = y[(size_t)(c * ldy + r)];
      if (r >= rows) {
        ASSERT_EQ(got, -777.f) << name << " wrote outside the tile at row " << r << " col " << c;
        continue;
      }
      const float exp = want(r, c);
      ASSERT_EQ(std::memcmp(&got, &exp, 4), 0)
          << name << " rows " << rows << " cols " << cols << " K " << K << " at (" << r << ", " << c << "): " << got
          << " vs one-row " << exp;
    }
  for (size_t i = (size_t)(ldy * cols); i < y.size(); ++i) ASSERT_EQ(y[i], -777.f) << name << " wrote past the end";
}

TEST_P(QuantDot, GemmTilesEqualOneRowKernelBitForBit) {
  const DType t = GetParam();
  const ActQuant aq = act_quant_for(t);
  const int64_t bs = aq == ActQuant::Q8_K ? 256 : 32;
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> d(-3.f, 3.f);
  int tested = 0;
  for (const GemmVariant& v : gemm_variants(t)) {
    if (!v.usable || !v.gemm) {
      std::printf("note: no %s GEMM for %s tested here\n", v.name, dtype_name(t));
      continue;
    }
    ++tested;
    for (int64_t blocks : {1, 3, 18, 129}) {  // 129 blocks of 32: long K (4128)
      const int64_t K = blocks * bs;
      for (int64_t rows : {1, 31, 32, 33}) {
        if (blocks == 129 && rows != 33) continue;
        const auto w = weight_rows(t, K, rows);
        const size_t ws = (size_t)dtype_row_bytes(t, K), xs = act_row_bytes(aq, K);
        for (int64_t cols : {1, 2, 3, 4, 5, 7, 17}) {
          std::vector<uint8_t> xq(xs * (size_t)cols);
          for (int64_t c = 0; c < cols; ++c) {
            std::vector<float> x((size_t)K);
            for (float& e : x) e = d(rng);
            quantize_act_row(aq, x.data(), xq.data() + (size_t)c * xs, K);
          }
          check_gemm(v.name, v.gemm, w.data(), ws, rows, xq.data(), xs, cols, K, [&](int64_t r, int64_t c) {
            return v.one(w.data() + (size_t)r * ws, xq.data() + (size_t)c * xs, K);
          });
        }
      }
    }
  }
  // The dispatcher hands out a GEMM only from the variant whose one-row kernel is in use.
  if (const GemmFn g = gemm_for(t)) {
    bool paired = false;
    for (const GemmVariant& v : gemm_variants(t)) paired |= v.usable && g == v.gemm && vec_dot_for(t) == v.one;
    EXPECT_TRUE(paired);
  }
  std::printf("note: %d GEMM variants tested for %s\n", tested, dtype_name(t));
}

// F16/BF16 weights against f32 activations: every variant's GEMM gives, bit for bit, the plain
// fma chain over k from 0 (written out here), so results depend on neither the tile, nor the
// K-block, nor the number of tokens, nor the ISA. K crosses the K-blocks and no vector width
// divides it; rows and columns cross the panel and tile edges (AVX-512 64 x 6, AVX2 16 x 6).
TEST(QuantDot, FloatGemmIsTheFmaChainBitForBit) {
  std::mt19937 rng(23);
  std::uniform_real_distribution<float> d(-2.f, 2.f);
  for (DType t : {DType::F16, DType::BF16}) {
    const auto widen = t == DType::F16 ? f16_to_f32 : bf16_to_f32;
    const auto narrow = t == DType::F16 ? f32_to_f16 : f32_to_bf16;
    std::vector<std::pair<const char*, GemmFn>> gemms = {{"scalar", scalar::float_gemm_for(t)}};
#if defined(__x86_64__) || defined(__i386__)
    for (const IsaVariant& var : isa_variants()) {
      if (!var.usable()) continue;
      if (std::strcmp(var.name, "avx2") == 0) gemms.emplace_back("avx2", avx2::float_gemm_for(t));
      if (std::strcmp(var.name, "avx512") == 0) gemms.emplace_back("avx512", avx512::float_gemm_for(t));
    }
#endif
    for (const auto& [name, g] : gemms) {
      ASSERT_NE(g, nullptr) << name << " " << dtype_name(t);
      for (int64_t K : {1, 15, 16, 17, 127, 128, 129, 576, 1025, 4099}) {
        for (int64_t rows : {1, 7, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 129}) {
          std::vector<uint16_t> w((size_t)(K * rows));
          for (auto& e : w) e = narrow(d(rng));
          for (int64_t cols : {1, 2, 5, 6, 7, 12, 13, 25}) {
            if (K > 576 && cols > 7) continue;  // the reference is slow; the edges are covered above
            std::vector<float> x((size_t)(K * cols));
            for (float& e : x) e = d(rng);
            check_gemm(name, g, (const uint8_t*)w.data(), (size_t)K * 2, rows, (const uint8_t*)x.data(),
                       (size_t)K * 4, cols, K, [&](int64_t r, int64_t c) {
                         float acc = 0.f;
                         for (int64_t k = 0; k < K; ++k) acc = std::fma(widen(w[(size_t)(r * K + k)]), x[(size_t)(c * K + k)], acc);
                         return acc;
                       });
          }
        }
      }
    }
    std::printf("note: %zu %s GEMM variants tested\n", gemms.size(), dtype_name(t));
    // The dispatcher's GEMM is one of them (or none when OSPREY_GEMM=0).
    if (const GemmFn g = gemm_for(t)) {
      bool found = false;
      for (const auto& e : gemms) found |= e.second == g;
      EXPECT_TRUE(found) << dtype_name(t);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, QuantDot,
                         ::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                                           DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                                           DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// IQ4 at both ends (levels -127 / +113, IQ4_XS scales -32 / +31, activations +-127): the
// integer sums are at their largest, so 16-bit overflow or a lost sign shows.
TEST(QuantDot, Iq4ExtremeOperandsAreExact) {
  for (DType t : {DType::IQ4_NL, DType::IQ4_XS}) {
    const ActQuant aq = act_quant_for(t);
    const int64_t K = 512, bb = dtype_traits(t)->block_bytes;
    auto w = weight_rows(t, K, 2);
    const int64_t row = dtype_row_bytes(t, K);
    for (int64_t r = 0; r < 2; ++r)
      for (int64_t at = 0; at < row; at += bb) std::memset(w.data() + r * row + at + 2, r ? 0xFF : 0x00, (size_t)bb - 2);
    for (int xs = 0; xs < 3; ++xs) {
      std::vector<float> x((size_t)K);
      for (size_t k = 0; k < x.size(); ++k) x[k] = xs == 0 ? 1.f : xs == 1 ? -1.f : (k % 3 ? 1.f : -1.f);
      std::vector<uint8_t> xq(act_row_bytes(aq, K));
      quantize_act_row(aq, x.data(), xq.data(), K);
      const std::vector<double> xa = dequant_act(aq, xq.data(), K);
      for (int64_t r = 0; r < 2; ++r) {
        std::vector<float> wf((size_t)K);
        ASSERT_TRUE(dequantize_row(t, w.data() + r * row, wf.data(), K));
        double exact = 0, mag = 0;
        for (int64_t k = 0; k < K; ++k) {
          exact += wf[(size_t)k] * xa[(size_t)k];
          mag += std::fabs(wf[(size_t)k] * xa[(size_t)k]);
        }
        for (const auto& [name, fn] : usable_variants(t)) {
          const double got = fn(w.data() + r * row, xq.data(), K);
          EXPECT_LE(std::fabs(got - exact), 1e-5 * mag) << name << " " << dtype_name(t) << " row " << r << " x " << xs;
        }
      }
    }
  }
}

TEST(QuantDot, ActivationQuantizationRoundTrips) {
  for (ActQuant aq : {ActQuant::Q8_32, ActQuant::Q8_K}) {
    const int64_t K = 512;
    std::vector<float> x((size_t)K);
    std::mt19937 rng(5);
    std::normal_distribution<float> d(0.f, 2.f);
    for (float& v : x) v = d(rng);
    x[7] = 0;
    std::vector<uint8_t> xq(act_row_bytes(aq, K));
    quantize_act_row(aq, x.data(), xq.data(), K);
    const auto back = dequant_act(aq, xq.data(), K);
    const int64_t bs = aq == ActQuant::Q8_K ? 256 : 32;
    for (int64_t b = 0; b < K / bs; ++b) {
      float amax = 0;
      for (int64_t j = 0; j < bs; ++j) amax = std::max(amax, std::fabs(x[(size_t)(b * bs + j)]));
      for (int64_t j = 0; j < bs; ++j)  // round to nearest: error at most half a step
        EXPECT_LE(std::fabs(back[(size_t)(b * bs + j)] - x[(size_t)(b * bs + j)]), amax / 127 * 0.5001);
    }
    if (aq == ActQuant::Q8_K) {
      const auto* b = (const block_q8_K*)xq.data();
      int s = 0;
      for (int j = 0; j < 16; ++j) s += b->qs[j];
      EXPECT_EQ(b->bsums[0], s);
    }
  }
}

TEST(QuantDot, DispatcherPicksTheBestUsableVariant) {
  const auto v = isa_variants();
  ASSERT_FALSE(v.empty());
  EXPECT_STREQ(v[0].name, "scalar");
  EXPECT_TRUE(v[0].usable());
  const char* cap = std::getenv("OSPREY_CPU_ISA");
  const IsaVariant* best = &v[0];
  for (const IsaVariant& e : v) {
    if (e.usable()) best = &e;
    if (cap && std::strcmp(cap, e.name) == 0) break;
  }
  EXPECT_STREQ(active_isa().name, best->name);
  std::printf("note: dispatcher uses %s\n", active_isa().name);
  EXPECT_EQ(vec_dot_for(DType::Q4_0), best->vec_dot_for(DType::Q4_0));
  EXPECT_EQ(vec_f32().dot, best->vec_f32()->dot);
}

// f32 primitives of every usable variant against double references. dot: float rounding of
// the partial sums only (1e-5 of sum |a b|); axpy: one rounding of a*x + y (two without
// FMA); f16_to_f32: exact, for all 65536 bit patterns (NaNs compared as NaN).
TEST(QuantDot, VecF32PrimitivesMatchDoubleReference) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> d(-4.f, 4.f);
  std::vector<uint16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = (uint16_t)i;
  for (const IsaVariant& var : isa_variants()) {
    if (!var.usable()) {
      std::printf("note: %s VecF32 not tested (built %d, cpu %d)\n", var.name, var.built, var.supported);
      continue;
    }
    const VecF32* f = var.vec_f32();
    ASSERT_TRUE(f && f->dot && f->axpy && f->f16_to_f32 && f->dot_f16) << var.name;
    for (int64_t n : {0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 100, 257, 1000, 4099}) {
      std::vector<float> a((size_t)n), b((size_t)n), y((size_t)n);
      std::vector<uint16_t> h((size_t)n);
      for (int64_t i = 0; i < n; ++i) {
        a[(size_t)i] = d(rng);
        b[(size_t)i] = d(rng);
        y[(size_t)i] = d(rng);
        h[(size_t)i] = f32_to_f16(d(rng));
      }
      double exact = 0, mag = 0, exact16 = 0, mag16 = 0;
      for (int64_t i = 0; i < n; ++i) {
        exact += (double)a[(size_t)i] * b[(size_t)i];
        mag += std::fabs((double)a[(size_t)i] * b[(size_t)i]);
        exact16 += (double)f16_to_f32(h[(size_t)i]) * b[(size_t)i];
        mag16 += std::fabs((double)f16_to_f32(h[(size_t)i]) * b[(size_t)i]);
      }
      EXPECT_LE(std::fabs(f->dot(a.data(), b.data(), n) - exact), 1e-5 * mag + 1e-30) << var.name << " dot n=" << n;
      EXPECT_LE(std::fabs(f->dot_f16(h.data(), b.data(), n) - exact16), 1e-5 * mag16 + 1e-30)
          << var.name << " dot_f16 n=" << n;
      // bf16 weights: only the NEON tables may leave it to the scalar one.
      EXPECT_TRUE(f->dot_bf16 || std::strncmp(var.name, "neon", 4) == 0) << var.name;
      if (f->dot_bf16) {
        std::vector<uint16_t> hb((size_t)n);
        double exact_b = 0, mag_b = 0;
        for (int64_t i = 0; i < n; ++i) {
          hb[(size_t)i] = f32_to_bf16(d(rng));
          exact_b += (double)bf16_to_f32(hb[(size_t)i]) * b[(size_t)i];
          mag_b += std::fabs((double)bf16_to_f32(hb[(size_t)i]) * b[(size_t)i]);
        }
        EXPECT_LE(std::fabs(f->dot_bf16(hb.data(), b.data(), n) - exact_b), 1e-5 * mag_b + 1e-30)
            << var.name << " dot_bf16 n=" << n;
      }
      // axpy: a guard element past the end must stay untouched.
      std::vector<float> yy = y;
      yy.push_back(12345.f);
      const float alpha = d(rng);
      f->axpy(alpha, a.data(), yy.data(), n);
      EXPECT_EQ(yy[(size_t)n], 12345.f) << var.name << " axpy wrote past n=" << n;
      for (int64_t i = 0; i < n; ++i) {
        const double want = (double)alpha * a[(size_t)i] + y[(size_t)i];
        const double tol = 1.2e-7 * (std::fabs((double)alpha * a[(size_t)i]) + std::fabs(y[(size_t)i]));
        ASSERT_LE(std::fabs(yy[(size_t)i] - want), tol) << var.name << " axpy n=" << n << " i=" << i;
      }
      std::vector<float> out((size_t)n + 1, 777.f);
      f->f16_to_f32(h.data(), out.data(), n);
      EXPECT_EQ(out[(size_t)n], 777.f) << var.name << " f16_to_f32 wrote past n=" << n;
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[(size_t)i], f16_to_f32(h[(size_t)i])) << var.name;
    }
    std::vector<float> out(all.size());
    f->f16_to_f32(all.data(), out.data(), (int64_t)all.size());
    for (size_t i = 0; i < all.size(); ++i) {
      const float want = f16_to_f32(all[i]);
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(out[i])) << var.name << " f16 " << i;
      } else {
        uint32_t gb, wb;
        std::memcpy(&gb, &out[i], 4);
        std::memcpy(&wb, &want, 4);
        ASSERT_EQ(gb, wb) << var.name << " f16 bits " << i;  // exact, signed zeros and subnormals included
      }
    }
  }
}

}  // namespace
}  // namespace osprey::kernels
