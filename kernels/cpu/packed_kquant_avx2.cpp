// K-quant (and IQ4_XS) packed products, AVX2 + FMA + F16C. Each 64-byte quant line of the
// packed layout is two 8-row halves (one ymm, one 32-bit lane per row); vpmaddubsw against 4 activation bytes
// broadcast, int16 sums that cannot saturate (counted below), then vpmaddwd with the rows'
// (scale, scale) pairs gives scale * sub-block sum per row exactly, as the scalar order wants.
#include "kernels/cpu/packed_kquant.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include "kernels/cpu/x86_helpers.h"

#include <cstring>
#include <type_traits>

namespace osprey::kernels::avx2 {
namespace {

inline __m256i bcast4(const void* p) {  // 4 bytes to every 32-bit lane
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

inline __m256i load32(const void* p) { return _mm256_loadu_si256((const __m256i*)p); }

// 8 bytes to (v, v) int16 pairs, one per 32-bit lane; Signed: sign-extend.
template <bool Signed>
inline __m256i pairs8(const void* p) {
  const __m128i b = _mm_loadl_epi64((const __m128i*)p);
  const __m256i v = Signed ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
  return _mm256_blend_epi16(v, _mm256_slli_epi32(v, 16), 0xAA);
}

inline __m256 widen_f16(const uint16_t* h) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)h)); }

// Rows 8 h .. 8 h + 7 x C columns of Q4_K or Q5_K (P = PackedQ4K / PackedQ5K), y[c * ldy + r].
template <class P, int C>
void half_q45_K(const P* w, int64_t nsb, int h, const block_q8_K* const* xs, float* y, int64_t ldy, bool stream) {
  constexpr bool kQ5 = std::is_same_v<P, PackedQ5K>;
  const __m256i low4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
  __m256 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nsb; ++i) {
    const P& b = w[i];
    __m256i isum[C], msum[C];
    int16_t bs[C][8];
    for (int c = 0; c < C; ++c) {
      isum[c] = msum[c] = _mm256_setzero_si256();
      bsums_of_32(xs[c][i], bs[c]);
    }
    for (int s = 0; s < 8; ++s) {
      if (stream) prefetch_ahead<sizeof(P), 8>(&b, s);
      const __m256i sc = pairs8<false>(b.scales[s] + 8 * h);
      __m256i q[8];
      for (int t = 0; t < 4; ++t) {
        const __m256i raw = load32(b.qs[s][t] + 32 * h);
        q[t] = _mm256_and_si256(raw, low4);
        q[4 + t] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
        if constexpr (kQ5) {  // fifth bits: bit t / 4 + t of qh to bit 4
          const __m256i hb = load32(b.qh[s] + 32 * h);
          q[t] = _mm256_or_si256(q[t], _mm256_and_si256(_mm256_slli_epi16(hb, 4 - t), bit4));
          q[4 + t] = _mm256_or_si256(q[4 + t], _mm256_and_si256(_mm256_srli_epi16(hb, t), bit4));
        }
      }
      for (int c = 0; c < C; ++c) {
        // vpmaddubsw sums of 2 x 15 x 127 (Q5_K: 2 x 31 x 127): eight (four) of them add up
        // to at most 30480 (31496) in int16, no overflow.
        const int8_t* xq = xs[c][i].qs + 32 * s;
        __m256i plo = _mm256_setzero_si256(), phi = _mm256_setzero_si256();
        for (int t = 0; t < 4; ++t) {
          plo = _mm256_add_epi16(plo, _mm256_maddubs_epi16(q[t], bcast4(xq + 4 * t)));
          phi = _mm256_add_epi16(phi, _mm256_maddubs_epi16(q[4 + t], bcast4(xq + 16 + 4 * t)));
        }
        const __m256i scaled = kQ5 ? _mm256_add_epi32(_mm256_madd_epi16(plo, sc), _mm256_madd_epi16(phi, sc))
                                   : _mm256_madd_epi16(_mm256_add_epi16(plo, phi), sc);
        isum[c] = _mm256_add_epi32(isum[c], scaled);
      }
      if (s % 2) {  // the rows' (min s - 1, min s) pairs against the two sub-blocks' sums
        const __m256i m = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(b.mins[s / 2] + 16 * h)));
        for (int c = 0; c < C; ++c) msum[c] = _mm256_add_epi32(msum[c], _mm256_madd_epi16(m, bcast4(bs[c] + s - 1)));
      }
    }
    const __m256 d = widen_f16(b.d + 8 * h), dmin = widen_f16(b.dmin + 8 * h);
    for (int c = 0; c < C; ++c) {
      const __m256 dx = _mm256_set1_ps(xs[c][i].d);
      acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(isum[c]), acc[c]);
      acc[c] = _mm256_fnmadd_ps(_mm256_mul_ps(dmin, dx), _mm256_cvtepi32_ps(msum[c]), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) _mm256_storeu_ps(y + c * ldy + 8 * h, acc[c]);
}

