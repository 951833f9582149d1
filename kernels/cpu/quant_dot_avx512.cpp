// AVX-512 (F, BW, VL) + VNNI integer dot products; this file alone is built with those flags
// and the dispatcher only calls it on CPUs that have all four. Each kernel reproduces
// quant_dot_scalar.cpp exactly in integers (same per-block integer sums), accumulating the
// scaled block sums in float.
//
// The 32-element formats take two blocks per 512-bit step. vpdpbusd multiplies unsigned by
// signed bytes without saturating, so the weights are fed unsigned (nibble, nibble + 16,
// q8 + 128, IQ4_NL level + 128) and the offset is taken back out as offset * sum(x), itself
// one vpdpbusd of a constant with x: exact for every input. The K-quants (and IQ4_XS) are in
// kquant_dot_avx512.cpp.
#include <cstring>

#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/kquant_dot.h"
#include "kernels/cpu/kquant_low_dot.h"
#include "kernels/cpu/quant_dot.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#include "kernels/cpu/avx512_intrin.h"

#include "kernels/cpu/x86_helpers.h"

namespace osprey::kernels::avx512 {
namespace {

// The 32 activation bytes of blocks x[0] and x[1], in that order.
inline __m512i load_x2(const block_q8_act* x0, const block_q8_act* x1) {
  const __m256i a = _mm256_loadu_si256((const __m256i*)x0->qs);
  const __m256i b = _mm256_loadu_si256((const __m256i*)x1->qs);
  return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

// 2 x 32 nibbles: bytes 0..15 = low nibbles of p0's 16 bytes (elements 0..15), 16..31 their
// high nibbles (elements 16..31), then the same for p1.
inline __m512i nibbles2(const uint8_t* p0, const uint8_t* p1) {
  const __m256i v = _mm256_set_m128i(_mm_loadu_si128((const __m128i*)p1), _mm_loadu_si128((const __m128i*)p0));
  const __m512i vv = _mm512_castsi256_si512(v);
  const __m512i dup = _mm512_shuffle_i64x2(vv, vv, 0x50);  // 128-bit lanes [p0, p0, p1, p1]
  const __m512i shifted = _mm512_srlv_epi64(dup, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0));
  return _mm512_and_si512(shifted, _mm512_set1_epi8(0x0F));
}

inline __mmask64 qh_mask2(const uint8_t* qh0, const uint8_t* qh1) {
  uint32_t a, b;
  std::memcpy(&a, qh0, 4);
  std::memcpy(&b, qh1, 4);
  return (__mmask64)a | ((__mmask64)b << 32);
}

// Two blocks' weights as unsigned bytes (lanes 0..31 block b0, 32..63 b1) and the offset
// to take back out (step2 subtracts offset * sum(x) per dword).
struct Decoded2 {
  __m512i u;
  uint8_t offset;
};
inline Decoded2 decode2(const block_q4_0& b0, const block_q4_0& b1) { return {nibbles2(b0.qs, b1.qs), 8}; }
inline Decoded2 decode2(const block_q4_1& b0, const block_q4_1& b1) { return {nibbles2(b0.qs, b1.qs), 0}; }
inline Decoded2 decode2(const block_q5_0& b0, const block_q5_0& b1) {
  const __m512i q = nibbles2(b0.qs, b1.qs);
  return {_mm512_mask_add_epi8(q, qh_mask2(b0.qh, b1.qh), q, _mm512_set1_epi8(16)), 16};
}
inline Decoded2 decode2(const block_q5_1& b0, const block_q5_1& b1) {
  const __m512i q = nibbles2(b0.qs, b1.qs);
  return {_mm512_mask_add_epi8(q, qh_mask2(b0.qh, b1.qh), q, _mm512_set1_epi8(16)), 0};
}
inline Decoded2 decode2(const block_q8_0& b0, const block_q8_0& b1) {
  const __m256i a = _mm256_loadu_si256((const __m256i*)b0.qs);
  const __m256i b = _mm256_loadu_si256((const __m256i*)b1.qs);
  const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
  return {_mm512_xor_si512(q, _mm512_set1_epi8((char)0x80)), 0x80};  // q + 128
}

inline Decoded2 decode2(const block_iq4_nl& b0, const block_iq4_nl& b1) {
  return {_mm512_shuffle_epi8(_mm512_broadcast_i32x4(iq4_levels_plus128()), nibbles2(b0.qs, b1.qs)), 0x80};
}

template <class B>
constexpr bool kHasMin = requires(const B& b) { b.m; };

// Two f16 values converted together: lanes 0, 1 (2, 3 zero).
inline __m128 f16x2(uint16_t a, uint16_t b) {
  return _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)a | (uint32_t)b << 16)));
}

