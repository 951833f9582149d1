// Attention of the working CPU path: one pass over the cached keys and values with an online
// softmax (flash-style), reading the cache in its own type. A block of kBlock cells is met
// by R query rows at a time: the G query heads sharing a kv head and, in prompt processing,
// a tile of consecutive query tokens of one sequence (each masked causally / by the window
// on its own). An f16 block is read in place; other types are converted to f32 once per
// block. The inner loops are per ISA (kernels/cpu/attention_kernels.h): register-tiled dots
// with the head dimension in the lanes, a polynomial exp over the block of scores, value
// rows accumulated into several rows at once.
//
// Generation has one token and few kv heads (Gemma 3 270M has one), so (tile, kv head)
// alone leaves threads idle while the cache grows; each kv range is also cut into chunks
// whose partial results (running max, sum, weighted values) are merged afterwards.
//
// OSPREY_ATTN_SIMD=0 selects the earlier path (one dot per cell and head through the matmul
// primitives, q8_0 / q4_0 keys against the query quantized to 8 bits) for A/B benchmarks.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/attention_kernels.h"
#include "kernels/cpu/quant_dot.h"
#include "kernels/dequant.h"
#include "kernels/ops.h"

namespace osprey::kernels::cpu {
namespace {

constexpr int64_t kBlock = 64;   // cells scored before their values are accumulated
constexpr int64_t kMaxTile = 16;  // query tokens per work unit in prompt processing

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

bool per_cell_path() {
  static const bool on = [] {
    const char* e = std::getenv("OSPREY_ATTN_SIMD");
    return e && std::strcmp(e, "0") == 0;
  }();
  return on;
}

// Whether an f16 cache block is read straight from the cache (each row widened as it is
// used) rather than widened into a copy first: the same values either way, and measured no
// slower for the 32 rows of prompt processing, clearly faster for the few of generation
// (the copy's writes and reads outweigh the repeated widening). OSPREY_ATTN_F16_DIRECT=0
// selects the copy, for A/B benchmarks.
bool read_f16_directly() {
  static const bool on = [] {
    const char* e = std::getenv("OSPREY_ATTN_F16_DIRECT");
    return !(e && std::strcmp(e, "0") == 0);
  }();
  return on;
}

// Query tokens per work unit: enough rows (tile x G) to reuse each converted cache block.
int64_t tile_tokens(const AttentionArgs& a) {
  if (a.T <= 1 || per_cell_path()) return 1;
  return std::clamp<int64_t>(32 / std::max<int64_t>(1, a.Hq / a.Hkv), 1, kMaxTile);
}

int64_t n_tiles(const AttentionArgs& a) {
  const int64_t tq = tile_tokens(a);
  return (a.T + tq - 1) / tq;
}

struct Scratch {
  float *q, *k, *v, *s, *acc, *mx, *sum;  // [R][D], [kBlock][D], [kBlock][Dv], [R][kBlock], [R][Dv], [R], [R]
};

Scratch carve(const AttentionArgs& a, float* p) {
  const int64_t R = tile_tokens(a) * (a.Hq / a.Hkv);
  Scratch s;
  s.q = p;
  s.k = s.q + R * a.D;
  s.v = s.k + kBlock * a.D;
  s.s = s.v + kBlock * a.Dv;
  s.acc = s.s + R * kBlock;
  s.mx = s.acc + R * a.Dv;
  s.sum = s.mx + R;
  return s;
}
int64_t carved_floats(const AttentionArgs& a) {
  const int64_t R = tile_tokens(a) * (a.Hq / a.Hkv);
  return R * (a.D + kBlock + a.Dv + 2) + kBlock * (a.D + a.Dv);
}

// n cache rows of type t from `src` (rows `stride` bytes apart) as f32: a pointer straight
// into an f32 cache, else `buf` filled by the table (or row by row by the scalar one).
const float* rows_f32(const AttnKernels& k, DType t, const uint8_t* src, size_t stride, int64_t n, int64_t D,
                      float* buf, int64_t* ld) {
  if (t == DType::F32) {
    *ld = (int64_t)(stride / sizeof(float));
    return (const float*)src;
  }
  *ld = D;
  if (k.rows_to_f32(t, src, stride, n, D, buf) || scalar::attn_kernels().rows_to_f32(t, src, stride, n, D, buf))
    return buf;
  return nullptr;
}

}  // namespace

int64_t attention_units(const AttentionArgs& a, int64_t n_chunks) { return n_tiles(a) * a.Hkv * n_chunks; }

int64_t attention_chunks(const AttentionArgs& a, int n_threads) {
  const int64_t units = n_tiles(a) * a.Hkv;
  if (n_threads <= 1 || units >= 2 * (int64_t)n_threads) return 1;
  int64_t longest = 0;
  for (int64_t t = 0; t < a.T; ++t) {
    int64_t base, lo, hi;
    if (token_range(a, t, &base, &lo, &hi)) longest = std::max(longest, hi - lo);
  }
  // Enough chunks for every thread to have eight (the pool hands out equal ranges of units,
  // so more units even out the load), none shorter than a few blocks, and a unit count that
  // divides among the threads.
  const int64_t want = (16 * (int64_t)n_threads + units - 1) / units;
  int64_t chunks = std::clamp<int64_t>(std::min(want, longest / (4 * kBlock)), 1, 64);
  while (chunks > 1 && chunks < 64 && (units * chunks) % n_threads != 0) ++chunks;
  return chunks;
}

int64_t attention_scratch_floats(const AttentionArgs& a) {
  const Layout l = layout(a);
  return std::max(carved_floats(a), a.D + a.Dv + l.group * (l.q_bytes / 4 + kBlock + a.Dv + 2));
}

int64_t attention_partial_floats(const AttentionArgs& a, int64_t n_chunks) {
  return n_chunks <= 1 ? 0 : a.T * a.Hq * n_chunks * (a.Dv + 2);
}

namespace {

// Tokens [t0, t1) of one sequence slot against kv head hk, chunk c of their joint range.
bool attend_run(const AttnKernels& kk, const AttentionArgs& a, int64_t t0, int64_t t1, int64_t hk, int64_t c,
                int64_t n_chunks, const Scratch& w, float* partials) {
  const int64_t G = a.Hq / a.Hkv, nt = t1 - t0, R = nt * G;
  int64_t base = 0, lo[kMaxTile], hi[kMaxTile], L = INT64_MAX, H = 0;
  for (int64_t i = 0; i < nt; ++i) {
    if (!token_range(a, t0 + i, &base, &lo[i], &hi[i])) return false;
    L = std::min(L, lo[i]);
    H = std::max(H, hi[i]);
    std::memcpy(w.q + i * G * a.D, a.q + ((t0 + i) * a.Hq + hk * G) * a.D, (size_t)(G * a.D) * sizeof(float));
  }
  const int64_t per = (H - L + n_chunks - 1) / n_chunks;
  const int64_t c0 = std::min(H, L + c * per), c1 = std::min(H, c0 + per);
  std::fill(w.mx, w.mx + R, -INFINITY);
  std::fill(w.sum, w.sum + R, 0.0f);
  std::fill(w.acc, w.acc + R * a.Dv, 0.0f);
  const size_t k_stride = (size_t)(dtype_row_bytes(a.k_type, a.D) * a.Hkv);
  const size_t v_stride = (size_t)(dtype_row_bytes(a.v_type, a.Dv) * a.Hkv);
  const uint8_t* kbase = (const uint8_t*)a.k + (size_t)hk * (k_stride / a.Hkv);
  const uint8_t* vbase = (const uint8_t*)a.v + (size_t)hk * (v_stride / a.Hkv);
  const bool k_direct = a.k_type == DType::F16 && kk.scores_f16 && read_f16_directly();
  const bool v_direct = a.v_type == DType::F16 && kk.accumulate_f16 && read_f16_directly();
  for (int64_t b0 = c0; b0 < c1; b0 += kBlock) {
    const int64_t nb = std::min(kBlock, c1 - b0);
    bool any = false;
    for (int64_t i = 0; i < nt; ++i) any |= lo[i] < b0 + nb && hi[i] > b0;
    if (!any) continue;
    int64_t ldk, ldv;
    const uint8_t* kblock = kbase + (size_t)(base + b0) * k_stride;
    if (k_direct) {
      kk.scores_f16(w.q, R, kblock, k_stride, nb, a.D, a.scale, w.s, kBlock);
    } else {
      const float* kf = rows_f32(kk, a.k_type, kblock, k_stride, nb, a.D, w.k, &ldk);
      if (!kf) return false;
      kk.scores(w.q, R, kf, ldk, nb, a.D, a.scale, w.s, kBlock);
    }
    for (int64_t i = 0; i < nt; ++i) {
      // This token's cells of the block: [j0, j1); the rest are masked.
      const int64_t j0 = std::clamp<int64_t>(lo[i] - b0, 0, nb), j1 = std::clamp<int64_t>(hi[i] - b0, 0, nb);
      for (int64_t r = i * G; r < (i + 1) * G; ++r) {
        float* s = w.s + r * kBlock;
        if (j0 >= j1) {
          std::fill(s, s + nb, 0.0f);
          continue;
        }
        std::fill(s, s + j0, -INFINITY);
        std::fill(s + j1, s + nb, -INFINITY);
        float m = w.mx[r];
        if (a.softcap > 0)
          for (int64_t j = j0; j < j1; ++j) s[j] = a.softcap * std::tanh(s[j] / a.softcap);
        if (kk.max_of) {
          m = std::max(m, kk.max_of(s + j0, j1 - j0));
        } else {
          for (int64_t j = j0; j < j1; ++j) m = std::max(m, s[j]);
        }
        if (m > w.mx[r]) {  // rescale what was accumulated under the old maximum
          const float f = std::exp(w.mx[r] - m);  // 0 on the first block
          if (w.sum[r] > 0)
            for (int64_t e = 0; e < a.Dv; ++e) w.acc[r * a.Dv + e] *= f;
          w.sum[r] *= f;
          w.mx[r] = m;
        }
        w.sum[r] += kk.exp_sum(s, nb, w.mx[r]);
      }
    }
    const uint8_t* vblock = vbase + (size_t)(base + b0) * v_stride;
    if (v_direct) {
      kk.accumulate_f16(w.s, kBlock, R, vblock, v_stride, nb, a.Dv, w.acc);
    } else {
      const float* vf = rows_f32(kk, a.v_type, vblock, v_stride, nb, a.Dv, w.v, &ldv);
      if (!vf) return false;
      kk.accumulate(w.s, kBlock, R, vf, ldv, nb, a.Dv, w.acc);
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    const int64_t t = t0 + r / G, h = hk * G + r % G;
    const float* acc = w.acc + r * a.Dv;
    if (n_chunks == 1) {
      float* o = a.out + (t * a.Hq + h) * a.Dv;
      const float inv = w.sum[r] > 0 ? 1.0f / w.sum[r] : 0.0f;
      for (int64_t e = 0; e < a.Dv; ++e) o[e] = acc[e] * inv;
    } else {
      float* p = partials + ((t * a.Hq + h) * n_chunks + c) * (a.Dv + 2);
      p[0] = w.mx[r];
      p[1] = w.sum[r];
      std::memcpy(p + 2, acc, (size_t)a.Dv * sizeof(float));
    }
  }
  return true;
}

// The earlier path (OSPREY_ATTN_SIMD=0): units (token, kv head, chunk).
bool attention_per_cell(const AttentionArgs& a, int64_t n_chunks, int64_t u0, int64_t u1, float* scratch,
                        float* partials) {
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

}  // namespace

// Units are (tile of tokens, kv head, chunk), chunk fastest. With one chunk the result is
// written to a.out; otherwise each query head's (max, sum, unnormalised values) goes to
// `partials`. A tile's tokens are taken in runs that share a sequence slot.
bool attention_with(const AttnKernels& k, const AttentionArgs& a, int64_t n_chunks, int64_t u0, int64_t u1,
                    float* scratch, float* partials) {
  const Scratch w = carve(a, scratch);
  const int64_t tq = tile_tokens(a), nt = n_tiles(a);
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t c = u % n_chunks, r = u / n_chunks;
    const int64_t slot = r / a.Hkv, hk = r % a.Hkv;
    // A causal tile's work grows with its position and the pool gives each thread one
    // contiguous range of units, so the slots take tiles from both ends in turn (0, last,
    // 1, last - 1, ...): every range then gets about the same work. Which tokens share a
    // tile does not change, so neither do the results.
    const int64_t tile = slot % 2 == 0 ? slot / 2 : nt - 1 - slot / 2;
    const int64_t t_end = std::min(a.T, (tile + 1) * tq);
    for (int64_t t0 = tile * tq; t0 < t_end;) {
      int64_t t1 = t0 + 1;
      while (t1 < t_end && a.meta[2 * t1] == a.meta[2 * t0]) ++t1;
      if (!attend_run(k, a, t0, t1, hk, c, n_chunks, w, partials)) return false;
      t0 = t1;
    }
  }
  return true;
}

bool attention(const AttentionArgs& a, int64_t n_chunks, int64_t u0, int64_t u1, float* scratch, float* partials) {
  if (per_cell_path()) return attention_per_cell(a, n_chunks, u0, u1, scratch, partials);
  return attention_with(attn_kernels(), a, n_chunks, u0, u1, scratch, partials);
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
