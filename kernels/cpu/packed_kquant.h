// Packed (16-row interleaved) layouts and products for the K-quants and IQ4_XS
// (packed_gemm.h); the per-ISA packed_format_for() tables of packed_q32_<isa>.cpp hand these
// types on to here.
//
// A packed group is K / 256 packed super-blocks, each the same 256 columns of 16 rows. The
// quants are interleaved in 4-column steps: one 64-byte line holds [row 0, k..k+3 | row 1,
// k..k+3 | ... | row 15], so a vpdpbusd of the line against 4 activation bytes broadcast to
// every lane gives 16 rows' partial sums at once (AVX2 takes the 32-byte halves, rows 0-7 and
// 8-15; NEON the 16-byte quarters, rows 4q..4q+3, by SDOT against one activation lane). Scales sit by sub-block, the 16 rows' together, one byte each, so one load and a
// widening move give a sub-block's 16 scales. Packed bytes per weight stay close to the
// original (tg streams them): Q4_K 2368 vs 2304 bytes per 16 x 256, Q5_K 2880 vs 2816,
// Q6_K 3360 = 3360, IQ4_XS 2208 vs 2176, Q2_K 1344 = 1344, Q3_K 1824 vs 1760.
//
// The products (every ISA, every column count, bit for bit; the scalar gemm of
// packed_kquant_scalar.cpp writes the order out): per super-block the integer sum
//   isum = sum over sub-blocks s of scale_s * sum_k q_k x_k  (exact, int32),
// Q4_K / Q5_K also msum = sum over s of min_s * (bsum[2s] + bsum[2s+1]), Q6_K subtracts the +32 quant
// offset in integers (32 * sum_s scale_s * bsum_s; Q3_K likewise 4 * ...), IQ4_XS's q_k are its
// signed levels (Q2_K has a min per sub-block of 16: msum over bsum[s]); then per (row,
// column), in float:
//   acc = fma(d_row * d_x, (float)isum, acc); [Q2_K, Q4_K, Q5_K] acc = fma(-(dmin_row * d_x), (float)msum, acc)
// from acc = 0, super-blocks in order.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/packed_gemm.h"