// Float lanes 0..7 = lane 0 of v, 8..15 = lane 1.
inline __m512 halves(__m128 v) {
  return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                               _mm512_castps128_ps512(v));
}

// Blocks i and j (j == i for an odd tail, with its activation scale zeroed) of R weight rows
// against C activation rows, each pair into its own accumulator. Weights are decoded once per
// row, activations loaded once per column; every (row, column) pair sees the same float
// operations whatever R and C are, so a register tile gives each pair bit for bit what the
// one-row kernel gives. The weight-min terms m * s of Q4_1/Q5_1 go to lanes 0, 1 of mins.
// The scale product dw * dx is one rounding either way: a single column (the one-token
// kernel) multiplies the two pairs in 128 bits and spreads the product (one shuffle), a wider
// tile spreads each factor once and multiplies per pair; both give the same bits.
template <class B, int R, int C>
inline __attribute__((always_inline)) void step2(__m512 (&acc)[R][C], __m128 (&mins)[R][C], const B* const* b,
                                                 const block_q8_act* const* xs, int64_t i, int64_t j, bool pair) {
  Decoded2 w[R];
  __m512 dw[R];  // lanes 0..7 block i's weight scale, 8..15 block j's (C > 1)
  __m128 dw2[R], mw[R];
  for (int r = 0; r < R; ++r) {
    w[r] = decode2(b[r][i], b[r][j]);
    dw2[r] = f16x2(b[r][i].d, b[r][j].d);
    if constexpr (C > 1) dw[r] = halves(dw2[r]);
    if constexpr (kHasMin<B>) mw[r] = f16x2(b[r][i].m, b[r][j].m);
  }
  const __m512i zero = _mm512_setzero_si512();
  for (int c = 0; c < C; ++c) {
    const block_q8_act* x = xs[c];
    const __m128 dx2 = _mm_unpacklo_ps(_mm_set_ss(x[i].d), _mm_set_ss(pair ? x[j].d : 0.f));
    __m512 dx;
    if constexpr (C > 1) dx = halves(dx2);
    const __m512i y = load_x2(x + i, x + j);
    // -offset * sum(y) per dword, shared by the R rows (offset is the same for every block).
    const __m512i base = w[0].offset ? _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8((char)w[0].offset), y))
                                     : zero;
    __m128 xsum;
    if constexpr (kHasMin<B>) xsum = _mm_unpacklo_ps(_mm_set_ss(x[i].s), _mm_set_ss(pair ? x[j].s : 0.f));
    for (int r = 0; r < R; ++r) {
      const __m512i s = _mm512_dpbusd_epi32(base, w[r].u, y);
      if constexpr (kHasMin<B>) mins[r][c] = _mm_fmadd_ps(mw[r], xsum, mins[r][c]);
      __m512 d;
      if constexpr (C == 1) d = halves(_mm_mul_ps(dw2[r], dx2));
      else d = _mm512_mul_ps(dw[r], dx);
      acc[r][c] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc[r][c]);
    }
  }
}

// out[r * C + c] = dot of weight row b[r] with activation row xs[c].
template <class B, int R, int C>
void tile32(const B* const* b, const block_q8_act* const* xs, int64_t K, float* out) {
  const int64_t nb = K / 32;
  __m512 acc0[R][C], acc1[R][C];
  __m128 mins[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      acc0[r][c] = acc1[r][c] = _mm512_setzero_ps();
      mins[r][c] = _mm_setzero_ps();
    }
  int64_t i = 0;
  for (; i + 4 <= nb; i += 4) {  // two independent chains
    step2<B, R, C>(acc0, mins, b, xs, i, i + 1, true);
    step2<B, R, C>(acc1, mins, b, xs, i + 2, i + 3, true);
  }
  for (; i + 2 <= nb; i += 2) step2<B, R, C>(acc0, mins, b, xs, i, i + 1, true);
  if (i < nb) step2<B, R, C>(acc1, mins, b, xs, i, i, false);
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      __m512 a0 = acc0[r][c];
      if constexpr (kHasMin<B>) a0 = _mm512_add_ps(a0, _mm512_zextps128_ps512(mins[r][c]));
      out[r * C + c] = _mm512_reduce_add_ps(_mm512_add_ps(a0, acc1[r][c]));
    }
}

