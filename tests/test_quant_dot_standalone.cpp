// The integer dot kernels and f32 primitives of every variant this target can run, checked
// without gtest or test data so the binary can be cross-compiled and run under emulation
// (ctest quant_dot_neon_qemu: aarch64-linux-gnu-g++, then qemu-aarch64). Weight rows are
// random valid blocks (random bytes, finite random f16 scales); the reference is the exact
// dot (double) of the dequantized weight row (kernels/dequant.cpp) with the dequantized
// 8-bit activations, as in test_quant_dot.cpp, with the same 1e-5 relative tolerance. Each
// SIMD variant's four-row kernel and GEMM tiles must match its one-row kernel bit for bit.
//
// Exit status 0 when every check passed. --require NAME (repeatable) fails unless variant
// NAME is built in, so a build that silently dropped the NEON files cannot pass.
// --bench [ROWS]: instead of checking, times every usable variant on ROWS (4096) x K=4096 per type
// (best of 5, variants interleaved so background load hits them alike).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/base/fp16.h"
#include "kernels/cpu/packed_gemm.h"
#include "kernels/cpu/quant_dot.h"
#include "kernels/dequant.h"
#include "standalone_check.h"

using namespace osprey;
using namespace osprey::kernels;
using osprey::testing::check;
using osprey::testing::same_bits;

namespace {

template <class B>
void fix_scales(B* b, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(-0.05f, 0.05f);
  b->d = f32_to_f16(d(rng));
  if constexpr (requires { b->m; }) b->m = f32_to_f16(d(rng));
  if constexpr (requires { b->dmin; }) b->dmin = f32_to_f16(d(rng));
}

// Random bytes, or every byte `fill` (0..255), then finite random scales.
template <class B>
std::vector<uint8_t> random_row_of(int64_t nblocks, std::mt19937& rng, int fill = -1) {
  std::vector<uint8_t> out((size_t)nblocks * sizeof(B));
  for (auto& v : out) v = fill < 0 ? (uint8_t)(rng() & 0xFF) : (uint8_t)fill;
  for (int64_t i = 0; i < nblocks; ++i) {
    B b;
    std::memcpy(&b, out.data() + i * sizeof(B), sizeof(B));
    fix_scales(&b, rng);
    std::memcpy(out.data() + i * sizeof(B), &b, sizeof(B));
  }
  return out;
}

std::vector<uint8_t> random_row(DType t, int64_t K, std::mt19937& rng, int fill = -1) {
  switch (t) {
    case DType::Q4_0: return random_row_of<block_q4_0>(K / 32, rng, fill);
    case DType::Q4_1: return random_row_of<block_q4_1>(K / 32, rng, fill);
    case DType::Q5_0: return random_row_of<block_q5_0>(K / 32, rng, fill);
    case DType::Q5_1: return random_row_of<block_q5_1>(K / 32, rng, fill);
    case DType::Q8_0: return random_row_of<block_q8_0>(K / 32, rng, fill);
    case DType::Q4_K: return random_row_of<block_q4_K>(K / 256, rng, fill);
    case DType::Q5_K: return random_row_of<block_q5_K>(K / 256, rng, fill);
    case DType::Q2_K: return random_row_of<block_q2_K>(K / 256, rng, fill);
    case DType::Q3_K: return random_row_of<block_q3_K>(K / 256, rng, fill);
    case DType::Q6_K: return random_row_of<block_q6_K>(K / 256, rng, fill);
    case DType::IQ4_NL: return random_row_of<block_iq4_nl>(K / 32, rng, fill);
    case DType::IQ4_XS: return random_row_of<block_iq4_xs>(K / 256, rng, fill);
    default: return {};
  }
}

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

void check_dots(const IsaVariant& var) {
  std::mt19937 rng(3);
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K,
                  DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS}) {
    const VecDotFn fn = var.vec_dot_for(t);
    check(fn != nullptr, std::string(var.name) + " has no kernel for " + dtype_name(t));
    if (!fn) continue;
    const ActQuant aq = act_quant_for(t);
    const int64_t bs = aq == ActQuant::Q8_K ? 256 : 32;
    for (int64_t blocks : {1, 2, 3, 7, 18}) {
      const int64_t K = blocks * bs;
      for (float range : {1.f, 1e-3f, 300.f}) {
        std::uniform_real_distribution<float> d(-range, range);
        std::vector<float> x((size_t)K);
        for (float& v : x) v = d(rng);
        std::vector<uint8_t> xq(act_row_bytes(aq, K));
        quantize_act_row(aq, x.data(), xq.data(), K);
        const std::vector<double> xa = dequant_act(aq, xq.data(), K);
        for (int r = 0; r < 3; ++r) {
          const std::vector<uint8_t> w = random_row(t, K, rng);
          std::vector<float> wf((size_t)K);
          check(dequantize_row(t, w.data(), wf.data(), K), "dequantize_row");
          double exact = 0, mag = 0;
          for (int64_t k = 0; k < K; ++k) {
            exact += wf[(size_t)k] * xa[(size_t)k];
            mag += std::fabs(wf[(size_t)k] * xa[(size_t)k]);
          }
          const double got = fn(w.data(), xq.data(), K);
          char msg[200];
          std::snprintf(msg, sizeof msg, "%s %s K=%lld range=%g: %.9g vs %.9g", var.name, dtype_name(t), (long long)K,
                        (double)range, got, exact);
          check(std::fabs(got - exact) <= 1e-5 * mag + 1e-30, msg);
        }
      }
    }
  }
}

