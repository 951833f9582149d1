// AVX2 + FMA + F16C kernels for the K-quants (Q4_K, Q5_K, Q6_K) and IQ4_XS; built with the
// same flags as quant_dot_avx2.cpp, whose tables delegate here. Each reproduces quant_dot_scalar.cpp:
// the same integer sums per super-block, accumulated in float.
#include <cstring>
#include <type_traits>

#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/kquant_dot.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include "kernels/cpu/x86_helpers.h"

namespace osprey::kernels::avx2 {
namespace {

// Per super-block constants of one weight row, then its eight 32-element groups (group g
// meets activations 32g..32g+31) as unsigned bytes with their int16 scales.
template <class B>
struct KBlock;

template <class B>
  requires(std::is_same_v<B, block_q4_K> || std::is_same_v<B, block_q5_K>)
struct KBlock<B> {
  static constexpr bool kMin = true;
  const B& b;
  uint8_t sc[8];
  __m256i m16;  // the mins, each twice (against the 16 bsums)
  __m256i qh;   // Q5_K: bit g of byte l is group g's fifth bit
  explicit KBlock(const B& blk) : b(blk) {
    uint64_t sc8, m8;
    k4_scales_mins(b.scales, &sc8, &m8);
    std::memcpy(sc, &sc8, 8);
    const __m128i mv = _mm_cvtsi64_si128((long long)m8);
    m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mv, mv));
    if constexpr (std::is_same_v<B, block_q5_K>) qh = _mm256_loadu_si256((const __m256i*)b.qh);
  }
  __m256i group(int g, __m256i* scale) const {
    *scale = _mm256_set1_epi16(sc[g]);
    const __m256i q = _mm256_loadu_si256((const __m256i*)(b.qs + 32 * (g / 2)));
    __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 4 * (g % 2)), _mm256_set1_epi8(0x0F));
    if constexpr (std::is_same_v<B, block_q5_K>) {
      const __m256i bit = _mm256_set1_epi8((char)(1 << g));
      v = _mm256_or_si256(v, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit), _mm256_set1_epi8(16)));
    }
    return v;
  }
  float d() const { return f16(b.d); }
  float dmin() const { return f16(b.dmin); }
  __m256i bsum_term(__m256i bs) const { return _mm256_madd_epi16(m16, bs); }  // sum m * bsum
};

template <>
struct KBlock<block_q6_K> {
  static constexpr bool kMin = false;
  const block_q6_K& b;
  __m256i sc16;
  explicit KBlock(const block_q6_K& blk) : b(blk) {
    sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)b.scales));
  }
  // In each 128-element half h: groups 0, 1 are the low nibbles of ql[0..32), ql[32..64),
  // groups 2, 3 their high nibbles; group gg's top two bits are qh[l] >> 2gg.
  __m256i group(int g, __m256i* scale) const {
    const int h = g / 4, gg = g % 4;
    *scale = _mm256_set_m128i(_mm_set1_epi16(b.scales[2 * g + 1]), _mm_set1_epi16(b.scales[2 * g]));
    const __m256i ql = _mm256_loadu_si256((const __m256i*)(b.ql + 64 * h + 32 * (gg % 2)));
    const __m256i qh = _mm256_loadu_si256((const __m256i*)(b.qh + 32 * h));
    const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(ql, 4 * (gg / 2)), _mm256_set1_epi8(0x0F));
    const __m256i hi2 = gg < 2 ? _mm256_slli_epi16(qh, 4 - 2 * gg) : _mm256_srli_epi16(qh, 2 * gg - 4);
    return _mm256_or_si256(lo, _mm256_and_si256(hi2, _mm256_set1_epi8(0x30)));
  }
  float d() const { return f16(b.d); }
  float dmin() const { return 0; }
  // Quants are stored + 32: 32 * sum(scale * bsum) comes back out of the integer sum.
  __m256i bsum_term(__m256i bs) const { return _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5); }
};

