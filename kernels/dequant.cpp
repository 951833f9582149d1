// Scalar reference dequantizers. See dequant.h for the contract.
//
// Bit-exactness with gguf-py (numpy, float32 throughout, no fused multiply-add) is what makes
// these usable as an oracle, so each formula keeps numpy's operation order — e.g. Q4_K is
// (d*sc)*q - (dmin*m), not d*(sc*q) - dmin*m. Where an a*b+c appears, a*b is exact in float32
// (a half scale times a small integer needs at most 22 significant bits), so a compiler's FMA
// contraction cannot change a result; clang is told not to contract anyway, in case a formula
// changes (GCC has no equivalent per-file pragma worth its side effects; the test would catch it).
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#include "kernels/dequant.h"

#include <cmath>
#include <cstring>

#include "kernels/base/fp16.h"
#include "kernels/block_io.h"
#include "kernels/dequant_iq.h"
#include "kernels/quant_blocks.h"

namespace osprey::kernels {
namespace {

float h2f(uint16_t h) { return f16_to_f32(h); }

void dq_f32(const void* src, float* y, int64_t n) { std::memcpy(y, src, (size_t)n * sizeof(float)); }

void dq_f16(const void* src, float* y, int64_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    y[i] = f16_to_f32(h);
  }
}

void dq_bf16(const void* src, float* y, int64_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    y[i] = bf16_to_f32(h);
  }
}

// 32-element formats: element j sits in the low nibble of qs[j], element j+16 in the high one.

void dq_q4_0(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += OSPREY_QK4_0) {
    const auto b = load_block<block_q4_0>(src, i);
    const float d = h2f(b.d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * (float)((b.qs[j] & 0x0F) - 8);
      y[j + 16] = d * (float)((b.qs[j] >> 4) - 8);
    }
  }
}

void dq_q4_1(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += OSPREY_QK4_1) {
    const auto b = load_block<block_q4_1>(src, i);
    const float d = h2f(b.d), m = h2f(b.m);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * (float)(b.qs[j] & 0x0F) + m;
      y[j + 16] = d * (float)(b.qs[j] >> 4) + m;
    }
  }
}

uint32_t load_u32_le(const uint8_t* p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

void dq_q5_0(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += OSPREY_QK5_0) {
    const auto b = load_block<block_q5_0>(src, i);
    const float d = h2f(b.d);
    const uint32_t qh = load_u32_le(b.qh);
    for (int j = 0; j < 16; ++j) {
      const int lo = (b.qs[j] & 0x0F) | (int)(((qh >> j) & 1u) << 4);
      const int hi = (b.qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
      y[j] = d * (float)(lo - 16);
      y[j + 16] = d * (float)(hi - 16);
    }
  }
}

void dq_q5_1(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += OSPREY_QK5_1) {
    const auto b = load_block<block_q5_1>(src, i);
    const float d = h2f(b.d), m = h2f(b.m);
    const uint32_t qh = load_u32_le(b.qh);
    for (int j = 0; j < 16; ++j) {
      const int lo = (b.qs[j] & 0x0F) | (int)(((qh >> j) & 1u) << 4);
      const int hi = (b.qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
      y[j] = d * (float)lo + m;
      y[j + 16] = d * (float)hi + m;
    }
  }
}

void dq_q8_0(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += OSPREY_QK8_0) {
    const auto b = load_block<block_q8_0>(src, i);
    const float d = h2f(b.d);
    for (int j = 0; j < OSPREY_QK8_0; ++j) y[j] = (float)b.qs[j] * d;
  }
}

void dq_q8_1(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += OSPREY_QK8_1) {
    const auto b = load_block<block_q8_1>(src, i);
    const float d = h2f(b.d);
    for (int j = 0; j < OSPREY_QK8_1; ++j) y[j] = (float)b.qs[j] * d;
  }
}

// K-quants. Within each 128-element half, the 2-bit formats store four 32-element groups
// in the same 32 bytes at bit shifts 0, 2, 4, 6.

void dq_q2_k(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += OSPREY_QK_K) {
    const auto b = load_block<block_q2_K>(src, i);
    const float d = h2f(b.d), dmin = h2f(b.dmin);
    for (int e = 0; e < OSPREY_QK_K; ++e) {
      const int half = e / 128, shift = 2 * ((e % 128) / 32), l = e % 32;
      const uint8_t sc = b.scales[e / 16];
      const float dl = d * (float)(sc & 0x0F);
      const float ml = dmin * (float)(sc >> 4);
      const int q = (b.qs[half * 32 + l] >> shift) & 3;
      y[e] = dl * (float)q - ml;
    }
  }
}

