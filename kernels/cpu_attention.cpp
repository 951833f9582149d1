// Attention of the working CPU path: one pass over the cached keys and values with an online
// softmax (flash-style), reading the cache in its own type: f16 keys through the f16 x f32
// dot, q8_0 / q4_0 keys through the integer dot against the query quantized to 8 bits (as
// the matmul does with activations), other types converted a row at a time.
//
// Generation has one token and few kv heads (Gemma 3 270M has one), so (token, kv head)
// alone leaves threads idle while the cache grows; each kv range is also cut into chunks
// whose partial results (running max, sum, weighted values) are merged afterwards.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/quant_dot.h"
#include "kernels/dequant.h"
#include "kernels/ops.h"

namespace osprey::kernels::cpu {
namespace {

constexpr int64_t kBlock = 64;  // cells scored before their values are accumulated

// How the query meets a cached key row of type t.
struct KeyDot {
  ActQuant act = ActQuant::NONE;  // query quantized to this for the integer dot
  VecDotFn dot = nullptr;
};

KeyDot key_dot_for(DType t, int64_t D) {
  KeyDot k;
  if (t != DType::Q8_0 && t != DType::Q4_0) return k;
  const ActQuant a = act_quant_for(t);
  if (a != ActQuant::Q8_32 || D % 32 != 0) return k;
  k.act = a;
  k.dot = vec_dot_for(t);
  if (!k.dot) k.act = ActQuant::NONE;
  return k;
}

struct Layout {
  int64_t group, q_bytes;  // query heads per kv head; bytes of one quantized query row
  KeyDot kd;
};

Layout layout(const AttentionArgs& a) {
  Layout l;
  l.group = a.Hq / a.Hkv;
  l.kd = key_dot_for(a.k_type, a.D);
  l.q_bytes = l.kd.act == ActQuant::NONE ? 0 : (int64_t)((act_row_bytes(l.kd.act, a.D) + 3) / 4 * 4);
  return l;
}

// The cells token t attends to: [lo, hi) relative to its slot's base cell.
bool token_range(const AttentionArgs& a, int64_t t, int64_t* base, int64_t* lo, int64_t* hi) {
  *base = a.meta[2 * t];
  const int64_t pos = a.meta[2 * t + 1];
  if (*base < 0 || pos < 0 || pos >= a.cells_per_seq || *base + pos >= a.n_cells) return false;
  *lo = a.window > 0 ? std::max<int64_t>(0, pos - a.window + 1) : 0;
  *hi = pos + 1;
  return true;
}

}  // namespace

int64_t attention_chunks(const AttentionArgs& a, int n_threads) {
  const int64_t units = a.T * a.Hkv;
  if (n_threads <= 1 || units >= 2 * (int64_t)n_threads) return 1;
  int64_t longest = 0;
  for (int64_t t = 0; t < a.T; ++t) {
    int64_t base, lo, hi;
    if (token_range(a, t, &base, &lo, &hi)) longest = std::max(longest, hi - lo);
  }
  // Enough chunks for every thread to have two, none shorter than a few blocks.
  const int64_t want = (4 * (int64_t)n_threads + units - 1) / units;
  return std::clamp<int64_t>(std::min(want, longest / (4 * kBlock)), 1, 64);
}

int64_t attention_scratch_floats(const AttentionArgs& a) {
  const Layout l = layout(a);
  return a.D + a.Dv + l.group * (l.q_bytes / 4 + kBlock + a.Dv + 2);
}

int64_t attention_partial_floats(const AttentionArgs& a, int64_t n_chunks) {
  return n_chunks <= 1 ? 0 : a.T * a.Hq * n_chunks * (a.Dv + 2);
}

// Units are (token, kv head, chunk), chunk fastest. With one chunk the result is written to
// a.out; otherwise each query head's (max, sum, unnormalised values) goes to `partials`.
bool attention(const AttentionArgs& a, int64_t n_chunks, int64_t u0, int64_t u1, float* scratch, float* partials) {
  const Layout l = layout(a);
  const int64_t G = l.group;
  float* ktmp = scratch;
  float* vtmp = ktmp + a.D;
  uint8_t* qq = (uint8_t*)(vtmp + a.Dv);   // [G] quantized queries
  float* score = vtmp + a.Dv + G * (l.q_bytes / 4);  // [G][kBlock]
  float* acc = score + G * kBlock;          // [G][Dv]
  float* mx = acc + G * a.Dv;               // [G]
  float* sum = mx + G;                      // [G]
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t c = u % n_chunks, r = u / n_chunks;
    const int64_t t = r / a.Hkv, hk = r % a.Hkv;
    int64_t base, lo, hi;
    if (!token_range(a, t, &base, &lo, &hi)) return false;
    const int64_t per = (hi - lo + n_chunks - 1) / n_chunks;
    const int64_t c0 = std::min(hi, lo + c * per), c1 = std::min(hi, c0 + per);
    const float* q = a.q + (t * a.Hq + hk * G) * a.D;
    if (l.q_bytes)
      for (int64_t g = 0; g < G; ++g) quantize_act_row(l.kd.act, q + g * a.D, qq + g * l.q_bytes, a.D);
    for (int64_t g = 0; g < G; ++g) {
      mx[g] = -INFINITY;
      sum[g] = 0;
    }
    std::memset(acc, 0, (size_t)(G * a.Dv) * sizeof(float));
    const size_t k_row = (size_t)dtype_row_bytes(a.k_type, a.D), v_row = (size_t)dtype_row_bytes(a.v_type, a.Dv);
    const uint8_t* kbase = (const uint8_t*)a.k;
    const uint8_t* vbase = (const uint8_t*)a.v;
    for (int64_t b0 = c0; b0 < c1; b0 += kBlock) {
      const int64_t nb = std::min(kBlock, c1 - b0);
      for (int64_t j = 0; j < nb; ++j) {
        const uint8_t* krow = kbase + (size_t)((base + b0 + j) * a.Hkv + hk) * k_row;
        if (l.q_bytes) {
          for (int64_t g = 0; g < G; ++g) score[g * kBlock + j] = l.kd.dot(krow, qq + g * l.q_bytes, a.D);
        } else if (a.k_type == DType::F16) {
          for (int64_t g = 0; g < G; ++g) score[g * kBlock + j] = vec_f32().dot_f16((const uint16_t*)krow, q + g * a.D, a.D);
        } else {
          const float* k = a.k_type == DType::F32 ? (const float*)krow : ktmp;
          if (a.k_type != DType::F32 && !dequantize_row(a.k_type, krow, ktmp, a.D)) return false;
          for (int64_t g = 0; g < G; ++g) score[g * kBlock + j] = vec_f32().dot(k, q + g * a.D, a.D);
        }
      }
      // Scale, cap, and rescale what was accumulated when a head's maximum grows.
      for (int64_t g = 0; g < G; ++g) {
        float* s = score + g * kBlock;
        float m = mx[g];
        for (int64_t j = 0; j < nb; ++j) {
          float v = s[j] * a.scale;
          if (a.softcap > 0) v = a.softcap * std::tanh(v / a.softcap);
          s[j] = v;
          m = std::max(m, v);
        }
        if (m > mx[g]) {
          const float f = std::exp(mx[g] - m);  // 0 on the first block
          if (sum[g] > 0)
            for (int64_t i = 0; i < a.Dv; ++i) acc[g * a.Dv + i] *= f;
          sum[g] *= f;
          mx[g] = m;
        }
        float add = 0;
        for (int64_t j = 0; j < nb; ++j) add += (s[j] = std::exp(s[j] - m));
        sum[g] += add;
      }
      for (int64_t j = 0; j < nb; ++j) {
        const uint8_t* vrow = vbase + (size_t)((base + b0 + j) * a.Hkv + hk) * v_row;
        const float* v = (const float*)vrow;
        if (a.v_type == DType::F16) {
          vec_f32().f16_to_f32((const uint16_t*)vrow, vtmp, a.Dv);
          v = vtmp;
        } else if (a.v_type != DType::F32) {
          if (!dequantize_row(a.v_type, vrow, vtmp, a.Dv)) return false;
          v = vtmp;
        }
        for (int64_t g = 0; g < G; ++g) vec_f32().axpy(score[g * kBlock + j], v, acc + g * a.Dv, a.Dv);
      }
    }
    for (int64_t g = 0; g < G; ++g) {
      const int64_t h = hk * G + g;
      if (n_chunks == 1) {
        float* o = a.out + (t * a.Hq + h) * a.Dv;
        const float inv = sum[g] > 0 ? 1.0f / sum[g] : 0.0f;
        for (int64_t i = 0; i < a.Dv; ++i) o[i] = acc[g * a.Dv + i] * inv;
      } else {
        float* p = partials + ((t * a.Hq + h) * n_chunks + c) * (a.Dv + 2);
        p[0] = mx[g];
        p[1] = sum[g];
        std::memcpy(p + 2, acc + g * a.Dv, (size_t)a.Dv * sizeof(float));
      }
    }
  }
  return true;
}

void attention_merge(const AttentionArgs& a, int64_t n_chunks, const float* partials) {
  for (int64_t th = 0; th < a.T * a.Hq; ++th) {
    const float* p = partials + th * n_chunks * (a.Dv + 2);
    float m = -INFINITY;
    for (int64_t c = 0; c < n_chunks; ++c) m = std::max(m, p[c * (a.Dv + 2)]);
    float* o = a.out + th * a.Dv;
    std::memset(o, 0, (size_t)a.Dv * sizeof(float));
    float total = 0;
    for (int64_t c = 0; c < n_chunks; ++c) {
      const float* pc = p + c * (a.Dv + 2);
      if (pc[1] <= 0) continue;  // an empty chunk
      const float f = std::exp(pc[0] - m);
      total += pc[1] * f;
      vec_f32().axpy(f, pc + 2, o, a.Dv);
    }
    const float inv = total > 0 ? 1.0f / total : 0.0f;
    for (int64_t i = 0; i < a.Dv; ++i) o[i] *= inv;
  }
}

}  // namespace osprey::kernels::cpu