// IQ4_XS: group g is sub-block g, its levels signed; vpmaddubsw takes |level| unsigned and
// the activations with the level's sign (products of at most 127 * 127, no saturation).
template <>
struct KBlock<block_iq4_xs> {
  static constexpr bool kMin = false, kSigned = true;
  const block_iq4_xs& b;
  explicit KBlock(const block_iq4_xs& blk) : b(blk) {}
  __m256i group(int g, __m256i* scale) const {
    *scale = _mm256_set1_epi16((short)osprey_iq4xs_scale(&b, g));
    const __m128i q = _mm_loadu_si128((const __m128i*)(b.qs + 16 * g));
    const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
    const __m256i levels = _mm256_broadcastsi128_si256(iq4_levels());
    return _mm256_shuffle_epi8(levels, nib);
  }
  float d() const { return f16(b.d); }
  float dmin() const { return 0; }
  __m256i bsum_term(__m256i) const { return _mm256_setzero_si256(); }  // no offset, no minimum
};

template <class B>
constexpr bool kSignedGroups = requires { KBlock<B>::kSigned; };

// Weight row b against C activation rows xs[c]: out[c]. Each group is decoded once for the
// C columns; every column sees exactly the float operations of the one-column kernel.
template <class B, int C>
void tile_k(const B* b, const block_q8_K* const* xs, int64_t K, float* out) {
  __m256 acc[C], macc[C];
  for (int c = 0; c < C; ++c) acc[c] = macc[c] = _mm256_setzero_ps();
  for (int64_t i = 0; i < K / 256; ++i) {
    const KBlock<B> w(b[i]);
    __m256i sumi[C];
    for (int c = 0; c < C; ++c) sumi[c] = _mm256_setzero_si256();
    for (int g = 0; g < 8; ++g) {
      __m256i scale;
      const __m256i q = w.group(g, &scale);
      const __m256i u = kSignedGroups<B> ? _mm256_sign_epi8(q, q) : q;
      for (int c = 0; c < C; ++c) {
        __m256i y = _mm256_loadu_si256((const __m256i*)(xs[c][i].qs + 32 * g));
        if constexpr (kSignedGroups<B>) y = _mm256_sign_epi8(y, q);
        sumi[c] = _mm256_add_epi32(sumi[c], _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), scale));
      }
    }
    const float dw = w.d(), dmin = w.dmin();
    for (int c = 0; c < C; ++c) {
      const block_q8_K& x = xs[c][i];
      const __m256i t = w.bsum_term(_mm256_loadu_si256((const __m256i*)x.bsums));
      if constexpr (KBlock<B>::kMin)
        macc[c] = _mm256_fmadd_ps(_mm256_set1_ps(x.d * dmin), _mm256_cvtepi32_ps(t), macc[c]);
      else
        sumi[c] = _mm256_sub_epi32(sumi[c], t);
      acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(x.d * dw), _mm256_cvtepi32_ps(sumi[c]), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) out[c] = KBlock<B>::kMin ? hsum(acc[c]) - hsum(macc[c]) : hsum(acc[c]);
}

template <class B>
constexpr VecDotFn dot_k = cols_dot1<B, block_q8_K, tile_k<B, 1>>;
template <class B>
constexpr VecDot4Fn dot_k_x4 = cols_dot4<B, block_q8_K, tile_k<B, 4>>;
// The GEMM: one weight row against four tokens per tile (16 registers leave no room for
// more rows), the token panel held in L2 by the caller.
template <class B>
constexpr GemmFn gemm_k = cols_gemm<B, block_q8_K, tile_k<B, 4>>;

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

}  // namespace osprey::kernels::avx2

#else  // not built: quant_dot_avx2.cpp is a stub too

namespace osprey::kernels::avx2 {
VecDotFn kquant_vec_dot_for(DType) { return nullptr; }
VecDot4Fn kquant_vec_dot4_for(DType) { return nullptr; }
GemmFn kquant_gemm_for(DType) { return nullptr; }
}  // namespace osprey::kernels::avx2

#endif