// Rows 8 h .. 8 h + 7 x C columns of Q6_K.
template <int C>
void half_q6_K(const PackedQ6K* w, int64_t nsb, int h, const block_q8_K* const* xs, float* y, int64_t ldy,
               bool stream) {
  const __m256i low4 = _mm256_set1_epi8(0x0F), hi2 = _mm256_set1_epi8(0x30);
  __m256 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nsb; ++i) {
    const PackedQ6K& b = w[i];
    __m256i isum[C], offset[C];
    for (int c = 0; c < C; ++c) isum[c] = offset[c] = _mm256_setzero_si256();
    for (int s = 0; s < 16; ++s) {
      if (stream) prefetch_ahead<sizeof(PackedQ6K), 16>(&b, s);
      const __m256i l0 = load32(b.ql[s][0] + 32 * h), l1 = load32(b.ql[s][1] + 32 * h), hb = load32(b.qh[s] + 32 * h);
      const __m256i q0 = _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), hi2));
      const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), hi2));
      const __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4), _mm256_and_si256(hb, hi2));
      const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                                         _mm256_and_si256(_mm256_srli_epi16(hb, 2), hi2));
      const __m256i sc = pairs8<true>(b.scales[s] + 8 * h);
      // (scale s-1, scale s) int16 pairs against (bsum s-1, bsum s), for the +32 offset.
      const __m256i sc_pair =
          s % 2 ? _mm256_blend_epi16(pairs8<true>(b.scales[s - 1] + 8 * h), sc, 0xAA) : _mm256_setzero_si256();
      for (int c = 0; c < C; ++c) {
        // Two vpmaddubsw sums of 2 x 63 x 127 each: at most 32004, no int16 overflow.
        const int8_t* xq = xs[c][i].qs + 16 * s;
        const __m256i p01 =
            _mm256_add_epi16(_mm256_maddubs_epi16(q0, bcast4(xq)), _mm256_maddubs_epi16(q1, bcast4(xq + 4)));
        const __m256i p23 =
            _mm256_add_epi16(_mm256_maddubs_epi16(q2, bcast4(xq + 8)), _mm256_maddubs_epi16(q3, bcast4(xq + 12)));
        isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_madd_epi16(p01, sc), _mm256_madd_epi16(p23, sc)));
        if (s % 2) offset[c] = _mm256_add_epi32(offset[c], _mm256_madd_epi16(sc_pair, bcast4(xs[c][i].bsums + s - 1)));
      }
    }
    const __m256 d = widen_f16(b.d + 8 * h);
    for (int c = 0; c < C; ++c) {
      const __m256i total = _mm256_sub_epi32(isum[c], _mm256_slli_epi32(offset[c], 5));
      acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(xs[c][i].d)), _mm256_cvtepi32_ps(total), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) _mm256_storeu_ps(y + c * ldy + 8 * h, acc[c]);
}

