// Scalar reference of every op: straightforward loops, double accumulation. Slow on purpose;
// it is the oracle, so clarity beats speed here.
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/base/fp16.h"
#include "kernels/dequant.h"
#include "kernels/ops.h"

namespace osprey::kernels::ref {
namespace {

bool row_to_f32(DType t, const void* base, int64_t row, int64_t K, float* out) {
  const int64_t rb = dtype_row_bytes(t, K);
  if (rb < 0) return false;
  return dequantize_row(t, (const uint8_t*)base + row * rb, out, K);
}

double gelu_d(double x) {
  const double c = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
}

double silu_d(double x) { return x / (1.0 + std::exp(-x)); }

}  // namespace

bool get_rows(DType t, const void* table, int64_t K, int64_t V, const int32_t* ids, int64_t T, float* out) {
  for (int64_t i = 0; i < T; ++i) {
    if (ids[i] < 0 || ids[i] >= V) return false;
    if (!row_to_f32(t, table, ids[i], K, out + i * K)) return false;
  }
  return true;
}

bool matmul(const float* x, int64_t M, int64_t K, DType wt, const void* w, int64_t N, float* y) {
  std::vector<float> row((size_t)K);
  for (int64_t n = 0; n < N; ++n) {
    if (!row_to_f32(wt, w, n, K, row.data())) return false;
    for (int64_t m = 0; m < M; ++m) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += (double)x[m * K + k] * row[(size_t)k];
      y[m * N + n] = (float)acc;
    }
  }
  return true;
}

void add(const float* a, const float* b, int64_t K, int64_t R, int64_t Rb, float* y) {
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = 0; k < K; ++k) y[r * K + k] = (float)((double)a[r * K + k] + b[(r % Rb) * K + k]);
}

void mul(const float* a, const float* b, int64_t K, int64_t R, int64_t Rb, float* y) {
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = 0; k < K; ++k) y[r * K + k] = (float)((double)a[r * K + k] * b[(r % Rb) * K + k]);
}

void scale(const float* a, int64_t n, float s, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = (float)((double)a[i] * s);
}

void rms_norm(const float* x, int64_t K, int64_t R, float eps, float* y) {
  for (int64_t r = 0; r < R; ++r) {
    double ss = 0;
    for (int64_t k = 0; k < K; ++k) ss += (double)x[r * K + k] * x[r * K + k];
    const double inv = 1.0 / std::sqrt(ss / (double)K + eps);
    for (int64_t k = 0; k < K; ++k) y[r * K + k] = (float)(x[r * K + k] * inv);
  }
}

void layer_norm(const float* x, int64_t K, int64_t R, float eps, float* y) {
  for (int64_t r = 0; r < R; ++r) {
    double mean = 0, var = 0;
    for (int64_t k = 0; k < K; ++k) mean += x[r * K + k];
    mean /= (double)K;
    for (int64_t k = 0; k < K; ++k) var += (x[r * K + k] - mean) * (x[r * K + k] - mean);
    const double inv = 1.0 / std::sqrt(var / (double)K + eps);
    for (int64_t k = 0; k < K; ++k) y[r * K + k] = (float)((x[r * K + k] - mean) * inv);
  }
}

void rope(const RopeArgs& a) {
  const int64_t half = a.n_rot / 2;
  for (int64_t t = 0; t < a.T; ++t) {
    for (int64_t h = 0; h < a.H; ++h) {
      const float* x = a.x + (t * a.H + h) * a.D;
      float* y = a.y + (t * a.H + h) * a.D;
      for (int64_t i = a.n_rot; i < a.D; ++i) y[i] = x[i];
      for (int64_t i = 0; i < half; ++i) {
        const double theta = (double)a.pos[t] * a.freq_scale * std::pow((double)a.freq_base, -2.0 * (double)i / (double)a.n_rot);
        const double c = std::cos(theta), s = std::sin(theta);
        const int64_t i0 = a.mode == 2 ? i : 2 * i;
        const int64_t i1 = a.mode == 2 ? i + half : 2 * i + 1;
        const double x0 = x[i0], x1 = x[i1];
        y[i0] = (float)(x0 * c - x1 * s);
        y[i1] = (float)(x0 * s + x1 * c);
      }
    }
  }
}

