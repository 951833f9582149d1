// AVX-512 (F, BW, VL) + VNNI kernels for Q2_K and Q3_K; built with the same flags as
// quant_dot_avx512.cpp, whose tables delegate here. Each reproduces quant_dot_scalar.cpp's
// integer sums exactly: the weights are fed to vpmaddubsw as unsigned bytes (Q2_K's 0..3;
// Q3_K's q + 4 in 0..7, the 4 taken back out as 4 * sum(scale * bsum)), so no pair can
// saturate, and the sixteen per-sub-block scales apply with vpdpwssd. The scaled
// super-block sums accumulate in float.
#include <cstring>

#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/kquant_low_dot.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#include "kernels/cpu/avx512_intrin.h"

#include "kernels/cpu/x86_helpers.h"

namespace osprey::kernels::avx512 {
namespace {

// One super-block's weights as unsigned bytes, chunk k = elements 64k..64k+63 in order (the
// layout of the activation bytes), and per int16 lane of chunk k the scale of its sub-block.
struct LowBits {
  __m512i q[4], sc[4];
};

// The 2-bit planes: half h's 32 bytes hold elements 128h + 32j + l at bit shift 2j, so chunk
// 2h + kk takes shifts 4kk (its first 32 elements) and 4kk + 2 (its last 32).
inline void low_planes(const uint8_t* qs, __m512i (&q)[4]) {
  const __m512i three = _mm512_set1_epi8(3);
  const __m512i shift0 = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0), shift1 = _mm512_set_epi64(6, 6, 6, 6, 4, 4, 4, 4);
  for (int h = 0; h < 2; ++h) {
    const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(qs + 32 * h)));
    q[2 * h] = _mm512_and_si512(_mm512_srlv_epi64(v, shift0), three);
    q[2 * h + 1] = _mm512_and_si512(_mm512_srlv_epi64(v, shift1), three);
  }
}

// int16 lane l of chunk k covers elements 64k + 2l, +1: sub-block 4k + l / 8.
inline void spread_scales(__m256i sc16, __m512i (&sc)[4]) {
  const __m512i scw = _mm512_zextsi256_si512(sc16);
  for (int k = 0; k < 4; ++k) {
    __m512i idx = _mm512_set1_epi16((short)(4 * k));
    idx = _mm512_mask_add_epi16(idx, 0xFF00FF00u, idx, _mm512_set1_epi16(1));
    idx = _mm512_mask_add_epi16(idx, 0xFFFF0000u, idx, _mm512_set1_epi16(2));
    sc[k] = _mm512_permutexvar_epi16(idx, scw);
  }
}

inline __m512i block_sum(const LowBits& w, const block_q8_K& x) {
  __m512i sumi = _mm512_setzero_si512();
  for (int k = 0; k < 4; ++k)
    sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(w.q[k], _mm512_loadu_si512(x.qs + 64 * k)), w.sc[k]);
  return sumi;
}

// Weight row b against activation rows xs[0..kRows): each super-block is decoded once and
// every activation row sees the one-row kernel's exact sequence of operations.
template <int kRows>
void q2_K_cols(const block_q2_K* b, const block_q8_K* const* xs, int64_t K, float* out) {
  __m512 acc[kRows];
  __m256 macc[kRows];  // the minimum terms, dmin * m * bsum
  for (int r = 0; r < kRows; ++r) {
    acc[r] = _mm512_setzero_ps();
    macc[r] = _mm256_setzero_ps();
  }
  const __m128i low4 = _mm_set1_epi8(0x0F);
  for (int64_t i = 0; i < K / 256; ++i) {
    LowBits w;
    low_planes(b[i].qs, w.q);
    const __m128i s = _mm_loadu_si128((const __m128i*)b[i].scales);  // scale | min << 4
    spread_scales(_mm256_cvtepu8_epi16(_mm_and_si128(s, low4)), w.sc);
    const __m256i m16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), low4));
    const float dw = _cvtsh_ss(b[i].d), dmin = _cvtsh_ss(b[i].dmin);
    for (int r = 0; r < kRows; ++r) {
      const block_q8_K& x = xs[r][i];
      const __m256i bs = _mm256_loadu_si256((const __m256i*)x.bsums);
      macc[r] = _mm256_fmadd_ps(_mm256_set1_ps(x.d * dmin), _mm256_cvtepi32_ps(_mm256_madd_epi16(m16, bs)), macc[r]);
      acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(x.d * dw), _mm512_cvtepi32_ps(block_sum(w, x)), acc[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = _mm512_reduce_add_ps(acc[r]) - hsum(macc[r]);
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
  __m512 acc[kRows];
  for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_ps();
  // hmask byte l holds the third bit of elements l + 32j at bit j: chunk k reads bit 2k for
  // its first 32 elements and 2k + 1 for its last 32.
  __m512i hbit[4];
  for (int k = 0; k < 4; ++k)
    hbit[k] = _mm512_mask_blend_epi8(0xFFFFFFFF00000000ull, _mm512_set1_epi8((char)(1 << (2 * k))),
                                     _mm512_set1_epi8((char)(1 << (2 * k + 1))));
  const __m512i four = _mm512_set1_epi8(4);
  for (int64_t i = 0; i < K / 256; ++i) {
    LowBits w;
    low_planes(b[i].qs, w.q);
    const __m512i hm = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)b[i].hmask));
    for (int k = 0; k < 4; ++k)  // q + 4 = low + 4 where the bit is set
      w.q[k] = _mm512_mask_add_epi8(w.q[k], _mm512_test_epi8_mask(hm, hbit[k]), w.q[k], four);
    const __m256i sc16 = _mm256_cvtepi8_epi16(q3_K_scales(b[i].scales));
    spread_scales(sc16, w.sc);
    const float dw = _cvtsh_ss(b[i].d);
    for (int r = 0; r < kRows; ++r) {
      const block_q8_K& x = xs[r][i];
      // The + 4 of every weight: 4 * sum(scale * bsum), eight dword lanes.
      const __m256i offset = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i*)x.bsums));
      const __m512i sumi = _mm512_sub_epi32(block_sum(w, x), _mm512_zextsi256_si512(_mm256_slli_epi32(offset, 2)));
      acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(x.d * dw), _mm512_cvtepi32_ps(sumi), acc[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
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

}  // namespace osprey::kernels::avx512

#else  // this compiler or target cannot build AVX-512 VNNI: the dispatcher skips it

namespace osprey::kernels::avx512 {
VecDotFn low_kquant_vec_dot_for(DType) { return nullptr; }
VecDot4Fn low_kquant_vec_dot4_for(DType) { return nullptr; }
GemmFn low_kquant_gemm_for(DType) { return nullptr; }
}  // namespace osprey::kernels::avx512

#endif
