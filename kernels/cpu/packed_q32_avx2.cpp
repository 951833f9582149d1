// AVX2 products over the 32-element-block packed layouts (packed_q32.h): each 16-row group
// is taken as two halves of 8 rows (the 32-byte halves of every 64-byte slice), by up to 4
// activation columns. A block's weight codes are decoded once per half; each column then
// multiplies them with broadcast 4-byte activation slices (vpmaddubsw, whose 16-bit pair
// sums cannot saturate for 4- and 5-bit codes, summed in 16 bits no further than exact) and
// widens once. Q8_0 and IQ4_NL go through |q| * sign(x, q) instead. Same integers, same
// float chain as the scalar gemm (packed_q32_scalar.cpp): the same bits.
#include "kernels/cpu/packed_kquant.h"
#include "kernels/cpu/packed_q32.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include "kernels/cpu/x86_helpers.h"

#include <cstring>

namespace osprey::kernels::avx2 {
namespace {

inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Lane r of w[k] (k = 0..7): elements 4k..4k+3 of row 8h + r.
inline void decode_nibbles(const uint8_t* blk, int h, __m256i w[8]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int j = 0; j < 4; ++j) {
    const __m256i raw = _mm256_loadu_si256((const __m256i*)(blk + q32::kScaleBytes + 64 * j + 32 * h));
    w[j] = _mm256_and_si256(raw, m4);
    w[j + 4] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
  }
}

// Sum over k of w[k] . x slice k, pair sums added in 16 bits `kRun` at a time (|sum| <=
// kRun * 2 * 31 * 127 < 2^15 for 5-bit codes and kRun = 4; 4-bit codes allow 8).
template <int kRun>
inline __m256i dot_codes(const __m256i w[8], const int8_t* qs) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i total = _mm256_setzero_si256();
  for (int k0 = 0; k0 < 8; k0 += kRun) {
    __m256i s16 = _mm256_maddubs_epi16(w[k0], bcast4(qs + 4 * k0));
    for (int k = k0 + 1; k < k0 + kRun; ++k) s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(w[k], bcast4(qs + 4 * k)));
    total = _mm256_add_epi32(total, _mm256_madd_epi16(s16, ones));
  }
  return total;
}

struct Q4_0 {
  static constexpr size_t kBlockBytes = q32::kQ4Bytes;
  static void decode(const uint8_t* blk, int h, __m256i w[8]) { decode_nibbles(blk, h, w); }
  static __m256i isum(const uint8_t*, int, const __m256i w[8], const block_q8_act_isum& x) {
    return _mm256_add_epi32(dot_codes<8>(w, x.qs), _mm256_set1_epi32(-q32::kQ4Offset * x.isum));
  }
};

struct Q5_0 {
  static constexpr size_t kBlockBytes = q32::kQ5Bytes;
  static void decode(const uint8_t* blk, int h, __m256i w[8]) {
    decode_nibbles(blk, h, w);
    // Bits 32h..32h+31 of mask m, one per byte of w[m]: spread each mask byte over 8 bytes,
    // pick its bit per byte, then add 16 where it is set.
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3,
                                            3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i sixteen = _mm256_set1_epi8(16);
    for (int m = 0; m < 8; ++m) {
      uint32_t bits;
      std::memcpy(&bits, blk + q32::kQ4Bytes + 8 * m + 4 * h, 4);
      const __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), spread);
      const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(b, bit), bit);
      w[m] = _mm256_add_epi8(w[m], _mm256_and_si256(set, sixteen));
    }
  }
  static __m256i isum(const uint8_t*, int, const __m256i w[8], const block_q8_act_isum& x) {
    return _mm256_add_epi32(dot_codes<4>(w, x.qs), _mm256_set1_epi32(-q32::kQ5Offset * x.isum));
  }
};

// Sum over k of code(k) . x slice k for signed codes (Q8_0, IQ4_NL), each slice widened.
template <class Code>
inline __m256i dot_signed_codes(Code code, const int8_t* qs) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i total = _mm256_setzero_si256();
  for (int k = 0; k < 8; ++k)
    total = _mm256_add_epi32(total, _mm256_madd_epi16(mul_signed_pairs(code(k), bcast4(qs + 4 * k)), ones));
  return total;
}

