// Scalar dequantizers for the codebook formats IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S,
// IQ3_XXS and IQ3_S: bit-exact with gguf-py's dequantizers (the same float32 operation order,
// noted per format), so Osprey can at least run such files through the dequantize fallback.
//
// All of them decode a 256-element super-block as rows of 8 (or 4) lattice values looked up
// in a fixed codebook (iq_grids.h), times a per-group scale, with per-element signs (IQ2,
// IQ3) or a shared +-1/8 shift (IQ1).
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#include "kernels/dequant_iq.h"

#include <cstring>

#include "kernels/base/fp16.h"
#include "kernels/block_io.h"
#include "kernels/iq_grids.h"
#include "kernels/quant_blocks.h"

namespace osprey::kernels {
namespace {

// A signed product as numpy forms it: (scale * value) * (+-1), the sign flip being exact.
float signed_product(float scale, int value, bool negative) {
  const float v = scale * (float)value;
  return negative ? -v : v;
}

}  // namespace

// Per 32 elements: a u32 of four grid-row bytes, then a u32 with four 7-bit sign indices and
// a 4-bit scale on top: db = (d * (0.5 + s)) * 0.25.
void dq_iq2_xxs(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<block_iq2_xxs>(src, i);
    const float d = f16_to_f32(b.d);
    for (int ib = 0; ib < 8; ++ib) {
      const uint32_t grid = (uint32_t)b.qs[4 * ib] | ((uint32_t)b.qs[4 * ib + 1] << 16);
      const uint32_t aux = (uint32_t)b.qs[4 * ib + 2] | ((uint32_t)b.qs[4 * ib + 3] << 16);
      const float db = d * (0.5f + (float)(aux >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l) {
        const uint16_t row = kIQ2XXSGrid[(grid >> (8 * l)) & 255];
        const uint8_t signs = iq_sign_byte((aux >> (7 * l)) & 127);
        for (int j = 0; j < 8; ++j) *y++ = signed_product(db, iq2_grid_value(row, j), (signs >> j) & 1);
      }
    }
  }
}

// Per 8 elements a u16: 9-bit grid index, 7-bit sign index; a 4-bit scale per 16 elements.
void dq_iq2_xs(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<block_iq2_xs>(src, i);
    const float d = f16_to_f32(b.d);
    for (int k = 0; k < 32; ++k) {
      const int s = (b.scales[k / 4] >> (4 * ((k / 2) % 2))) & 15;
      const float db = d * (0.5f + (float)s) * 0.25f;
      const uint16_t row = kIQ2XSGrid[b.qs[k] & 511];
      const uint8_t signs = iq_sign_byte(b.qs[k] >> 9);
      for (int j = 0; j < 8; ++j) *y++ = signed_product(db, iq2_grid_value(row, j), (signs >> j) & 1);
    }
  }
}

// Per 8 elements: a grid byte plus two high bits from qh (10-bit index), a whole sign byte;
// a 4-bit scale per 16 elements.
void dq_iq2_s(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<block_iq2_s>(src, i);
    const float d = f16_to_f32(b.d);
    for (int k = 0; k < 32; ++k) {
      const int s = (b.scales[k / 4] >> (4 * ((k / 2) % 2))) & 15;
      const float db = d * (0.5f + (float)s) * 0.25f;
      const int idx = b.qs[k] | (((b.qh[k / 4] >> (2 * (k % 4))) & 3) << 8);
      const uint16_t row = kIQ2SGrid[idx];
      const uint8_t signs = b.qs[32 + k];
      for (int j = 0; j < 8; ++j) *y++ = signed_product(db, iq2_grid_value(row, j), (signs >> j) & 1);
    }
  }
}

