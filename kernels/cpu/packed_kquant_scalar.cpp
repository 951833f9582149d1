// K-quant and IQ4_XS packed layouts (packed_kquant.h): the portable packing, and the scalar
// products that define every ISA's result bit for bit.
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/base/fp16.h"
#include "kernels/cpu/kquant_dot.h"
#include "kernels/cpu/packed_kquant.h"

namespace osprey::kernels {
namespace {

// The 16 rows' super-block i, copied out (rows `stride` bytes apart, no alignment assumed).
template <class B>
void load_blocks(const void* src, size_t stride, int64_t i, B (&b)[16]) {
  for (int r = 0; r < 16; ++r)
    std::memcpy(&b[r], (const uint8_t*)src + (size_t)r * stride + (size_t)i * sizeof(B), sizeof(B));
}

inline uint32_t word(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void put(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

constexpr uint32_t kNibbles = 0x0F0F0F0Fu, kBits = 0x01010101u, kPairs = 0x03030303u;

// Packing works on 4 columns (one 32-bit word) at a time: pack() runs once per weight at load
// time, and a model's worth of bytes should take well under a second.

// Q4_K and Q5_K (B, P: source block and packed super-block); Q5_K adds the fifth-bit plane.
template <class B, class P>
void pack_q45_K(const void* src, size_t stride, int64_t K, void* dst) {
  B b[16];
  P p;
  for (int64_t i = 0; i < K / 256; ++i) {
    load_blocks(src, stride, i, b);
    for (int r = 0; r < 16; ++r) {
      p.d[r] = b[r].d;
      p.dmin[r] = b[r].dmin;
      uint64_t sc8, m8;
      k4_scales_mins(b[r].scales, &sc8, &m8);
      for (int s = 0; s < 8; ++s) {
        p.scales[s][r] = (uint8_t)(sc8 >> (8 * s));
        p.mins[s / 2][2 * r + s % 2] = (uint8_t)(m8 >> (8 * s));
      }
    }
    // Source sub-blocks 2u and 2u + 1 are the low and high nibbles of qs[32 u .. 32 u + 31].
    for (int u = 0; u < 4; ++u)
      for (int t = 0; t < 4; ++t)
        for (int r = 0; r < 16; ++r) {
          const uint32_t lo = word(b[r].qs + 32 * u + 4 * t), hi = word(b[r].qs + 32 * u + 16 + 4 * t);
          put(p.qs[2 * u][t] + 4 * r, (lo & kNibbles) | (hi & kNibbles) << 4);
          put(p.qs[2 * u + 1][t] + 4 * r, (lo >> 4 & kNibbles) | (hi & ~kNibbles));
        }
    if constexpr (std::is_same_v<B, block_q5_K>)  // the fifth bit of element 32 s + l is bit s of qh[l]
      for (int r = 0; r < 16; ++r)
        for (int s = 0; s < 8; ++s) {
          uint32_t out = 0;
          for (int t = 0; t < 4; ++t)
            out |= (word(b[r].qh + 4 * t) >> s & kBits) << t | (word(b[r].qh + 16 + 4 * t) >> s & kBits) << (4 + t);
          put(p.qh[s] + 4 * r, out);
        }
    std::memcpy((uint8_t*)dst + (size_t)i * sizeof p, &p, sizeof p);
  }
}

}  // namespace

size_t packed_q4_K_bytes(int64_t K) { return (size_t)(K / 256) * sizeof(PackedQ4K); }
size_t packed_q5_K_bytes(int64_t K) { return (size_t)(K / 256) * sizeof(PackedQ5K); }
size_t packed_q6_K_bytes(int64_t K) { return (size_t)(K / 256) * sizeof(PackedQ6K); }

void pack_q4_K(const void* src, size_t stride, int64_t K, void* dst) {
  pack_q45_K<block_q4_K, PackedQ4K>(src, stride, K, dst);
}
void pack_q5_K(const void* src, size_t stride, int64_t K, void* dst) {
  pack_q45_K<block_q5_K, PackedQ5K>(src, stride, K, dst);
}

// Q6_K element e = 128 h + 32 g + l has its low bits in ql[64 h + 32 (g % 2) + l] (low nibble
// for g < 2) and its top two in qh[32 h + l], bits 2g (as quant_dot_scalar.cpp reads it).
// Packed sub-block s covers h = s / 8, g = s % 8 / 2, l = 16 (s % 2) + 4 t + j.
void pack_q6_K(const void* src, size_t stride, int64_t K, void* dst) {
  block_q6_K b[16];
  PackedQ6K p;
  for (int64_t i = 0; i < K / 256; ++i) {
    load_blocks(src, stride, i, b);
    for (int r = 0; r < 16; ++r) {
      p.d[r] = b[r].d;
      for (int s = 0; s < 16; ++s) p.scales[s][r] = b[r].scales[s];
    }
    for (int s = 0; s < 16; ++s) {
      const int h = s / 8, g = s % 8 / 2, l0 = 16 * (s % 2);
      for (int r = 0; r < 16; ++r) {
        uint32_t low[4], out_h = 0;
        for (int t = 0; t < 4; ++t) {
          const uint32_t ql = word(b[r].ql + 64 * h + 32 * (g % 2) + l0 + 4 * t);
          low[t] = (g < 2 ? ql : ql >> 4) & kNibbles;
          out_h |= (word(b[r].qh + 32 * h + l0 + 4 * t) >> (2 * g) & kPairs) << (2 * t);
        }
        put(p.ql[s][0] + 4 * r, low[0] | low[2] << 4);
        put(p.ql[s][1] + 4 * r, low[1] | low[3] << 4);
        put(p.qh[s] + 4 * r, out_h);
      }
    }
    std::memcpy((uint8_t*)dst + (size_t)i * sizeof p, &p, sizeof p);
  }
}

size_t packed_iq4_xs_bytes(int64_t K) { return (size_t)(K / 256) * sizeof(PackedIQ4XS); }

void pack_iq4_xs(const void* src, size_t stride, int64_t K, void* dst) {
  block_iq4_xs b[16];
  PackedIQ4XS p;
  for (int64_t i = 0; i < K / 256; ++i) {
    load_blocks(src, stride, i, b);
    for (int r = 0; r < 16; ++r) {
      p.d[r] = b[r].d;
      for (int s = 0; s < 8; ++s) p.scales[s][r] = (int8_t)osprey_iq4xs_scale(&b[r], s);
      for (int s = 0; s < 8; ++s)
        for (int t = 0; t < 4; ++t) std::memcpy(p.qs[s][t] + 4 * r, b[r].qs + 16 * s + 4 * t, 4);
    }
    std::memcpy((uint8_t*)dst + (size_t)i * sizeof p, &p, sizeof p);
  }
}

size_t packed_q2_K_bytes(int64_t K) { return (size_t)(K / 256) * sizeof(PackedQ2K); }
size_t packed_q3_K_bytes(int64_t K) { return (size_t)(K / 256) * sizeof(PackedQ3K); }

namespace {
inline uint64_t word64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
constexpr uint64_t kBits64 = 0x0101010101010101u, kPairs64 = 0x0303030303030303u;

// Sub-block s's 2-bit low parts as packed line bytes (bits 2t..2t+1 of byte j: element
// 16 s + 4 t + j). Element e sits at bit shift 2 ((e % 128) / 32) of qs[(e / 128) 32 + e % 32],
// so sub-block s is the 16 bytes from qs[32 (s / 8) + 16 (s % 2)] at one shift, and line t is
// their bytes 4t..4t+3: two 64-bit words hold lines 0, 1 and 2, 3, and each line moves down
// into its 32-bit place (the masked words have no bits where a line lands).
inline uint32_t low2_sub_block(const uint8_t* qs, int s) {
  const uint8_t* p = qs + 32 * (s / 8) + 16 * (s % 2);
  const int shift = 2 * (s % 8 / 2);
  const uint64_t a = word64(p) >> shift & kPairs64, b = word64(p + 8) >> shift & kPairs64;
  return (uint32_t)(a | a >> 30 | b << 4 | b >> 26);
}

// Q3_K's third bits of sub-blocks 2u and 2u + 1 as packed bytes: element e's is bit e / 32 of
// hmask[e % 32], so all 32 hmask bytes at shift u, and hmask byte 4 k + j goes to bit k of
// byte j (k = 4 (s % 2) + t).
inline uint32_t high_bits_sub_block_pair(const uint8_t* hmask, int u) {
  uint32_t out = 0;
  for (int k = 0; k < 4; ++k) {
    const uint64_t h = word64(hmask + 8 * k) >> u & kBits64;
    out |= (uint32_t)(h << (2 * k) | h >> (31 - 2 * k));
  }
  return out;
}
}  // namespace

// Packing runs once per weight at load time, on every row: word-wide bit moves keep Q2_K and
// Q3_K near the rate of the other types.
void pack_q2_K(const void* src, size_t stride, int64_t K, void* dst) {
  block_q2_K b[16];
  PackedQ2K p;
  for (int64_t i = 0; i < K / 256; ++i) {
    load_blocks(src, stride, i, b);
    for (int r = 0; r < 16; ++r) {
      p.d[r] = b[r].d;
      p.dmin[r] = b[r].dmin;
      for (int s = 0; s < 16; ++s) {
        p.scales[s][r] = b[r].scales[s];
        put(p.qs[s] + 4 * r, low2_sub_block(b[r].qs, s));
      }
    }
    std::memcpy((uint8_t*)dst + (size_t)i * sizeof p, &p, sizeof p);
  }
}

void pack_q3_K(const void* src, size_t stride, int64_t K, void* dst) {
  block_q3_K b[16];
  PackedQ3K p;
  for (int64_t i = 0; i < K / 256; ++i) {
    load_blocks(src, stride, i, b);
    for (int r = 0; r < 16; ++r) {
      p.d[r] = b[r].d;
      int sc[16];
      osprey_q3k_scales(b[r].scales, sc);
      for (int s = 0; s < 16; ++s) {
        p.scales[s][r] = (int8_t)sc[s];
        put(p.qs[s] + 4 * r, low2_sub_block(b[r].qs, s));
      }
      for (int u = 0; u < 8; ++u) put(p.qh[u] + 4 * r, high_bits_sub_block_pair(b[r].hmask, u));
    }
    std::memcpy((uint8_t*)dst + (size_t)i * sizeof p, &p, sizeof p);
  }
}

namespace scalar {
namespace {

// The defining float step of one super-block (packed_kquant.h), shared by every type.
inline float step(float acc, float d_w, float d_x, int32_t isum) { return std::fma(d_w * d_x, (float)isum, acc); }

// One column, 16 rows: the order itself, written plainly.
template <class P>
void tile_q45_K(const P* w, int64_t nsb, const block_q8_K* const* xs, float* y, int64_t, bool) {
  for (int r = 0; r < 16; ++r) {
    float acc = 0;
    for (int64_t i = 0; i < nsb; ++i) {
      const P& b = w[i];
      const block_q8_K& xi = xs[0][i];
      int32_t isum = 0, msum = 0;
      for (int s = 0; s < 8; ++s) {
        int32_t sub = 0;
        for (int t = 0; t < 4; ++t)
          for (int j = 0; j < 4; ++j) {
            const uint8_t q = b.qs[s][t][4 * r + j];
            int lo = q & 15, hi = q >> 4;
            if constexpr (std::is_same_v<P, PackedQ5K>) {
              lo |= ((b.qh[s][4 * r + j] >> t) & 1) << 4;
              hi |= ((b.qh[s][4 * r + j] >> (4 + t)) & 1) << 4;
            }
            sub += lo * xi.qs[32 * s + 4 * t + j] + hi * xi.qs[32 * s + 16 + 4 * t + j];
          }
        isum += b.scales[s][r] * sub;
        msum += b.mins[s / 2][2 * r + s % 2] * (xi.bsums[2 * s] + xi.bsums[2 * s + 1]);
      }
      acc = step(acc, f16_to_f32(b.d[r]), xi.d, isum);
      acc = std::fma(-(f16_to_f32(b.dmin[r]) * xi.d), (float)msum, acc);
    }
    y[r] = acc;
  }
}

void tile_q6_K(const PackedQ6K* w, int64_t nsb, const block_q8_K* const* xs, float* y, int64_t, bool) {
  for (int r = 0; r < 16; ++r) {
    float acc = 0;
    for (int64_t i = 0; i < nsb; ++i) {
      const PackedQ6K& b = w[i];
      const block_q8_K& xi = xs[0][i];
      int32_t isum = 0, offset = 0;
      for (int s = 0; s < 16; ++s) {
        int32_t sub = 0;
        for (int t = 0; t < 4; ++t)
          for (int j = 0; j < 4; ++j) {
            const int lo = (b.ql[s][t % 2][4 * r + j] >> (t < 2 ? 0 : 4)) & 15;
            const int hi = (b.qh[s][4 * r + j] >> (2 * t)) & 3;
            sub += (lo | hi << 4) * xi.qs[16 * s + 4 * t + j];
          }
        isum += b.scales[s][r] * sub;
        offset += b.scales[s][r] * xi.bsums[s];
      }
      acc = step(acc, f16_to_f32(b.d[r]), xi.d, isum - 32 * offset);
    }
    y[r] = acc;
  }
}

void tile_iq4_xs(const PackedIQ4XS* w, int64_t nsb, const block_q8_K* const* xs, float* y, int64_t, bool) {
  for (int r = 0; r < 16; ++r) {
    float acc = 0;
    for (int64_t i = 0; i < nsb; ++i) {
      const PackedIQ4XS& b = w[i];
      const block_q8_K& xi = xs[0][i];
      int32_t isum = 0;
      for (int s = 0; s < 8; ++s) {
        int32_t sub = 0;
        for (int t = 0; t < 4; ++t)
          for (int j = 0; j < 4; ++j) {
            const uint8_t q = b.qs[s][t][4 * r + j];
            sub += osprey_iq4nl_values[q & 15] * xi.qs[32 * s + 4 * t + j] +
                   osprey_iq4nl_values[q >> 4] * xi.qs[32 * s + 16 + 4 * t + j];
          }
        isum += b.scales[s][r] * sub;
      }
      acc = step(acc, f16_to_f32(b.d[r]), xi.d, isum);
    }
    y[r] = acc;
  }
}

// Q2_K / Q3_K: sub-block s's 16 columns, lines t, element 16 s + 4 t + j.
template <class P>
void tile_q23_K(const P* w, int64_t nsb, const block_q8_K* const* xs, float* y, int64_t, bool) {
  constexpr bool kQ3 = std::is_same_v<P, PackedQ3K>;
  for (int r = 0; r < 16; ++r) {
    float acc = 0;
    for (int64_t i = 0; i < nsb; ++i) {
      const P& b = w[i];
      const block_q8_K& xi = xs[0][i];
      int32_t isum = 0, msum = 0;  // Q3_K: msum is sum scale * bsum, for the + 4
      for (int s = 0; s < 16; ++s) {
        int32_t sub = 0;
        for (int t = 0; t < 4; ++t)
          for (int j = 0; j < 4; ++j) {
            int q = (b.qs[s][4 * r + j] >> (2 * t)) & 3;
            if constexpr (kQ3) q |= ((b.qh[s / 2][4 * r + j] >> (4 * (s % 2) + t)) & 1) << 2;
            sub += q * xi.qs[16 * s + 4 * t + j];
          }
        if constexpr (kQ3) {
          isum += b.scales[s][r] * sub;
          msum += b.scales[s][r] * xi.bsums[s];
        } else {
          isum += (b.scales[s][r] & 15) * sub;
          msum += (b.scales[s][r] >> 4) * xi.bsums[s];
        }
      }
      if constexpr (kQ3) {
        acc = step(acc, f16_to_f32(b.d[r]), xi.d, isum - 4 * msum);
      } else {
        acc = step(acc, f16_to_f32(b.d[r]), xi.d, isum);
        acc = std::fma(-(f16_to_f32(b.dmin[r]) * xi.d), (float)msum, acc);
      }
    }
    y[r] = acc;
  }
}

constexpr PackedTileFn<PackedQ2K> kQ2KTiles[] = {tile_q23_K<PackedQ2K>};
constexpr PackedTileFn<PackedQ3K> kQ3KTiles[] = {tile_q23_K<PackedQ3K>};
constexpr PackedTileFn<PackedQ4K> kQ4KTiles[] = {tile_q45_K<PackedQ4K>};
constexpr PackedTileFn<PackedQ5K> kQ5KTiles[] = {tile_q45_K<PackedQ5K>};
constexpr PackedTileFn<PackedQ6K> kQ6KTiles[] = {tile_q6_K};
constexpr PackedTileFn<PackedIQ4XS> kIQ4XSTiles[] = {tile_iq4_xs};

}  // namespace

const PackedFormat* packed_kquant_format(DType w) {
  return packed_kquant_table<1, kQ2KTiles, 1, kQ3KTiles, 1, kQ4KTiles, 1, kQ5KTiles, 1, kQ6KTiles, 1, kIQ4XSTiles>(w);
}

}  // namespace scalar
}  // namespace osprey::kernels
