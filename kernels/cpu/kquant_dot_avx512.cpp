// AVX-512 (F, BW, VL) + VNNI kernels for the K-quants (Q4_K, Q5_K, Q6_K) and IQ4_XS; built
// with the same flags as quant_dot_avx512.cpp, whose tables delegate here. Each reproduces
// quant_dot_scalar.cpp exactly in integers: weight pairs multiply with vpmaddubsw (no
// saturation possible, weights are at most 6 bits, IQ4_XS levels enter as |level| with the
// sign moved onto the activation) and the per-sub-block scales apply with vpdpwssd; the
// scaled super-block sums accumulate in float.
#include <cstring>
#include <type_traits>

#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/kquant_dot.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#include "kernels/cpu/avx512_intrin.h"

#include "kernels/cpu/x86_helpers.h"

namespace osprey::kernels::avx512 {
namespace {

inline __m512i words_split(short lo, short hi) {  // int16 lanes 0..15 = lo, 16..31 = hi
  return _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16(lo), _mm512_set1_epi16(hi));
}

// One Q4_K / Q5_K super-block decoded: q[k] holds sub-blocks 2k (bytes 0..31) and 2k+1
// (bytes 32..63) as unsigned bytes, sc[k] their scales as int16 (one per 256-bit half), m16
// the eight mins each repeated twice (against the 16 bsums).
struct DecodedK45 {
  __m512i q[4], sc[4];
  __m256i m16;
  float d, dmin;
};

template <class B>
inline __attribute__((always_inline)) void decode(const B& b, DecodedK45& o) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  uint64_t sc8, m8;
  k4_scales_mins(b.scales, &sc8, &m8);
  const __m512i scw = _mm512_zextsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc8)));
  const __m128i mv = _mm_cvtsi64_si128((long long)m8);
  o.m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mv, mv));  // m0 m0 m1 m1 ...
  __m512i qh2;
  if constexpr (std::is_same_v<B, block_q5_K>)  // bit s of qh[l]: fifth bit of sub-block s, element l
    qh2 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)b.qh));
  for (int h = 0; h < 2; ++h) {
    const __m512i q = _mm512_loadu_si512(b.qs + 64 * h);  // 32-byte chunk c: sub-blocks 2c, 2c+1
    const __m512i lo = _mm512_and_si512(q, low4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
    o.q[2 * h] = _mm512_shuffle_i64x2(lo, hi, 0x44);      // sub-blocks 4h, 4h+1
    o.q[2 * h + 1] = _mm512_shuffle_i64x2(lo, hi, 0xEE);  // sub-blocks 4h+2, 4h+3
  }
  for (int k = 0; k < 4; ++k) o.sc[k] = _mm512_permutexvar_epi16(words_split((short)(2 * k), (short)(2 * k + 1)), scw);
  for (int k = 0; k < 4; ++k) {
    if constexpr (std::is_same_v<B, block_q5_K>) {
      const __m512i bit = _mm512_mask_blend_epi8(0xFFFFFFFF00000000ull, _mm512_set1_epi8((char)(1 << (2 * k))),
                                                 _mm512_set1_epi8((char)(1 << (2 * k + 1))));
      o.q[k] = _mm512_mask_add_epi8(o.q[k], _mm512_test_epi8_mask(qh2, bit), o.q[k], _mm512_set1_epi8(16));
    }
  }
  o.d = f16(b.d);
  o.dmin = f16(b.dmin);
}

// One Q6_K super-block decoded: q[k] elements 64k..64k+63 as unsigned bytes (stored + 32),
// sc[m] their four 16-element scales as int16 (one per 128-bit lane), sc16 all sixteen.
struct DecodedK6 {
  __m512i q[4], sc[4];
  __m256i sc16;
  float d;
};

// int16 lane l of q[m]'s products takes scale 4m + l / 8 (one per 128-bit lane).
struct Q6ScaleIndex {
  alignas(64) int16_t v[4][32];
};
constexpr Q6ScaleIndex kQ6ScaleIndex = [] {
  Q6ScaleIndex t{};
  for (int m = 0; m < 4; ++m)
    for (int l = 0; l < 32; ++l) t.v[m][l] = (int16_t)(4 * m + l / 8);
  return t;
}();

