// The loop shared by every ISA's GEMM (GemmFn in quant_dot.h): a rows x cols product walked
// in R x C register tiles. A ragged edge repeats the last row or column and drops the extra
// results, so one tile shape serves every size and each pair still sees the tile's exact
// operations.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace osprey::kernels {

// tile(const W* rows[R], const X* cols[C], K, float out[R * C]); y[c * ldy + r] = out[r * C + c].
template <class W, class X, int R, int C, class Tile>
inline void walk_tiles(const void* w, size_t ws, int64_t rows, const void* x, size_t xs, int64_t cols, int64_t K,
                       float* y, int64_t ldy, Tile tile) {
  for (int64_t r0 = 0; r0 < rows; r0 += R) {
    const W* wr[R];
    for (int r = 0; r < R; ++r) wr[r] = (const W*)((const uint8_t*)w + (size_t)std::min<int64_t>(r0 + r, rows - 1) * ws);
    for (int64_t c0 = 0; c0 < cols; c0 += C) {
      const X* xr[C];
      for (int c = 0; c < C; ++c)
        xr[c] = (const X*)((const uint8_t*)x + (size_t)std::min<int64_t>(c0 + c, cols - 1) * xs);
      float out[R * C];
      tile(wr, xr, K, out);
      for (int r = 0; r < R && r0 + r < rows; ++r)
        for (int c = 0; c < C && c0 + c < cols; ++c) y[(c0 + c) * ldy + r0 + r] = out[r * C + c];
    }
  }
}

}  // namespace osprey::kernels