void check_f32(const IsaVariant& var) {
  const VecF32* f = var.vec_f32();
  check(f && f->dot && f->axpy && f->f16_to_f32 && f->dot_f16, std::string(var.name) + " VecF32 incomplete");
  if (!(f && f->dot && f->axpy && f->f16_to_f32 && f->dot_f16)) return;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> d(-4.f, 4.f);
  const std::string name = var.name;
  for (int64_t n : {0, 1, 3, 4, 5, 7, 8, 15, 16, 17, 33, 64, 65, 100, 257, 1000}) {
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
    const std::string at = " n=" + std::to_string(n);
    check(std::fabs(f->dot(a.data(), b.data(), n) - exact) <= 1e-5 * mag + 1e-30, name + " dot" + at);
    check(std::fabs(f->dot_f16(h.data(), b.data(), n) - exact16) <= 1e-5 * mag16 + 1e-30, name + " dot_f16" + at);
    std::vector<float> yy = y;
    yy.push_back(12345.f);
    const float alpha = d(rng);
    f->axpy(alpha, a.data(), yy.data(), n);
    check(yy[(size_t)n] == 12345.f, name + " axpy wrote past the end" + at);
    bool ok = true;
    for (int64_t i = 0; i < n; ++i) {
      const double want = (double)alpha * a[(size_t)i] + y[(size_t)i];
      ok &= std::fabs(yy[(size_t)i] - want) <= 1.2e-7 * (std::fabs((double)alpha * a[(size_t)i]) + std::fabs(y[(size_t)i]));
    }
    check(ok, name + " axpy" + at);
  }
  std::vector<uint16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = (uint16_t)i;
  std::vector<float> out(all.size() + 1, 777.f);
  f->f16_to_f32(all.data(), out.data(), (int64_t)all.size() - 3);  // odd length: the tail path
  f->f16_to_f32(all.data() + all.size() - 3, out.data() + all.size() - 3, 3);
  check(out[all.size()] == 777.f, name + " f16_to_f32 wrote past the end");
  int bad = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const float want = f16_to_f32(all[i]);
    uint32_t gb, wb;
    std::memcpy(&gb, &out[i], 4);
    std::memcpy(&wb, &want, 4);
    if (std::isnan(want) ? !std::isnan(out[i]) : gb != wb) ++bad;
  }
  check(bad == 0, name + " f16_to_f32: " + std::to_string(bad) + " of 65536 wrong");
}

