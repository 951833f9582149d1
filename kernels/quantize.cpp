// Quantizers for the 32-element formats and the dispatch over every type. See quantize.h.
//
// The 32-element reference quantizers reproduce gguf-py's numpy arithmetic exactly (float32,
// separate multiply and add, truncation where numpy truncates), so tests compare them byte for
// byte; given an importance row they use the weighted search instead.
#include "kernels/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/base/fp16.h"
#include "kernels/block_io.h"
#include "kernels/quant_blocks.h"
#include "kernels/quantize_fit.h"
#include "kernels/quantize_internal.h"

namespace osprey::kernels {
namespace {

// Element j's low four bits in qs[j % 16] (the high nibble for j >= 16); the fifth bit, for
// the Q5 formats, is bit j of qh.
template <class Block>
void pack_32(const int* q, Block* b) {
  for (int j = 0; j < 16; ++j) b->qs[j] = (uint8_t)((q[j] & 15) | ((q[j + 16] & 15) << 4));
  if constexpr (requires { b->qh; }) {
    std::memset(b->qh, 0, sizeof b->qh);
    for (int j = 0; j < 32; ++j) b->qh[j / 8] |= (uint8_t)(((q[j] >> 4) & 1) << (j % 8));
  }
}

// Q4_1 / Q5_1: d = (max - min) / qmax, q = trunc((x - min) / d + 0.5).
template <class Block>
void quantize_affine_32(const float* x, void* dst, int64_t n, int qmax) {
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float lo, hi;
    qfit::min_max(x, 32, &lo, &hi);
    const float d = (hi - lo) / (float)qmax;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int q[32];
    for (int j = 0; j < 32; ++j) q[j] = std::min(qmax, (int)((x[j] - lo) * id + 0.5f));
    Block b;
    b.d = f32_to_f16(d);
    b.m = f32_to_f16(lo);
    pack_32(q, &b);
    store_block(dst, i, b);
  }
}

// Q5_0: as Q4_0 with 32 levels: d = -max/16, q = min(31, trunc(x / d + 16.5)).
void quantize_row_q5_0(const float* x, void* dst, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    const float max = qfit::signed_absmax(x, 32);
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    block_q5_0 b;
    b.d = f32_to_f16(d);
    int q[32];
    for (int j = 0; j < 32; ++j) q[j] = std::min(31, (int)(x[j] * id + 16.5f));
    pack_32(q, &b);
    store_block(dst, i, b);
  }
}

// With an importance row the 32-element formats search their scale by weighted least
// squares, as the K-quants do; without one they keep the reference rounding above, byte for
// byte what other tools write. Q4_0/Q5_0: x = d * (q - nmax).
template <class Block>
void quantize_symmetric_32_weighted(const float* x, void* dst, int64_t n, const float* importance, int nmax) {
  float w[32];
  int q[32];
  const int one = 1;
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    qfit::row_weights(x, 32, importance + i * 32, w);
    float d = qfit::fit_symmetric(x, w, 32, -nmax, nmax - 1, q);
    d = qfit::finish_symmetric(x, w, 32, 1, &one, d, qfit::Grid{-nmax, nmax - 1, nullptr}, q);
    for (int j = 0; j < 32; ++j) q[j] += nmax;
    Block b;
    b.d = f32_to_f16(d);
    pack_32(q, &b);
    store_block(dst, i, b);
  }
}

// Q4_1/Q5_1 with importance: x = d * q + m, the offset m of either sign.
template <class Block>
void quantize_affine_32_weighted(const float* x, void* dst, int64_t n, const float* importance, int qmax) {
  float w[32];
  int q[32];
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    qfit::row_weights(x, 32, importance + i * 32, w);
    float d, m;
    qfit::fit_affine(x, w, 32, qmax, q, &d, &m, /*any_sign_offset=*/true);
    // Re-round against the scale and offset as they will be decoded.
    const float dh = qfit::f16_round(d), mh = qfit::f16_round(-m);
    if (dh > 0.0f)
      for (int j = 0; j < 32; ++j) q[j] = qfit::round_clamp((x[j] - mh) / dh, 0, qmax);
    Block b;
    b.d = f32_to_f16(dh);
    b.m = f32_to_f16(mh);
    pack_32(q, &b);
    store_block(dst, i, b);
  }
}

}  // namespace

