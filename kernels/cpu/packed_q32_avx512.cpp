// AVX-512 VNNI products over the 32-element-block packed layouts (packed_q32.h): a tile is
// one 16-row group (lanes = rows) by up to 8 activation columns. Each block's weights are
// decoded once into eight registers of 4 codes per row, then every column adds its block
// with eight vpdpbusd against broadcast 4-byte activation slices: no horizontal sums, and
// the block scales of all 16 rows are applied in one multiply + FMA. Same bits as the
// scalar gemm (packed_q32_scalar.cpp) for every column count.
#include "kernels/cpu/packed_kquant.h"
#include "kernels/cpu/packed_q32.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#include "kernels/cpu/avx512_intrin.h"
#include "kernels/cpu/x86_helpers.h"

#include <cstring>

namespace osprey::kernels::avx512 {
namespace {

// Register w[k] holds elements 4k..4k+3 of every row, as unsigned codes.
struct Q4_0 {
  static constexpr size_t kBlockBytes = q32::kQ4Bytes;
  static constexpr int kOffset = q32::kQ4Offset;
  static void decode(const uint8_t* blk, __m512i w[8]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int j = 0; j < 4; ++j) {
      const __m512i raw = _mm512_loadu_si512(blk + q32::kScaleBytes + 64 * j);
      w[j] = _mm512_and_si512(raw, m4);
      w[j + 4] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
    }
  }
};

struct Q5_0 {
  static constexpr size_t kBlockBytes = q32::kQ5Bytes;
  static constexpr int kOffset = q32::kQ5Offset;
  static void decode(const uint8_t* blk, __m512i w[8]) {
    Q4_0::decode(blk, w);
    const __m512i sixteen = _mm512_set1_epi8(16);
    for (int m = 0; m < 8; ++m) {
      uint64_t bits;
      std::memcpy(&bits, blk + q32::kQ4Bytes + 8 * m, 8);
      w[m] = _mm512_mask_add_epi8(w[m], _cvtu64_mask64(bits), w[m], sixteen);
    }
  }
};

struct Q8_0 {
  static constexpr size_t kBlockBytes = q32::kQ8Bytes;
  static constexpr int kOffset = q32::kQ8Offset;
  static void decode(const uint8_t* blk, __m512i w[8]) {
    for (int m = 0; m < 8; ++m) w[m] = _mm512_loadu_si512(blk + q32::kScaleBytes + 64 * m);
  }
};

// The Q4_0 nibbles looked up as level + 128.
struct IQ4_NL {
  static constexpr size_t kBlockBytes = q32::kQ4Bytes;
  static constexpr int kOffset = q32::kIQ4Offset;
  static void decode(const uint8_t* blk, __m512i w[8]) {
    const __m512i levels = _mm512_broadcast_i32x4(iq4_levels_plus128());
    Q4_0::decode(blk, w);
    for (int k = 0; k < 8; ++k) w[k] = _mm512_shuffle_epi8(levels, w[k]);
  }
};

// Q4_1 / Q5_1: the unsigned nibbles (offset 0), the rows' minimums at kMinAt.
struct Q4_1 : Q4_0 {
  static constexpr size_t kBlockBytes = q32::kQ41Bytes, kMinAt = q32::kQ4Bytes;
  static constexpr int kOffset = 0;
};
struct Q5_1 : Q5_0 {
  static constexpr size_t kBlockBytes = q32::kQ51Bytes, kMinAt = q32::kQ5Bytes;
  static constexpr int kOffset = 0;
};

inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// One group (16 rows) by C columns over all nb blocks; y[c * ldy + r].
template <class T, int C>
void tile(const uint8_t* grp, int, int64_t nb, const uint8_t* x, size_t x_stride, float* y, int64_t ldy, bool stream) {
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = grp + (size_t)b * T::kBlockBytes;
    if (stream) prefetch_ahead<T::kBlockBytes>(blk);
    __m512i w[8];
    T::decode(blk, w);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)blk));
    for (int c = 0; c < C; ++c) {
      const auto* xb = (const block_q8_act_isum*)(x + (size_t)c * x_stride) + b;
      // Two chains while few columns are in flight (latency), one when many are (throughput).
      __m512i s = _mm512_set1_epi32(-T::kOffset * xb->isum);
      if constexpr (C < 4) {
        __m512i s1 = _mm512_setzero_si512();
        for (int k = 0; k < 4; ++k) {
          s = _mm512_dpbusd_epi32(s, w[k], bcast4(xb->qs + 4 * k));
          s1 = _mm512_dpbusd_epi32(s1, w[k + 4], bcast4(xb->qs + 16 + 4 * k));
        }
        s = _mm512_add_epi32(s, s1);
      } else {
        for (int k = 0; k < 8; ++k) s = _mm512_dpbusd_epi32(s, w[k], bcast4(xb->qs + 4 * k));
      }
      acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(xb->d)), _mm512_cvtepi32_ps(s), acc[c]);
      if constexpr (q32::min_at<T> != 0) {
        const __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(blk + q32::min_at<T>)));
        acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(mw, _mm512_set1_ps(xb->d)), _mm512_set1_ps((float)xb->isum), acc[c]);
      }
    }
  }
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(y + c * ldy, acc[c]);
}

