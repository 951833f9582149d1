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

// A register tile, tile(const W* rows[R], const X* cols[C], K, float out[R * C]), gives
// every function the dispatcher hands out: its 1 x 1 shape the one-row dot (VecDotFn), its
// 1 x 4 shape the four-row dot (VecDot4Fn), and an R x C shape the GEMM (GemmFn). One tile
// serves all three, so each (row, token) gets the same bits whichever is called.
template <class W, class X>
using TileFn = void (*)(const W* const*, const X* const*, int64_t, float*);

template <class W, class X, TileFn<W, X> Tile11>
float tile_dot1(const void* w, const void* x, int64_t K) {
  const W* wr = (const W*)w;
  const X* xr = (const X*)x;
  float out;
  Tile11(&wr, &xr, K, &out);
  return out;
}

template <class W, class X, TileFn<W, X> Tile14>
void tile_dot4(const void* w, const void* x, size_t stride, int64_t K, float* out) {
  const W* wr = (const W*)w;
  const X* xr[4];
  for (int c = 0; c < 4; ++c) xr[c] = (const X*)((const uint8_t*)x + (size_t)c * stride);
  Tile14(&wr, xr, K, out);
}

template <class W, class X, int R, int C, TileFn<W, X> Tile>
void tile_gemm(const void* w, size_t ws, int64_t rows, const void* x, size_t xs, int64_t cols, int64_t K, float* y,
               int64_t ldy) {
  walk_tiles<W, X, R, C>(w, ws, rows, x, xs, cols, K, y, ldy, Tile);
}

// The same over a kernel of one weight row against N activation rows,
// cols(const W* w, const X* const* x, K, float out[N]) (the K-quant kernels' shape), taken
// as a 1 x N tile; the GEMM walks 1 x 4 tiles.
template <class W, class X, void (*Cols)(const W*, const X* const*, int64_t, float*)>
void row_tile(const W* const* w, const X* const* x, int64_t K, float* out) {
  Cols(w[0], x, K, out);
}

template <class W, class X, void (*Cols1)(const W*, const X* const*, int64_t, float*)>
float cols_dot1(const void* w, const void* x, int64_t K) {
  return tile_dot1<W, X, row_tile<W, X, Cols1>>(w, x, K);
}

template <class W, class X, void (*Cols4)(const W*, const X* const*, int64_t, float*)>
void cols_dot4(const void* w, const void* x, size_t stride, int64_t K, float* out) {
  tile_dot4<W, X, row_tile<W, X, Cols4>>(w, x, stride, K, out);
}

template <class W, class X, void (*Cols4)(const W*, const X* const*, int64_t, float*)>
void cols_gemm(const void* w, size_t ws, int64_t rows, const void* x, size_t xs, int64_t cols, int64_t K, float* y,
               int64_t ldy) {
  walk_tiles<W, X, 1, 4>(w, ws, rows, x, xs, cols, K, y, ldy, row_tile<W, X, Cols4>);
}

}  // namespace osprey::kernels