void dq_q3_k(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += OSPREY_QK_K) {
    const auto b = load_block<block_q3_K>(src, i);
    const float d = h2f(b.d);
    int scales[16];
    osprey_q3k_scales(b.scales, scales);
    for (int e = 0; e < OSPREY_QK_K; ++e) {
      const int half = e / 128, shift = 2 * ((e % 128) / 32), l = e % 32;
      const int low = (b.qs[half * 32 + l] >> shift) & 3;
      const bool high = (b.hmask[l] >> (e / 32)) & 1;  // bit e/32 of hmask byte l
      const int q = low - (high ? 0 : 4);
      const float dl = d * (float)scales[e / 16];
      y[e] = dl * (float)q;
    }
  }
}

void dq_q4_k(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += OSPREY_QK_K) {
    const auto b = load_block<block_q4_K>(src, i);
    const float d = h2f(b.d), dmin = h2f(b.dmin);
    for (int sub = 0; sub < 8; ++sub) {
      int sc, m;
      osprey_k4_scale_min(sub, b.scales, &sc, &m);
      const float dl = d * (float)sc, ml = dmin * (float)m;
      const uint8_t* q = b.qs + (sub / 2) * 32;
      const int shift = (sub % 2) * 4;
      for (int l = 0; l < 32; ++l) y[sub * 32 + l] = dl * (float)((q[l] >> shift) & 0x0F) - ml;
    }
  }
}

void dq_q5_k(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += OSPREY_QK_K) {
    const auto b = load_block<block_q5_K>(src, i);
    const float d = h2f(b.d), dmin = h2f(b.dmin);
    for (int sub = 0; sub < 8; ++sub) {
      int sc, m;
      osprey_k4_scale_min(sub, b.scales, &sc, &m);
      const float dl = d * (float)sc, ml = dmin * (float)m;
      const uint8_t* q = b.qs + (sub / 2) * 32;
      const int shift = (sub % 2) * 4;
      for (int l = 0; l < 32; ++l) {
        const int v = ((q[l] >> shift) & 0x0F) | (((b.qh[l] >> sub) & 1) << 4);
        y[sub * 32 + l] = dl * (float)v - ml;
      }
    }
  }
}

void dq_q6_k(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += OSPREY_QK_K) {
    const auto b = load_block<block_q6_K>(src, i);
    const float d = h2f(b.d);
    for (int e = 0; e < OSPREY_QK_K; ++e) {
      // In each 128-element half: groups 0,1 are the low nibbles of ql[0..32), ql[32..64),
      // groups 2,3 their high nibbles; group g's top two bits are qh[l] >> 2g.
      const int half = e / 128, g = (e % 128) / 32, l = e % 32;
      const uint8_t ql = b.ql[half * 64 + (g % 2) * 32 + l];
      const int lo = (g < 2) ? (ql & 0x0F) : (ql >> 4);
      const int hi = (b.qh[half * 32 + l] >> (2 * g)) & 3;
      const int q = (lo | (hi << 4)) - 32;
      const float dl = d * (float)b.scales[e / 16];
      y[e] = dl * (float)q;
    }
  }
}

void dq_q8_k(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += OSPREY_QK_K) {
    const auto b = load_block<block_q8_K>(src, i);
    for (int j = 0; j < OSPREY_QK_K; ++j) y[j] = b.d * (float)b.qs[j];
  }
}

const int8_t* const kIQ4NLValues = osprey_iq4nl_values;

void dq_iq4_nl(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += OSPREY_QK4_NL) {
    const auto b = load_block<block_iq4_nl>(src, i);
    const float d = h2f(b.d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * (float)kIQ4NLValues[b.qs[j] & 0x0F];
      y[j + 16] = d * (float)kIQ4NLValues[b.qs[j] >> 4];
    }
  }
}

void dq_iq4_xs(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += OSPREY_QK_K) {
    const auto b = load_block<block_iq4_xs>(src, i);
    const float d = h2f(b.d);
    for (int sub = 0; sub < 8; ++sub) {
      const float dl = d * (float)osprey_iq4xs_scale(&b, sub);
      const uint8_t* q = b.qs + sub * 16;
      float* out = y + sub * 32;
      for (int j = 0; j < 16; ++j) {
        out[j] = dl * (float)kIQ4NLValues[q[j] & 0x0F];
        out[j + 16] = dl * (float)kIQ4NLValues[q[j] >> 4];
      }
    }
  }
}