// Eight columns a tile.
template <class T>
constexpr q32::TileFn kTiles[] = {tile<T, 1>, tile<T, 2>, tile<T, 3>, tile<T, 4>,
                                  tile<T, 5>, tile<T, 6>, tile<T, 7>, tile<T, 8>};
template <class T>
constexpr auto gemm = q32::gemm_tiles<T::kBlockBytes, 1, 8, kTiles<T>>;

// lround(v) for every lane: trunc, then one away from zero where |fraction| >= 0.5 (the
// fraction v - trunc(v) is exact, so ties go the way lround takes them).
inline __m512i round_half_away(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
  const __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN));
  const __m512 one = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(_mm512_set1_ps(1.0f)), sign));
  return _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, one));
}

// One Q8_K block (256 values): a zmm of 16 is exactly one of its bsums groups.
inline void quantize_q8_K_block(const float* x, block_q8_K* b) {
  __m512 m = _mm512_setzero_ps();  // a NaN lane leaves the running maximum alone, as below
  for (int g = 0; g < 16; ++g) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * g)), m);
  const float amax = _mm512_reduce_max_ps(m);
  const float d = amax / 127.f, id = d > 0 ? 1.f / d : 0.f;
  const __m512 vid = _mm512_set1_ps(id);
  b->d = d;
  for (int g = 0; g < 16; ++g) {
    const __m512i q = round_half_away(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * g), vid));
    _mm_storeu_si128((__m128i*)(b->qs + 16 * g), _mm512_cvtepi32_epi8(q));
    b->bsums[g] = (int16_t)_mm512_reduce_add_epi32(q);
  }
}

}  // namespace

bool quantize_act_row(ActQuant q, const float* x, void* dst, int64_t K) {
  if (q == ActQuant::Q8_K) {  // the K-quants' activations: generation quantizes one row a matmul
    for (int64_t i = 0; i < K / 256; ++i) quantize_q8_K_block(x + 256 * i, (block_q8_K*)dst + i);
    return true;
  }
  if (q != ActQuant::Q8_32 && q != ActQuant::Q8_32_ISUM) return false;
  static_assert(sizeof(block_q8_act) == sizeof(block_q8_act_isum));
  for (int64_t i = 0; i < K / 32; ++i) {
    const __m512 v0 = _mm512_loadu_ps(x + 32 * i), v1 = _mm512_loadu_ps(x + 32 * i + 16);
    // As std::max(amax, |x|) from 0: a NaN lane leaves the running maximum alone.
    __m512 m = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_setzero_ps());
    m = _mm512_max_ps(_mm512_abs_ps(v1), m);
    const float amax = _mm512_reduce_max_ps(m);
    const float d = amax / 127.f, id = d > 0 ? 1.f / d : 0.f;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i q0 = round_half_away(_mm512_mul_ps(v0, vid)), q1 = round_half_away(_mm512_mul_ps(v1, vid));
    auto* b = (block_q8_act_isum*)dst + i;
    b->d = d;
    _mm_storeu_si128((__m128i*)b->qs, _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128((__m128i*)(b->qs + 16), _mm512_cvtepi32_epi8(q1));
    const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    if (q == ActQuant::Q8_32_ISUM) b->isum = sum;
    else ((block_q8_act*)dst + i)->s = d * (float)sum;
  }
  return true;
}

const PackedFormat* packed_format_for(DType w) {
  if (const PackedFormat* f = q32::format_for<gemm<Q4_0>, gemm<Q5_0>, gemm<Q8_0>, gemm<IQ4_NL>, gemm<Q4_1>, gemm<Q5_1>>(w))
    return f;
  return packed_kquant_format(w);
}

}  // namespace osprey::kernels::avx512

#else  // this compiler or target cannot build AVX-512 VNNI

namespace osprey::kernels::avx512 {
const PackedFormat* packed_format_for(DType w) { return packed_kquant_format(w); }
bool quantize_act_row(ActQuant, const float*, void*, int64_t) { return false; }
}  // namespace osprey::kernels::avx512

#endif
