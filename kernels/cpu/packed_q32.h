// Packed layouts of the 32-element-block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and IQ4_NL
// (packed_gemm.h), shared
// by packed_q32_<isa>.cpp. Per 32-element block, a group of 16 rows holds, in order:
//   d[16]   the rows' f16 scales (32 bytes; row r at d[r])
//   Q4_0    4 slices of 64 bytes; byte 4r+i of slice j is the file's qs[4j+i] of row r, so the
//           low nibbles of slice j are elements 4j..4j+3 of each row and the high nibbles
//           elements 16+4j..16+4j+3: one load, then AND / shift+AND, gives two registers whose
//           32-bit lane r holds 4 consecutive codes of row r (vpdpbusd's operand; AVX2 takes
//           the two 32-byte halves as rows 0..7 and 8..15, NEON the four 16-byte quarters
//           as rows 4q..4q+3).                                                    288 bytes
//   Q5_0    the Q4_0 nibbles, then 8 little-endian u64 masks: bit 4r+i of mask m is the fifth
//           bit of element 4m+i of row r (AVX-512: one kmov + masked add of 16). 352 bytes
//   Q8_0    8 slices of 64 bytes; byte 4r+i of slice m is q[4m+i] of row r XOR 0x80.  544 bytes
//   IQ4_NL  the Q4_0 layout (the blocks are alike); a nibble indexes the level table.  288 bytes
//   Q4_1    the Q4_0 layout, then m[16] the rows' f16 minimums.                  320 bytes
//   Q5_1    the Q5_0 layout, then m[16].                                           384 bytes
// Bytes per weight are the file's. The kernels multiply the unsigned code u = q + offset
// (offset 8, 16, 128; IQ4_NL: level + 128) with the signed activation codes and subtract
// offset * sum(x) in integers.
//
// Numerics, the same on every ISA and for any number of columns (the scalar gemm defines it):
//   acc = 0; for each block b in order:
//     isum = sum_e u[r][e] * x[c].qs[e] - offset * x[c].isum      (exact, int32)
//     acc  = fmaf(f16_to_f32(d[r]) * x[c].d, (float)isum, acc)     (product rounded to f32)
//     Q4_1, Q5_1 (offset 0): acc = fmaf(f16_to_f32(m[r]) * x[c].d, (float)x[c].isum, acc)
//   y = acc
// Activations are block_q8_act_isum rows (ActQuant::Q8_32_ISUM).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/packed_gemm.h"

namespace osprey::kernels::q32 {

inline constexpr size_t kScaleBytes = 2 * kPackRows;                     // 16 f16 scales
inline constexpr size_t kQ4Bytes = kScaleBytes + 4 * 64;                 // 288
inline constexpr size_t kQ5Bytes = kQ4Bytes + 8 * 8;                     // 352
inline constexpr size_t kQ8Bytes = kScaleBytes + 8 * 64;                 // 544
inline constexpr size_t kQ41Bytes = kQ4Bytes + kScaleBytes;              // 320: the mins last
inline constexpr size_t kQ51Bytes = kQ5Bytes + kScaleBytes;              // 384
inline constexpr int kQ4Offset = 8, kQ5Offset = 16, kQ8Offset = 128, kIQ4Offset = 128;
static_assert(sizeof(block_iq4_nl) == sizeof(block_q4_0));  // pack_q4_0 packs IQ4_NL too

// Where an ISA's block type T keeps the rows' f16 minimums (T::kMinAt: Q4_1, Q5_1), else 0.
template <class T>
constexpr size_t min_at = [] {
  if constexpr (requires { T::kMinAt; }) return T::kMinAt;
  return size_t{0};
}();

size_t group_bytes_q4_0(int64_t K);
size_t group_bytes_q5_0(int64_t K);
size_t group_bytes_q8_0(int64_t K);
size_t group_bytes_q4_1(int64_t K);
size_t group_bytes_q5_1(int64_t K);
void pack_q4_0(const void* src, size_t stride, int64_t K, void* dst);
void pack_q5_0(const void* src, size_t stride, int64_t K, void* dst);
void pack_q8_0(const void* src, size_t stride, int64_t K, void* dst);
void pack_q4_1(const void* src, size_t stride, int64_t K, void* dst);
void pack_q5_1(const void* src, size_t stride, int64_t K, void* dst);

// An ISA's register tile: rows 8 h .. of a group (h = 0 where a register holds all 16 rows)
// by C activation columns over all nb blocks, y[c * ldy + r]; stream: the weights are read
// this once (prefetch).
using TileFn = void (*)(const uint8_t* grp, int h, int64_t nb, const uint8_t* x, size_t x_stride, float* y,
                        int64_t ldy, bool stream);

// PackedFormat::gemm from tiles[C - 1] = the C-column tile, C = 1..N, each group's Halves row
// halves in turn: groups outer, columns in tiles of N inner (the group's lines stay in cache
// while the columns stream); a ragged last tile takes the narrower tile, same numbers.
template <size_t BlockBytes, int Halves, size_t N, const TileFn (&kTiles)[N]>
void gemm_tiles(const void* packed, int64_t groups, const void* xv, size_t x_stride, int64_t cols, int64_t K,
                float* y, int64_t ldy) {
  const int64_t nb = K / 32;
  const auto* x = (const uint8_t*)xv;
  const bool stream = cols <= (int64_t)N;
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* grp = (const uint8_t*)packed + (size_t)g * (size_t)nb * BlockBytes;
    for (int h = 0; h < Halves; ++h)
      for (int64_t c0 = 0; c0 < cols; c0 += (int64_t)N) {
        const int64_t n = std::min<int64_t>((int64_t)N, cols - c0);
        kTiles[n - 1](grp, h, nb, x + (size_t)c0 * x_stride, x_stride, y + c0 * ldy + g * kPackRows, ldy,
                      stream && h == 0);
      }
  }
}

// One ISA's table: the shared layouts with that ISA's products (anonymous: each per-ISA
// file gets its own copy).
namespace {
using GemmFn = decltype(PackedFormat::gemm);
template <GemmFn kQ4_0, GemmFn kQ5_0, GemmFn kQ8_0, GemmFn kIQ4_NL, GemmFn kQ4_1, GemmFn kQ5_1>
const PackedFormat* format_for(DType w) {
  static const PackedFormat q4{DType::Q4_0, ActQuant::Q8_32_ISUM, group_bytes_q4_0, pack_q4_0, kQ4_0},
      q5{DType::Q5_0, ActQuant::Q8_32_ISUM, group_bytes_q5_0, pack_q5_0, kQ5_0},
      q8{DType::Q8_0, ActQuant::Q8_32_ISUM, group_bytes_q8_0, pack_q8_0, kQ8_0},
      iq4{DType::IQ4_NL, ActQuant::Q8_32_ISUM, group_bytes_q4_0, pack_q4_0, kIQ4_NL},
      q41{DType::Q4_1, ActQuant::Q8_32_ISUM, group_bytes_q4_1, pack_q4_1, kQ4_1},
      q51{DType::Q5_1, ActQuant::Q8_32_ISUM, group_bytes_q5_1, pack_q5_1, kQ5_1};
  switch (w) {
    case DType::Q4_0: return &q4;
    case DType::Q5_0: return &q5;
    case DType::Q8_0: return &q8;
    case DType::IQ4_NL: return &iq4;
    case DType::Q4_1: return &q41;
    case DType::Q5_1: return &q51;
    default: return nullptr;
  }
}
}  // namespace

}  // namespace osprey::kernels::q32
