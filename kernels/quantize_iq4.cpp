// IQ4_NL and IQ4_XS quantizers: 4-bit indices into the fixed non-linear level table
// osprey_iq4nl_values, with one half scale per 32 elements (IQ4_NL) or 6-bit group scales
// under a half super-scale (IQ4_XS). The table is asymmetric (-127..113), so the sign of a
// scale matters: fit_table tries the largest value against both ends.
#include <cmath>
#include <cstring>
#include <iterator>

#include "kernels/base/fp16.h"
#include "kernels/block_io.h"
#include "kernels/quant_blocks.h"
#include "kernels/quantize_fit.h"
#include "kernels/quantize_internal.h"

namespace osprey::kernels {
namespace {

const qfit::Grid kIQ4Grid{0, 15, osprey_iq4nl_values};

// Element j of a 32-group in the low nibble of qs[j], element j+16 in the high one.
void pack_nibbles_32(const int* q, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = (uint8_t)(q[j] | (q[j + 16] << 4));
}

}  // namespace

void quantize_row_iq4_nl(const float* x, void* dst, int64_t n, const float* importance) {
  float w[OSPREY_QK4_NL];
  int q[OSPREY_QK4_NL];
  const int one = 1;
  for (int64_t i = 0; i < n / OSPREY_QK4_NL; ++i, x += OSPREY_QK4_NL) {
    qfit::row_weights(x, OSPREY_QK4_NL, importance ? importance + i * OSPREY_QK4_NL : nullptr, w);
    const float d = qfit::fit_table(x, w, OSPREY_QK4_NL, osprey_iq4nl_values, 16, q);
    block_iq4_nl b;
    b.d = f32_to_f16(qfit::finish_symmetric(x, w, OSPREY_QK4_NL, 1, &one, d, kIQ4Grid, q));
    pack_nibbles_32(q, b.qs);
    store_block(dst, i, b);
  }
}

void quantize_row_iq4_xs(const float* x, void* dst, int64_t n, const float* importance) {
  float w[OSPREY_QK_K], d[8];
  int q[OSPREY_QK_K], sc[8] = {};  // kept as zeros should every attempt's error be infinite
  for (int64_t i = 0; i < n / OSPREY_QK_K; ++i, x += OSPREY_QK_K) {
    qfit::row_weights(x, OSPREY_QK_K, importance ? importance + i * OSPREY_QK_K : nullptr, w);
    for (int g = 0; g < 8; ++g) d[g] = qfit::fit_table(x + 32 * g, w + 32 * g, 32, osprey_iq4nl_values, 16, q + 32 * g);
    // Group scales to 6 bits, trying the stretches and keeping the best finished block.
    static_assert(std::size(qfit::kScaleStretches) <= qfit::kMaxFinishAttempts);
    qfit::SymmetricAttempt at[std::size(qfit::kScaleStretches)];
    for (size_t a = 0; a < std::size(at); ++a)
      at[a].D = qfit::quantize_scales(d, 8, -32, 31, at[a].sc, qfit::kScaleStretches[a]);
    qfit::finish_symmetric(x, w, 32, 8, kIQ4Grid, at, (int)std::size(at));
    float best_D = 0.0f;
    double best = INFINITY;
    for (const qfit::SymmetricAttempt& t : at)
      if (!(t.err >= best)) {  // NaN-safe: the first attempt always lands
        best = t.err, best_D = t.D;
        std::memcpy(q, t.q, sizeof q);
        std::memcpy(sc, t.sc, sizeof sc);
      }
    block_iq4_xs b;
    b.d = f32_to_f16(best_D);
    b.scales_h = 0;
    std::memset(b.scales_l, 0, sizeof b.scales_l);
    for (int g = 0; g < 8; ++g) {
      const int v = sc[g] + 32;
      b.scales_l[g / 2] |= (uint8_t)((v & 15) << (4 * (g % 2)));
      b.scales_h |= (uint16_t)((v >> 4) << (2 * g));
      pack_nibbles_32(q + 32 * g, b.qs + 16 * g);
    }
    store_block(dst, i, b);
  }
}

}  // namespace osprey::kernels
