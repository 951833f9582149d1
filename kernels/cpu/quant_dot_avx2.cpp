// AVX2 + FMA + F16C integer dot products (this file alone is built with those flags; the
// dispatcher only calls it on CPUs that have them). Each reproduces quant_dot_scalar.cpp:
// the same integer sums per block, accumulated in float.
#include <cstring>

#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/quant_dot.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

namespace osprey::kernels::avx2 {
namespace {

inline float f16(uint16_t h) { return _cvtsh_ss(h); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Sum of products of unsigned bytes u (< 128 after pairing) and signed bytes s, as 8 int32.
inline __m256i dot_u8_i8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// Signed x signed: move w's sign onto x so maddubs sees |w| as unsigned.
inline __m256i dot_i8_i8(__m256i w, __m256i x) {
  return dot_u8_i8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}

// 32 nibbles: the low nibbles of 16 bytes in bytes 0..15, their high nibbles in 16..31.
inline __m256i unpack_nibbles(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128((const __m128i*)p);
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Byte i = 0xFF where bit i of the 32-bit word is set.
inline __m256i bits_to_bytes(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  const __m256i which_byte = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  const __m256i bit = _mm256_set1_epi64x((int64_t)0x8040201008040201ULL);
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int32_t)v), which_byte);
  return _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
}

// Blocks alternate between two accumulators: one FMA chain would serialise on its latency.
template <class F>
inline __m256 two_chains(int64_t nb, F fma_block) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    a0 = fma_block(i, a0);
    a1 = fma_block(i + 1, a1);
  }
  if (i < nb) a0 = fma_block(i, a0);
  return _mm256_add_ps(a0, a1);
}

inline __m256i load32(const void* p) { return _mm256_loadu_si256((const __m256i*)p); }

float dot_q4_0(const void* w, const void* xv, int64_t K) {
  const auto* b = (const block_q4_0*)w;
  const auto* x = (const block_q8_act*)xv;
  return hsum(two_chains(K / 32, [&](int64_t i, __m256 acc) {
    const __m256i q = _mm256_sub_epi8(unpack_nibbles(b[i].qs), _mm256_set1_epi8(8));
    return _mm256_fmadd_ps(_mm256_set1_ps(f16(b[i].d) * x[i].d), _mm256_cvtepi32_ps(dot_i8_i8(q, load32(x[i].qs))), acc);
  }));
}

float dot_q4_1(const void* w, const void* xv, int64_t K) {
  const auto* b = (const block_q4_1*)w;
  const auto* x = (const block_q8_act*)xv;
  float mins = 0;
  for (int64_t i = 0; i < K / 32; ++i) mins += f16(b[i].m) * x[i].s;
  return mins + hsum(two_chains(K / 32, [&](int64_t i, __m256 acc) {
    const __m256i p = dot_u8_i8(unpack_nibbles(b[i].qs), load32(x[i].qs));
    return _mm256_fmadd_ps(_mm256_set1_ps(f16(b[i].d) * x[i].d), _mm256_cvtepi32_ps(p), acc);
  }));
}

float dot_q5_0(const void* w, const void* xv, int64_t K) {
  const auto* b = (const block_q5_0*)w;
  const auto* x = (const block_q8_act*)xv;
  return hsum(two_chains(K / 32, [&](int64_t i, __m256 acc) {
    // nibble - 16 where the fifth bit is clear equals nibble | 0xF0 as a signed byte.
    const __m256i high = _mm256_andnot_si256(bits_to_bytes(b[i].qh), _mm256_set1_epi8((char)0xF0));
    const __m256i q = _mm256_or_si256(unpack_nibbles(b[i].qs), high);
    return _mm256_fmadd_ps(_mm256_set1_ps(f16(b[i].d) * x[i].d), _mm256_cvtepi32_ps(dot_i8_i8(q, load32(x[i].qs))), acc);
  }));
}

