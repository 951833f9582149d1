// Small helpers the x86 kernel files share (include it inside a file's AVX2 / AVX-512 guard).
// They live in an anonymous namespace on purpose: every per-ISA translation unit gets its
// own copy, compiled with that file's flags, so the linker can never hand an AVX-512-built
// copy to code that runs on an AVX2-only CPU.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "kernels/quant_blocks.h"

namespace osprey::kernels {
namespace {

// The 16 IQ4_NL / IQ4_XS levels as signed bytes (a pshufb table), and the same + 128 as
// unsigned bytes (vpdpbusd's operand; the kernels take 128 * sum(x) back out).
inline __m128i iq4_levels() { return _mm_loadu_si128((const __m128i*)osprey_iq4nl_values); }
inline __m128i iq4_levels_plus128() { return _mm_xor_si128(iq4_levels(), _mm_set1_epi8((char)0x80)); }

// Products of signed bytes q and x as int16 pair sums q[2i] x[2i] + q[2i+1] x[2i+1]:
// vpmaddubsw wants its first operand unsigned, so |q| meets x carrying q's sign. Exact for
// any q while x stays within +-127 (|sum| <= 2 * 128 * 127 < 2^15).
inline __m256i mul_signed_pairs(__m256i q, __m256i x) {
  return _mm256_maddubs_epi16(_mm256_abs_epi8(q), _mm256_sign_epi8(x, q));
}

inline float f16(uint16_t h) { return _cvtsh_ss(h); }

// Lanes 0..7 summed as ((0+4) + (2+6)) + ((1+5) + (3+7)).
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

}  // namespace
}  // namespace osprey::kernels