// The four-row kernel and the GEMM tiles of a variant, where it has them.
struct Tiles {
  VecDot4Fn (*dot4_for)(DType);
  GemmFn (*gemm_for)(DType);
};
Tiles tiles_of(const IsaVariant& var) {
  const std::string n = var.name;
#if defined(__x86_64__) || defined(__i386__)
  if (n == "avx2") return {avx2::vec_dot4_for, avx2::gemm_for};
  if (n == "avx512") return {avx512::vec_dot4_for, avx512::gemm_for};
#elif defined(__aarch64__)
  if (n == "neon") return {neon::vec_dot4_for, neon::gemm_for};
  if (n == "neon_dotprod") return {neon_dotprod::vec_dot4_for, neon_dotprod::gemm_for};
#endif
  return {nullptr, nullptr};
}

// The four-row kernel and every GEMM tile must give each (weight row, token) bit for bit what
// the variant's one-row kernel gives (a token's logits must not depend on its batch), over
// ragged tiles and odd and long K, writing nothing outside rows x cols.
void check_tiles(const IsaVariant& var) {
  const Tiles tiles = tiles_of(var);
  if (!tiles.dot4_for) return;  // scalar
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(-3.f, 3.f);
  const std::string name = var.name;
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K,
                  DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS}) {
    const VecDotFn one = var.vec_dot_for(t);
    const VecDot4Fn four = tiles.dot4_for(t);
    const GemmFn gemm = tiles.gemm_for(t);
    check(four && gemm, name + " has no four-row kernel or GEMM for " + dtype_name(t));
    if (!one || !four || !gemm) continue;
    if (&var == &active_isa()) {  // the dispatcher pairs them with this variant's one-row kernel
      check(vec_dot_for(t) == one && vec_dot4_for(t) == four, name + " four-row kernel not dispatched for " + dtype_name(t));
      const char* off = std::getenv("OSPREY_GEMM");
      check(gemm_for(t) == ((off && std::strcmp(off, "0") == 0) ? nullptr : gemm),
            name + " GEMM not dispatched for " + dtype_name(t));
    }
    const ActQuant aq = act_quant_for(t);
    const int64_t bs = aq == ActQuant::Q8_K ? 256 : 32;
    for (int64_t blocks : {1, 2, 3, 7, 33}) {
      const int64_t K = blocks * bs;
      const size_t ws = (size_t)dtype_row_bytes(t, K), xs = act_row_bytes(aq, K);
      for (int64_t rows : {1, 2, 3, 5}) {
        std::vector<uint8_t> w;
        for (int64_t r = 0; r < rows; ++r) {
          const auto row = random_row(t, K, rng);
          w.insert(w.end(), row.begin(), row.end());
        }
        for (int64_t cols : {1, 3, 4, 5, 9}) {
          std::vector<uint8_t> xq(xs * (size_t)cols);
          for (int64_t c = 0; c < cols; ++c) {
            std::vector<float> x((size_t)K);
            for (float& e : x) e = d(rng);
            quantize_act_row(aq, x.data(), xq.data() + (size_t)c * xs, K);
          }
          const int64_t ldy = rows + 2;
          std::vector<float> y((size_t)(ldy * cols), -777.f);
          gemm(w.data(), ws, rows, xq.data(), xs, cols, K, y.data(), ldy);
          bool ok = true, untouched = true;
          for (int64_t c = 0; c < cols; ++c)
            for (int64_t r = 0; r < ldy; ++r) {
              const float got = y[(size_t)(c * ldy + r)];
              if (r >= rows) untouched &= got == -777.f;
              else ok &= same_bits(got, one(w.data() + (size_t)r * ws, xq.data() + (size_t)c * xs, K));
            }
          const std::string at = name + " " + dtype_name(t) + " K=" + std::to_string(K) + " rows=" +
                                 std::to_string(rows) + " cols=" + std::to_string(cols);
          check(ok, at + ": GEMM differs from the one-row kernel");
          check(untouched, at + ": GEMM wrote outside its rows");
          if (cols >= 4 && rows == 1) {
            float out[4];
            four(w.data(), xq.data(), xs, K, out);
            bool same4 = true;
            for (int c = 0; c < 4; ++c) same4 &= same_bits(out[c], one(w.data(), xq.data() + (size_t)c * xs, K));
            check(same4, at + ": four-row kernel differs from the one-row kernel");
          }
        }
      }
    }
  }
}

