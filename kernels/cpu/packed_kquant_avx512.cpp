// K-quant (and IQ4_XS) packed products, AVX-512 (F, BW, VL) + VNNI. One zmm lane per row:
// vpdpbusd of a 64-byte quant line (16 rows x 4 columns, unsigned) against 4 activation bytes broadcast
// gives a sub-block's partial sums for 16 rows with no horizontal step; vpmulld applies the
// 16 rows' sub-block scales. A tile decodes each line once for C activation columns.
#include "kernels/cpu/packed_kquant.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#include "kernels/cpu/avx512_intrin.h"
#include "kernels/cpu/x86_helpers.h"

#include <cstring>
#include <type_traits>

namespace osprey::kernels::avx512 {
namespace {

inline __m512i bcast4(const void* p) {  // 4 bytes to every 32-bit lane
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

inline __m512 widen_f16(const uint16_t* h) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)h)); }

inline __m512i widen_u8(const uint8_t* p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)p)); }

// 16 rows x C columns of Q4_K or Q5_K (P = PackedQ4K / PackedQ5K), y[c * ldy + r].
template <class P, int C>
void tile_q45_K(const P* w, int64_t nsb, const block_q8_K* const* xs, float* y, int64_t ldy, bool stream) {
  constexpr bool kQ5 = std::is_same_v<P, PackedQ5K>;
  const __m512i low4 = _mm512_set1_epi8(0x0F), high4 = _mm512_set1_epi8((char)0xF0), bit4 = _mm512_set1_epi8(0x10);
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nsb; ++i) {
    const P& b = w[i];
    __m512i isum[C], msum[C];
    int16_t bs[C][8];
    for (int c = 0; c < C; ++c) {
      isum[c] = msum[c] = _mm512_setzero_si512();
      bsums_of_32(xs[c][i], bs[c]);
    }
    for (int s = 0; s < 8; ++s) {
      if (stream) prefetch_ahead<sizeof(P), 8>(&b, s);
      // Q4_K keeps each high nibble in place (16 times its value, at most 240): one AND a
      // line, and the sum of those products, a multiple of 16, shifts back exactly.
      __m512i lo[4], hi[4];
      for (int t = 0; t < 4; ++t) {
        const __m512i raw = _mm512_loadu_si512(b.qs[s][t]);
        lo[t] = _mm512_and_si512(raw, low4);
        hi[t] = kQ5 ? _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4) : _mm512_and_si512(raw, high4);
      }
      if constexpr (kQ5) {  // fifth bits: bit t / 4 + t to bit 4, or'ed in
        const __m512i h = _mm512_loadu_si512(b.qh[s]);
        for (int t = 0; t < 4; ++t) {
          lo[t] = _mm512_ternarylogic_epi32(_mm512_slli_epi16(h, 4 - t), bit4, lo[t], 0xEA);
          hi[t] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(h, t), bit4, hi[t], 0xEA);
        }
      }
      const __m512i sc = widen_u8(b.scales[s]);
      for (int c = 0; c < C; ++c) {
        const int8_t* xq = xs[c][i].qs + 32 * s;
        __m512i sl = _mm512_setzero_si512(), sh = _mm512_setzero_si512();
        for (int t = 0; t < 4; ++t) {
          sl = _mm512_dpbusd_epi32(sl, lo[t], bcast4(xq + 4 * t));
          sh = _mm512_dpbusd_epi32(sh, hi[t], bcast4(xq + 16 + 4 * t));
        }
        const __m512i sub = _mm512_add_epi32(sl, kQ5 ? sh : _mm512_srai_epi32(sh, 4));
        isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(sub, sc));
      }
      if (s % 2) {  // the rows' (min s - 1, min s) int16 pairs against the two sub-blocks' sums
        const __m512i m = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)b.mins[s / 2]));
        for (int c = 0; c < C; ++c) msum[c] = _mm512_dpwssd_epi32(msum[c], m, bcast4(bs[c] + s - 1));
      }
    }
    const __m512 d = widen_f16(b.d), dmin = widen_f16(b.dmin);
    for (int c = 0; c < C; ++c) {
      const __m512 dx = _mm512_set1_ps(xs[c][i].d);
      acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(isum[c]), acc[c]);
      acc[c] = _mm512_fnmadd_ps(_mm512_mul_ps(dmin, dx), _mm512_cvtepi32_ps(msum[c]), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(y + c * ldy, acc[c]);
}

