// Working CPU path: float accumulation with the CPU's best f32 primitives, split into row
// ranges so the backend can hand each thread a slice. Quantized weights are dequantized a
// row at a time into scratch (the dedicated SIMD quant kernels come later).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/base/fp16.h"
#include "kernels/cpu/activation_kernels.h"
#include "kernels/cpu/packed_gemm.h"
#include "kernels/cpu/quant_dot.h"
#include "kernels/dequant.h"
#include "kernels/ops.h"

namespace osprey::kernels::cpu {
namespace {

// The f32 vector primitives come from the best ISA variant the CPU supports.
const VecF32& vf() {
  static const VecF32& v = vec_f32();
  return v;
}
float dot_f32(const float* a, const float* b, int64_t n) { return vf().dot(a, b, n); }

void scale_inplace(float s, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= s;
}

// Row `row` of a [K, *] tensor of type t as f32: a pointer into the data for F32, else
// converted into `tmp`.
const float* row_f32(DType t, const void* base, int64_t row, int64_t K, float* tmp) {
  if (t == DType::F32) return (const float*)base + row * K;
  const uint8_t* src = (const uint8_t*)base + row * dtype_row_bytes(t, K);
  if (t == DType::F16) {
    vf().f16_to_f32((const uint16_t*)src, tmp, K);
    return tmp;
  }
  return dequantize_row(t, src, tmp, K) ? tmp : nullptr;
}

}  // namespace

bool get_rows(DType t, const void* table, int64_t K, int64_t V, const int32_t* ids, int64_t r0, int64_t r1, float* out) {
  for (int64_t i = r0; i < r1; ++i) {
    if (ids[i] < 0 || ids[i] >= V) return false;
    const float* r = row_f32(t, table, ids[i], K, out + i * K);
    if (!r) return false;
    if (r != out + i * K) std::memcpy(out + i * K, r, (size_t)K * 4);
  }
  return true;
}

// Weight rows [n0, n1) against all M activation rows through a register-tiled kernel, a panel
// of activation rows at a time: the panel stays in L2 while the rows stream past.
static void gemm_panels(GemmFn gemm, const void* w, size_t w_row, int64_t n0, int64_t n1, const void* x,
                        size_t x_row, int64_t M, int64_t K, int64_t N, float* y) {
  const int64_t mb = std::max<int64_t>(8, (int64_t)((256u << 10) / std::max<size_t>(x_row, 1)));
  for (int64_t m0 = 0; m0 < M; m0 += mb)
    gemm((const uint8_t*)w + (size_t)n0 * w_row, w_row, n1 - n0, (const uint8_t*)x + (size_t)m0 * x_row, x_row,
         std::min(mb, M - m0), K, y + m0 * N + n0, N);
}

bool matmul(const float* x, int64_t M, int64_t K, DType wt, const void* w, int64_t n0, int64_t n1, int64_t N,
            float* y, float* scratch) {
  if (dtype_row_bytes(wt, K) < 0) return false;
  const bool half = wt == DType::F16 || wt == DType::BF16;  // 16-bit floats: f32 activations
  if (half && M > 1 && n1 > n0)
    if (const GemmFn g = gemm_for(wt)) {  // blocks K itself: one call for the whole batch
      const size_t wrow = (size_t)dtype_row_bytes(wt, K);
      g((const uint8_t*)w + (size_t)n0 * wrow, wrow, n1 - n0, x, (size_t)K * 4, M, K, y + n0, N);
      return true;
    }
  if (half && M == 1) {  // one token: convert on the fly instead of a second pass
    const auto dot = wt == DType::F16 ? vf().dot_f16 : vf().dot_bf16;
    for (int64_t n = n0; n < n1; ++n) y[n] = dot((const uint16_t*)w + n * K, x, K);
    return true;
  }
  for (int64_t n = n0; n < n1; ++n) {
    const float* wr = row_f32(wt, w, n, K, scratch);
    if (!wr) return false;
    for (int64_t m = 0; m < M; ++m) y[m * N + n] = dot_f32(x + m * K, wr, K);
  }
  return true;
}

void matmul_quantized(const void* xq, size_t xq_row_bytes, int64_t M, int64_t K, DType wt, const void* w,
                      QuantDotFn dot, QuantDot4Fn dot4, int64_t n0, int64_t n1, int64_t N, float* y) {
  const size_t wrow = (size_t)dtype_row_bytes(wt, K);
  if (M > 1 && n1 > n0)
    if (const GemmFn g = gemm_for(wt)) return gemm_panels(g, w, wrow, n0, n1, xq, xq_row_bytes, M, K, N, y);
  // Blocks of activation rows that stay in L1 while a block of weight rows streams past.
  const int64_t mb = std::max<int64_t>(1, (int64_t)(16384 / std::max<size_t>(xq_row_bytes, 1)));
  constexpr int64_t nb = 16;
  for (int64_t nb0 = n0; nb0 < n1; nb0 += nb) {
    const int64_t nb1 = std::min(n1, nb0 + nb);
    for (int64_t m0 = 0; m0 < M; m0 += mb) {
      const int64_t m1 = std::min(M, m0 + mb);
      for (int64_t n = nb0; n < nb1; ++n) {
        const void* wr = (const uint8_t*)w + (size_t)n * wrow;
        int64_t m = m0;
        if (dot4) {
          float out[4];
          for (; m + 4 <= m1; m += 4) {
            dot4(wr, (const uint8_t*)xq + (size_t)m * xq_row_bytes, xq_row_bytes, K, out);
            for (int r = 0; r < 4; ++r) y[(m + r) * N + n] = out[r];
          }
        }
        for (; m < m1; ++m) y[m * N + n] = dot(wr, (const uint8_t*)xq + (size_t)m * xq_row_bytes, K);
      }
    }
  }
}

void matmul_packed(const PackedFormat& f, const void* packed, const void* xq, size_t xq_row_bytes, int64_t M,
                   int64_t K, int64_t g0, int64_t g1, int64_t N, float* y) {
  // Panels of activation rows that stay in L2 while the groups stream past (as gemm_panels).
  const size_t gb = f.group_bytes(K);
  const int64_t mb = std::max<int64_t>(8, (int64_t)((256u << 10) / std::max<size_t>(xq_row_bytes, 1)));
  for (int64_t m0 = 0; m0 < M; m0 += mb)
    f.gemm((const uint8_t*)packed + (size_t)g0 * gb, g1 - g0, (const uint8_t*)xq + (size_t)m0 * xq_row_bytes,
           xq_row_bytes, std::min(mb, M - m0), K, y + m0 * N + g0 * kPackRows, N);
}

void add(const float* a, const float* b, int64_t K, int64_t r0, int64_t r1, int64_t Rb, float* y) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* br = b + (r % Rb) * K;
    for (int64_t k = 0; k < K; ++k) y[r * K + k] = a[r * K + k] + br[k];
  }
}

