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

// Adapters over a kernel that takes one weight row against N activation rows,
// cols(const W* w, const X* const* x, K, float out[N]) (the K-quant kernels' shape): the
// one-row dot (VecDotFn), the four-row dot (VecDot4Fn) and a 1 x 4 register-tile GEMM
// (GemmFn). All three run the same kernel, so each (row, token) gets the same bits.
template <class W, class X, void (*Cols1)(const W*, const X* const*, int64_t, float*)>
float cols_dot1(const void* w, const void* x, int64_t K) {
  const X* xs = (const X*)x;
  float out;
  Cols1((const W*)w, &xs, K, &out);
  return out;
}

template <class W, class X, void (*Cols4)(const W*, const X* const*, int64_t, float*)>
void cols_dot4(const void* w, const void* x, size_t stride, int64_t K, float* out) {
  const X* xs[4];
  for (int c = 0; c < 4; ++c) xs[c] = (const X*)((const uint8_t*)x + (size_t)c * stride);
  Cols4((const W*)w, xs, K, out);
}

template <class W, class X, void (*Cols4)(const W*, const X* const*, int64_t, float*)>
void cols_gemm(const void* w, size_t ws, int64_t rows, const void* x, size_t xs, int64_t cols, int64_t K, float* y,
               int64_t ldy) {
  walk_tiles<W, X, 1, 4>(w, ws, rows, x, xs, cols, K, y, ldy,
                         [](const W* const* b, const X* const* xr, int64_t k, float* out) { Cols4(b[0], xr, k, out); });
}

}  // namespace osprey::kernels