// 16 rows x C columns of Q6_K.
template <int C>
void tile_q6_K(const PackedQ6K* w, int64_t nsb, const block_q8_K* const* xs, float* y, int64_t ldy, bool stream) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), pairs = _mm512_set1_epi8(0x33);
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nsb; ++i) {
    const PackedQ6K& b = w[i];
    __m512i isum[C], offset[C];
    for (int c = 0; c < C; ++c) isum[c] = offset[c] = _mm512_setzero_si512();
    __m512i sc_even;
    for (int s = 0; s < 16; ++s) {
      if (stream) prefetch_ahead<sizeof(PackedQ6K), 16>(&b, s);
      const __m512i l0 = _mm512_loadu_si512(b.ql[s][0]), l1 = _mm512_loadu_si512(b.ql[s][1]);
      const __m512i h = _mm512_loadu_si512(b.qh[s]);
      // ha holds the top bits of lines 0 and 2 at bits 0-1 and 4-5, hb those of lines 1 and 3,
      // each with zeros above; one select (imm 0xCA: low4 ? low bits : top bits) a line.
      const __m512i ha = _mm512_and_si512(h, pairs), hb = _mm512_and_si512(_mm512_srli_epi16(h, 2), pairs);
      const __m512i q0 = _mm512_ternarylogic_epi32(low4, l0, _mm512_slli_epi16(ha, 4), 0xCA);
      const __m512i q1 = _mm512_ternarylogic_epi32(low4, l1, _mm512_slli_epi16(hb, 4), 0xCA);
      const __m512i q2 = _mm512_ternarylogic_epi32(low4, _mm512_srli_epi16(l0, 4), ha, 0xCA);
      const __m512i q3 = _mm512_ternarylogic_epi32(low4, _mm512_srli_epi16(l1, 4), hb, 0xCA);
      const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)b.scales[s]));
      for (int c = 0; c < C; ++c) {
        const int8_t* xq = xs[c][i].qs + 16 * s;
        __m512i sub = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q0, bcast4(xq));
        sub = _mm512_dpbusd_epi32(sub, q1, bcast4(xq + 4));
        sub = _mm512_dpbusd_epi32(sub, q2, bcast4(xq + 8));
        sub = _mm512_dpbusd_epi32(sub, q3, bcast4(xq + 12));
        isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(sub, sc));
      }
      if (s % 2 == 0) {
        sc_even = sc;
        continue;
      }
      // (scale s-1, scale s) int16 pairs against (bsum s-1, bsum s): the +32 offset's sum.
      const __m512i pair = _mm512_mask_blend_epi16(0xAAAAAAAAu, sc_even, _mm512_slli_epi32(sc, 16));
      for (int c = 0; c < C; ++c) offset[c] = _mm512_dpwssd_epi32(offset[c], pair, bcast4(xs[c][i].bsums + s - 1));
    }
    const __m512 d = widen_f16(b.d);
    for (int c = 0; c < C; ++c) {
      const __m512i total = _mm512_sub_epi32(isum[c], _mm512_slli_epi32(offset[c], 5));
      acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(xs[c][i].d)), _mm512_cvtepi32_ps(total), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(y + c * ldy, acc[c]);
}