// Rows of 4; per 32 elements a u32 of four 7-bit sign indices and a 4-bit scale:
// db = (d * (0.5 + s)) * 0.5.
void dq_iq3_xxs(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<block_iq3_xxs>(src, i);
    const float d = f16_to_f32(b.d);
    for (int ib = 0; ib < 8; ++ib) {
      uint32_t aux;
      std::memcpy(&aux, b.qs + 64 + 4 * ib, 4);  // little-endian hosts only, as the GGUF reader
      const float db = d * (0.5f + (float)(aux >> 28)) * 0.5f;
      for (int e = 0; e < 32; ++e) {
        const uint16_t row = kIQ3XXSGrid[b.qs[8 * ib + e / 4]];
        const uint8_t signs = iq_sign_byte((aux >> (7 * (e / 8))) & 127);
        *y++ = signed_product(db, iq3xxs_grid_value(row, e % 4), (signs >> (e % 8)) & 1);
      }
    }
  }
}

// Rows of 4 with a 9-bit index (high bit in qh), a sign bit per element, and a 4-bit scale
// per 32 elements: db = d * (1 + 2s).
void dq_iq3_s(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<block_iq3_s>(src, i);
    const float d = f16_to_f32(b.d);
    for (int e = 0; e < 256; ++e) {
      const int s = (b.scales[e / 64] >> (4 * ((e / 32) % 2))) & 15;
      const float db = d * (float)(1 + 2 * s);
      const int k = e / 4;
      const int idx = b.qs[k] | (((b.qh[k / 8] >> (k % 8)) & 1) << 8);
      *y++ = signed_product(db, iq3s_grid_value(kIQ3SGrid[idx], e % 4), (b.signs[e / 8] >> (e % 8)) & 1);
    }
  }
}

// Per 32 elements a u16: three index bits for each of the 4 rows, a 3-bit scale
// (dl = d * (2s + 1)) and the sign of the shared shift in bit 15. y = dl * (grid + shift).
void dq_iq1_s(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<block_iq1_s>(src, i);
    const float d = f16_to_f32(b.d);
    for (int ib = 0; ib < 8; ++ib) {
      const uint16_t qh = b.qh[ib];
      const float dl = d * (float)(2 * ((qh >> 12) & 7) + 1);
      const float delta = (qh & 0x8000) ? -OSPREY_IQ1_DELTA : OSPREY_IQ1_DELTA;
      for (int l = 0; l < 4; ++l) {
        const uint16_t row = kIQ1SGrid[b.qs[4 * ib + l] | (((qh >> (3 * l)) & 7) << 8)];
        for (int j = 0; j < 8; ++j) *y++ = dl * ((float)iq1_grid_value(row, j) + delta);
      }
    }
  }
}

// The half super-scale is spread over the top nibbles of the four scale words; each row of 8
// takes three index bits and its shift sign from a nibble of qh; a 3-bit scale per 16 elements.
void dq_iq1_m(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<block_iq1_m>(src, i);
    uint16_t sc[4];
    std::memcpy(sc, b.scales, sizeof sc);
    const uint16_t dbits = (uint16_t)(((sc[0] & 0xF000) >> 12) | ((sc[1] & 0xF000) >> 8) | ((sc[2] & 0xF000) >> 4) |
                                      (sc[3] & 0xF000));
    const float d = f16_to_f32(dbits);
    for (int k = 0; k < 32; ++k) {
      const int g = k / 2;  // 16-element group
      const int s = (sc[g / 4] >> (3 * (g % 4))) & 7;
      const float dl = d * (float)(2 * s + 1);
      const int nib = (b.qh[k / 2] >> (4 * (k % 2))) & 15;
      const float delta = (nib & 8) ? -OSPREY_IQ1_DELTA : OSPREY_IQ1_DELTA;
      const uint16_t row = kIQ1SGrid[b.qs[k] | ((nib & 7) << 8)];
      for (int j = 0; j < 8; ++j) *y++ = dl * ((float)iq1_grid_value(row, j) + delta);
    }
  }
}

}  // namespace osprey::kernels