float dot_q5_1(const void* w, const void* xv, int64_t K) {
  const auto* b = (const block_q5_1*)w;
  const auto* x = (const block_q8_act*)xv;
  float mins = 0;
  for (int64_t i = 0; i < K / 32; ++i) mins += f16(b[i].m) * x[i].s;
  return mins + hsum(two_chains(K / 32, [&](int64_t i, __m256 acc) {
    const __m256i high = _mm256_and_si256(bits_to_bytes(b[i].qh), _mm256_set1_epi8(0x10));
    const __m256i q = _mm256_or_si256(unpack_nibbles(b[i].qs), high);
    return _mm256_fmadd_ps(_mm256_set1_ps(f16(b[i].d) * x[i].d), _mm256_cvtepi32_ps(dot_u8_i8(q, load32(x[i].qs))), acc);
  }));
}

float dot_q8_0(const void* w, const void* xv, int64_t K) {
  const auto* b = (const block_q8_0*)w;
  const auto* x = (const block_q8_act*)xv;
  return hsum(two_chains(K / 32, [&](int64_t i, __m256 acc) {
    const __m256i p = dot_i8_i8(load32(b[i].qs), load32(x[i].qs));
    return _mm256_fmadd_ps(_mm256_set1_ps(f16(b[i].d) * x[i].d), _mm256_cvtepi32_ps(p), acc);
  }));
}

// Four activation rows per weight row: each block is unpacked once. Decode(i) gives the
// block's 32 quants as bytes (signed, or unsigned when kUnsigned) and its scale; kMin adds
// the block minimum times each row's sum. Every row is summed in exactly the order of the
// one-row kernels above (blocks alternating between two chains, the minimums first), so a
// row's result does not depend on which kernel computed it.
template <bool kUnsigned, bool kMin, class Decode, class Min>
void dot4_32(int64_t K, const void* xv, size_t stride, float* out, Decode decode, Min min_of) {
  const auto* x0 = (const uint8_t*)xv;
  __m256 acc[2][4];
  for (auto& chain : acc)
    for (auto& a : chain) a = _mm256_setzero_ps();
  float mins[4] = {0, 0, 0, 0};
  const int64_t nb = K / 32;
  for (int64_t i = 0; i < nb; ++i) {
    float dw;
    const __m256i q = decode(i, &dw);
    const __m256i uq = kUnsigned ? q : _mm256_sign_epi8(q, q);
    // The one-row kernels send a trailing odd block to the first chain.
    const int chain = (i & 1) && !(i + 1 == nb && nb % 2 == 1) ? 1 : 0;
    for (int r = 0; r < 4; ++r) {
      const auto& xb = ((const block_q8_act*)(x0 + r * stride))[i];
      const __m256i y = load32(xb.qs);
      const __m256i p = dot_u8_i8(uq, kUnsigned ? y : _mm256_sign_epi8(y, q));
      acc[chain][r] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xb.d), _mm256_cvtepi32_ps(p), acc[chain][r]);
      if constexpr (kMin) mins[r] += min_of(i) * xb.s;
    }
  }
  for (int r = 0; r < 4; ++r) {
    const float dot = hsum(_mm256_add_ps(acc[0][r], acc[1][r]));
    out[r] = kMin ? mins[r] + dot : dot;
  }
}

constexpr auto kNoMin = [](int64_t) { return 0.f; };

void dot4_q4_0(const void* w, const void* x, size_t stride, int64_t K, float* out) {
  const auto* b = (const block_q4_0*)w;
  dot4_32<false, false>(K, x, stride, out, [&](int64_t i, float* d) {
    *d = f16(b[i].d);
    return _mm256_sub_epi8(unpack_nibbles(b[i].qs), _mm256_set1_epi8(8));
  }, kNoMin);
}

void dot4_q4_1(const void* w, const void* x, size_t stride, int64_t K, float* out) {
  const auto* b = (const block_q4_1*)w;
  dot4_32<true, true>(K, x, stride, out, [&](int64_t i, float* d) {
    *d = f16(b[i].d);
    return unpack_nibbles(b[i].qs);
  }, [&](int64_t i) { return f16(b[i].m); });
}

void dot4_q5_0(const void* w, const void* x, size_t stride, int64_t K, float* out) {
  const auto* b = (const block_q5_0*)w;
  dot4_32<false, false>(K, x, stride, out, [&](int64_t i, float* d) {
    *d = f16(b[i].d);
    const __m256i high = _mm256_andnot_si256(bits_to_bytes(b[i].qh), _mm256_set1_epi8((char)0xF0));
    return _mm256_or_si256(unpack_nibbles(b[i].qs), high);
  }, kNoMin);
}

