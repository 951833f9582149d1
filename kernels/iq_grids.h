// Codebooks of the IQ1/IQ2/IQ3 formats (private to kernels/), generated into iq_grids.cpp by
// kernels/gen_iq_grids.py.
//
// Each row is one lattice point of 8 (IQ1, IQ2) or 4 (IQ3) values, stored as indices into the
// format's value list, packed into a uint16: element k in bits [b*k, b*k + b).
//   IQ2_XXS/IQ2_XS/IQ2_S: b = 2, values {8, 25, 43}
//   IQ3_XXS: b = 3, values {4, 12, 20, 28, 36, 44, 52, 62}
//   IQ3_S:   b = 3, values {1, 3, 5, 7, 9, 11, 13, 15}
//   IQ1_S/IQ1_M: b = 2, values {-1, 0, 1}
#pragma once
#include <cstdint>

namespace osprey::kernels {

extern const uint16_t kIQ2XXSGrid[256];
extern const uint16_t kIQ2XSGrid[512];
extern const uint16_t kIQ2SGrid[1024];
extern const uint16_t kIQ3XXSGrid[256];
extern const uint16_t kIQ3SGrid[512];
extern const uint16_t kIQ1SGrid[2048];

// Decoded value k of a packed row.
inline int iq2_grid_value(uint16_t row, int k) {
  static constexpr int8_t kValues[4] = {8, 25, 43, 0};
  return kValues[(row >> (2 * k)) & 3];
}
inline int iq3xxs_grid_value(uint16_t row, int k) {
  static constexpr int8_t kValues[8] = {4, 12, 20, 28, 36, 44, 52, 62};
  return kValues[(row >> (3 * k)) & 7];
}
inline int iq3s_grid_value(uint16_t row, int k) { return 2 * ((row >> (3 * k)) & 7) + 1; }
inline int iq1_grid_value(uint16_t row, int k) { return (int)((row >> (2 * k)) & 3) - 1; }

// The sign byte for a 7-bit sign index: the eighth sign makes the count of negatives even.
inline uint8_t iq_sign_byte(uint32_t i7) {
  return (uint8_t)(i7 | ((uint32_t)(__builtin_popcount(i7) & 1) << 7));
}

}  // namespace osprey::kernels