void silu(const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = (float)silu_d(x[i]);
}
void gelu(const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = (float)gelu_d(x[i]);
}
void gelu_erf(const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = (float)(0.5 * x[i] * (1.0 + std::erf(x[i] / std::sqrt(2.0))));
}
void swiglu(const float* g, const float* u, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = (float)(silu_d(g[i]) * u[i]);
}
void geglu(const float* g, const float* u, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = (float)(gelu_d(g[i]) * u[i]);
}

void softmax(const float* x, int64_t K, int64_t R, float scale, float* y) {
  for (int64_t r = 0; r < R; ++r) {
    double mx = -INFINITY;
    for (int64_t k = 0; k < K; ++k) mx = std::max(mx, (double)x[r * K + k] * scale);
    double sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += std::exp((double)x[r * K + k] * scale - mx);
    for (int64_t k = 0; k < K; ++k) y[r * K + k] = (float)(std::exp((double)x[r * K + k] * scale - mx) / sum);
  }
}

bool kv_store(DType t, void* cache, int64_t D, int64_t H, int64_t cells, const float* x, int64_t T, const int32_t* meta) {
  const int64_t rb = dtype_row_bytes(t, D);
  if (rb < 0) return false;
  for (int64_t tok = 0; tok < T; ++tok) {
    const int64_t cell = (int64_t)meta[2 * tok] + meta[2 * tok + 1];
    if (meta[2 * tok] < 0 || meta[2 * tok + 1] < 0 || cell >= cells) return false;
    for (int64_t h = 0; h < H; ++h)
      if (!quantize_row(t, x + (tok * H + h) * D, (uint8_t*)cache + (cell * H + h) * rb, D)) return false;
  }
  return true;
}

bool attention(const AttentionArgs& a) {
  const int64_t group = a.Hq / a.Hkv;
  std::vector<float> krow((size_t)a.D), vrow((size_t)a.Dv);
  std::vector<double> s, acc((size_t)a.Dv);
  for (int64_t t = 0; t < a.T; ++t) {
    const int64_t base = a.meta[2 * t], pos = a.meta[2 * t + 1];
    if (base < 0 || pos < 0 || pos >= a.cells_per_seq || base + pos >= a.n_cells) return false;
    const int64_t lo = a.window > 0 ? std::max<int64_t>(0, pos - a.window + 1) : 0;
    for (int64_t h = 0; h < a.Hq; ++h) {
      const int64_t hk = h / group;
      const float* q = a.q + (t * a.Hq + h) * a.D;
      s.assign((size_t)(pos - lo + 1), 0.0);
      double mx = -INFINITY;
      for (int64_t j = lo; j <= pos; ++j) {
        if (!row_to_f32(a.k_type, a.k, (base + j) * a.Hkv + hk, a.D, krow.data())) return false;
        double d = 0;
        for (int64_t i = 0; i < a.D; ++i) d += (double)q[i] * krow[(size_t)i];
        d *= a.scale;
        if (a.softcap > 0) d = a.softcap * std::tanh(d / a.softcap);
        s[(size_t)(j - lo)] = d;
        mx = std::max(mx, d);
      }
      double sum = 0;
      for (double& v : s) sum += (v = std::exp(v - mx));
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = lo; j <= pos; ++j) {
        if (!row_to_f32(a.v_type, a.v, (base + j) * a.Hkv + hk, a.Dv, vrow.data())) return false;
        const double p = s[(size_t)(j - lo)] / sum;
        for (int64_t i = 0; i < a.Dv; ++i) acc[(size_t)i] += p * vrow[(size_t)i];
      }
      float* o = a.out + (t * a.Hq + h) * a.Dv;
      for (int64_t i = 0; i < a.Dv; ++i) o[i] = (float)acc[(size_t)i];
    }
  }
  return true;
}

}  // namespace osprey::kernels::ref