void dot4_q5_1(const void* w, const void* x, size_t stride, int64_t K, float* out) {
  const auto* b = (const block_q5_1*)w;
  dot4_32<true, true>(K, x, stride, out, [&](int64_t i, float* d) {
    *d = f16(b[i].d);
    return _mm256_or_si256(unpack_nibbles(b[i].qs), _mm256_and_si256(bits_to_bytes(b[i].qh), _mm256_set1_epi8(0x10)));
  }, [&](int64_t i) { return f16(b[i].m); });
}

void dot4_q8_0(const void* w, const void* x, size_t stride, int64_t K, float* out) {
  const auto* b = (const block_q8_0*)w;
  dot4_32<false, false>(K, x, stride, out, [&](int64_t i, float* d) {
    *d = f16(b[i].d);
    return load32(b[i].qs);
  }, kNoMin);
}

float dot_q4_K(const void* w, const void* xv, int64_t K) {
  const auto* b = (const block_q4_K*)w;
  const auto* x = (const block_q8_K*)xv;
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int64_t i = 0; i < K / 256; ++i) {
    int sc[8], m[8], msum = 0;
    for (int s = 0; s < 8; ++s) {
      osprey_k4_scale_min(s, b[i].scales, &sc[s], &m[s]);
      msum += m[s] * (x[i].bsums[2 * s] + x[i].bsums[2 * s + 1]);
    }
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256i q = _mm256_loadu_si256((const __m256i*)(b[i].qs + 32 * j));
      const __m256i lo = _mm256_and_si256(q, low4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
      const __m256i ylo = _mm256_loadu_si256((const __m256i*)(x[i].qs + 64 * j));
      const __m256i yhi = _mm256_loadu_si256((const __m256i*)(x[i].qs + 64 * j + 32));
      const __m256i plo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, ylo), _mm256_set1_epi16((short)sc[2 * j]));
      const __m256i phi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, yhi), _mm256_set1_epi16((short)sc[2 * j + 1]));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(plo, phi));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * f16(b[i].d)), _mm256_cvtepi32_ps(sumi), acc);
    mins += x[i].d * f16(b[i].dmin) * (float)msum;
  }
  return hsum(acc) - mins;
}

float dot_q6_K(const void* w, const void* xv, int64_t K) {
  const auto* b = (const block_q6_K*)w;
  const auto* x = (const block_q8_K*)xv;
  __m256 acc = _mm256_setzero_ps();
  const __m256i low4 = _mm256_set1_epi8(0x0F), two_bits = _mm256_set1_epi8(0x30);
  for (int64_t i = 0; i < K / 256; ++i) {
    // Quants are stored +32; subtract 32 * sum(x) per 16-element group afterwards.
    int offset = 0;
    for (int s = 0; s < 16; ++s) offset += b[i].scales[s] * x[i].bsums[s];
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = b[i].ql + 64 * h;
      const int8_t* sc = b[i].scales + 8 * h;
      const int8_t* y = x[i].qs + 128 * h;
      const __m256i a = _mm256_loadu_si256((const __m256i*)ql);
      const __m256i c = _mm256_loadu_si256((const __m256i*)(ql + 32));
      const __m256i qh = _mm256_loadu_si256((const __m256i*)(b[i].qh + 32 * h));
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(a, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), two_bits)),
          _mm256_or_si256(_mm256_and_si256(c, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), two_bits)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), low4), _mm256_and_si256(qh, two_bits)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), low4),
                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), two_bits)),
      };
      for (int g = 0; g < 4; ++g) {
        const __m256i yv = _mm256_loadu_si256((const __m256i*)(y + 32 * g));
        const __m256i scales = _mm256_set_m128i(_mm_set1_epi16(sc[2 * g + 1]), _mm_set1_epi16(sc[2 * g]));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(q[g], yv), scales));
      }
    }
    const float d = x[i].d * f16(b[i].d);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    acc = _mm256_add_ps(acc, _mm256_setr_ps(-32.f * d * (float)offset, 0, 0, 0, 0, 0, 0, 0));
  }
  return hsum(acc);
}

