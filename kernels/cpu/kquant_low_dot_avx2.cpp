// AVX2 kernels for Q2_K and Q3_K; built with the same flags as quant_dot_avx2.cpp, whose
// tables delegate here. Each reproduces quant_dot_scalar.cpp's integer sums exactly: the
// weights are fed to vpmaddubsw as unsigned bytes (Q2_K's 0..3; Q3_K's q + 4 in 0..7, the 4
// taken back out as 4 * sum(scale * bsum)), so no pair can saturate, and the sixteen
// per-sub-block scales apply with vpmaddwd. The scaled super-block sums accumulate in float.
#include <cstring>

#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/kquant_low_dot.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include "kernels/cpu/x86_helpers.h"

namespace osprey::kernels::avx2 {
namespace {

// Chunk c = elements 32c..32c+31: the 2-bit plane at shift 2 * (c % 4) of half c / 4's bytes.
inline __m256i low_plane(const uint8_t* qs, int c) {
  const __m256i v = _mm256_loadu_si256((const __m256i*)(qs + 32 * (c / 4)));
  return _mm256_and_si256(_mm256_srli_epi16(v, 2 * (c % 4)), _mm256_set1_epi8(3));
}

// int16 lanes 0..7 = scale 2c, 8..15 = scale 2c + 1, sign-extended from the int8 scales
// (each byte lands in a word's high half, then an arithmetic shift brings it down).
inline __m256i chunk_scales(__m256i sc8x2, int c) {
  const __m256i pick = _mm256_set_m128i(_mm_set1_epi16((short)(((2 * c + 1) << 8) | 0x80)),
                                        _mm_set1_epi16((short)(((2 * c) << 8) | 0x80)));
  return _mm256_srai_epi16(_mm256_shuffle_epi8(sc8x2, pick), 8);
}

// Sum over chunks of scale * (weight . activation) per dword lane, for kRows activation rows
// at once; Weight(c) gives chunk c's unsigned weight bytes. Integer sums: exact in any order.
template <int kRows, class Weight>
inline void block_sums(Weight weight, __m256i sc8x2, const block_q8_K* const* x, __m256i (&sumi)[kRows]) {
  for (int r = 0; r < kRows; ++r) sumi[r] = _mm256_setzero_si256();
  for (int c = 0; c < 8; ++c) {
    const __m256i q = weight(c), sc = chunk_scales(sc8x2, c);
    for (int r = 0; r < kRows; ++r) {
      const __m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i*)(x[r]->qs + 32 * c)));
      sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(p, sc));
    }
  }
}

// Weight row b against activation rows xs[0..kRows): each super-block is decoded once and
// every activation row sees the one-row kernel's exact sequence of float operations.
template <int kRows>
void q2_K_cols(const block_q2_K* b, const block_q8_K* const* xs, int64_t K, float* out) {
  __m256 acc[kRows], macc[kRows];  // macc: the minimum terms, dmin * m * bsum
  for (int r = 0; r < kRows; ++r) acc[r] = macc[r] = _mm256_setzero_ps();
  const __m128i low4 = _mm_set1_epi8(0x0F);
  for (int64_t i = 0; i < K / 256; ++i) {
    const block_q8_K* x[kRows];
    for (int r = 0; r < kRows; ++r) x[r] = xs[r] + i;
    const __m128i s = _mm_loadu_si128((const __m128i*)b[i].scales);  // scale | min << 4
    __m256i sumi[kRows];
    block_sums<kRows>([&](int c) { return low_plane(b[i].qs, c); },
                      _mm256_broadcastsi128_si256(_mm_and_si128(s, low4)), x, sumi);
    const __m256i m16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), low4));
    const float dw = _cvtsh_ss(b[i].d), dmin = _cvtsh_ss(b[i].dmin);
    for (int r = 0; r < kRows; ++r) {
      const __m256i bs = _mm256_loadu_si256((const __m256i*)x[r]->bsums);
      macc[r] = _mm256_fmadd_ps(_mm256_set1_ps(x[r]->d * dmin), _mm256_cvtepi32_ps(_mm256_madd_epi16(m16, bs)), macc[r]);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(x[r]->d * dw), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = hsum(acc[r]) - hsum(macc[r]);
}