// Rows 8 h .. 8 h + 7 x C columns of Q2_K or Q3_K. vpmaddubsw pair sums of 2 x 7 x 127 at
// most: a sub-block's four lines add up in int16 (7112), then vpmaddwd with the scales.
template <class P, int C>
void half_q23_K(const P* w, int64_t nsb, int h, const block_q8_K* const* xs, float* y, int64_t ldy, bool stream) {
  constexpr bool kQ3 = std::is_same_v<P, PackedQ3K>;
  const __m256i two_bits = _mm256_set1_epi8(3), bit2 = _mm256_set1_epi8(4), low4 = _mm256_set1_epi16(15);
  __m256 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nsb; ++i) {
    const P& b = w[i];
    __m256i isum[C], msum[C];
    for (int c = 0; c < C; ++c) isum[c] = msum[c] = _mm256_setzero_si256();
    __m256i m_even = _mm256_setzero_si256();
    for (int s = 0; s < 16; ++s) {
      if (stream) prefetch_ahead<sizeof(P), 16>(&b, s);
      const __m256i raw = load32(b.qs[s] + 32 * h);
      __m256i q[4];
      for (int t = 0; t < 4; ++t) q[t] = _mm256_and_si256(_mm256_srli_epi16(raw, 2 * t), two_bits);
      __m256i sc, m;  // (v, v) int16 pairs per row
      if constexpr (kQ3) {
        const __m256i hb = load32(b.qh[s / 2] + 32 * h);
        for (int t = 0; t < 4; ++t) {  // bit k = 4 (s % 2) + t of each byte to bit 2
          const int k = 4 * (s % 2) + t;
          q[t] = _mm256_or_si256(q[t], _mm256_and_si256(k >= 2 ? _mm256_srli_epi16(hb, k - 2) : _mm256_slli_epi16(hb, 2 - k), bit2));
        }
        sc = m = pairs8<true>(b.scales[s] + 8 * h);
      } else {
        const __m256i sm = pairs8<false>(b.scales[s] + 8 * h);
        sc = _mm256_and_si256(sm, low4);
        m = _mm256_srli_epi16(sm, 4);
      }
      for (int c = 0; c < C; ++c) {
        const int8_t* xq = xs[c][i].qs + 16 * s;
        __m256i p = _mm256_maddubs_epi16(q[0], bcast4(xq));
        for (int t = 1; t < 4; ++t) p = _mm256_add_epi16(p, _mm256_maddubs_epi16(q[t], bcast4(xq + 4 * t)));
        isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(p, sc));
      }
      if (s % 2 == 0) {
        m_even = m;
        continue;
      }
      // (s - 1, s) int16 pairs against (bsum s - 1, bsum s).
      const __m256i pair = _mm256_blend_epi16(m_even, m, 0xAA);
      for (int c = 0; c < C; ++c) msum[c] = _mm256_add_epi32(msum[c], _mm256_madd_epi16(pair, bcast4(xs[c][i].bsums + s - 1)));
    }
    const __m256 d = widen_f16(b.d + 8 * h);
    __m256 dmin = _mm256_setzero_ps();
    if constexpr (!kQ3) dmin = widen_f16(b.dmin + 8 * h);
    for (int c = 0; c < C; ++c) {
      const __m256 dx = _mm256_set1_ps(xs[c][i].d);
      if constexpr (kQ3) {
        const __m256i total = _mm256_sub_epi32(isum[c], _mm256_slli_epi32(msum[c], 2));
        acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(total), acc[c]);
      } else {
        acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(isum[c]), acc[c]);
        acc[c] = _mm256_fnmadd_ps(_mm256_mul_ps(dmin, dx), _mm256_cvtepi32_ps(msum[c]), acc[c]);
      }
    }
  }
  for (int c = 0; c < C; ++c) _mm256_storeu_ps(y + c * ldy + 8 * h, acc[c]);
}

