// The F16/BF16 GEMM, the 16-bit float dots and the attention inner loops of every variant this
// target can run, checked without gtest or test data so the binary can be cross-compiled and
// run under emulation (ctest float_attn_neon_qemu: aarch64-linux-gnu-g++, then qemu-aarch64;
// test_quant_dot_standalone.cpp does the same for the integer kernels); natively it is
// ctest float_attn_native.
//   - Each variant's F16/BF16 GEMM gives gemm_float_reference() (the fma chain over k) bit for
//     bit, over odd K, ragged row panels and column tiles, writing nothing outside its output;
//     infinite weights give the chain's inf / NaN and leak into no other result.
//   - dot_f16 / dot_bf16 against the exact (double) dot of the widened weights, 1e-5 relative.
//   - The attention table of each SIMD variant (its own, not the scalar fallback): cache rows
//     to f32 exactly as dequantize_row; scores and value accumulation against double sums,
//     each (row, cell) bit for bit the same whatever the number of rows; exp within 4 ulp of
//     std::exp, 0 below the normal range and for -inf; where a table reads f16 cache rows
//     directly (scores_f16 / accumulate_f16), the same bits as converting them first.
//   - The whole attention (cpu_attention.cpp) run with each variant's table against
//     ref::attention (double) over every cache type, GQA, windows, softcap and chunks.
// Exit status 0 when every check passed; --require NAME (repeatable) fails unless variant NAME
// is built in.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/base/fp16.h"
#include "kernels/cpu/attention_kernels.h"
#include "kernels/cpu/quant_dot.h"
#include "kernels/dequant.h"
#include "kernels/ops.h"
#include "standalone_check.h"

using namespace osprey;
using namespace osprey::kernels;
using osprey::testing::check;
using osprey::testing::same_bits;

namespace {

int64_t ulps(float a, float b) {  // finite, same sign
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::llabs((int64_t)ia - (int64_t)ib);
}

bool is_scalar(const IsaVariant& v) { return std::strcmp(v.name, "scalar") == 0; }

GemmFn float_gemm_of(const IsaVariant& v, DType t) {
  const std::string n = v.name;
  if (n == "scalar") return scalar::float_gemm_for(t);
#if defined(__x86_64__) || defined(__i386__)
  if (n == "avx2") return avx2::float_gemm_for(t);
  if (n == "avx512") return avx512::float_gemm_for(t);
#elif defined(__aarch64__)
  if (n == "neon") return neon::float_gemm_for(t);
  if (n == "neon_dotprod") return neon_dotprod::float_gemm_for(t);
#endif
  return nullptr;
}

// Random finite 16-bit floats: f16 over its whole range (subnormals included), bf16 with
// exponents near 1 (and some zeros and subnormals), so no product overflows.
std::vector<uint16_t> random_halves(DType t, size_t n, std::mt19937& rng) {
  std::vector<uint16_t> h(n);
  for (uint16_t& v : h) {
    const uint32_t bits = rng();
    if (t == DType::F16) {
      v = (uint16_t)(bits & 0xFFFF);
      if (((v >> 10) & 31) == 31) v &= 0xBFFF;  // inf/NaN exponent -> a finite one
    } else {
      const uint32_t sel = (bits >> 16) & 15;
      const uint32_t exp = sel == 0 ? 0 : 112 + (bits >> 20) % 30;  // 0: zero or subnormal
      v = (uint16_t)((bits & 0x8000) | (exp << 7) | (bits & 0x7F));
    }
  }
  return h;
}

float widen(DType t, uint16_t h) { return t == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h); }