namespace osprey::kernels {

// Q4_K: eight sub-blocks of 32. qs[s][i] byte 4 r + j is row r's quant at column
// 32 s + 4 i + j (low nibble) and 32 s + 16 + 4 i + j (high nibble).
struct PackedQ4K {
  uint16_t d[16], dmin[16];  // f16, as in the source blocks
  uint8_t scales[8][16];     // [sub-block][row], 6-bit
  uint8_t mins[4][32];       // [pair p][2 row + j]: the min of sub-block 2 p + j, 6-bit
  uint8_t qs[8][4][64];
};
static_assert(sizeof(PackedQ4K) == 2368);

// Q5_K: Q4_K plus the fifth bits: qh[s] byte 4 r + j, bit t for column 32 s + 4 t + j and
// bit 4 + t for column 32 s + 16 + 4 t + j (the two nibbles of qs[s][t] byte 4 r + j).
struct PackedQ5K {
  uint16_t d[16], dmin[16];
  uint8_t scales[8][16];
  uint8_t mins[4][32];
  uint8_t qh[8][64];
  uint8_t qs[8][4][64];
};
static_assert(sizeof(PackedQ5K) == 2880);

// Q6_K: sixteen sub-blocks of 16, quants stored + 32 (0..63). Within sub-block s, line t
// (t < 4) holds columns 16 s + 4 t + j: low four bits in ql[s][t % 2] byte 4 r + j (low
// nibble for t < 2, high nibble for t >= 2), top two bits in qh[s] byte 4 r + j, bits 2t..2t+1.
struct PackedQ6K {
  uint16_t d[16];         // f16
  int8_t scales[16][16];  // [sub-block][row]
  uint8_t ql[16][2][64];
  uint8_t qh[16][64];
};
static_assert(sizeof(PackedQ6K) == 3360);

// IQ4_XS: eight sub-blocks of 32, levels from osprey_iq4nl_values under signed 6-bit scales.
// qs[s][t] byte 4 r + j is row r's source byte qs[16 s + 4 t + j] unchanged: its low nibble
// indexes column 32 s + 4 t + j, its high nibble column 32 s + 16 + 4 t + j (Q4_K's columns).
struct PackedIQ4XS {
  uint16_t d[16];         // f16
  int8_t scales[8][16];   // [sub-block][row], -32..31
  uint8_t qs[8][4][64];
};
static_assert(sizeof(PackedIQ4XS) == 2208);

// Q2_K / Q3_K: sixteen sub-blocks of 16 with 2-bit low parts. Within sub-block s, line t
// (t < 4) holds columns 16 s + 4 t + j: bits 2t..2t+1 of qs[s] byte 4 r + j. Q2_K keeps each
// row's scale | min << 4 byte as the file has it; Q3_K adds the third bit (bit 4 (s % 2) + t
// of qh[s / 2] byte 4 r + j; quants stored + 4, 0..7) and its signed 6-bit scales unpacked.
struct PackedQ2K {
  uint16_t d[16], dmin[16];
  uint8_t scales[16][16];  // [sub-block][row]: scale (low nibble), min (high nibble)
  uint8_t qs[16][64];
};
static_assert(sizeof(PackedQ2K) == 1344);
struct PackedQ3K {
  uint16_t d[16];
  int8_t scales[16][16];  // [sub-block][row], -32..31
  uint8_t qs[16][64];
  uint8_t qh[8][64];
};
static_assert(sizeof(PackedQ3K) == 1824);

// The sums of an activation super-block's sub-blocks of 32 (for the Q4_K / Q5_K mins and
// IQ4_XS's +128 offset), as int16:
// bsums holds sums of 16, so each is within 2 * 16 * 128. Static, like prefetch_ahead.
static inline void bsums_of_32(const block_q8_K& x, int16_t out[8]) {
  for (int s = 0; s < 8; ++s) out[s] = (int16_t)(x.bsums[2 * s] + x.bsums[2 * s + 1]);
}

// The portable packing (PackedFormat::pack), shared by every ISA's table.
void pack_q4_K(const void* src, size_t stride, int64_t K, void* dst);
void pack_q5_K(const void* src, size_t stride, int64_t K, void* dst);
void pack_q6_K(const void* src, size_t stride, int64_t K, void* dst);
void pack_iq4_xs(const void* src, size_t stride, int64_t K, void* dst);
void pack_q2_K(const void* src, size_t stride, int64_t K, void* dst);
void pack_q3_K(const void* src, size_t stride, int64_t K, void* dst);
size_t packed_q4_K_bytes(int64_t K);
size_t packed_q5_K_bytes(int64_t K);
size_t packed_q6_K_bytes(int64_t K);
size_t packed_iq4_xs_bytes(int64_t K);
size_t packed_q2_K_bytes(int64_t K);
size_t packed_q3_K_bytes(int64_t K);

// An ISA's register tile: 16 rows (P: one packed super-block type) x C activation columns,
// y[c * ldy + r], over nsb super-blocks; stream: the weights are read this once (prefetch).
template <class P>
using PackedTileFn = void (*)(const P* w, int64_t nsb, const block_q8_K* const* xs, float* y, int64_t ldy,
                              bool stream);

// PackedFormat::gemm from tiles[C - 1] = the C-column tile, C = 1..N. Groups outer, columns
// in tiles of N inner (a group's packed lines stay in L1 while the columns stream); a ragged
// last tile takes the narrower tile, whose numbers are the same.
template <class P, size_t N, const PackedTileFn<P> (&kTiles)[N]>
void gemm_packed_tiles(const void* packed, int64_t groups, const void* x, size_t x_stride, int64_t cols, int64_t K,
                       float* y, int64_t ldy) {
  const int64_t nsb = K / 256;
  const bool stream = cols <= (int64_t)N;
  for (int64_t g = 0; g < groups; ++g) {
    const P* w = (const P*)packed + g * nsb;
    for (int64_t c0 = 0; c0 < cols; c0 += (int64_t)N) {
      const block_q8_K* xs[N];
      const int64_t n = std::min<int64_t>((int64_t)N, cols - c0);
      for (int64_t c = 0; c < n; ++c) xs[c] = (const block_q8_K*)((const uint8_t*)x + (size_t)(c0 + c) * x_stride);
      kTiles[n - 1](w, nsb, xs, y + c0 * ldy + g * 16, ldy, stream);
    }
  }
}

// The formats of an ISA whose tile tables are T2 (Q2_K), T3 (Q3_K), T4 (Q4_K), T5 (Q5_K),
// T6 (Q6_K) and TX (IQ4_XS).
template <size_t N2, const PackedTileFn<PackedQ2K> (&T2)[N2], size_t N3, const PackedTileFn<PackedQ3K> (&T3)[N3],
          size_t N4, const PackedTileFn<PackedQ4K> (&T4)[N4], size_t N5, const PackedTileFn<PackedQ5K> (&T5)[N5],
          size_t N6, const PackedTileFn<PackedQ6K> (&T6)[N6], size_t NX, const PackedTileFn<PackedIQ4XS> (&TX)[NX]>
const PackedFormat* packed_kquant_table(DType w) {
  static constexpr PackedFormat kQ2K{DType::Q2_K, ActQuant::Q8_K, packed_q2_K_bytes, pack_q2_K,
                                     gemm_packed_tiles<PackedQ2K, N2, T2>};
  static constexpr PackedFormat kQ3K{DType::Q3_K, ActQuant::Q8_K, packed_q3_K_bytes, pack_q3_K,
                                     gemm_packed_tiles<PackedQ3K, N3, T3>};
  static constexpr PackedFormat kQ4K{DType::Q4_K, ActQuant::Q8_K, packed_q4_K_bytes, pack_q4_K,
                                     gemm_packed_tiles<PackedQ4K, N4, T4>};
  static constexpr PackedFormat kQ5K{DType::Q5_K, ActQuant::Q8_K, packed_q5_K_bytes, pack_q5_K,
                                     gemm_packed_tiles<PackedQ5K, N5, T5>};
  static constexpr PackedFormat kQ6K{DType::Q6_K, ActQuant::Q8_K, packed_q6_K_bytes, pack_q6_K,
                                     gemm_packed_tiles<PackedQ6K, N6, T6>};
  static constexpr PackedFormat kIQ4XS{DType::IQ4_XS, ActQuant::Q8_K, packed_iq4_xs_bytes, pack_iq4_xs,
                                       gemm_packed_tiles<PackedIQ4XS, NX, TX>};
  switch (w) {
    case DType::Q2_K: return &kQ2K;
    case DType::Q3_K: return &kQ3K;
    case DType::Q4_K: return &kQ4K;
    case DType::Q5_K: return &kQ5K;
    case DType::Q6_K: return &kQ6K;
    case DType::IQ4_XS: return &kIQ4XS;
    default: return nullptr;
  }
}

namespace scalar {
const PackedFormat* packed_kquant_format(DType weight);  // nullptr: no packed layout
}
namespace avx2 {
const PackedFormat* packed_kquant_format(DType weight);
}
namespace avx512 {
const PackedFormat* packed_kquant_format(DType weight);
}
namespace neon {  // aarch64 only (not compiled elsewhere)
const PackedFormat* packed_kquant_format(DType weight);
}
namespace neon_dotprod {
const PackedFormat* packed_kquant_format(DType weight);
}
}  // namespace osprey::kernels