// The packed-weight layouts (packed_gemm.h) of a variant, where it has them.
using PackedTable = const PackedFormat* (*)(DType);
PackedTable packed_table_of(const IsaVariant& var) {
  const std::string n = var.name;
  if (n == "scalar") return scalar::packed_format_for;
#if defined(__x86_64__) || defined(__i386__)
  if (n == "avx2") return avx2::packed_format_for;
  if (n == "avx512") return avx512::packed_format_for;
#elif defined(__aarch64__)
  if (n == "neon") return neon::packed_format_for;
  if (n == "neon_dotprod") return neon_dotprod::packed_format_for;
#endif
  return nullptr;
}

// groups x 16 weight rows packed by `f` (the pack is shared, so any table's will do), and
// `cols` activation rows, with padded strides so that they count.
struct PackedProblem {
  int64_t K, groups, cols;
  std::vector<uint8_t> w, packed, xq;
  size_t x_stride;
  int64_t ldy;
};
PackedProblem packed_problem(DType t, const PackedFormat* f, int64_t K, int64_t groups, int64_t cols, std::mt19937& rng,
                             int extreme = -1) {
  PackedProblem p{K, groups, cols, {}, {}, {}, act_row_bytes(f->act, K) + 40, groups * kPackRows + 3};
  const size_t wrow = (size_t)dtype_row_bytes(t, K);
  for (int64_t r = 0; r < groups * kPackRows; ++r) {
    // Extreme codes: every byte but the float scales at one end, alternating by row: codes
    // at 0 or their top (15, 31, 63, 3 / 7), 6-bit scales and minimums 0 or 63, IQ4 levels
    // -127 / 113 and scales -32 / 31; Q8_0 -128 / 127.
    const int fill = extreme < 0 ? -1 : t == DType::Q8_0 ? (r % 2 ? 0x7F : 0x80) : (r % 2 ? 0xFF : 0x00);
    const std::vector<uint8_t> row = random_row(t, K, rng, fill);
    p.w.insert(p.w.end(), row.begin(), row.end());
  }
  p.packed.resize(f->group_bytes(K) * (size_t)groups);
  for (int64_t g = 0; g < groups; ++g)
    f->pack(p.w.data() + (size_t)g * kPackRows * wrow, wrow, K, p.packed.data() + (size_t)g * f->group_bytes(K));
  p.xq.assign(p.x_stride * (size_t)cols, 0);
  std::uniform_real_distribution<float> d(-2.f, 2.f);
  std::vector<float> x((size_t)K);
  for (int64_t c = 0; c < cols; ++c) {
    for (size_t k = 0; k < x.size(); ++k)
      x[k] = extreme < 0 ? d(rng) : (c + extreme) % 3 == 0 ? 1.f : (c + extreme) % 3 == 1 ? -1.f : (k % 3 ? 1.f : -1.f);
    quantize_act_row(f->act, x.data(), p.xq.data() + (size_t)c * p.x_stride, K);
  }
  return p;
}

std::vector<float> run_packed(const PackedProblem& p, const PackedFormat* f) {
  std::vector<float> y((size_t)(p.ldy * p.cols), -777.f);
  f->gemm(p.packed.data(), p.groups, p.xq.data(), p.x_stride, p.cols, p.K, y.data(), p.ldy);
  return y;
}