void check_float_gemm(const IsaVariant& var) {
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> d(-2.f, 2.f);
  const std::string name = var.name;
  for (DType t : {DType::F16, DType::BF16}) {
    const GemmFn g = float_gemm_of(var, t);
    check(g != nullptr, name + " has no float GEMM for " + dtype_name(t));
    if (!g) continue;
    if (&var == &active_isa()) {
      const char* off = std::getenv("OSPREY_GEMM");
      check(gemm_for(t) == ((off && std::strcmp(off, "0") == 0) ? nullptr : g),
            name + " float GEMM not dispatched for " + dtype_name(t));
    }
    for (int64_t K : {1, 3, 4, 5, 8, 31, 129, 256, 257, 515}) {
      for (int64_t rows : {1, 3, 15, 16, 17, 33}) {
        const int64_t wstride = K + 3;  // halves; rows are not packed
        const std::vector<uint16_t> w = random_halves(t, (size_t)(rows * wstride), rng);
        for (int64_t cols : {1, 2, 5, 6, 11}) {
          const int64_t xstride = K + 1;
          std::vector<float> x((size_t)(cols * xstride));
          for (float& v : x) v = d(rng);
          const int64_t ldy = rows + 2;
          std::vector<float> y((size_t)(ldy * cols + 1), -777.f), want = y;
          g(w.data(), (size_t)wstride * 2, rows, x.data(), (size_t)xstride * 4, cols, K, y.data(), ldy);
          gemm_float_reference(t, w.data(), (size_t)wstride * 2, rows, x.data(), (size_t)xstride * 4, cols, K,
                               want.data(), ldy);
          bool ok = true, untouched = true;
          for (size_t i = 0; i < y.size(); ++i) {
            const bool inside = i < (size_t)(ldy * cols) && (int64_t)i % ldy < rows;
            if (inside) ok &= same_bits(y[i], want[i]);
            else untouched &= y[i] == -777.f;
          }
          const std::string at = name + " " + dtype_name(t) + " GEMM K=" + std::to_string(K) +
                                 " rows=" + std::to_string(rows) + " cols=" + std::to_string(cols);
          check(ok, at + ": differs from gemm_float_reference");
          check(untouched, at + ": wrote outside its output");
        }
      }
    }
    // Infinities early in the last row (an inf or NaN result there) must not reach other rows'
    // results in a later, partial K-block through a stale panel buffer: K = blocks of 128, 256
    // or 512 values + 1.
    for (int64_t K : {129, 257, 385, 513}) {
      const int64_t rows = 17, cols = 3;
      std::vector<uint16_t> w = random_halves(t, (size_t)(rows * K), rng);
      const uint16_t inf = t == DType::F16 ? 0x7C00 : 0x7F80;
      for (int64_t k = 1; k < 4; ++k) w[(size_t)((rows - 1) * K + k)] = (uint16_t)(inf | (k == 2 ? 0x8000 : 0));
      std::vector<float> x((size_t)(cols * K));
      for (float& v : x) v = d(rng);
      std::vector<float> y((size_t)(rows * cols)), want = y;
      g(w.data(), (size_t)K * 2, rows, x.data(), (size_t)K * 4, cols, K, y.data(), rows);
      gemm_float_reference(t, w.data(), (size_t)K * 2, rows, x.data(), (size_t)K * 4, cols, K, want.data(), rows);
      bool ok = true;
      for (size_t i = 0; i < y.size(); ++i) ok &= std::isnan(want[i]) ? std::isnan(y[i]) : same_bits(y[i], want[i]);
      check(ok, name + " " + dtype_name(t) + " GEMM with infinite weights K=" + std::to_string(K));
    }
  }
}

void check_half_dots(const IsaVariant& var) {
  const VecF32* f = var.vec_f32();
  check(f && f->dot_f16 && f->dot_bf16, std::string(var.name) + " VecF32 lacks dot_f16 / dot_bf16");
  if (!(f && f->dot_f16 && f->dot_bf16)) return;
  std::mt19937 rng(23);
  std::uniform_real_distribution<float> d(-4.f, 4.f);
  for (DType t : {DType::F16, DType::BF16}) {
    for (int64_t n : {0, 1, 3, 4, 5, 7, 8, 9, 15, 33, 100, 257, 1000}) {
      const std::vector<uint16_t> h = random_halves(t, (size_t)n, rng);
      std::vector<float> x((size_t)n);
      for (float& v : x) v = d(rng);
      double exact = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) {
        exact += (double)widen(t, h[(size_t)i]) * x[(size_t)i];
        mag += std::fabs((double)widen(t, h[(size_t)i]) * x[(size_t)i]);
      }
      const float got = (t == DType::F16 ? f->dot_f16 : f->dot_bf16)(h.data(), x.data(), n);
      check(std::fabs(got - exact) <= 1e-5 * mag + 1e-30,
            std::string(var.name) + " dot_" + dtype_name(t) + " n=" + std::to_string(n));
    }
  }
}

