// Portable integer dot products: the reference the SIMD variants must reproduce, and the
// fallback on CPUs without them. Integer sums per block, then one float multiply per block.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "kernels/base/fp16.h"
#include "kernels/cpu/quant_dot.h"

namespace osprey::kernels {
namespace {

template <class B>
B load(const void* p, int64_t i) {
  B b;
  std::memcpy(&b, (const uint8_t*)p + i * (int64_t)sizeof(B), sizeof(B));
  return b;
}

inline int q4_0_level(int n) { return n - 8; }
inline int iq4_level(int n) { return osprey_iq4nl_values[n]; }

// 32 elements from 16 bytes of nibbles (low nibbles elements 0..15, high 16..31), each mapped
// to its signed level, dotted with y.
template <int (*kLevel)(int)>
int nibble_dot(const uint8_t* qs, const int8_t* y) {
  int isum = 0;
  for (int j = 0; j < 16; ++j) isum += kLevel(qs[j] & 15) * y[j] + kLevel(qs[j] >> 4) * y[j + 16];
  return isum;
}

// Q4_0 and IQ4_NL: one block of nibbles, levels nibble - 8 or the IQ4_NL table entry.
template <class B, int (*kLevel)(int)>
float dot_nibbles(const void* w, const void* xv, int64_t K) {
  const auto* x = (const block_q8_act*)xv;
  float sum = 0;
  for (int64_t i = 0; i < K / 32; ++i) {
    const auto b = load<B>(w, i);
    sum += f16_to_f32(b.d) * x[i].d * (float)nibble_dot<kLevel>(b.qs, x[i].qs);
  }
  return sum;
}

float dot_q4_1(const void* w, const void* xv, int64_t K) {
  const auto* x = (const block_q8_act*)xv;
  float sum = 0;
  for (int64_t i = 0; i < K / 32; ++i) {
    const auto b = load<block_q4_1>(w, i);
    int isum = 0;
    for (int j = 0; j < 16; ++j) isum += (b.qs[j] & 15) * x[i].qs[j] + (b.qs[j] >> 4) * x[i].qs[j + 16];
    sum += f16_to_f32(b.d) * x[i].d * (float)isum + f16_to_f32(b.m) * x[i].s;
  }
  return sum;
}

template <class B, bool kHasMin>
float dot_q5(const void* w, const void* xv, int64_t K) {
  const auto* x = (const block_q8_act*)xv;
  float sum = 0;
  for (int64_t i = 0; i < K / 32; ++i) {
    const auto b = load<B>(w, i);
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    const int offset = kHasMin ? 0 : 16;
    int isum = 0;
    for (int j = 0; j < 16; ++j) {
      const int lo = ((b.qs[j] & 15) | (((qh >> j) & 1) << 4)) - offset;
      const int hi = ((b.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - offset;
      isum += lo * x[i].qs[j] + hi * x[i].qs[j + 16];
    }
    sum += f16_to_f32(b.d) * x[i].d * (float)isum;
    if constexpr (kHasMin) sum += f16_to_f32(b.m) * x[i].s;
  }
  return sum;
}

float dot_q8_0(const void* w, const void* xv, int64_t K) {
  const auto* x = (const block_q8_act*)xv;
  float sum = 0;
  for (int64_t i = 0; i < K / 32; ++i) {
    const auto b = load<block_q8_0>(w, i);
    int isum = 0;
    for (int j = 0; j < 32; ++j) isum += b.qs[j] * x[i].qs[j];
    sum += f16_to_f32(b.d) * x[i].d * (float)isum;
  }
  return sum;
}

// IQ4_XS: eight 32-element sub-blocks of IQ4_NL levels, each with a signed 6-bit scale.
float dot_iq4_xs(const void* w, const void* xv, int64_t K) {
  const auto* x = (const block_q8_K*)xv;
  float sum = 0;
  for (int64_t i = 0; i < K / 256; ++i) {
    const auto b = load<block_iq4_xs>(w, i);
    int total = 0;
    for (int sub = 0; sub < 8; ++sub)
      total += osprey_iq4xs_scale(&b, sub) * nibble_dot<iq4_level>(b.qs + 16 * sub, x[i].qs + 32 * sub);
    sum += x[i].d * f16_to_f32(b.d) * (float)total;
  }
  return sum;
}

// Q2_K / Q3_K: sixteen 16-element sub-blocks; element e's 2-bit low part sits at bit shift
// 2 * ((e % 128) / 32) of qs[(e / 128) * 32 + e % 32] (kernels/dequant.cpp).
inline int low2(const uint8_t* qs, int e) { return (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

float dot_q2_K(const void* w, const void* xv, int64_t K) {
  const auto* x = (const block_q8_K*)xv;
  float sum = 0;
  for (int64_t i = 0; i < K / 256; ++i) {
    const auto b = load<block_q2_K>(w, i);
    int scaled = 0, mins = 0;
    for (int sub = 0; sub < 16; ++sub) {
      int isum = 0;
      for (int e = sub * 16; e < sub * 16 + 16; ++e) isum += low2(b.qs, e) * x[i].qs[e];
      scaled += (b.scales[sub] & 15) * isum;
      mins += (b.scales[sub] >> 4) * x[i].bsums[sub];
    }
    sum += x[i].d * (f16_to_f32(b.d) * (float)scaled - f16_to_f32(b.dmin) * (float)mins);
  }
  return sum;
}

float dot_q3_K(const void* w, const void* xv, int64_t K) {
  const auto* x = (const block_q8_K*)xv;
  float sum = 0;
  for (int64_t i = 0; i < K / 256; ++i) {
    const auto b = load<block_q3_K>(w, i);
    int scales[16];
    osprey_q3k_scales(b.scales, scales);
    int total = 0;
    for (int sub = 0; sub < 16; ++sub) {
      int isum = 0;
      for (int e = sub * 16; e < sub * 16 + 16; ++e) {
        const int high = (b.hmask[e % 32] >> (e / 32)) & 1;  // clear: subtract 4
        isum += (low2(b.qs, e) - 4 * (1 - high)) * x[i].qs[e];
      }
      total += scales[sub] * isum;
    }
    sum += x[i].d * f16_to_f32(b.d) * (float)total;
  }
  return sum;
}

// Q4_K, and Q5_K: the same plus a fifth bit per element (bit sub of qh[l]).
template <class B>
float dot_q45_K(const void* w, const void* xv, int64_t K) {
  const auto* x = (const block_q8_K*)xv;
  float sum = 0;
  for (int64_t i = 0; i < K / 256; ++i) {
    const auto b = load<B>(w, i);
    int scaled = 0, mins = 0;
    for (int sub = 0; sub < 8; ++sub) {
      int sc, m;
      osprey_k4_scale_min(sub, b.scales, &sc, &m);
      const uint8_t* q = b.qs + (sub / 2) * 32;
      const int shift = (sub % 2) * 4;
      int isum = 0;
      for (int l = 0; l < 32; ++l) {
        int v = (q[l] >> shift) & 15;
        if constexpr (std::is_same_v<B, block_q5_K>) v |= ((b.qh[l] >> sub) & 1) << 4;
        isum += v * x[i].qs[sub * 32 + l];
      }
      scaled += sc * isum;
      mins += m * (x[i].bsums[2 * sub] + x[i].bsums[2 * sub + 1]);
    }
    sum += x[i].d * (f16_to_f32(b.d) * (float)scaled - f16_to_f32(b.dmin) * (float)mins);
  }
  return sum;
}

float dot_q6_K(const void* w, const void* xv, int64_t K) {
  const auto* x = (const block_q8_K*)xv;
  float sum = 0;
  for (int64_t i = 0; i < K / 256; ++i) {
    const auto b = load<block_q6_K>(w, i);
    int isum[16] = {};
    for (int e = 0; e < 256; ++e) {
      const int half = e / 128, g = (e % 128) / 32, l = e % 32;
      const uint8_t ql = b.ql[half * 64 + (g % 2) * 32 + l];
      const int lo = (g < 2) ? (ql & 15) : (ql >> 4);
      const int hi = (b.qh[half * 32 + l] >> (2 * g)) & 3;
      isum[e / 16] += ((lo | (hi << 4)) - 32) * x[i].qs[e];
    }
    int total = 0;
    for (int s = 0; s < 16; ++s) total += b.scales[s] * isum[s];
    sum += x[i].d * f16_to_f32(b.d) * (float)total;
  }
  return sum;
}

}  // namespace

ActQuant act_quant_for(DType w) {
  switch (w) {
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0: case DType::IQ4_NL:
      return ActQuant::Q8_32;
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: case DType::IQ4_XS:
      return ActQuant::Q8_K;
    default:
      return ActQuant::NONE;
  }
}

size_t act_row_bytes(ActQuant q, int64_t K) {
  switch (q) {
    case ActQuant::Q8_32: return (size_t)(K / 32) * sizeof(block_q8_act);
    case ActQuant::Q8_32_ISUM: return (size_t)(K / 32) * sizeof(block_q8_act_isum);
    case ActQuant::Q8_K: return (size_t)(K / 256) * sizeof(block_q8_K);
    case ActQuant::NONE: break;
  }
  return 0;
}

void quantize_act_row(ActQuant q, const float* x, void* dst, int64_t K) {
  const int64_t bs = q == ActQuant::Q8_K ? 256 : 32;
  for (int64_t i = 0; i < K / bs; ++i) {
    const float* xb = x + i * bs;
    float amax = 0;
    for (int64_t j = 0; j < bs; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.f, id = d > 0 ? 1.f / d : 0.f;
    int8_t* qs;
    if (q == ActQuant::Q8_K) {
      auto* b = (block_q8_K*)dst + i;
      b->d = d;
      qs = b->qs;
    } else {
      auto* b = (block_q8_act*)dst + i;
      b->d = d;
      qs = b->qs;
    }
    int sum = 0;
    for (int64_t j = 0; j < bs; ++j) sum += qs[j] = (int8_t)std::lround(xb[j] * id);
    if (q == ActQuant::Q8_K) {
      auto* b = (block_q8_K*)dst + i;
      for (int g = 0; g < 16; ++g) {
        int s = 0;
        for (int j = 0; j < 16; ++j) s += qs[g * 16 + j];
        b->bsums[g] = (int16_t)s;
      }
    } else if (q == ActQuant::Q8_32_ISUM) {
      ((block_q8_act_isum*)dst + i)->isum = sum;  // d and qs sit where block_q8_act has them
    } else {
      ((block_q8_act*)dst + i)->s = d * (float)sum;
    }
  }
}

namespace scalar {
namespace {
float dot_f32(const float* a, const float* b, int64_t n) {
  float s[4] = {0, 0, 0, 0};  // four chains: the compiler may vectorise, and it rounds better
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int k = 0; k < 4; ++k) s[k] += a[i + k] * b[i + k];
  for (; i < n; ++i) s[0] += a[i] * b[i];
  return (s[0] + s[1]) + (s[2] + s[3]);
}
void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}
void f16_row(const uint16_t* h, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(h[i]);
}

float dot_f16(const uint16_t* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += f16_to_f32(w[i]) * x[i];
  return s;
}

float dot_bf16(const uint16_t* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += bf16_to_f32(w[i]) * x[i];
  return s;
}
}  // namespace

const VecF32& vec_f32() {
  static const VecF32 v{dot_f32, axpy, f16_row, dot_f16, dot_bf16};
  return v;
}

VecDotFn vec_dot_for(DType w) {
  switch (w) {
    case DType::Q4_0: return dot_nibbles<block_q4_0, q4_0_level>;
    case DType::Q4_1: return dot_q4_1;
    case DType::Q5_0: return dot_q5<block_q5_0, false>;
    case DType::Q5_1: return dot_q5<block_q5_1, true>;
    case DType::Q8_0: return dot_q8_0;
    case DType::Q2_K: return dot_q2_K;
    case DType::Q3_K: return dot_q3_K;
    case DType::Q4_K: return dot_q45_K<block_q4_K>;
    case DType::Q5_K: return dot_q45_K<block_q5_K>;
    case DType::Q6_K: return dot_q6_K;
    case DType::IQ4_NL: return dot_nibbles<block_iq4_nl, iq4_level>;
    case DType::IQ4_XS: return dot_iq4_xs;
    default: return nullptr;
  }
}
}  // namespace scalar

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return has;
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
                          __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return has;
#else
  return false;
#endif
}

bool cpu_has_dotprod() {
#if defined(__aarch64__) && defined(__linux__)
  static const bool has = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
  return has;
#else
  return false;
#endif
}

namespace {
const VecF32* scalar_f32() { return &scalar::vec_f32(); }

// Built once, on first use (the cpuid answers are cached there too).
std::span<const IsaVariant> variants() {
  static const IsaVariant v[] = {
      {"scalar", true, true, scalar::vec_dot_for, scalar_f32},
#if defined(__x86_64__) || defined(__i386__)
      {"avx2", avx2::built(), cpu_has_avx2(), avx2::vec_dot_for, avx2::vec_f32},
      {"avx512", avx512::built(), cpu_has_avx512(), avx512::vec_dot_for, avx512::vec_f32},
#elif defined(__aarch64__)
      {"neon", neon::built(), true, neon::vec_dot_for, neon::vec_f32},  // Advanced SIMD is baseline
      {"neon_dotprod", neon_dotprod::built(), cpu_has_dotprod(), neon_dotprod::vec_dot_for, neon_dotprod::vec_f32},
#endif
  };
  return v;
}

size_t active_index() {
  static const size_t idx = [] {
    const auto v = variants();
    size_t cap = v.size() - 1;
    if (const char* want = std::getenv("OSPREY_CPU_ISA"); want && *want) {
      size_t i = 0;
      while (i < v.size() && std::strcmp(want, v[i].name) != 0) ++i;
      if (i < v.size()) {
        cap = i;
      } else {
        std::fprintf(stderr, "osprey: OSPREY_CPU_ISA=%s is not one of", want);
        for (const auto& e : v) std::fprintf(stderr, " %s", e.name);
        std::fprintf(stderr, "; ignored\n");
      }
    }
    size_t best = 0;
    for (size_t i = 1; i <= cap; ++i)
      if (v[i].usable()) best = i;
    return best;
  }();
  return idx;
}
}  // namespace

std::span<const IsaVariant> isa_variants() { return variants(); }

const IsaVariant& active_isa() { return variants()[active_index()]; }

const VecF32& vec_f32() {
  // Each primitive from the best variant that has it (a variant may leave one null).
  static const VecF32 v = [] {
    VecF32 r{};
    const auto vars = variants();
    for (size_t i = active_index() + 1; i-- > 0;) {
      const VecF32* f = vars[i].usable() ? vars[i].vec_f32() : nullptr;
      if (!f) continue;
      if (!r.dot) r.dot = f->dot;
      if (!r.axpy) r.axpy = f->axpy;
      if (!r.f16_to_f32) r.f16_to_f32 = f->f16_to_f32;
      if (!r.dot_f16) r.dot_f16 = f->dot_f16;
      if (!r.dot_bf16) r.dot_bf16 = f->dot_bf16;
    }
    return r;
  }();
  return v;
}

VecDot4Fn vec_dot4_for(DType w) {
  // A four-row kernel must give each row bit for bit what the one-row kernel gives, or a
  // token's logits would depend on what else is in its batch; so it comes only from the
  // variant whose one-row kernel is in use for this type.
  const VecDotFn one = vec_dot_for(w);
  if (!one) return nullptr;
#if defined(__x86_64__) || defined(__i386__)
  if (avx512::built() && cpu_has_avx512() && one == avx512::vec_dot_for(w)) return avx512::vec_dot4_for(w);
  if (avx2::built() && cpu_has_avx2() && one == avx2::vec_dot_for(w)) return avx2::vec_dot4_for(w);
#elif defined(__aarch64__)
  if (neon_dotprod::built() && cpu_has_dotprod() && one == neon_dotprod::vec_dot_for(w))
    return neon_dotprod::vec_dot4_for(w);
  if (neon::built() && one == neon::vec_dot_for(w)) return neon::vec_dot4_for(w);
#endif
  return nullptr;
}

GemmFn gemm_for(DType w) {
  // Same pairing rule as the four-row kernels: only the variant whose one-row path is in use.
  static const bool off = [] {
    const char* e = std::getenv("OSPREY_GEMM");
    return e && std::strcmp(e, "0") == 0;
  }();
  if (off) return nullptr;
  if (w == DType::F16 || w == DType::BF16) {  // every variant gives gemm_float_reference's bits
    const char* isa = active_isa().name;
#if defined(__x86_64__) || defined(__i386__)
    if (std::strcmp(isa, "avx512") == 0) return avx512::float_gemm_for(w);
    if (std::strcmp(isa, "avx2") == 0) return avx2::float_gemm_for(w);
#elif defined(__aarch64__)
    if (std::strcmp(isa, "neon_dotprod") == 0) return neon_dotprod::float_gemm_for(w);
    if (std::strcmp(isa, "neon") == 0) return neon::float_gemm_for(w);
#endif
    return scalar::float_gemm_for(w);
  }
#if defined(__x86_64__) || defined(__i386__)
  const VecDotFn one = vec_dot_for(w);
  if (!one) return nullptr;
  if (avx512::built() && cpu_has_avx512() && one == avx512::vec_dot_for(w)) return avx512::gemm_for(w);
  if (avx2::built() && cpu_has_avx2() && one == avx2::vec_dot_for(w)) return avx2::gemm_for(w);
#elif defined(__aarch64__)
  const VecDotFn one = vec_dot_for(w);
  if (!one) return nullptr;
  if (neon_dotprod::built() && cpu_has_dotprod() && one == neon_dotprod::vec_dot_for(w))
    return neon_dotprod::gemm_for(w);
  if (neon::built() && one == neon::vec_dot_for(w)) return neon::gemm_for(w);
#endif
  return nullptr;
}

VecDotFn vec_dot_for(DType w) {
  // Best first; a variant without a kernel for this type hands over to the next one down.
  const auto v = variants();
  for (size_t i = active_index() + 1; i-- > 0;)
    if (v[i].usable())
      if (VecDotFn f = v[i].vec_dot_for(w)) return f;
  return nullptr;
}

}  // namespace osprey::kernels