// 16 rows x C columns of Q2_K or Q3_K (P = PackedQ2K / PackedQ3K). Line t of sub-block s is
// bits 2t..2t+1 of its qs bytes (Q3_K: or'ed with the third bit at bit 2), unsigned for
// vpdpbusd; Q2_K's mins and Q3_K's +4 offset meet the bsums as (s - 1, s) int16 pairs.
template <class P, int C>
void tile_q23_K(const P* w, int64_t nsb, const block_q8_K* const* xs, float* y, int64_t ldy, bool stream) {
  constexpr bool kQ3 = std::is_same_v<P, PackedQ3K>;
  const __m512i two_bits = _mm512_set1_epi8(3), bit2 = _mm512_set1_epi8(4), low4 = _mm512_set1_epi32(15);
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nsb; ++i) {
    const P& b = w[i];
    __m512i isum[C], msum[C];
    for (int c = 0; c < C; ++c) isum[c] = msum[c] = _mm512_setzero_si512();
    __m512i m_even = _mm512_setzero_si512();  // sub-block s - 1's min (Q2_K) or scale (Q3_K), for the pair
    for (int s = 0; s < 16; ++s) {
      if (stream) prefetch_ahead<sizeof(P), 16>(&b, s);
      const __m512i raw = _mm512_loadu_si512(b.qs[s]);
      __m512i q[4];
      for (int t = 0; t < 4; ++t) q[t] = _mm512_and_si512(_mm512_srli_epi16(raw, 2 * t), two_bits);
      __m512i sc, m;
      if constexpr (kQ3) {
        const __m512i h = _mm512_loadu_si512(b.qh[s / 2]);
        for (int t = 0; t < 4; ++t) {  // bit k = 4 (s % 2) + t of each byte to bit 2
          const int k = 4 * (s % 2) + t;
          q[t] = _mm512_or_si512(q[t], _mm512_and_si512(k >= 2 ? _mm512_srli_epi16(h, k - 2) : _mm512_slli_epi16(h, 2 - k), bit2));
        }
        sc = m = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)b.scales[s]));
      } else {
        const __m512i sm = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)b.scales[s]));
        sc = _mm512_and_si512(sm, low4);
        m = _mm512_srli_epi32(sm, 4);
      }
      for (int c = 0; c < C; ++c) {
        const int8_t* xq = xs[c][i].qs + 16 * s;
        __m512i sub = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[0], bcast4(xq));
        for (int t = 1; t < 4; ++t) sub = _mm512_dpbusd_epi32(sub, q[t], bcast4(xq + 4 * t));
        isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(sub, sc));
      }
      if (s % 2 == 0) {
        m_even = m;
        continue;
      }
      const __m512i pair = _mm512_mask_blend_epi16(0xAAAAAAAAu, m_even, _mm512_slli_epi32(m, 16));
      for (int c = 0; c < C; ++c) msum[c] = _mm512_dpwssd_epi32(msum[c], pair, bcast4(xs[c][i].bsums + s - 1));
    }
    const __m512 d = widen_f16(b.d);
    __m512 dmin = _mm512_setzero_ps();
    if constexpr (!kQ3) dmin = widen_f16(b.dmin);
    for (int c = 0; c < C; ++c) {
      const __m512 dx = _mm512_set1_ps(xs[c][i].d);
      if constexpr (kQ3) {
        const __m512i total = _mm512_sub_epi32(isum[c], _mm512_slli_epi32(msum[c], 2));
        acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(total), acc[c]);
      } else {
        acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(isum[c]), acc[c]);
        acc[c] = _mm512_fnmadd_ps(_mm512_mul_ps(dmin, dx), _mm512_cvtepi32_ps(msum[c]), acc[c]);
      }
    }
  }
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(y + c * ldy, acc[c]);
}