// A cache row of type t and D elements with random valid contents (finite scales).
std::vector<uint8_t> random_cache_rows(DType t, int64_t n, size_t stride, int64_t D, std::mt19937& rng) {
  std::vector<uint8_t> out(stride * (size_t)n);
  for (auto& v : out) v = (uint8_t)(rng() & 0xFF);
  std::uniform_real_distribution<float> scale(-0.1f, 0.1f);
  for (int64_t j = 0; j < n; ++j) {
    uint8_t* row = out.data() + (size_t)j * stride;
    if (t == DType::F16 || t == DType::BF16) {
      const std::vector<uint16_t> h = random_halves(t, (size_t)D, rng);
      std::memcpy(row, h.data(), (size_t)D * 2);
    } else {
      const size_t bsize = t == DType::Q8_0 ? sizeof(block_q8_0) : sizeof(block_q4_0);
      for (int64_t b = 0; b < D / 32; ++b) {
        const uint16_t dh = f32_to_f16(scale(rng));
        std::memcpy(row + (size_t)b * bsize, &dh, 2);  // d is the first member of both blocks
      }
    }
  }
  return out;
}

void check_attention(const IsaVariant& var) {
  const AttnKernels& k = attn_kernels_for(var.name);
  const AttnKernels& ref = scalar::attn_kernels();
  const std::string name = var.name;
  if (!is_scalar(var)) check(&k != &ref, name + " has no attention table of its own");
  std::mt19937 rng(31);

  // Cache rows to f32: exactly dequantize_row's values; nothing written past n rows.
  for (DType t : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    for (int64_t D : {1, 7, 32, 33, 64, 80, 128, 256}) {
      const bool blocked = t == DType::Q8_0 || t == DType::Q4_0;
      if (blocked && D % 32) {
        std::vector<float> out((size_t)D);
        std::vector<uint8_t> src(1024);
        check(!k.rows_to_f32(t, src.data(), 0, 1, D, out.data()), name + " rows_to_f32 accepted a partial block");
        continue;
      }
      const int64_t n = 5;
      const size_t stride = (size_t)dtype_row_bytes(t, D) * 3;  // every third row, as with 3 kv heads
      const std::vector<uint8_t> rows = random_cache_rows(t, n, stride, D, rng);
      std::vector<float> want((size_t)(n * D)), got((size_t)(n * D + 1), 555.f);
      for (int64_t j = 0; j < n; ++j) dequantize_row(t, rows.data() + (size_t)j * stride, want.data() + j * D, D);
      const std::string at = name + " rows_to_f32 " + dtype_name(t) + " D=" + std::to_string(D);
      check(k.rows_to_f32(t, rows.data(), stride, n, D, got.data()), at + ": refused");
      bool ok = true;
      for (size_t i = 0; i < want.size(); ++i) ok &= same_bits(got[i], want[i]);
      check(ok, at + ": differs from dequantize_row");
      check(got.back() == 555.f, at + ": wrote past the end");
    }
  }

  // Scores and value accumulation.
  std::uniform_real_distribution<float> u(-1.f, 1.f), pr(0.f, 1.f);
  for (int64_t D : {1, 7, 33, 64, 80, 128, 256}) {
    for (int64_t R : {1, 2, 3, 4, 5, 8, 9}) {
      for (int64_t n : {1, 7, 33}) {
        const int64_t ldk = D + 3, lds = 40, ldp = 37;
        std::vector<float> q((size_t)(R * D)), kv((size_t)(n * ldk)), p((size_t)(R * ldp)), acc0((size_t)(R * D));
        for (float& v : q) v = u(rng);
        for (float& v : kv) v = u(rng);
        for (float& v : p) v = pr(rng);
        for (float& v : acc0) v = u(rng);
        const std::string at = name + " D=" + std::to_string(D) + " R=" + std::to_string(R) + " n=" + std::to_string(n);

        std::vector<float> s((size_t)(R * lds), NAN), s1((size_t)lds, NAN);
        k.scores(q.data(), R, kv.data(), ldk, n, D, 0.125f, s.data(), lds);
        bool close = true, same = true, inside = true;
        for (int64_t r = 0; r < R; ++r) {
          k.scores(q.data() + r * D, 1, kv.data(), ldk, n, D, 0.125f, s1.data(), lds);
          for (int64_t j = 0; j < n; ++j) {
            double e = 0, m = 0;
            for (int64_t i = 0; i < D; ++i) {
              e += (double)q[(size_t)(r * D + i)] * kv[(size_t)(j * ldk + i)];
              m += std::fabs((double)q[(size_t)(r * D + i)] * kv[(size_t)(j * ldk + i)]);
            }
            close &= std::fabs(s[(size_t)(r * lds + j)] - 0.125 * e) <= 1e-5 * 0.125 * m + 1e-30;
            same &= same_bits(s1[(size_t)j], s[(size_t)(r * lds + j)]);
          }
          for (int64_t j = n; j < lds; ++j) inside &= std::isnan(s[(size_t)(r * lds + j)]);
        }
        check(close, at + ": scores differ from the exact dots");
        check(same, at + ": a row's scores depend on R");
        check(inside, at + ": scores wrote past n");

        std::vector<float> acc = acc0;
        acc.push_back(999.f);
        k.accumulate(p.data(), ldp, R, kv.data(), ldk, n, D, acc.data());
        close = true;
        same = true;
        for (int64_t r = 0; r < R; ++r) {
          std::vector<float> one(acc0.begin() + r * D, acc0.begin() + (r + 1) * D);
          k.accumulate(p.data() + r * ldp, ldp, 1, kv.data(), ldk, n, D, one.data());
          for (int64_t i = 0; i < D; ++i) {
            double e = acc0[(size_t)(r * D + i)], m = std::fabs(e);
            for (int64_t j = 0; j < n; ++j) {
              e += (double)p[(size_t)(r * ldp + j)] * kv[(size_t)(j * ldk + i)];
              m += std::fabs((double)p[(size_t)(r * ldp + j)] * kv[(size_t)(j * ldk + i)]);
            }
            close &= std::fabs(acc[(size_t)(r * D + i)] - e) <= 1e-5 * m + 1e-30;
            same &= same_bits(one[(size_t)i], acc[(size_t)(r * D + i)]);
          }
        }
        check(close, at + ": accumulate differs from the exact sums");
        check(same, at + ": a row's accumulation depends on R");
        check(acc.back() == 999.f, at + ": accumulate wrote past the end");

        // Reading an f16 cache directly gives exactly what converting it first gives.
        check(!k.scores_f16 == !k.accumulate_f16, name + " has only one of scores_f16 / accumulate_f16");
        if (!k.scores_f16 || !k.accumulate_f16) continue;
        const size_t stride = (size_t)D * 2 * 3 + 6;  // every third row of a cache, and unaligned
        const std::vector<uint8_t> h = random_cache_rows(DType::F16, n, stride, D, rng);
        std::vector<float> hf((size_t)(n * D));
        k.rows_to_f32(DType::F16, h.data(), stride, n, D, hf.data());
        std::vector<float> qs = q;  // small, so sums over halves up to 65504 stay finite
        for (float& v : qs) v *= 1e-4f;
        std::vector<float> s_want((size_t)(R * lds), NAN), s_got = s_want;
        k.scores(qs.data(), R, hf.data(), D, n, D, 0.125f, s_want.data(), lds);
        k.scores_f16(qs.data(), R, h.data(), stride, n, D, 0.125f, s_got.data(), lds);
        std::vector<float> ps = p;
        for (float& v : ps) v *= 1e-4f;
        std::vector<float> a_want = acc0, a_got = acc0;
        k.accumulate(ps.data(), ldp, R, hf.data(), D, n, D, a_want.data());
        k.accumulate_f16(ps.data(), ldp, R, h.data(), stride, n, D, a_got.data());
        bool same_s = true, same_a = true;
        for (int64_t r = 0; r < R; ++r)
          for (int64_t j = 0; j < lds; ++j) {
            const size_t i = (size_t)(r * lds + j);
            same_s &= j < n ? same_bits(s_want[i], s_got[i]) : std::isnan(s_got[i]);
          }
        for (size_t i = 0; i < a_want.size(); ++i) same_a &= same_bits(a_want[i], a_got[i]);
        check(same_s, at + ": scores_f16 differs from rows_to_f32 + scores");
        check(same_a, at + ": accumulate_f16 differs from rows_to_f32 + accumulate");
      }
    }
  }

  // exp: within 4 ulp of std::exp; 0 (or a tiny value) below the normal range; -inf gives 0.
  std::vector<float> x(4099);
  std::uniform_real_distribution<float> wide(-110.f, 0.f);
  for (float& v : x) v = wide(rng);
  for (float v : {0.f, -0.f, -1e-8f, -0.3465736f, -0.3465737f, -1.f, -87.3f, -87.4f, -103.f, -104.f, -200.f, -INFINITY})
    x.push_back(v);
  for (int64_t n : {(int64_t)x.size(), (int64_t)1, (int64_t)3, (int64_t)4, (int64_t)5, (int64_t)17}) {
    std::vector<float> e(x.begin(), x.begin() + n);
    e.push_back(-5.f);  // must stay
    const float sum = k.exp_sum(e.data(), n, 0.f);
    double want_sum = 0;
    bool ok = true;
    for (int64_t j = 0; j < n; ++j) {
      const float want = std::exp(x[(size_t)j]);
      want_sum += want;
      const float got = e[(size_t)j];
      ok &= want < 1.1754944e-38f ? (got >= 0.f && got <= 1.2e-38f) : ulps(got, want) <= 4;
    }
    const std::string at = name + " exp_sum n=" + std::to_string(n);
    check(ok, at + ": not within 4 ulp of std::exp");
    check(std::fabs(sum - want_sum) <= 1e-6 * std::max(1.0, want_sum), at + ": wrong sum");
    check(e.back() == -5.f, at + ": wrote past n");
  }
  std::vector<float> e = {3.f, 2.5f, -INFINITY};  // the maximum is subtracted first
  k.exp_sum(e.data(), 3, 3.f);
  check(e[0] == 1.f && ulps(e[1], std::exp(-0.5f)) <= 4 && e[2] == 0.f, name + " exp_sum with a maximum");
}

