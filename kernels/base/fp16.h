// IEEE half and bfloat16 <-> float conversions (bit exact, round-to-nearest-even).
#pragma once
#include <cstdint>
#include <cstring>

namespace osprey {

// Branch-free, so loops over rows of halves vectorize (a tenth of quantizing an F16 model
// went to the branchy version). Normal: the exponent rebiased in place; infinity / NaN: the
// exponent all ones, mantissa (payload) kept; zero / subnormal: the mantissa times 2^-24,
// exact in float.
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, em = h & 0x7fffu, exp = em >> 10;
  const float tiny = (float)em * 0x1p-24f;
  uint32_t tiny_bits;
  std::memcpy(&tiny_bits, &tiny, 4);
  const uint32_t bits = exp == 0 ? tiny_bits : exp == 0x1f ? 0x7f800000u | (em << 13) : (em << 13) + ((127u - 15u) << 23);
  float f;
  const uint32_t out = sign | bits;
  std::memcpy(&f, &out, 4);
  return f;
}

inline uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
  if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // overflow -> inf
  if (absx < 0x38800000u) {                                    // subnormal or zero in half
    if (absx < 0x33000000u) return (uint16_t)sign;
    const uint32_t e = absx >> 23;
    const uint32_t m = (absx & 0x7fffffu) | 0x800000u;
    const uint32_t sh = 126 - e;  // value = m * 2^(e-150) = hm * 2^-24
    const uint32_t hm = m >> sh;
    const uint32_t rem = m & ((1u << sh) - 1);
    const uint32_t halfway = 1u << (sh - 1);
    uint32_t out = hm + ((rem > halfway || (rem == halfway && (hm & 1))) ? 1 : 0);
    return (uint16_t)(sign | out);
  }
  uint32_t h = ((absx >> 13) - ((127 - 15) << 10));
  const uint32_t rem = absx & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
  return (uint16_t)(sign | h);
}

inline float bf16_to_f32(uint16_t h) {
  const uint32_t bits = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

}  // namespace osprey
