// AVX2 + FMA + F16C integer dot products (this file alone is built with those flags; the
// dispatcher only calls it on CPUs that have them). Each reproduces quant_dot_scalar.cpp:
// the same integer sums per block, accumulated in float. The 32-element formats have one
// register-tile template (tile32) behind the one-row, four-row and GEMM entry points.
#include <cstring>

#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/kquant_dot.h"
#include "kernels/cpu/kquant_low_dot.h"
#include "kernels/cpu/quant_dot.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include "kernels/cpu/x86_helpers.h"

namespace osprey::kernels::avx2 {
namespace {

// Sum of products of unsigned bytes u (< 128 after pairing) and signed bytes s, as 8 int32.
inline __m256i dot_u8_i8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}


// 32 nibbles: the low nibbles of 16 bytes in bytes 0..15, their high nibbles in 16..31.
inline __m256i unpack_nibbles(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128((const __m128i*)p);
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Byte i = 0xFF where bit i of the 32-bit word is set.
inline __m256i bits_to_bytes(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  const __m256i which_byte = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  const __m256i bit = _mm256_set1_epi64x((int64_t)0x8040201008040201ULL);
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int32_t)v), which_byte);
  return _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
}

inline __m256i load32(const void* p) { return _mm256_loadu_si256((const __m256i*)p); }

// a * b + c rounded once, written out so every kernel sums the weight minimums alike,
// whatever the compiler would contract.
inline float fma1(float a, float b, float c) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

// A block's 32 quants as bytes: signed (Q4_0, Q5_0, Q8_0, IQ4_NL), or unsigned for the formats with
// a minimum (Q4_1, Q5_1), whose m * sum(x) term is added separately.
inline __m256i quants(const block_q4_0& b) { return _mm256_sub_epi8(unpack_nibbles(b.qs), _mm256_set1_epi8(8)); }
inline __m256i quants(const block_q4_1& b) { return unpack_nibbles(b.qs); }
inline __m256i quants(const block_q5_0& b) {
  // nibble - 16 where the fifth bit is clear equals nibble | 0xF0 as a signed byte.
  return _mm256_or_si256(unpack_nibbles(b.qs), _mm256_andnot_si256(bits_to_bytes(b.qh), _mm256_set1_epi8((char)0xF0)));
}
inline __m256i quants(const block_q5_1& b) {
  return _mm256_or_si256(unpack_nibbles(b.qs), _mm256_and_si256(bits_to_bytes(b.qh), _mm256_set1_epi8(0x10)));
}
inline __m256i quants(const block_q8_0& b) { return load32(b.qs); }
inline __m256i quants(const block_iq4_nl& b) {
  const __m256i levels = _mm256_broadcastsi128_si256(iq4_levels());
  return _mm256_shuffle_epi8(levels, unpack_nibbles(b.qs));
}

template <class B>
constexpr bool kHasMin = requires(const B& b) { b.m; };

// R weight rows against C activation rows, out[r * C + c] = dot(b[r], xs[c]). Each block is
// decoded once per row and each activation block loaded once per column; every (row, column)
// pair goes through the same operations whatever R and C are (blocks alternating between two
// FMA chains, a trailing odd block into the first; the minimums summed block by block), so
// the one-row kernel (1 x 1), the four-row kernel (1 x 4) and the GEMM tiles agree bit for bit.
template <class B, int R, int C>
void tile32(const B* const* b, const block_q8_act* const* xs, int64_t K, float* out) {
  __m256 acc[2][R][C];
  float mins[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      acc[0][r][c] = acc[1][r][c] = _mm256_setzero_ps();
      mins[r][c] = 0;
    }
  auto step = [&](int chain, int64_t i) __attribute__((always_inline)) {
    __m256i q[R], uq[R];  // uq: what maddubs takes unsigned (|q| for the signed formats)
    float dw[R];
    for (int r = 0; r < R; ++r) {
      q[r] = quants(b[r][i]);
      uq[r] = kHasMin<B> ? q[r] : _mm256_sign_epi8(q[r], q[r]);
      dw[r] = f16(b[r][i].d);
    }
    for (int c = 0; c < C; ++c) {
      const block_q8_act& x = xs[c][i];
      const __m256i y = load32(x.qs);
      for (int r = 0; r < R; ++r) {
        const __m256i p = dot_u8_i8(uq[r], kHasMin<B> ? y : _mm256_sign_epi8(y, q[r]));
        acc[chain][r][c] = _mm256_fmadd_ps(_mm256_set1_ps(dw[r] * x.d), _mm256_cvtepi32_ps(p), acc[chain][r][c]);
        if constexpr (kHasMin<B>) mins[r][c] = fma1(f16(b[r][i].m), x.s, mins[r][c]);
      }
    }
  };
  const int64_t nb = K / 32;
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    step(0, i);
    step(1, i + 1);
  }
  if (i < nb) step(0, i);
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      const float dot = hsum(_mm256_add_ps(acc[0][r][c], acc[1][r][c]));
      out[r * C + c] = kHasMin<B> ? mins[r][c] + dot : dot;
    }
}

template <class B>
constexpr VecDotFn dot32 = tile_dot1<B, block_q8_act, tile32<B, 1, 1>>;
template <class B>
constexpr VecDot4Fn dot32x4 = tile_dot4<B, block_q8_act, tile32<B, 1, 4>>;

// One weight row against five tokens per tile: ten accumulators, and the decoded block
// (q and |q|) with one activation vector and the products fit the 16 registers without
// spilling. Wider tiles (2 x 2 .. 2 x 4, 1 x 6) measured no faster on one core: the tile is
// bound by the per-pair maddubs / madd / convert / FMA, which no shape amortises.
template <class B>
constexpr GemmFn gemm32 = tile_gemm<B, block_q8_act, 1, 5, tile32<B, 1, 5>>;

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
    case DType::IQ4_XS: return kquant_gemm_for(w);  // kquant_dot_avx2.cpp
    case DType::Q2_K: case DType::Q3_K: return low_kquant_gemm_for(w);  // kquant_low_dot_avx2.cpp
    default: return float_gemm_for(w);  // F16: float_dot_avx2.cpp
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
    case DType::IQ4_XS: return kquant_vec_dot4_for(w);  // kquant_dot_avx2.cpp
    case DType::Q2_K: case DType::Q3_K: return low_kquant_vec_dot4_for(w);  // kquant_low_dot_avx2.cpp
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
    case DType::IQ4_XS: return kquant_vec_dot_for(w);  // kquant_dot_avx2.cpp
    case DType::Q2_K: case DType::Q3_K: return low_kquant_vec_dot_for(w);  // kquant_low_dot_avx2.cpp
    default: return nullptr;
  }
}

}  // namespace osprey::kernels::avx2

#else  // this compiler or target cannot build AVX2: the dispatcher falls back to scalar

namespace osprey::kernels::avx2 {
bool built() { return false; }
VecDotFn vec_dot_for(DType) { return nullptr; }
VecDot4Fn vec_dot4_for(DType) { return nullptr; }
GemmFn gemm_for(DType) { return nullptr; }
}  // namespace osprey::kernels::avx2

#endif
