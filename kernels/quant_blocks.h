/* Quantized block layouts, byte for byte as they sit in GGUF tensor data.
 *
 * Plain C-compatible structs (no STL, no C++-only features) so CUDA, OpenCL host code and
 * C tools can include this header too. Half-precision fields are raw uint16_t bit patterns:
 * the GPU side decides how to convert them. Every struct has no padding; the asserts below
 * pin the sizes to the on-disk block sizes (kernels/base/dtype.h's dtype_traits). */
#ifndef OSPREY_KERNELS_QUANT_BLOCKS_H
#define OSPREY_KERNELS_QUANT_BLOCKS_H

#include <stdint.h>

#define OSPREY_QK4_0 32
#define OSPREY_QK4_1 32
#define OSPREY_QK5_0 32
#define OSPREY_QK5_1 32
#define OSPREY_QK8_0 32
#define OSPREY_QK8_1 32
#define OSPREY_QK_K 256
#define OSPREY_K_SCALE_SIZE 12
#define OSPREY_QK4_NL 32
#define OSPREY_QK_MXFP4 32

#ifdef __cplusplus
#define OSPREY_BLOCK_ASSERT(T, n) static_assert(sizeof(T) == (n), "wrong size for " #T)
#else
#define OSPREY_BLOCK_ASSERT(T, n) _Static_assert(sizeof(T) == (n), "wrong size for " #T)
#endif

/* x = d * (q - 8), q in 0..15; element j in low nibble of qs[j], j+16 in the high nibble. */
typedef struct {
  uint16_t d;
  uint8_t qs[OSPREY_QK4_0 / 2];
} block_q4_0;
OSPREY_BLOCK_ASSERT(block_q4_0, 18);

/* x = d * q + m */
typedef struct {
  uint16_t d;
  uint16_t m;
  uint8_t qs[OSPREY_QK4_1 / 2];
} block_q4_1;
OSPREY_BLOCK_ASSERT(block_q4_1, 20);

/* 5-bit: the fifth bit of element j is bit j of qh (little-endian 32-bit word). */
typedef struct {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[OSPREY_QK5_0 / 2];
} block_q5_0;
OSPREY_BLOCK_ASSERT(block_q5_0, 22);

typedef struct {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[OSPREY_QK5_1 / 2];
} block_q5_1;
OSPREY_BLOCK_ASSERT(block_q5_1, 24);

typedef struct {
  uint16_t d;
  int8_t qs[OSPREY_QK8_0];
} block_q8_0;
OSPREY_BLOCK_ASSERT(block_q8_0, 34);

/* s = d * sum(qs): precomputed for dot products against Q4_1/Q5_1 weights. */
typedef struct {
  uint16_t d;
  uint16_t s;
  int8_t qs[OSPREY_QK8_1];
} block_q8_1;
OSPREY_BLOCK_ASSERT(block_q8_1, 36);

/* K-quants: super-blocks of 256 elements split into sub-blocks with their own scales. */

/* 16 sub-blocks of 16; scales[i]: low nibble scale, high nibble min (both 4-bit). */
typedef struct {
  uint8_t scales[OSPREY_QK_K / 16];
  uint8_t qs[OSPREY_QK_K / 4];
  uint16_t d;
  uint16_t dmin;
} block_q2_K;
OSPREY_BLOCK_ASSERT(block_q2_K, 84);

/* 16 sub-blocks of 16; 6-bit signed scales (offset 32) packed in 12 bytes; the third
 * quant bit lives in hmask and a clear bit means "subtract 4". */
typedef struct {
  uint8_t hmask[OSPREY_QK_K / 8];
  uint8_t qs[OSPREY_QK_K / 4];
  uint8_t scales[12];
  uint16_t d;
} block_q3_K;
OSPREY_BLOCK_ASSERT(block_q3_K, 110);

/* Q3_K's sixteen signed scales (-32..31): the low 4 bits are the nibbles of bytes 0..7 (all
 * low nibbles first, then all high nibbles), the high 2 bits come from bytes 8..11, two bits
 * per scale. */
static inline void osprey_q3k_scales(const uint8_t* s, int out[16]) {
  for (int k = 0; k < 16; ++k) {
    const int lo = k < 8 ? (s[k] & 0x0F) : (s[k - 8] >> 4);
    const int hi = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
    out[k] = (lo | (hi << 4)) - 32;
  }
}

/* 8 sub-blocks of 32; 6-bit scales and mins packed in 12 bytes. */
typedef struct {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[OSPREY_K_SCALE_SIZE];
  uint8_t qs[OSPREY_QK_K / 2];
} block_q4_K;
OSPREY_BLOCK_ASSERT(block_q4_K, 144);

/* Q4_K / Q5_K: sub-block j's 6-bit scale and min. Pairs 0..3 are the low 6 bits of bytes
 * 0..3 / 4..7; pairs 4..7 take a nibble from bytes 8..11 and their top two bits from the
 * spare high bits of bytes 0..7. */