inline __attribute__((always_inline)) void decode(const block_q6_K& b, DecodedK6& o) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), two_bits = _mm512_set1_epi8(0x30);
  // Where the two high bits of groups 0/1 and 2/3 sit in qh: bits 0-1 / 2-3, 4-5 / 6-7.
  const __m512i shl01 = words_split(4, 2), shr23 = words_split(0, 2);
  o.sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)b.scales));
  const __m512i scw = _mm512_zextsi256_si512(o.sc16);
  for (int h = 0; h < 2; ++h) {
    const __m512i a = _mm512_loadu_si512(b.ql + 64 * h);
    const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(b.qh + 32 * h)));
    o.q[2 * h] = _mm512_or_si512(_mm512_and_si512(a, low4), _mm512_and_si512(_mm512_sllv_epi16(qh, shl01), two_bits));
    o.q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(a, 4), low4),
                                     _mm512_and_si512(_mm512_srlv_epi16(qh, shr23), two_bits));
  }
  for (int m = 0; m < 4; ++m) o.sc[m] = _mm512_permutexvar_epi16(_mm512_load_si512(kQ6ScaleIndex.v[m]), scw);
  o.d = f16(b.d);
}

// One IQ4_XS super-block decoded: q[k] sub-blocks 2k (bytes 0..31) and 2k+1 (32..63) as
// |level| (unsigned bytes for vpmaddubsw), neg[k] where the level is negative (the
// activation's sign flips there instead), sc[k] their scales as int16 (one per 256-bit half).
struct DecodedIQ4XS {
  __m512i q[4], sc[4];
  __mmask64 neg[4];
  float d;
};

inline __attribute__((always_inline)) void decode(const block_iq4_xs& b, DecodedIQ4XS& o) {
  const __m512i levels = _mm512_broadcast_i32x4(iq4_levels());
  for (int k = 0; k < 4; ++k) {
    // Lanes [lo nibbles, hi nibbles] of sub-block 2k's 16 bytes, then the same for 2k+1.
    const __m512i v = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)(b.qs + 32 * k)));
    const __m512i lanes = _mm512_shuffle_i64x2(v, v, 0x50);  // 128-bit lanes [s, s, s+1, s+1]
    const __m512i nib = _mm512_and_si512(_mm512_srlv_epi64(lanes, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0)),
                                         _mm512_set1_epi8(0x0F));
    const __m512i lv = _mm512_shuffle_epi8(levels, nib);
    o.neg[k] = _mm512_movepi8_mask(lv);
    o.q[k] = _mm512_abs_epi8(lv);
    o.sc[k] = words_split((short)osprey_iq4xs_scale(&b, 2 * k), (short)osprey_iq4xs_scale(&b, 2 * k + 1));
  }
  o.d = f16(b.d);
}

template <class B>
using DecodedFor = std::conditional_t<std::is_same_v<B, block_q6_K>, DecodedK6,
                                      std::conditional_t<std::is_same_v<B, block_iq4_xs>, DecodedIQ4XS, DecodedK45>>;

// Sum over the super-block of scale * q * x per int32 lane (Q6_K: the +32 offset comes out
// later). Exact integers, but which products share a lane sets the float rounding after the
// conversion: keep this layout, the one the golden tests pass with (see gemm_k).
inline __attribute__((always_inline)) __m512i scaled_sum(const __m512i (&q)[4], const __m512i (&sc)[4],
                                                        const int8_t* y) {
  __m512i sumi = _mm512_setzero_si512();
  for (int k = 0; k < 4; ++k)
    sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(q[k], _mm512_loadu_si512(y + 64 * k)), sc[k]);
  return sumi;
}

// IQ4_XS: the same, with each activation negated where its level is.
inline __attribute__((always_inline)) __m512i scaled_sum(const DecodedIQ4XS& w, const int8_t* y) {
  __m512i sumi = _mm512_setzero_si512();
  for (int k = 0; k < 4; ++k) {
    const __m512i yk = _mm512_loadu_si512(y + 64 * k);
    const __m512i ys = _mm512_mask_sub_epi8(yk, w.neg[k], _mm512_setzero_si512(), yk);
    sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(w.q[k], ys), w.sc[k]);
  }
  return sumi;
}