// TQ1_0 packs 5 trits per byte as a fixed-point fraction of 3^5: multiplying the byte by
// 3^k (mod 256) shifts trit k to the top, and (v * 3) >> 8 reads it out.
int tq1_trit(uint8_t byte, int k) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const uint8_t v = (uint8_t)(byte * kPow3[k]);
  return (int)(((uint16_t)v * 3) >> 8) - 1;
}

void dq_tq1_0(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<block_tq1_0>(src, i);
    const float d = h2f(b.d);
    // qs[0..32): 5 groups of 32; qs[32..48): 5 groups of 16; qh[0..4): 4 groups of 4.
    for (int k = 0; k < 5; ++k)
      for (int m = 0; m < 32; ++m) *y++ = (float)tq1_trit(b.qs[m], k) * d;
    for (int k = 0; k < 5; ++k)
      for (int m = 0; m < 16; ++m) *y++ = (float)tq1_trit(b.qs[32 + m], k) * d;
    for (int k = 0; k < 4; ++k)
      for (int m = 0; m < 4; ++m) *y++ = (float)tq1_trit(b.qh[m], k) * d;
  }
}

void dq_tq2_0(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += OSPREY_QK_K) {
    const auto b = load_block<block_tq2_0>(src, i);
    const float d = h2f(b.d);
    for (int e = 0; e < OSPREY_QK_K; ++e) {
      const int half = e / 128, shift = 2 * ((e % 128) / 32), l = e % 32;
      const int q = ((b.qs[half * 32 + l] >> shift) & 3) - 1;
      y[e] = d * (float)q;
    }
  }
}

// e8m0 exponent to a float holding half the scale (the e2m1 table below is doubled so it
// stays integral). Small exponents become subnormals, which the shift builds directly.
float e8m0_to_f32_half(uint8_t e) {
  const uint32_t bits = e < 2 ? (0x00200000u << e) : ((uint32_t)(e - 1) << 23);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

constexpr int8_t kMXFP4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

void dq_mxfp4(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += OSPREY_QK_MXFP4) {
    const auto b = load_block<block_mxfp4>(src, i);
    const float d = e8m0_to_f32_half(b.e);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * (float)kMXFP4Values[b.qs[j] & 0x0F];
      y[j + 16] = d * (float)kMXFP4Values[b.qs[j] >> 4];
    }
  }
}

using DequantFn = void (*)(const void*, float*, int64_t);

// Element-wise types take an element count, block types a block count.
DequantFn lookup(DType t, bool* per_element) {
  *per_element = false;
  switch (t) {
    case DType::F32: *per_element = true; return dq_f32;
    case DType::F16: *per_element = true; return dq_f16;
    case DType::BF16: *per_element = true; return dq_bf16;
    case DType::Q4_0: return dq_q4_0;
    case DType::Q4_1: return dq_q4_1;
    case DType::Q5_0: return dq_q5_0;
    case DType::Q5_1: return dq_q5_1;
    case DType::Q8_0: return dq_q8_0;
    case DType::Q8_1: return dq_q8_1;
    case DType::Q2_K: return dq_q2_k;
    case DType::Q3_K: return dq_q3_k;
    case DType::Q4_K: return dq_q4_k;
    case DType::Q5_K: return dq_q5_k;
    case DType::Q6_K: return dq_q6_k;
    case DType::Q8_K: return dq_q8_k;
    case DType::IQ2_XXS: return dq_iq2_xxs;
    case DType::IQ2_XS: return dq_iq2_xs;
    case DType::IQ2_S: return dq_iq2_s;
    case DType::IQ3_XXS: return dq_iq3_xxs;
    case DType::IQ3_S: return dq_iq3_s;
    case DType::IQ1_S: return dq_iq1_s;
    case DType::IQ1_M: return dq_iq1_m;
    case DType::IQ4_NL: return dq_iq4_nl;
    case DType::IQ4_XS: return dq_iq4_xs;
    case DType::TQ1_0: return dq_tq1_0;
    case DType::TQ2_0: return dq_tq2_0;
    case DType::MXFP4: return dq_mxfp4;
    default: return nullptr;
  }
}

}  // namespace

bool has_dequantizer(DType t) {
  bool per_element;
  return lookup(t, &per_element) != nullptr;
}

bool dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  bool per_element;
  const DequantFn fn = lookup(t, &per_element);
  const DTypeTraits* tr = dtype_traits(t);
  if (!fn || !tr || n < 0 || n % tr->block_elems != 0) return false;
  fn(src, dst, per_element ? n : n / tr->block_elems);
  return true;
}

}  // namespace osprey::kernels