// The activation codes stay within -127..127 whatever the input (-128 never appears): the
// SIMD products rely on it (neon_helpers.h sums pairs of byte products in 16 bits).
void check_act_codes_symmetric() {
  const int64_t K = 256 * 4;
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> x((size_t)K);
  for (int64_t i = 0; i < K; ++i) {
    const int64_t blk = i / 32;  // a different kind of block every 32 elements
    const float v = d(rng);
    x[(size_t)i] = blk % 8 == 0 ? -1.f : blk % 8 == 1 ? v * 3e38f : blk % 8 == 2 ? -3.4e38f
                 : blk % 8 == 3 ? v * 1e-40f : blk % 8 == 4 ? (i % 2 ? -INFINITY : v)
                 : blk % 8 == 5 ? (i % 3 ? NAN : -v) : blk % 8 == 6 ? -127.5f + (float)(i % 2) : v;
  }
  for (ActQuant q : {ActQuant::Q8_32, ActQuant::Q8_32_ISUM, ActQuant::Q8_K}) {
    std::vector<uint8_t> out(act_row_bytes(q, K));
    for (int simd = 0; simd < 2; ++simd) {
      (simd ? quantize_act_row_simd : quantize_act_row)(q, x.data(), out.data(), K);
      int low = 0;
      const int64_t bs = q == ActQuant::Q8_K ? 256 : 32;
      for (int64_t b = 0; b < K / bs; ++b) {
        const int8_t* qs = q == ActQuant::Q8_K ? ((const block_q8_K*)out.data())[b].qs
                           : q == ActQuant::Q8_32 ? ((const block_q8_act*)out.data())[b].qs
                                                  : ((const block_q8_act_isum*)out.data())[b].qs;
        for (int64_t j = 0; j < bs; ++j) low = std::min(low, (int)qs[j]);
      }
      check(low >= -127, "activation code " + std::to_string(low) + " for act " + std::to_string((int)q) +
                             (simd ? " (simd)" : ""));
    }
  }
}

// The scalar order against the exact dot of the dequantized operands (it checks this target's
// pack), and every SIMD variant's products bit for bit against the scalar order, over ragged
// column tiles, several groups, odd and long K and extreme codes, writing nothing else.
void check_packed(const IsaVariant& var) {
  const PackedTable table = packed_table_of(var);
  if (!table) return;
  const std::string name = var.name;
  const bool scalar_order = table == scalar::packed_format_for;
  std::mt19937 rng(13);
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K,
                  DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS}) {
    const PackedFormat* ref = scalar::packed_format_for(t);
    const PackedFormat* f = table(t);
    check(f != nullptr || ref == nullptr, name + " has no packed " + dtype_name(t));  // every ISA has every layout
    if (!ref || !f) continue;
    if (&var == &active_isa() && !scalar_order) {
      const char* off = std::getenv("OSPREY_REPACK");
      check(packed_format_for(t) == ((off && std::strcmp(off, "0") == 0) ? nullptr : f),
            name + " packed " + dtype_name(t) + " not dispatched");
    }
    check(f->act == ref->act && f->group_bytes(512) == ref->group_bytes(512), name + " packed layout differs");
    const int64_t bs = dtype_traits(t)->block_elems;
    if (scalar_order) {
      if (t == DType::Q4_0) check_act_codes_symmetric();
      for (int64_t blocks : {1, 3, 8}) {
        const PackedProblem p = packed_problem(t, f, blocks * bs, 2, 3, rng);
        const std::vector<float> y = run_packed(p, f);
        const size_t wrow = (size_t)dtype_row_bytes(t, p.K);
        std::vector<float> wf((size_t)p.K);
        bool ok = true;
        for (int64_t c = 0; c < p.cols; ++c) {
          const std::vector<double> xa = dequant_act(f->act == ActQuant::Q8_K ? ActQuant::Q8_K : ActQuant::Q8_32,
                                                     p.xq.data() + (size_t)c * p.x_stride, p.K);
          for (int64_t r = 0; r < p.groups * kPackRows; ++r) {
            dequantize_row(t, p.w.data() + (size_t)r * wrow, wf.data(), p.K);
            double exact = 0, mag = 0;
            for (int64_t k = 0; k < p.K; ++k)
              exact += wf[(size_t)k] * xa[(size_t)k], mag += std::fabs(wf[(size_t)k] * xa[(size_t)k]);
            ok &= std::fabs(y[(size_t)(c * p.ldy + r)] - exact) <= 1e-5 * mag + 1e-30;
          }
        }
        check(ok, name + " packed " + dtype_name(t) + " K=" + std::to_string(p.K) + " differs from the exact dot");
      }
      continue;
    }
    for (int64_t blocks : {int64_t{1}, int64_t{3}, int64_t{7}, 4096 / bs + 1})
      for (int64_t groups : {1, 3})
        for (int64_t cols : {1, 2, 3, 4, 5, 7, 8, 13}) {
          if (blocks > 7 && groups > 1 && cols > 5) continue;  // long K: a few shapes are enough
          const PackedProblem p = packed_problem(t, f, blocks * bs, groups, cols, rng);
          const std::vector<float> want = run_packed(p, ref), got = run_packed(p, f);
          check(std::memcmp(want.data(), got.data(), want.size() * 4) == 0,
                name + " packed " + dtype_name(t) + " K=" + std::to_string(p.K) + " groups=" + std::to_string(groups) +
                    " cols=" + std::to_string(cols) + " differs from the scalar order");
        }
    for (int extreme : {0, 1, 2}) {
      const PackedProblem p = packed_problem(t, f, 2 * 256, 2, 3, rng, extreme);
      const std::vector<float> want = run_packed(p, ref), got = run_packed(p, f);
      check(std::memcmp(want.data(), got.data(), want.size() * 4) == 0,
            name + " packed " + dtype_name(t) + " extreme codes " + std::to_string(extreme) + " differ from the scalar order");
    }
  }
}