void quantize_row_q8_0(const float* x, void* dst, int64_t n) {
  uint8_t* out = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / OSPREY_QK8_0; ++i, x += OSPREY_QK8_0) {
    // std::fmax and std::roundf are library calls on baseline x86-64 (a fifth of a Q6_K
    // quantize went to them on SmolLM2, whose 576-wide tensors fall back to Q8_0): the same
    // values inline. A NaN never wins the max, as in fmax. The maximum runs in 8 lanes (a
    // chain of dependent compares does not vectorize): the same value, since every |x| is
    // non-negative and which of equal maxima wins does not matter.
    float lane[8] = {};
    for (int j = 0; j < OSPREY_QK8_0; j += 8)
      for (int k = 0; k < 8; ++k) {
        const float a = std::fabs(x[j + k]);
        lane[k] = a > lane[k] ? a : lane[k];
      }
    float amax = 0.0f;
    for (float a : lane) amax = a > amax ? a : amax;
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    block_q8_0 b;
    b.d = f32_to_f16(d);
    // Rounded half away from zero, as gguf-py's np_roundf and ggml's reference round.
    for (int j = 0; j < OSPREY_QK8_0; ++j) b.qs[j] = qfit::round_half_away_i8(x[j] * id);
    std::memcpy(out + i * (int64_t)sizeof(block_q8_0), &b, sizeof b);
  }
}

void quantize_row_q4_0(const float* x, void* dst, int64_t n) {
  uint8_t* out = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / OSPREY_QK4_0; ++i, x += OSPREY_QK4_0) {
    // The scale maps the signed value of largest magnitude to -8, so that value is exact
    // and the rest spread over -8..7.
    const float max = qfit::signed_absmax(x, OSPREY_QK4_0);
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    block_q4_0 b;
    b.d = f32_to_f16(d);
    for (int j = 0; j < OSPREY_QK4_0 / 2; ++j) {
      const int lo = std::min(15, (int)(x[j] * id + 8.5f));
      const int hi = std::min(15, (int)(x[j + OSPREY_QK4_0 / 2] * id + 8.5f));
      b.qs[j] = (uint8_t)(lo | (hi << 4));
    }
    std::memcpy(out + i * (int64_t)sizeof(block_q4_0), &b, sizeof b);
  }
}

bool has_quantizer(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16:
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0:
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
    case DType::IQ4_NL: case DType::IQ4_XS:
      return true;
    default:
      return false;
  }
}

bool quantize_row(DType t, const float* x, void* dst, int64_t n, const float* importance) {
  const DTypeTraits* tr = dtype_traits(t);
  if (!tr || !has_quantizer(t) || n < 0 || n % tr->block_elems != 0) return false;
  switch (t) {
    case DType::F32: std::memcpy(dst, x, (size_t)n * 4); return true;
    case DType::F16: for (int64_t i = 0; i < n; ++i) ((uint16_t*)dst)[i] = f32_to_f16(x[i]); return true;
    case DType::BF16: for (int64_t i = 0; i < n; ++i) ((uint16_t*)dst)[i] = f32_to_bf16(x[i]); return true;
    case DType::Q4_0:
      if (importance) quantize_symmetric_32_weighted<block_q4_0>(x, dst, n, importance, 8);
      else quantize_row_q4_0(x, dst, n);
      return true;
    case DType::Q4_1:
      if (importance) quantize_affine_32_weighted<block_q4_1>(x, dst, n, importance, 15);
      else quantize_affine_32<block_q4_1>(x, dst, n, 15);
      return true;
    case DType::Q5_0:
      if (importance) quantize_symmetric_32_weighted<block_q5_0>(x, dst, n, importance, 16);
      else quantize_row_q5_0(x, dst, n);
      return true;
    case DType::Q5_1:
      if (importance) quantize_affine_32_weighted<block_q5_1>(x, dst, n, importance, 31);
      else quantize_affine_32<block_q5_1>(x, dst, n, 31);
      return true;
    case DType::Q8_0: quantize_row_q8_0(x, dst, n); return true;
    case DType::Q2_K: quantize_row_q2_k(x, dst, n, importance); return true;
    case DType::Q3_K: quantize_row_q3_k(x, dst, n, importance); return true;
    case DType::Q4_K: quantize_row_q4_k(x, dst, n, importance); return true;
    case DType::Q5_K: quantize_row_q5_k(x, dst, n, importance); return true;
    case DType::Q6_K: quantize_row_q6_k(x, dst, n, importance); return true;
    case DType::IQ4_NL: quantize_row_iq4_nl(x, dst, n, importance); return true;
    case DType::IQ4_XS: quantize_row_iq4_xs(x, dst, n, importance); return true;
    default: return false;
  }
}

}  // namespace osprey::kernels