// A cache of `rows` rows of D values in [-2, 2] (quantized formats: random blocks with small
// scales), rows contiguous.
std::vector<uint8_t> moderate_cache(DType t, int64_t rows, int64_t D, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-2.f, 2.f), sc(-0.05f, 0.05f);
  const size_t rb = (size_t)dtype_row_bytes(t, D);
  std::vector<uint8_t> out(rb * (size_t)rows);
  for (auto& v : out) v = (uint8_t)(rng() & 0xFF);
  for (int64_t j = 0; j < rows; ++j) {
    uint8_t* row = out.data() + (size_t)j * rb;
    for (int64_t i = 0; i < D; ++i) {
      const float x = u(rng);
      if (t == DType::F32) std::memcpy(row + 4 * i, &x, 4);
      if (t == DType::F16 || t == DType::BF16) {
        const uint16_t h = t == DType::F16 ? f32_to_f16(x) : f32_to_bf16(x);
        std::memcpy(row + 2 * i, &h, 2);
      }
    }
    if (t == DType::Q8_0 || t == DType::Q4_0) {
      const size_t bsize = t == DType::Q8_0 ? sizeof(block_q8_0) : sizeof(block_q4_0);
      for (int64_t b = 0; b < D / 32; ++b) {
        const uint16_t dh = f32_to_f16(t == DType::Q8_0 ? sc(rng) : 4 * sc(rng));
        std::memcpy(row + (size_t)b * bsize, &dh, 2);
      }
    }
  }
  return out;
}

