// The portable F16/BF16 GEMM: the order every SIMD variant reproduces bit for bit (see
// gemm_float_reference in quant_dot.h), and the GEMM used when dispatch is capped at scalar.
#include <cmath>

#include "kernels/base/fp16.h"
#include "kernels/cpu/quant_dot.h"

namespace osprey::kernels {
namespace {

template <float (*Widen)(uint16_t)>
void gemm_chain(const void* w, size_t ws, int64_t rows, const void* x, size_t xs, int64_t cols, int64_t K, float* y,
                int64_t ldy) {
  for (int64_t c = 0; c < cols; ++c) {
    const float* xc = (const float*)((const uint8_t*)x + (size_t)c * xs);
    for (int64_t r = 0; r < rows; ++r) {
      const uint16_t* wr = (const uint16_t*)((const uint8_t*)w + (size_t)r * ws);
      float acc = 0.f;
      for (int64_t k = 0; k < K; ++k) acc = std::fma(Widen(wr[k]), xc[k], acc);
      y[c * ldy + r] = acc;
    }
  }
}

}  // namespace

namespace scalar {
GemmFn float_gemm_for(DType w) {
  switch (w) {
    case DType::F16: return gemm_chain<f16_to_f32>;
    case DType::BF16: return gemm_chain<bf16_to_f32>;
    default: return nullptr;
  }
}
}  // namespace scalar

void gemm_float_reference(DType weight, const void* w, size_t ws, int64_t rows, const void* x, size_t xs,
                          int64_t cols, int64_t K, float* y, int64_t ldy) {
  if (const GemmFn g = scalar::float_gemm_for(weight)) g(w, ws, rows, x, xs, cols, K, y, ldy);
}

}  // namespace osprey::kernels