void mul(const float* a, const float* b, int64_t K, int64_t r0, int64_t r1, int64_t Rb, float* y) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* br = b + (r % Rb) * K;
    for (int64_t k = 0; k < K; ++k) y[r * K + k] = a[r * K + k] * br[k];
  }
}

void scale(const float* a, int64_t i0, int64_t i1, float s, float* y) {
  for (int64_t i = i0; i < i1; ++i) y[i] = a[i] * s;
}

void rms_norm(const float* x, int64_t K, int64_t r0, int64_t r1, float eps, float* y) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * K;
    const float mean = dot_f32(xr, xr, K) / (float)K;
    const float inv = 1.0f / std::sqrt(mean + eps);
    for (int64_t k = 0; k < K; ++k) y[r * K + k] = xr[k] * inv;
  }
}

void layer_norm(const float* x, int64_t K, int64_t r0, int64_t r1, float eps, float* y) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * K;
    float* yr = y + r * K;
    float sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += xr[k];
    const float mean = sum / (float)K;
    for (int64_t k = 0; k < K; ++k) yr[k] = xr[k] - mean;
    const float inv = 1.0f / std::sqrt(dot_f32(yr, yr, K) / (float)K + eps);
    scale_inplace(inv, yr, K);
  }
}

void rope(const RopeArgs& a, int64_t r0, int64_t r1) {
  const int64_t half = a.n_rot / 2;
  const float theta_scale = std::pow(a.freq_base, -2.0f / (float)a.n_rot);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t t = r / a.H;
    const float* x = a.x + r * a.D;
    float* y = a.y + r * a.D;
    if (y != x)
      for (int64_t i = a.n_rot; i < a.D; ++i) y[i] = x[i];
    float theta = (float)a.pos[t] * a.freq_scale;
    for (int64_t i = 0; i < half; ++i, theta *= theta_scale) {
      const float c = std::cos(theta), s = std::sin(theta);
      const int64_t i0 = a.mode == 2 ? i : 2 * i;
      const int64_t i1 = a.mode == 2 ? i + half : 2 * i + 1;
      const float x0 = x[i0], x1 = x[i1];
      y[i0] = x0 * c - x1 * s;
      y[i1] = x0 * s + x1 * c;
    }
  }
}

// The activations run through the active ISA's table (kernels/cpu/activation_kernels.h).
void silu(const float* x, int64_t i0, int64_t i1, float* y) { act_kernels().silu(x + i0, i1 - i0, y + i0); }
void gelu(const float* x, int64_t i0, int64_t i1, float* y) { act_kernels().gelu(x + i0, i1 - i0, y + i0); }
void gelu_erf(const float* x, int64_t i0, int64_t i1, float* y) { act_kernels().gelu_erf(x + i0, i1 - i0, y + i0); }
void swiglu(const float* g, const float* u, int64_t i0, int64_t i1, float* y) {
  act_kernels().swiglu(g + i0, u + i0, i1 - i0, y + i0);
}
void geglu(const float* g, const float* u, int64_t i0, int64_t i1, float* y) {
  act_kernels().geglu(g + i0, u + i0, i1 - i0, y + i0);
}

void softmax(const float* x, int64_t K, int64_t r0, int64_t r1, float scale, float* y) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * K;
    float* yr = y + r * K;
    float mx = -INFINITY;
    for (int64_t k = 0; k < K; ++k) mx = std::max(mx, xr[k] * scale);
    float sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += (yr[k] = std::exp(xr[k] * scale - mx));
    scale_inplace(1.0f / sum, yr, K);
  }
}

bool kv_store(DType t, void* cache, int64_t D, int64_t H, int64_t cells, const float* x, int64_t r0, int64_t r1,
              const int32_t* meta) {
  const int64_t rb = dtype_row_bytes(t, D);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t tok = r / H, h = r % H;
    const int64_t cell = (int64_t)meta[2 * tok] + meta[2 * tok + 1];
    if (meta[2 * tok] < 0 || meta[2 * tok + 1] < 0 || cell >= cells) return false;
    if (!quantize_row(t, x + r * D, (uint8_t*)cache + (cell * H + h) * rb, D)) return false;
  }
  return true;
}

}  // namespace osprey::kernels::cpu