void bench(int64_t rows) {
  const int64_t K = 4096;
  std::mt19937 rng(7);
  std::printf("%-5s", "type");
  for (const IsaVariant& v : isa_variants())
    if (v.usable()) std::printf(" %14s", v.name);
  std::printf("   (ns per 4096-element row dot, %lld rows, best of 5)\n", (long long)rows);
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K,
                  DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS}) {
    std::vector<uint8_t> w;
    for (int64_t r = 0; r < rows; ++r) {
      const auto row = random_row(t, K, rng);
      w.insert(w.end(), row.begin(), row.end());
    }
    const size_t row_bytes = w.size() / (size_t)rows;
    const ActQuant aq = act_quant_for(t);
    std::vector<float> x((size_t)K);
    std::uniform_real_distribution<float> d(-1.f, 1.f);
    for (float& v : x) v = d(rng);
    std::vector<uint8_t> xq(act_row_bytes(aq, K));
    quantize_act_row(aq, x.data(), xq.data(), K);
    std::vector<double> best;
    std::vector<VecDotFn> fns;
    for (const IsaVariant& v : isa_variants())
      if (v.usable()) fns.push_back(v.vec_dot_for(t));
    best.assign(fns.size(), 1e30);
    volatile float sink = 0;
    for (int rep = 0; rep < 5; ++rep)
      for (size_t f = 0; f < fns.size(); ++f) {
        const auto t0 = std::chrono::steady_clock::now();
        float acc = 0;
        for (int64_t r = 0; r < rows; ++r) acc += fns[f](w.data() + (size_t)r * row_bytes, xq.data(), K);
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        sink = sink + acc;
        if (ms < best[f]) best[f] = ms;
      }
    std::printf("%-5s", dtype_name(t));
    for (double ms : best) std::printf(" %14.1f", ms * 1e6 / (double)rows);
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> required;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--require") == 0 && i + 1 < argc) required.push_back(argv[++i]);
    else if (std::strcmp(argv[i], "--bench") == 0) {  // --bench [ROWS]
      bench(i + 1 < argc ? std::atoll(argv[i + 1]) : 4096);
      return 0;
    } else {
      std::fprintf(stderr, "usage: %s [--require VARIANT]... | --bench\n", argv[0]);
      return 2;
    }
  }
  return osprey::testing::run_on_variants(required, [](const IsaVariant& v) {
    check_dots(v);
    check_f32(v);
    check_tiles(v);
    check_packed(v);
  });
}