// Rows 8 h .. 8 h + 7 x C columns of IQ4_XS. The signed levels' pair sums reach
// 2 x 127 x 127 = 32258 (mul_signed_pairs), so each line goes to int32 with the rows' scales
// at once (vpmaddwd), unlike the K-quants' int16 sums.
template <int C>
void half_iq4_xs(const PackedIQ4XS* w, int64_t nsb, int h, const block_q8_K* const* xs, float* y, int64_t ldy,
                 bool stream) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i levels = _mm256_broadcastsi128_si256(iq4_levels());
  __m256 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nsb; ++i) {
    const PackedIQ4XS& b = w[i];
    __m256i isum[C];
    for (int c = 0; c < C; ++c) isum[c] = _mm256_setzero_si256();
    for (int s = 0; s < 8; ++s) {
      if (stream) prefetch_ahead<sizeof(PackedIQ4XS), 8>(&b, s);
      const __m256i sc = pairs8<true>(b.scales[s] + 8 * h);
      for (int half = 0; half < 2; ++half) {  // low nibbles (columns 32 s + 4 t + j), then high (+ 16)
        __m256i lv[4];
        for (int t = 0; t < 4; ++t) {
          const __m256i raw = load32(b.qs[s][t] + 32 * h);
          lv[t] = _mm256_shuffle_epi8(levels, _mm256_and_si256(half ? _mm256_srli_epi16(raw, 4) : raw, low4));
        }
        for (int c = 0; c < C; ++c) {
          const int8_t* xq = xs[c][i].qs + 32 * s + 16 * half;
          for (int t = 0; t < 4; ++t) {
            isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(mul_signed_pairs(lv[t], bcast4(xq + 4 * t)), sc));
          }
        }
      }
    }
    const __m256 d = widen_f16(b.d + 8 * h);
    for (int c = 0; c < C; ++c)
      acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(xs[c][i].d)), _mm256_cvtepi32_ps(isum[c]), acc[c]);
  }
  for (int c = 0; c < C; ++c) _mm256_storeu_ps(y + c * ldy + 8 * h, acc[c]);
}

// The 16-row tile: rows 0-7, then 8-15 (their lines are in cache by then).
template <class P, int C, void (*Half)(const P*, int64_t, int, const block_q8_K* const*, float*, int64_t, bool)>
void tile16(const P* w, int64_t nsb, const block_q8_K* const* xs, float* y, int64_t ldy, bool stream) {
  Half(w, nsb, 0, xs, y, ldy, stream);
  Half(w, nsb, 1, xs, y, ldy, false);
}
template <class P, int C>
constexpr PackedTileFn<P> tile_q45 = tile16<P, C, half_q45_K<P, C>>;
template <int C>
constexpr PackedTileFn<PackedQ6K> tile_q6 = tile16<PackedQ6K, C, half_q6_K<C>>;
template <int C>
constexpr PackedTileFn<PackedIQ4XS> tile_iq4 = tile16<PackedIQ4XS, C, half_iq4_xs<C>>;
template <class P, int C>
constexpr PackedTileFn<P> tile_q23 = tile16<P, C, half_q23_K<P, C>>;

// Four columns a tile: 16 x 512 x 2048 products ran at 69 / 91 / 76 GMAC/s (Q4_K) and
// 61 / 73-76 / - (Q6_K, six spills badly) with 2 / 4 / 6 columns on one Zen 4 core.
template <class P>
constexpr PackedTileFn<P> kQ45KTiles[] = {tile_q45<P, 1>, tile_q45<P, 2>, tile_q45<P, 3>, tile_q45<P, 4>};
constexpr PackedTileFn<PackedQ6K> kQ6KTiles[] = {tile_q6<1>, tile_q6<2>, tile_q6<3>, tile_q6<4>};
constexpr PackedTileFn<PackedIQ4XS> kIQ4XSTiles[] = {tile_iq4<1>, tile_iq4<2>, tile_iq4<3>, tile_iq4<4>};
template <class P>
constexpr PackedTileFn<P> kQ23KTiles[] = {tile_q23<P, 1>, tile_q23<P, 2>, tile_q23<P, 3>, tile_q23<P, 4>};

}  // namespace

const PackedFormat* packed_kquant_format(DType w) {
  return packed_kquant_table<4, kQ23KTiles<PackedQ2K>, 4, kQ23KTiles<PackedQ3K>, 4, kQ45KTiles<PackedQ4K>, 4,
                             kQ45KTiles<PackedQ5K>, 4, kQ6KTiles, 4, kIQ4XSTiles>(w);
}

}  // namespace osprey::kernels::avx2

#else  // not built

namespace osprey::kernels::avx2 {
const PackedFormat* packed_kquant_format(DType) { return nullptr; }
}  // namespace osprey::kernels::avx2

#endif