// R weight rows b[r] against C activation rows xs[c]: out[r * C + c]. Each super-block's
// weights are decoded once per row for all C columns; every (row, column) pair then goes
// through exactly the float operations of the 1 x 1 tile (the one-row kernel), so the tile
// size never changes a result.
template <class B, int R, int C>
void tile_k(const B* const* b, const block_q8_K* const* xs, int64_t K, float* out) {
  constexpr bool kMin = std::is_same_v<B, block_q4_K> || std::is_same_v<B, block_q5_K>;
  constexpr bool kOffset32 = std::is_same_v<B, block_q6_K>;
  __m512 acc[R][C];
  __m256 macc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      acc[r][c] = _mm512_setzero_ps();
      macc[r][c] = _mm256_setzero_ps();
    }
  for (int64_t i = 0; i < K / 256; ++i) {
    DecodedFor<B> w[R];
    for (int r = 0; r < R; ++r) decode(b[r][i], w[r]);
    for (int c = 0; c < C; ++c) {
      const block_q8_K& x = xs[c][i];
      const __m256i bs = _mm256_loadu_si256((const __m256i*)x.bsums);
      for (int r = 0; r < R; ++r) {
        __m512i sumi;
        if constexpr (std::is_same_v<B, block_iq4_xs>) sumi = scaled_sum(w[r], x.qs);
        else sumi = scaled_sum(w[r].q, w[r].sc, x.qs);
        if constexpr (kMin) {
          macc[r][c] = _mm256_fmadd_ps(_mm256_set1_ps(x.d * w[r].dmin), _mm256_cvtepi32_ps(_mm256_madd_epi16(w[r].m16, bs)),
                                       macc[r][c]);
        } else if constexpr (kOffset32) {  // quants are stored + 32: take 32 * sum(scale * bsum) back out
          const __m256i offset = _mm256_madd_epi16(w[r].sc16, bs);
          sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(_mm256_slli_epi32(offset, 5)));
        }
        acc[r][c] = _mm512_fmadd_ps(_mm512_set1_ps(x.d * w[r].d), _mm512_cvtepi32_ps(sumi), acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      out[r * C + c] = kMin ? _mm512_reduce_add_ps(acc[r][c]) - hsum(macc[r][c]) : _mm512_reduce_add_ps(acc[r][c]);
}

template <class B>
constexpr VecDotFn dot_k = tile_dot1<B, block_q8_K, tile_k<B, 1, 1>>;
template <class B>
constexpr VecDot4Fn dot_k_x4 = tile_dot4<B, block_q8_K, tile_k<B, 1, 4>>;

// The GEMM's register tile: one weight row by four tokens. Measured on Zen 4 (ns per
// row-token super-block, Q4_K / Q6_K): 1 x 4 3.9 / 3.8; 2 x 4 4.1 / 4.0, 2 x 2, 3 x 2, 4 x 2
// and 1 x 8 slower still: the products, not the decoding, bound it. (vpdpbusd + vpackssdw +
// vpdpwssd instead of vpmaddubsw + vpdpwssd ran 1.09x / 1.12x faster, but its other int32
// lane partition moved the Gemma 3 golden logits from max |diff| 1.56 to 2.99.)
template <class B>
constexpr GemmFn gemm_k = tile_gemm<B, block_q8_K, 1, 4, tile_k<B, 1, 4>>;

}  // namespace

VecDotFn kquant_vec_dot_for(DType w) {
  switch (w) {
    case DType::Q4_K: return dot_k<block_q4_K>;
    case DType::Q5_K: return dot_k<block_q5_K>;
    case DType::Q6_K: return dot_k<block_q6_K>;
    case DType::IQ4_XS: return dot_k<block_iq4_xs>;
    default: return nullptr;
  }
}

VecDot4Fn kquant_vec_dot4_for(DType w) {
  switch (w) {
    case DType::Q4_K: return dot_k_x4<block_q4_K>;
    case DType::Q5_K: return dot_k_x4<block_q5_K>;
    case DType::Q6_K: return dot_k_x4<block_q6_K>;
    case DType::IQ4_XS: return dot_k_x4<block_iq4_xs>;
    default: return nullptr;
  }
}

GemmFn kquant_gemm_for(DType w) {
  switch (w) {
    case DType::Q4_K: return gemm_k<block_q4_K>;
    case DType::Q5_K: return gemm_k<block_q5_K>;
    case DType::Q6_K: return gemm_k<block_q6_K>;
    case DType::IQ4_XS: return gemm_k<block_iq4_xs>;
    default: return nullptr;
  }
}

}  // namespace osprey::kernels::avx512

#else  // not built: quant_dot_avx512.cpp is a stub too

namespace osprey::kernels::avx512 {
VecDotFn kquant_vec_dot_for(DType) { return nullptr; }
VecDot4Fn kquant_vec_dot4_for(DType) { return nullptr; }
GemmFn kquant_gemm_for(DType) { return nullptr; }
}  // namespace osprey::kernels::avx512

#endif
