// Inner loops of the CPU attention (kernels/cpu_attention.cpp), one table per ISA:
// attention_scalar.cpp is the reference, attention_avx2.cpp / attention_avx512.cpp are each
// built with their own flags. The driver works a block of cached cells at a time for R query
// rows (the G query heads of one kv head, times a tile of query tokens of one sequence in
// prompt processing), so each cached row is read (or converted) once per block and used R
// times.
//
// Each (row, cell) result is computed the same way whatever R and the block length are, so
// a token's attention output does not depend on how many tokens share its tile.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/base/dtype.h"
#include "kernels/ops.h"

namespace osprey::kernels {

struct AttnKernels {
  const char* name;
  // out[j * D + i] = element i of cache row j (rows `stride` bytes apart), j < n. False when
  // the table has no fast path for t (the driver then dequantizes row by row).
  bool (*rows_to_f32)(DType t, const uint8_t* src, size_t stride, int64_t n, int64_t D, float* out);
  // s[r * lds + j] = scale * dot(q + r * D, k + j * ldk) over D elements, r < R, j < n.
  void (*scores)(const float* q, int64_t R, const float* k, int64_t ldk, int64_t n, int64_t D, float scale, float* s,
                 int64_t lds);
  // s[j] = exp(s[j] - m) for j < n (-inf gives 0); returns their sum.
  float (*exp_sum)(float* s, int64_t n, float m);
  // acc[r * Dv + i] += sum over j < n of p[r * ldp + j] * v[j * ldv + i], for r < R.
  void (*accumulate)(const float* p, int64_t ldp, int64_t R, const float* v, int64_t ldv, int64_t n, int64_t Dv,
                     float* acc);
  // Optional (nullptr: the driver converts blocks with rows_to_f32): scores and accumulate
  // reading f16 cache rows (`stride` bytes apart) directly, for few query rows (generation),
  // where widening a whole block first costs more than it saves. Results must equal those of
  // rows_to_f32 followed by scores / accumulate bit for bit.
  void (*scores_f16)(const float* q, int64_t R, const uint8_t* k, size_t stride, int64_t n, int64_t D, float scale,
                     float* s, int64_t lds) = nullptr;
  void (*accumulate_f16)(const float* p, int64_t ldp, int64_t R, const uint8_t* v, size_t stride, int64_t n,
                         int64_t Dv, float* acc) = nullptr;
  // Optional (nullptr: a scalar loop): the largest of s[0..n), n >= 1.
  float (*max_of)(const float* s, int64_t n) = nullptr;
};

// Rows [0, R) in register tiles: tile.template operator()<Max>(r) while Max rows are left, then
// one call for the 1..Max-1 rows that remain; each ISA's kernels take their row count as a
// template argument so the accumulators stay in registers.
template <int N, class Tile>
inline void row_tail(int64_t left, int64_t r, Tile& tile) {
  if constexpr (N >= 1) {
    if (left == N) return tile.template operator()<N>(r);
    row_tail<N - 1>(left, r, tile);
  }
}
template <int Max, class Tile>
inline void for_row_tiles(int64_t R, Tile&& tile) {
  int64_t r = 0;
  for (; r + Max <= R; r += Max) tile.template operator()<Max>(r);
  row_tail<Max - 1>(R - r, r, tile);
}

// The table of an ISA file whose score and value loops are templates over where the cached
// rows come from: F32Rows{const float*, int64_t ld} (a widened block) and F16Rows{const
// uint8_t*, size_t stride} (an f16 cache read in place). Scores and Accumulate are
// stateless generic lambdas calling the file's scores(q, R, rows, n, D, scale, s, lds) and
// accumulate(p, ldp, R, rows, n, Dv, acc); instantiated in that file, with its flags.
template <class F32Rows, class F16Rows, class Scores, class Accumulate>
AttnKernels attn_table(const char* name, decltype(AttnKernels::rows_to_f32) rows_to_f32,
                       decltype(AttnKernels::exp_sum) exp_sum, decltype(AttnKernels::max_of) max_of, Scores,
                       Accumulate) {
  return {name,
          rows_to_f32,
          [](const float* q, int64_t R, const float* k, int64_t ldk, int64_t n, int64_t D, float scale, float* s,
             int64_t lds) { Scores{}(q, R, F32Rows{k, ldk}, n, D, scale, s, lds); },
          exp_sum,
          [](const float* p, int64_t ldp, int64_t R, const float* v, int64_t ldv, int64_t n, int64_t Dv, float* acc) {
            Accumulate{}(p, ldp, R, F32Rows{v, ldv}, n, Dv, acc);
          },
          [](const float* q, int64_t R, const uint8_t* k, size_t stride, int64_t n, int64_t D, float scale, float* s,
             int64_t lds) { Scores{}(q, R, F16Rows{k, stride}, n, D, scale, s, lds); },
          [](const float* p, int64_t ldp, int64_t R, const uint8_t* v, size_t stride, int64_t n, int64_t Dv,
             float* acc) { Accumulate{}(p, ldp, R, F16Rows{v, stride}, n, Dv, acc); },
          max_of};
}

namespace scalar {
const AttnKernels& attn_kernels();
}
namespace avx2 {
const AttnKernels* attn_kernels();  // nullptr when not built
}
namespace avx512 {
const AttnKernels* attn_kernels();  // nullptr when not built
}
namespace neon {  // attention_neon.cpp, aarch64 only; neon_dotprod uses it too
const AttnKernels* attn_kernels();  // nullptr when not built
}

// The table of a named variant (isa_variants() names; falls back to the scalar table for a
// variant without its own), and the one for active_isa().
const AttnKernels& attn_kernels_for(const char* isa_name);
const AttnKernels& attn_kernels();

namespace cpu {
// kernels::cpu::attention with an explicit table (tests run every variant through it).
bool attention_with(const AttnKernels& k, const AttentionArgs& a, int64_t n_chunks, int64_t u0, int64_t u1,
                    float* scratch, float* partials);
}  // namespace cpu

}  // namespace osprey::kernels
