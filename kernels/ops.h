// CPU math for every op, as plain functions on pointers, in two flavours:
//   ref::  the scalar reference (double accumulation) — the oracle every other kernel and
//          backend is compared with;
//   cpu::  the working path used by the CPU backend; each takes a range of output rows so
//          the caller can split work across threads.
// Shapes follow the IR (engine/ir/ops.h): ne[0] innermost; "rows" are contiguous ne[0] runs.
// KV caches hold cell c, head h at row h + H * c.
#pragma once
#include <cstdint>

#include "kernels/base/dtype.h"

namespace osprey::kernels {

struct AttentionArgs {
  const float* q;          // [D, Hq, T]
  int64_t D, Hq, T;
  DType k_type; const void* k;   // [D, Hkv, cells]
  DType v_type; const void* v;   // [Dv, Hkv, cells]
  int64_t Dv, Hkv;
  const int32_t* meta;     // [2, T]: slot base cell, position
  int64_t cells_per_seq;
  int64_t n_cells;         // cells in the cache (bounds for meta)
  int64_t window;          // 0: unbounded
  float scale, softcap;
  float* out;              // [Dv, Hq, T]
};

struct RopeArgs {
  const float* x;          // [D, H, T]
  int64_t D, H, T;
  const int32_t* pos;      // [T]
  int64_t n_rot;
  int64_t mode;            // 0 normal (adjacent pairs), 2 neox (halves)
  float freq_base, freq_scale;
  float* y;
};

namespace ref {
bool get_rows(DType t, const void* table, int64_t K, int64_t V, const int32_t* ids, int64_t T, float* out);
bool matmul(const float* x, int64_t M, int64_t K, DType wt, const void* w, int64_t N, float* y);
void add(const float* a, const float* b, int64_t K, int64_t R, int64_t Rb, float* y);
void mul(const float* a, const float* b, int64_t K, int64_t R, int64_t Rb, float* y);
void scale(const float* a, int64_t n, float s, float* y);
void rms_norm(const float* x, int64_t K, int64_t R, float eps, float* y);
void layer_norm(const float* x, int64_t K, int64_t R, float eps, float* y);
void rope(const RopeArgs& a);
void silu(const float* x, int64_t n, float* y);
void gelu(const float* x, int64_t n, float* y);
void gelu_erf(const float* x, int64_t n, float* y);
void swiglu(const float* g, const float* u, int64_t n, float* y);
void geglu(const float* g, const float* u, int64_t n, float* y);
void softmax(const float* x, int64_t K, int64_t R, float scale, float* y);
bool kv_store(DType t, void* cache, int64_t D, int64_t H, int64_t cells, const float* x, int64_t T, const int32_t* meta);
bool attention(const AttentionArgs& a);
}  // namespace ref

struct PackedFormat;  // kernels/cpu/packed_gemm.h

namespace cpu {
// Each returns false on an unsupported dtype or an out-of-range index in the data.
// [r0, r1) ranges over output rows (matmul: over weight rows N; attention: see below).
bool get_rows(DType t, const void* table, int64_t K, int64_t V, const int32_t* ids, int64_t r0, int64_t r1, float* out);
bool matmul(const float* x, int64_t M, int64_t K, DType wt, const void* w, int64_t n0, int64_t n1, int64_t N,
            float* y, float* scratch /* K floats */);
// Same product from activations already quantized (rows of `xq_row_bytes`, see
// kernels/cpu/quant_dot.h) with an integer dot kernel.
// dot4 (may be null) handles four activation rows per call.
using QuantDotFn = float (*)(const void* w, const void* x, int64_t K);
using QuantDot4Fn = void (*)(const void* w, const void* x, size_t x_stride, int64_t K, float* out);
void matmul_quantized(const void* xq, size_t xq_row_bytes, int64_t M, int64_t K, DType wt, const void* w,
                      QuantDotFn dot, QuantDot4Fn dot4, int64_t n0, int64_t n1, int64_t N, float* y);
// Weight row groups [g0, g1) (16 rows each, repacked as f says: kernels/cpu/packed_gemm.h)
// against all M activation rows quantized as f.act, into y rows of N.
void matmul_packed(const PackedFormat& f, const void* packed, const void* xq, size_t xq_row_bytes, int64_t M,
                   int64_t K, int64_t g0, int64_t g1, int64_t N, float* y);
void add(const float* a, const float* b, int64_t K, int64_t r0, int64_t r1, int64_t Rb, float* y);
void mul(const float* a, const float* b, int64_t K, int64_t r0, int64_t r1, int64_t Rb, float* y);
void scale(const float* a, int64_t i0, int64_t i1, float s, float* y);
void rms_norm(const float* x, int64_t K, int64_t r0, int64_t r1, float eps, float* y);
void layer_norm(const float* x, int64_t K, int64_t r0, int64_t r1, float eps, float* y);
void rope(const RopeArgs& a, int64_t r0, int64_t r1);  // rows of [D, H*T]
void silu(const float* x, int64_t i0, int64_t i1, float* y);
void gelu(const float* x, int64_t i0, int64_t i1, float* y);
void gelu_erf(const float* x, int64_t i0, int64_t i1, float* y);
void swiglu(const float* g, const float* u, int64_t i0, int64_t i1, float* y);
void geglu(const float* g, const float* u, int64_t i0, int64_t i1, float* y);
void softmax(const float* x, int64_t K, int64_t r0, int64_t r1, float scale, float* y);
bool kv_store(DType t, void* cache, int64_t D, int64_t H, int64_t cells, const float* x, int64_t r0, int64_t r1,
              const int32_t* meta);  // rows of x: [D, H*T]
// Attention (cpu_attention.cpp) over work units (tile of query tokens, kv head, chunk of the
// kv range), u = (tile * Hkv + hk) * n_chunks + c; attention_units of them. One chunk writes
// a.out; more write per-head partial results (attention_partial_floats of them) that
// attention_merge combines into a.out.
int64_t attention_chunks(const AttentionArgs& a, int n_threads);
int64_t attention_units(const AttentionArgs& a, int64_t n_chunks);
int64_t attention_scratch_floats(const AttentionArgs& a);  // per thread
int64_t attention_partial_floats(const AttentionArgs& a, int64_t n_chunks);
bool attention(const AttentionArgs& a, int64_t n_chunks, int64_t u0, int64_t u1, float* scratch, float* partials);
void attention_merge(const AttentionArgs& a, int64_t n_chunks, const float* partials);
}  // namespace cpu

}  // namespace osprey::kernels