struct Q8_0 {
  static constexpr size_t kBlockBytes = q32::kQ8Bytes;
  static void decode(const uint8_t*, int, __m256i*) {}  // read per column (16 registers would not fit)
  static __m256i isum(const uint8_t* blk, int h, const __m256i*, const block_q8_act_isum& x) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    return dot_signed_codes(
        [&](int m) {
          return _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)(blk + q32::kScaleBytes + 64 * m + 32 * h)), flip);
        },
        x.qs);
  }
};

// The Q4_0 nibbles looked up as signed levels; the integer sum the scalar order defines,
// sum (level + 128) x - 128 sum(x), is sum level * x, as for Q8_0.
struct IQ4_NL {
  static constexpr size_t kBlockBytes = q32::kQ4Bytes;
  static void decode(const uint8_t* blk, int h, __m256i w[8]) {
    const __m256i levels = _mm256_broadcastsi128_si256(iq4_levels());
    decode_nibbles(blk, h, w);
    for (int k = 0; k < 8; ++k) w[k] = _mm256_shuffle_epi8(levels, w[k]);
  }
  static __m256i isum(const uint8_t*, int, const __m256i w[8], const block_q8_act_isum& x) {
    return dot_signed_codes([&](int k) { return w[k]; }, x.qs);
  }
};

// Q4_1 / Q5_1: the unsigned codes with no offset, the rows' minimums at kMinAt.
struct Q4_1 : Q4_0 {
  static constexpr size_t kBlockBytes = q32::kQ41Bytes, kMinAt = q32::kQ4Bytes;
  static __m256i isum(const uint8_t*, int, const __m256i w[8], const block_q8_act_isum& x) { return dot_codes<8>(w, x.qs); }
};
struct Q5_1 : Q5_0 {
  static constexpr size_t kBlockBytes = q32::kQ51Bytes, kMinAt = q32::kQ5Bytes;
  static __m256i isum(const uint8_t*, int, const __m256i w[8], const block_q8_act_isum& x) { return dot_codes<4>(w, x.qs); }
};

// Rows 8h..8h+7 of one group by C columns over all nb blocks; y[c * ldy + r].
template <class T, int C>
void tile(const uint8_t* grp, int h, int64_t nb, const uint8_t* x, size_t x_stride, float* y, int64_t ldy,
          bool stream) {
  __m256 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = grp + (size_t)b * T::kBlockBytes;
    if (stream) prefetch_ahead<T::kBlockBytes>(blk);
    __m256i w[8];
    T::decode(blk, h, w);
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(blk + 16 * h)));
    for (int c = 0; c < C; ++c) {
      const auto& xb = *((const block_q8_act_isum*)(x + (size_t)c * x_stride) + b);
      const __m256i s = T::isum(blk, h, w, xb);
      acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(xb.d)), _mm256_cvtepi32_ps(s), acc[c]);
      if constexpr (q32::min_at<T> != 0) {
        const __m256 mw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(blk + q32::min_at<T> + 16 * h)));
        acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(mw, _mm256_set1_ps(xb.d)), _mm256_set1_ps((float)xb.isum), acc[c]);
      }
    }
  }
  for (int c = 0; c < C; ++c) _mm256_storeu_ps(y + c * ldy + 8 * h, acc[c]);
}

// Four columns a tile; rows 0-7, then 8-15 (their lines are in cache by then).
template <class T>
constexpr q32::TileFn kTiles[] = {tile<T, 1>, tile<T, 2>, tile<T, 3>, tile<T, 4>};
template <class T>
constexpr auto gemm = q32::gemm_tiles<T::kBlockBytes, 2, 4, kTiles<T>>;

}  // namespace

const PackedFormat* packed_format_for(DType w) {
  if (const PackedFormat* f = q32::format_for<gemm<Q4_0>, gemm<Q5_0>, gemm<Q8_0>, gemm<IQ4_NL>, gemm<Q4_1>, gemm<Q5_1>>(w))
    return f;
  return packed_kquant_format(w);
}

}  // namespace osprey::kernels::avx2

#else  // this compiler or target cannot build AVX2

namespace osprey::kernels::avx2 {
const PackedFormat* packed_format_for(DType w) { return packed_kquant_format(w); }
}  // namespace osprey::kernels::avx2

#endif
