// The 32-element-block packed layouts (packed_q32.h): portable pack(), the scalar products
// that define their numerics, and the dispatcher packed_format_for().
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kernels/base/fp16.h"
#include "kernels/cpu/packed_kquant.h"
#include "kernels/cpu/packed_q32.h"
#include "kernels/quant_blocks.h"

namespace osprey::kernels {
namespace q32 {
namespace {

// Row r's block b of the source (rows `stride` bytes apart), copied out (no alignment assumed).
template <class B>
B src_block(const void* src, size_t stride, int r, int64_t b) {
  B blk;
  std::memcpy(&blk, (const uint8_t*)src + (size_t)r * stride + (size_t)b * sizeof(B), sizeof(B));
  return blk;
}

// Scales and Q4-style nibble slices of one block, shared by the 4- and 5-bit types, and for
// those with a minimum (Q4_1, Q5_1) the rows' minimums as the last 32 of its kBytes.
template <size_t kBytes, class B>
void pack_scales_nibbles(const B (&blk)[kPackRows], uint8_t* out) {
  for (int r = 0; r < kPackRows; ++r) std::memcpy(out + 2 * r, &blk[r].d, 2);
  for (int j = 0; j < 4; ++j)
    for (int r = 0; r < kPackRows; ++r)
      for (int i = 0; i < 4; ++i) out[kScaleBytes + 64 * j + 4 * r + i] = blk[r].qs[4 * j + i];
  if constexpr (requires { blk[0].m; })
    for (int r = 0; r < kPackRows; ++r) std::memcpy(out + kBytes - kScaleBytes + 2 * r, &blk[r].m, 2);
}

// Q4_0 (IQ4_NL too) and Q4_1 (B), blocks of kBytes.
template <class B, size_t kBytes>
void pack_q4(const void* src, size_t stride, int64_t K, void* dst) {
  for (int64_t b = 0; b < K / 32; ++b) {
    B blk[kPackRows];
    for (int r = 0; r < kPackRows; ++r) blk[r] = src_block<B>(src, stride, r, b);
    pack_scales_nibbles<kBytes>(blk, (uint8_t*)dst + (size_t)b * kBytes);
  }
}

}  // namespace

size_t group_bytes_q4_0(int64_t K) { return (size_t)(K / 32) * kQ4Bytes; }
size_t group_bytes_q5_0(int64_t K) { return (size_t)(K / 32) * kQ5Bytes; }
size_t group_bytes_q8_0(int64_t K) { return (size_t)(K / 32) * kQ8Bytes; }
size_t group_bytes_q4_1(int64_t K) { return (size_t)(K / 32) * kQ41Bytes; }
size_t group_bytes_q5_1(int64_t K) { return (size_t)(K / 32) * kQ51Bytes; }

void pack_q4_0(const void* src, size_t stride, int64_t K, void* dst) { pack_q4<block_q4_0, kQ4Bytes>(src, stride, K, dst); }
void pack_q4_1(const void* src, size_t stride, int64_t K, void* dst) { pack_q4<block_q4_1, kQ41Bytes>(src, stride, K, dst); }

// Q5_0 and Q5_1 (B), blocks of kBytes: the nibbles (and Q5_1's mins), then the fifth-bit masks.
template <class B, size_t kBytes>
void pack_q5(const void* src, size_t stride, int64_t K, void* dst) {
  for (int64_t b = 0; b < K / 32; ++b) {
    B blk[kPackRows];
    for (int r = 0; r < kPackRows; ++r) blk[r] = src_block<B>(src, stride, r, b);
    uint8_t* out = (uint8_t*)dst + (size_t)b * kBytes;
    pack_scales_nibbles<kBytes>(blk, out);
    for (int m = 0; m < 8; ++m) {
      uint64_t mask = 0;
      for (int r = 0; r < kPackRows; ++r) {
        uint32_t qh;
        std::memcpy(&qh, blk[r].qh, 4);
        for (int i = 0; i < 4; ++i) mask |= (uint64_t)((qh >> (4 * m + i)) & 1) << (4 * r + i);
      }
      for (int k = 0; k < 8; ++k) out[kQ4Bytes + 8 * m + k] = (uint8_t)(mask >> (8 * k));  // little-endian
    }
  }
}

void pack_q5_0(const void* src, size_t stride, int64_t K, void* dst) { pack_q5<block_q5_0, kQ5Bytes>(src, stride, K, dst); }
void pack_q5_1(const void* src, size_t stride, int64_t K, void* dst) { pack_q5<block_q5_1, kQ51Bytes>(src, stride, K, dst); }

void pack_q8_0(const void* src, size_t stride, int64_t K, void* dst) {
  for (int64_t b = 0; b < K / 32; ++b) {
    uint8_t* out = (uint8_t*)dst + (size_t)b * kQ8Bytes;
    for (int r = 0; r < kPackRows; ++r) {
      const auto blk = src_block<block_q8_0>(src, stride, r, b);
      std::memcpy(out + 2 * r, &blk.d, 2);
      for (int m = 0; m < 8; ++m)
        for (int i = 0; i < 4; ++i) out[kScaleBytes + 64 * m + 4 * r + i] = (uint8_t)blk.qs[4 * m + i] ^ 0x80;
    }
  }
}

}  // namespace q32

namespace scalar {
namespace {

// The unsigned code of element e (0..31) of row r in one packed block.
int code_q4_0(const uint8_t* blk, int r, int e) {
  const uint8_t byte = blk[q32::kScaleBytes + 64 * ((e % 16) / 4) + 4 * r + e % 4];
  return e < 16 ? byte & 15 : byte >> 4;
}
int code_q5_0(const uint8_t* blk, int r, int e) {
  const uint8_t mask_byte = blk[q32::kQ4Bytes + 8 * (e / 4) + (4 * r + e % 4) / 8];
  return code_q4_0(blk, r, e) | (((mask_byte >> ((4 * r + e % 4) % 8)) & 1) << 4);
}
int code_q8_0(const uint8_t* blk, int r, int e) { return blk[q32::kScaleBytes + 64 * (e / 4) + 4 * r + e % 4]; }
int code_iq4_nl(const uint8_t* blk, int r, int e) { return osprey_iq4nl_values[code_q4_0(blk, r, e)] + 128; }

// The defining chain of packed_q32.h, one output at a time. kMinAt: where Q4_1 / Q5_1 keep
// the rows' minimums in a block (0: none).
template <int (*kCode)(const uint8_t*, int, int), size_t kBlockBytes, int kOffset, size_t kMinAt = 0>
void gemm(const void* packed, int64_t groups, const void* x, size_t x_stride, int64_t cols, int64_t K, float* y,
          int64_t ldy) {
  const int64_t nb = K / 32;
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* grp = (const uint8_t*)packed + (size_t)g * (size_t)nb * kBlockBytes;
    for (int64_t c = 0; c < cols; ++c) {
      const uint8_t* xr = (const uint8_t*)x + (size_t)c * x_stride;
      for (int r = 0; r < kPackRows; ++r) {
        float acc = 0;
        for (int64_t b = 0; b < nb; ++b) {
          const uint8_t* blk = grp + (size_t)b * kBlockBytes;
          block_q8_act_isum xb;
          std::memcpy(&xb, xr + (size_t)b * sizeof(xb), sizeof(xb));
          int32_t isum = -kOffset * xb.isum;
          for (int e = 0; e < 32; ++e) isum += kCode(blk, r, e) * xb.qs[e];
          uint16_t d;
          std::memcpy(&d, blk + 2 * r, 2);
          acc = std::fma(f16_to_f32(d) * xb.d, (float)isum, acc);
          if constexpr (kMinAt != 0) {
            std::memcpy(&d, blk + kMinAt + 2 * r, 2);
            acc = std::fma(f16_to_f32(d) * xb.d, (float)xb.isum, acc);
          }
        }
        y[c * ldy + g * kPackRows + r] = acc;
      }
    }
  }
}

}  // namespace

const PackedFormat* packed_format_for(DType w) {
  if (const PackedFormat* f = q32::format_for<gemm<code_q4_0, q32::kQ4Bytes, q32::kQ4Offset>,
                                              gemm<code_q5_0, q32::kQ5Bytes, q32::kQ5Offset>,
                                              gemm<code_q8_0, q32::kQ8Bytes, q32::kQ8Offset>,
                                              gemm<code_iq4_nl, q32::kQ4Bytes, q32::kIQ4Offset>,
                                              gemm<code_q4_0, q32::kQ41Bytes, 0, q32::kQ4Bytes>,
                                              gemm<code_q5_0, q32::kQ51Bytes, 0, q32::kQ5Bytes>>(w))
    return f;
  return packed_kquant_format(w);
}
}  // namespace scalar