// a * b + c rounded once, written out so the F16 GEMM tile's scalar tail rounds exactly like
// dot_f32's, whatever the compiler would contract.
inline float fma1(float a, float b, float c) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

float dot_f32(const float* a, const float* b, int64_t n) {
  int64_t i = 0;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
         acc3 = _mm256_setzero_ps();
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) sum = fma1(a[i], b[i], sum);
  return sum;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  const __m256 va = _mm256_set1_ps(a);
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

void f16_row(const uint16_t* h, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(h + i))));
  for (; i < n; ++i) out[i] = _cvtsh_ss(h[i]);
}

float dot_f16(const uint16_t* w, const float* x, int64_t n) {
  int64_t i = 0;
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(w + i))), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(w + i + 8))), _mm256_loadu_ps(x + i + 8), a1);
  }
  float sum = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) sum += _cvtsh_ss(w[i]) * x[i];
  return sum;
}

// R f16 weight rows against C f32 activation rows, each pair through exactly the operations
// of dot_f32(x row, f32 copy of the weight row): four chains of 8 lanes, an 8-step tail into
// the first, then a scalar tail after the horizontal sum. Four chains per pair leave room
// for three pairs in the 16 registers.
template <int R, int C>
void tile_f16(const uint16_t* const* w, const float* const* x, int64_t n, float* out) {
  __m256 acc[4][R][C];
  for (int q = 0; q < 4; ++q)
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) acc[q][r][c] = _mm256_setzero_ps();
  auto step = [&](int q, int64_t i) __attribute__((always_inline)) {
    __m256 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(w[r] + i)));
    for (int c = 0; c < C; ++c) {
      const __m256 xv = _mm256_loadu_ps(x[c] + i);
      for (int r = 0; r < R; ++r) acc[q][r][c] = _mm256_fmadd_ps(xv, wv[r], acc[q][r][c]);
    }
  };
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int q = 0; q < 4; ++q) step(q, i + 8 * q);
  for (; i + 8 <= n; i += 8) step(0, i);
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0][r][c], acc[1][r][c]), _mm256_add_ps(acc[2][r][c], acc[3][r][c])));
      for (int64_t k = i; k < n; ++k) sum = fma1(x[c][k], _cvtsh_ss(w[r][k]), sum);
      out[r * C + c] = sum;
    }
}

void gemm_f16(const void* w, size_t ws, int64_t rows, const void* x, size_t xs, int64_t cols, int64_t K, float* y,
              int64_t ldy) {
  walk_tiles<uint16_t, float, 1, 3>(w, ws, rows, x, xs, cols, K, y, ldy, tile_f16<1, 3>);
}

}  // namespace

GemmFn gemm_for(DType w) { return w == DType::F16 ? gemm_f16 : nullptr; }

bool built() { return true; }

const VecF32* vec_f32() {
  static const VecF32 v{dot_f32, axpy, f16_row, dot_f16};
  return &v;
}

VecDot4Fn vec_dot4_for(DType w) {
  switch (w) {
    case DType::Q4_0: return dot4_q4_0;
    case DType::Q4_1: return dot4_q4_1;
    case DType::Q5_0: return dot4_q5_0;
    case DType::Q5_1: return dot4_q5_1;
    case DType::Q8_0: return dot4_q8_0;
    default: return nullptr;
  }
}

VecDotFn vec_dot_for(DType w) {
  switch (w) {
    case DType::Q4_0: return dot_q4_0;
    case DType::Q4_1: return dot_q4_1;
    case DType::Q5_0: return dot_q5_0;
    case DType::Q5_1: return dot_q5_1;
    case DType::Q8_0: return dot_q8_0;
    case DType::Q4_K: return dot_q4_K;
    case DType::Q6_K: return dot_q6_K;
    default: return nullptr;
  }
}

}  // namespace osprey::kernels::avx2

#else  // this compiler or target cannot build AVX2: the dispatcher falls back to scalar

namespace osprey::kernels::avx2 {
bool built() { return false; }
VecDotFn vec_dot_for(DType) { return nullptr; }
VecDot4Fn vec_dot4_for(DType) { return nullptr; }
GemmFn gemm_for(DType) { return nullptr; }
const VecF32* vec_f32() { return nullptr; }
}  // namespace osprey::kernels::avx2

#endif
