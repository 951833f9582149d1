// The loop shared by the F16/BF16 GEMMs (float_dot_<isa>.cpp): K-blocks outermost, then
// panels of weight rows widened to f32 k-major by pack(), then register tiles of up to
// TileCols activation rows. Each tile adds its K-block to y (starting from zero on the first
// block), so every result is the fma chain over k in order, whatever the blocking.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace osprey::kernels {

// A 64-byte aligned f32 scratch of n values on the heap: the long K-blocks' panels (up to
// 256 KiB) are too big for the stack of whichever thread runs the matmul.
class AlignedFloats {
 public:
  explicit AlignedFloats(size_t n)
      : buf_(new float[n + 16]), p_((float*)(((uintptr_t)buf_.get() + 63) & ~(uintptr_t)63)) {}
  float* get() const { return p_; }

 private:
  std::unique_ptr<float[]> buf_;
  float* p_;
};

// pack(w row r0, ws, nr, k0, kb, panel); tiles[nc - 1](panel, kb, x rows + k0, first, y, ldy, nr).
template <int PanelRows, int TileCols, int64_t BlockK, class Pack, class Tiles>
inline void gemm_float_blocked(const void* w, size_t ws, int64_t rows, const void* x, size_t xs, int64_t cols,
                               int64_t K, float* y, int64_t ldy, float* panel, Pack pack, const Tiles& tiles) {
  const float* xr[TileCols];
  for (int64_t k0 = 0; k0 < K; k0 += BlockK) {
    const int64_t kb = std::min(BlockK, K - k0);
    for (int64_t r0 = 0; r0 < rows; r0 += PanelRows) {
      const int nr = (int)std::min<int64_t>(PanelRows, rows - r0);
      pack((const uint8_t*)w + (size_t)r0 * ws, ws, nr, k0, kb, panel);
      for (int64_t c0 = 0; c0 < cols; c0 += TileCols) {
        const int nc = (int)std::min<int64_t>(TileCols, cols - c0);
        for (int c = 0; c < nc; ++c) xr[c] = (const float*)((const uint8_t*)x + (size_t)(c0 + c) * xs) + k0;
        tiles[(size_t)nc - 1](panel, kb, xr, k0 == 0, y + c0 * ldy + r0, ldy, nr);
      }
    }
  }
}

}  // namespace osprey::kernels