// Q3_K's sixteen signed 6-bit scales as int8 (osprey_q3k_scales in quant_blocks.h).
inline __m128i q3_K_scales(const uint8_t* s) {
  uint64_t a;
  uint32_t h;
  std::memcpy(&a, s, 8);
  std::memcpy(&h, s + 8, 4);
  const __m128i lo = _mm_set_epi64x((long long)((a >> 4) & 0x0F0F0F0F0F0F0F0Full), (long long)(a & 0x0F0F0F0F0F0F0F0Full));
  // Scale k's top two bits: bits 2 * (k / 4) of byte k % 4 of h.
  const __m128i hi = _mm_and_si128(_mm_set_epi32((int)(h >> 6), (int)(h >> 4), (int)(h >> 2), (int)h), _mm_set1_epi8(3));
  return _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
}

template <int kRows>
void q3_K_cols(const block_q3_K* b, const block_q8_K* const* xs, int64_t K, float* out) {
  __m256 acc[kRows];
  for (int r = 0; r < kRows; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t i = 0; i < K / 256; ++i) {
    const block_q8_K* x[kRows];
    for (int r = 0; r < kRows; ++r) x[r] = xs[r] + i;
    const __m128i sc8 = q3_K_scales(b[i].scales);
    const __m256i hm = _mm256_loadu_si256((const __m256i*)b[i].hmask);
    __m256i sumi[kRows];
    // hmask byte l holds the third bit of element 32c + l at bit c; q + 4 = low + 4 there.
    block_sums<kRows>(
        [&](int c) {
          const __m256i bit = _mm256_set1_epi8((char)(1 << c));
          const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit);
          return _mm256_add_epi8(low_plane(b[i].qs, c), _mm256_and_si256(set, _mm256_set1_epi8(4)));
        },
        _mm256_broadcastsi128_si256(sc8), x, sumi);
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    const float dw = _cvtsh_ss(b[i].d);
    for (int r = 0; r < kRows; ++r) {
      const __m256i offset = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i*)x[r]->bsums));
      const __m256i s = _mm256_sub_epi32(sumi[r], _mm256_slli_epi32(offset, 2));
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(x[r]->d * dw), _mm256_cvtepi32_ps(s), acc[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = hsum(acc[r]);
}

}  // namespace

VecDotFn low_kquant_vec_dot_for(DType w) {
  switch (w) {
    case DType::Q2_K: return cols_dot1<block_q2_K, block_q8_K, q2_K_cols<1>>;
    case DType::Q3_K: return cols_dot1<block_q3_K, block_q8_K, q3_K_cols<1>>;
    default: return nullptr;
  }
}

VecDot4Fn low_kquant_vec_dot4_for(DType w) {
  switch (w) {
    case DType::Q2_K: return cols_dot4<block_q2_K, block_q8_K, q2_K_cols<4>>;
    case DType::Q3_K: return cols_dot4<block_q3_K, block_q8_K, q3_K_cols<4>>;
    default: return nullptr;
  }
}

GemmFn low_kquant_gemm_for(DType w) {
  switch (w) {
    case DType::Q2_K: return cols_gemm<block_q2_K, block_q8_K, q2_K_cols<4>>;
    case DType::Q3_K: return cols_gemm<block_q3_K, block_q8_K, q3_K_cols<4>>;
    default: return nullptr;
  }
}

}  // namespace osprey::kernels::avx2

#else  // this compiler or target cannot build AVX2: the dispatcher skips it

namespace osprey::kernels::avx2 {
VecDotFn low_kquant_vec_dot_for(DType) { return nullptr; }
VecDot4Fn low_kquant_vec_dot4_for(DType) { return nullptr; }
GemmFn low_kquant_gemm_for(DType) { return nullptr; }
}  // namespace osprey::kernels::avx2

#endif
