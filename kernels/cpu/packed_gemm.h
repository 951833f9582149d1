// Quantized weights repacked once, when a model is loaded, into groups of 16 interleaved
// rows, so one SIMD register holds the same K slice of 16 rows (lanes = rows) and a group's
// block scales sit together. The product then needs no horizontal sums, decodes each weight
// byte once for every activation column of a tile, and applies each block scale to 16 rows
// in one instruction: the layout llama.cpp's CPU backend repacks to, written for our formats.
//
// The layout is the same on every ISA (pack() is portable); each ISA brings its own gemm().
// Every output is bit for bit the type's reference chain (the scalar gemm), whatever the
// number of columns, the tile or the ISA: a token's logits do not depend on its batch, and
// generation (one column) and prompt processing give the same numbers.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/base/dtype.h"
#include "kernels/cpu/quant_dot.h"

namespace osprey::kernels {

inline constexpr int64_t kPackRows = 16;

// Software prefetch of a weight stream read once (a one-token product, or any product whose
// columns fit one tile): the hardware prefetchers alone left the 2-core Zen 4 machine's
// one-token Q4_K_M product waiting on memory (1.1B tg 41 -> 51 t/s with this, session 11;
// 1-4 KB ahead measured alike). Step s of S over a B-byte packed block asks for its share
// of the lines kPrefetchAhead bytes further on (the next groups follow in memory). Static:
// each per-ISA file keeps its own copy, built with its own flags (a shared inline copy could
// come from a file built for a wider ISA).
inline constexpr int64_t kPrefetchAhead = 2048;
template <size_t B, int S = 1>
static inline void prefetch_ahead(const void* block, int s = 0) {
  constexpr int kLines = (int)((B + 63) / 64), kPer = (kLines + S - 1) / S;
  const char* p = (const char*)block + kPrefetchAhead + (int64_t)s * kPer * 64;
  for (int k = 0; k < kPer; ++k) __builtin_prefetch(p + 64 * k, 0, 3);
}

struct PackedFormat {
  DType weight;
  ActQuant act;  // activation rows gemm() reads, as quantize_act_row() writes them
  // Bytes of one packed group (16 rows x K; K a multiple of the weight's block size).
  size_t (*group_bytes)(int64_t K);
  // Packs the 16 rows src, src + stride, ... into dst (group_bytes(K) bytes).
  void (*pack)(const void* src, size_t stride, int64_t K, void* dst);
  // y[c * ldy + g * 16 + r] = dot(row 16 g + r, activation row c) for g < groups, c < cols;
  // group g starts at packed + g * group_bytes(K), activation rows are x_stride bytes apart.
  void (*gemm)(const void* packed, int64_t groups, const void* x, size_t x_stride, int64_t cols, int64_t K,
               float* y, int64_t ldy);
};

// The best packed format for this CPU, or nullptr (no layout for the type, or no kernel for
// this ISA: then weights stay as they are). OSPREY_REPACK=0 turns repacking off.
const PackedFormat* packed_format_for(DType weight);
bool repack_enabled();  // false under OSPREY_REPACK=0: model weights are read where they are mapped

// quantize_act_row() with the best SIMD this CPU has: the same bytes for finite inputs (the
// packed path quantizes every prompt's activations; the scalar loop was ~10% of a prompt).
void quantize_act_row_simd(ActQuant q, const float* x, void* dst, int64_t K);

// Per-ISA tables, for tests; nullptr where the type or the ISA is not covered.
namespace scalar {
const PackedFormat* packed_format_for(DType weight);
}
namespace avx2 {
const PackedFormat* packed_format_for(DType weight);
}
namespace avx512 {
const PackedFormat* packed_format_for(DType weight);
bool quantize_act_row(ActQuant q, const float* x, void* dst, int64_t K);  // false: q not covered
}
// aarch64 only (the files are not compiled elsewhere): baseline Advanced SIMD and SDOT.
namespace neon {
const PackedFormat* packed_format_for(DType weight);
}
namespace neon_dotprod {
const PackedFormat* packed_format_for(DType weight);
}

}  // namespace osprey::kernels