// The working attention (kernels/cpu_attention.cpp) driven by the variant's table, against
// ref::attention (double) reading the same cache: every cache type, GQA, Dv != D, a window,
// softcap, tiles of query tokens from two sequences, one and three chunks (the units in two
// ranges, as two threads would run them). Without a window or chunks, a token's output is bit
// for bit what it gets alone.
void check_attention_driver(const IsaVariant& var) {
  struct Case {
    int64_t D, Dv, Hq, Hkv, window;
    float softcap;
  };
  const Case cases[] = {{64, 64, 8, 2, 0, 0.f}, {80, 80, 3, 3, 5, 0.f}, {128, 128, 4, 1, 0, 30.f},
                        {64, 96, 6, 2, 0, 0.f}, {256, 256, 2, 1, 9, 0.f}};
  const AttnKernels& k = attn_kernels_for(var.name);
  const int64_t cells_per_seq = 80, n_cells = 2 * cells_per_seq;
  std::vector<int32_t> meta;  // 9 consecutive positions of sequence 0, 3 of sequence 1, a far one
  for (int32_t i = 0; i < 9; ++i) meta.insert(meta.end(), {0, 60 + i});
  for (int32_t i = 0; i < 3; ++i) meta.insert(meta.end(), {(int32_t)cells_per_seq, 20 + i});
  meta.insert(meta.end(), {0, 77});
  const int64_t T = (int64_t)meta.size() / 2;
  std::mt19937 rng(41);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    for (const Case& cs : cases) {
      if ((t == DType::Q8_0 || t == DType::Q4_0) && (cs.D % 32 || cs.Dv % 32)) continue;
      const std::vector<uint8_t> kc = moderate_cache(t, cs.Hkv * n_cells, cs.D, rng);
      const std::vector<uint8_t> vc = moderate_cache(t, cs.Hkv * n_cells, cs.Dv, rng);
      std::vector<float> q((size_t)(cs.D * cs.Hq * T));
      for (float& v : q) v = u(rng);
      AttentionArgs a{};
      a.q = q.data();
      a.D = cs.D;
      a.Hq = cs.Hq;
      a.T = T;
      a.k_type = a.v_type = t;
      a.k = kc.data();
      a.v = vc.data();
      a.Dv = cs.Dv;
      a.Hkv = cs.Hkv;
      a.meta = meta.data();
      a.cells_per_seq = cells_per_seq;
      a.n_cells = n_cells;
      a.window = cs.window;
      a.scale = 1.0f / std::sqrt((float)cs.D);
      a.softcap = cs.softcap;
      std::vector<float> want((size_t)(T * cs.Hq * cs.Dv));
      a.out = want.data();
      check(ref::attention(a), "ref::attention failed");
      auto run = [&](AttentionArgs b, int64_t n_chunks) {
        std::vector<float> out((size_t)(b.T * b.Hq * b.Dv), NAN);
        b.out = out.data();
        std::vector<float> scratch((size_t)cpu::attention_scratch_floats(b));
        std::vector<float> partials((size_t)cpu::attention_partial_floats(b, n_chunks));
        const int64_t units = cpu::attention_units(b, n_chunks);
        bool ok = cpu::attention_with(k, b, n_chunks, 0, units / 2, scratch.data(), partials.data());
        ok &= cpu::attention_with(k, b, n_chunks, units / 2, units, scratch.data(), partials.data());
        if (n_chunks > 1) cpu::attention_merge(b, n_chunks, partials.data());
        check(ok, std::string(var.name) + " attention_with failed");
        return out;
      };
      for (int64_t n_chunks : {1, 3}) {
        const std::string at = std::string(var.name) + " attention " + dtype_name(t) + " D=" + std::to_string(cs.D) +
                               " Dv=" + std::to_string(cs.Dv) + " Hq=" + std::to_string(cs.Hq) + " Hkv=" +
                               std::to_string(cs.Hkv) + " window=" + std::to_string(cs.window) +
                               " chunks=" + std::to_string(n_chunks);
        const std::vector<float> got = run(a, n_chunks);
        double worst = 0;  // worst normalised squared error of any output row
        for (int64_t r = 0; r < T * cs.Hq; ++r) {
          double err = 0, ref = 0;
          for (int64_t i = 0; i < cs.Dv; ++i) {
            const double dd = (double)got[(size_t)(r * cs.Dv + i)] - want[(size_t)(r * cs.Dv + i)];
            err += dd * dd;
            ref += (double)want[(size_t)(r * cs.Dv + i)] * want[(size_t)(r * cs.Dv + i)];
          }
          worst = std::max(worst, ref > 0 ? err / ref : err);
        }
        check(worst < 1e-9, at + ": differs from ref::attention (row NMSE " + std::to_string(worst) + ")");
        if (n_chunks != 1 || cs.window != 0) continue;
        bool same = true;
        for (int64_t tok : {0, 8, 10}) {
          AttentionArgs one = a;
          one.T = 1;
          one.q = q.data() + tok * cs.Hq * cs.D;
          one.meta = meta.data() + 2 * tok;
          const std::vector<float> alone = run(one, 1);
          for (int64_t i = 0; i < cs.Hq * cs.Dv; ++i)
            same &= same_bits(alone[(size_t)i], got[(size_t)(tok * cs.Hq * cs.Dv + i)]);
        }
        check(same, at + ": a token's output depends on its tile");
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> required;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--require") == 0 && i + 1 < argc) {
      required.push_back(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--require VARIANT]...\n", argv[0]);
      return 2;
    }
  }
  return osprey::testing::run_on_variants(required, [](const IsaVariant& v) {
    check_float_gemm(v);
    check_half_dots(v);
    check_attention(v);
    check_attention_driver(v);
  });
}