void quantize_act_row_simd(ActQuant q, const float* x, void* dst, int64_t K) {
#if defined(__x86_64__) || defined(__i386__)
  static const bool avx512 = std::strcmp(active_isa().name, "avx512") == 0;
  if (avx512 && avx512::quantize_act_row(q, x, dst, K)) return;
#endif
  quantize_act_row(q, x, dst, K);
}

bool repack_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("OSPREY_REPACK");
    return !e || std::strcmp(e, "0") != 0;
  }();
  return on;
}

const PackedFormat* packed_format_for(DType w) {
  // The scalar products are the reference, not a fast path: without SIMD, weights stay as
  // they are. Best usable variant first, capped by OSPREY_CPU_ISA.
  if (!repack_enabled()) return nullptr;
#if defined(__x86_64__) || defined(__i386__)
  const char* isa = active_isa().name;
  if (std::strcmp(isa, "avx512") == 0)
    if (const PackedFormat* f = avx512::packed_format_for(w)) return f;
  if (std::strcmp(isa, "avx512") == 0 || std::strcmp(isa, "avx2") == 0) return avx2::packed_format_for(w);
#elif defined(__aarch64__)
  const char* isa = active_isa().name;
  if (std::strcmp(isa, "neon_dotprod") == 0) return neon_dotprod::packed_format_for(w);
  if (std::strcmp(isa, "neon") == 0) return neon::packed_format_for(w);
#else
  (void)w;
#endif
  return nullptr;
}

}  // namespace osprey::kernels