// 16 rows x C columns of IQ4_XS. The lines' nibbles become level + 128 (unsigned for
// vpdpbusd); the 128 * sum(x) that adds is taken back out per sub-block before the scale.
template <int C>
void tile_iq4_xs(const PackedIQ4XS* w, int64_t nsb, const block_q8_K* const* xs, float* y, int64_t ldy, bool stream) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i levels = _mm512_broadcast_i32x4(iq4_levels_plus128());
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nsb; ++i) {
    const PackedIQ4XS& b = w[i];
    __m512i isum[C];
    int16_t bs[C][8];
    for (int c = 0; c < C; ++c) {
      isum[c] = _mm512_setzero_si512();
      bsums_of_32(xs[c][i], bs[c]);
    }
    for (int s = 0; s < 8; ++s) {
      if (stream) prefetch_ahead<sizeof(PackedIQ4XS), 8>(&b, s);
      __m512i lo[4], hi[4];
      for (int t = 0; t < 4; ++t) {
        const __m512i raw = _mm512_loadu_si512(b.qs[s][t]);
        lo[t] = _mm512_shuffle_epi8(levels, _mm512_and_si512(raw, low4));
        hi[t] = _mm512_shuffle_epi8(levels, _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4));
      }
      const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)b.scales[s]));
      for (int c = 0; c < C; ++c) {
        const int8_t* xq = xs[c][i].qs + 32 * s;
        __m512i sub = _mm512_set1_epi32(-128 * bs[c][s]);
        for (int t = 0; t < 4; ++t) {
          sub = _mm512_dpbusd_epi32(sub, lo[t], bcast4(xq + 4 * t));
          sub = _mm512_dpbusd_epi32(sub, hi[t], bcast4(xq + 16 + 4 * t));
        }
        isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(sub, sc));
      }
    }
    const __m512 d = widen_f16(b.d);
    for (int c = 0; c < C; ++c)
      acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(xs[c][i].d)), _mm512_cvtepi32_ps(isum[c]), acc[c]);
  }
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(y + c * ldy, acc[c]);
}

// Six columns a tile: 16 x 512 x 2048 products ran at 158 / 166 / 150 GMAC/s (Q4_K) and
// 131 / 145 / 145 (Q6_K) with 4 / 6 / 8 columns on one Zen 4 core.
template <class P>
constexpr PackedTileFn<P> kQ45KTiles[] = {tile_q45_K<P, 1>, tile_q45_K<P, 2>, tile_q45_K<P, 3>,
                                          tile_q45_K<P, 4>, tile_q45_K<P, 5>, tile_q45_K<P, 6>};
constexpr PackedTileFn<PackedQ6K> kQ6KTiles[] = {tile_q6_K<1>, tile_q6_K<2>, tile_q6_K<3>,
                                                 tile_q6_K<4>, tile_q6_K<5>, tile_q6_K<6>};
template <class P>
constexpr PackedTileFn<P> kQ23KTiles[] = {tile_q23_K<P, 1>, tile_q23_K<P, 2>, tile_q23_K<P, 3>,
                                          tile_q23_K<P, 4>, tile_q23_K<P, 5>, tile_q23_K<P, 6>};
constexpr PackedTileFn<PackedIQ4XS> kIQ4XSTiles[] = {tile_iq4_xs<1>, tile_iq4_xs<2>, tile_iq4_xs<3>,
                                                     tile_iq4_xs<4>, tile_iq4_xs<5>, tile_iq4_xs<6>};

}  // namespace

const PackedFormat* packed_kquant_format(DType w) {
  return packed_kquant_table<6, kQ23KTiles<PackedQ2K>, 6, kQ23KTiles<PackedQ3K>, 6, kQ45KTiles<PackedQ4K>, 6,
                             kQ45KTiles<PackedQ5K>, 6, kQ6KTiles, 6, kIQ4XSTiles>(w);
}

}  // namespace osprey::kernels::avx512

#else  // not built

namespace osprey::kernels::avx512 {
const PackedFormat* packed_kquant_format(DType) { return nullptr; }
}  // namespace osprey::kernels::avx512

#endif