static inline void osprey_k4_scale_min(int j, const uint8_t* s, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

typedef struct {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[OSPREY_K_SCALE_SIZE];
  uint8_t qh[OSPREY_QK_K / 8];
  uint8_t qs[OSPREY_QK_K / 2];
} block_q5_K;
OSPREY_BLOCK_ASSERT(block_q5_K, 176);

/* 16 sub-blocks of 16 with signed 8-bit scales; 6-bit quants (offset 32). */
typedef struct {
  uint8_t ql[OSPREY_QK_K / 2];
  uint8_t qh[OSPREY_QK_K / 4];
  int8_t scales[OSPREY_QK_K / 16];
  uint16_t d;
} block_q6_K;
OSPREY_BLOCK_ASSERT(block_q6_K, 210);

/* Activation-side format for K-quant dot products; d is a full float. */
typedef struct {
  float d;
  int8_t qs[OSPREY_QK_K];
  int16_t bsums[OSPREY_QK_K / 16];
} block_q8_K;
OSPREY_BLOCK_ASSERT(block_q8_K, 292);

/* Non-linear 4-bit: q indexes a fixed 16-entry table of int8 levels. */
typedef struct {
  uint16_t d;
  uint8_t qs[OSPREY_QK4_NL / 2];
} block_iq4_nl;
OSPREY_BLOCK_ASSERT(block_iq4_nl, 18);

/* IQ4_NL / IQ4_XS levels, ascending (denser near zero, where most weights sit). */
static const int8_t osprey_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                1,    13,   25,  38,  53,  69,  89,  113};

/* 8 sub-blocks of 32 with 6-bit scales (offset 32): low 4 bits in scales_l, high 2 in scales_h. */
typedef struct {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[OSPREY_QK_K / 64];
  uint8_t qs[OSPREY_QK_K / 2];
} block_iq4_xs;
OSPREY_BLOCK_ASSERT(block_iq4_xs, 136);

/* Sub-block sub's signed scale (-32..31), in units of d. */
static inline int osprey_iq4xs_scale(const block_iq4_xs* b, int sub) {
  const int lo = (b->scales_l[sub / 2] >> (4 * (sub % 2))) & 0x0F;
  const int hi = (b->scales_h >> (2 * sub)) & 3;
  return (lo | (hi << 4)) - 32;
}

/* IQ1/IQ2/IQ3: indices into fixed lattice codebooks (kernels/iq_grids.h) plus signs and small
 * group scales. Layouts as in ggml; see kernels/dequant_iq.cpp for how each field decodes. */
typedef struct {
  uint16_t d;
  uint16_t qs[OSPREY_QK_K / 8]; /* per 32 elements: 4 grid bytes, then 4x7 sign bits + 4-bit scale */
} block_iq2_xxs;
OSPREY_BLOCK_ASSERT(block_iq2_xxs, 66);

typedef struct {
  uint16_t d;
  uint16_t qs[OSPREY_QK_K / 8]; /* 9-bit grid index + 7-bit sign index per 8 elements */
  uint8_t scales[OSPREY_QK_K / 32];
} block_iq2_xs;
OSPREY_BLOCK_ASSERT(block_iq2_xs, 74);

typedef struct {
  uint16_t d;
  uint8_t qs[OSPREY_QK_K / 4]; /* 32 grid index bytes, then 32 sign bytes */
  uint8_t qh[OSPREY_QK_K / 32];
  uint8_t scales[OSPREY_QK_K / 32];
} block_iq2_s;
OSPREY_BLOCK_ASSERT(block_iq2_s, 82);

typedef struct {
  uint16_t d;
  uint8_t qs[3 * OSPREY_QK_K / 8]; /* 64 grid bytes, then 8 x (4x7 sign bits + 4-bit scale) */
} block_iq3_xxs;
OSPREY_BLOCK_ASSERT(block_iq3_xxs, 98);

typedef struct {
  uint16_t d;
  uint8_t qs[OSPREY_QK_K / 4];
  uint8_t qh[OSPREY_QK_K / 32];
  uint8_t signs[OSPREY_QK_K / 8];
  uint8_t scales[OSPREY_QK_K / 64];
} block_iq3_s;
OSPREY_BLOCK_ASSERT(block_iq3_s, 110);

typedef struct {
  uint16_t d;
  uint8_t qs[OSPREY_QK_K / 8];
  uint16_t qh[OSPREY_QK_K / 32];
} block_iq1_s;
OSPREY_BLOCK_ASSERT(block_iq1_s, 50);

typedef struct {
  uint8_t qs[OSPREY_QK_K / 8];
  uint8_t qh[OSPREY_QK_K / 16];
  uint8_t scales[OSPREY_QK_K / 32]; /* 3-bit group scales; the f16 super-scale in the top nibbles */
} block_iq1_m;
OSPREY_BLOCK_ASSERT(block_iq1_m, 56);

/* IQ1_S / IQ1_M: every grid value is shifted by +-1/8 (the sign per group of 8 or 16). */
#define OSPREY_IQ1_DELTA 0.125f

/* Ternary, base-3 packed: 5 trits per byte in qs, 4 per byte in qh. */
typedef struct {
  uint8_t qs[(OSPREY_QK_K - 4 * OSPREY_QK_K / 64) / 5];
  uint8_t qh[OSPREY_QK_K / 64];
  uint16_t d;
} block_tq1_0;
OSPREY_BLOCK_ASSERT(block_tq1_0, 54);

/* Ternary, 2 bits per element (q - 1). */
typedef struct {
  uint8_t qs[OSPREY_QK_K / 4];
  uint16_t d;
} block_tq2_0;
OSPREY_BLOCK_ASSERT(block_tq2_0, 66);

/* OCP microscaling FP4: e8m0 shared exponent, e2m1 elements. */
typedef struct {
  uint8_t e;
  uint8_t qs[OSPREY_QK_MXFP4 / 2];
} block_mxfp4;
OSPREY_BLOCK_ASSERT(block_mxfp4, 17);

#undef OSPREY_BLOCK_ASSERT

#endif /* OSPREY_KERNELS_QUANT_BLOCKS_H */