template <class B>
constexpr VecDotFn dot32 = tile_dot1<B, block_q8_act, tile32<B, 1, 1>>;
template <class B>
constexpr VecDot4Fn dot32x4 = tile_dot4<B, block_q8_act, tile32<B, 1, 4>>;

// 2 rows x 4 tokens: 8 pairs x 2 chains = 16 accumulators, which leaves registers for the
// decoded weights, scales and activations (2 x 6 spills). Measured (one thread, K = 2048,
// panel in L2): 36-38 GMAC/s for Q4_0 and 33-34 for Q8_0, against 31-32 / 31 for 4 x 2.
template <class B>
constexpr GemmFn gemm32 = tile_gemm<B, block_q8_act, 2, 4, tile32<B, 2, 4>>;

}  // namespace

GemmFn gemm_for(DType w) {
  switch (w) {
    case DType::Q4_0: return gemm32<block_q4_0>;
    case DType::Q4_1: return gemm32<block_q4_1>;
    case DType::Q5_0: return gemm32<block_q5_0>;
    case DType::Q5_1: return gemm32<block_q5_1>;
    case DType::Q8_0: return gemm32<block_q8_0>;
    case DType::IQ4_NL: return gemm32<block_iq4_nl>;
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
    case DType::IQ4_XS: return kquant_gemm_for(w);  // kquant_dot_avx512.cpp
    case DType::Q2_K: case DType::Q3_K: return low_kquant_gemm_for(w);  // kquant_low_dot_avx512.cpp
    default: return float_gemm_for(w);  // F16: float_dot_avx512.cpp
  }
}

bool built() { return true; }

VecDot4Fn vec_dot4_for(DType w) {
  switch (w) {
    case DType::Q4_0: return dot32x4<block_q4_0>;
    case DType::Q4_1: return dot32x4<block_q4_1>;
    case DType::Q5_0: return dot32x4<block_q5_0>;
    case DType::Q5_1: return dot32x4<block_q5_1>;
    case DType::Q8_0: return dot32x4<block_q8_0>;
    case DType::IQ4_NL: return dot32x4<block_iq4_nl>;
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
    case DType::IQ4_XS: return kquant_vec_dot4_for(w);  // kquant_dot_avx512.cpp
    case DType::Q2_K: case DType::Q3_K: return low_kquant_vec_dot4_for(w);  // kquant_low_dot_avx512.cpp
    default: return nullptr;
  }
}

VecDotFn vec_dot_for(DType w) {
  switch (w) {
    case DType::Q4_0: return dot32<block_q4_0>;
    case DType::Q4_1: return dot32<block_q4_1>;
    case DType::Q5_0: return dot32<block_q5_0>;
    case DType::Q5_1: return dot32<block_q5_1>;
    case DType::Q8_0: return dot32<block_q8_0>;
    case DType::IQ4_NL: return dot32<block_iq4_nl>;
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
    case DType::IQ4_XS: return kquant_vec_dot_for(w);  // kquant_dot_avx512.cpp
    case DType::Q2_K: case DType::Q3_K: return low_kquant_vec_dot_for(w);  // kquant_low_dot_avx512.cpp
    default: return nullptr;
  }
}

}  // namespace osprey::kernels::avx512

#else  // this compiler or target cannot build AVX-512 VNNI: the dispatcher skips it

namespace osprey::kernels::avx512 {
bool built() { return false; }
VecDotFn vec_dot_for(DType) { return nullptr; }
VecDot4Fn vec_dot4_for(DType) { return nullptr; }
GemmFn gemm_for(DType) { return nullptr; }
}  // namespace osprey::kernels::avx512

#endif
