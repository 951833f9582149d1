// The op set. Each op is defined once: its semantics here, its shape rule in ops.cpp, its
// scalar reference in kernels/ref_ops.cpp; backends implement the ops they register.
// "Row" = the ne[0] innermost elements; row r of a tensor with shape [n0, n1, n2, n3] is at
// flat row index r = i1 + n1 * (i2 + n2 * i3).
#pragma once
#include <cstdint>

namespace osprey::ir {

enum class Op : uint8_t {
  INPUT,      // host data uploaded per run
  TENSOR,     // external storage (weight, cache)
  GET_ROWS,   // src0 table [K, V] (any dtype), src1 ids i32 [T] -> f32 [K, T]
  MATMUL,     // src0 x f32 [K, M...], src1 w [K, N] (any dtype) -> f32 [N, M...]; y[m,n] = sum_k x[m,k] w[n,k]
  ADD,        // src0 [K, R], src1 [K, R'] with R % R' == 0 (rows broadcast cyclically) -> src0 + src1
  MUL,        // as ADD, elementwise product
  SCALE,      // src0 * f[0]
  RMS_NORM,   // per row: x / sqrt(mean(x^2) + f[0])
  LAYER_NORM, // per row: (x - mean(x)) / sqrt(mean((x - mean(x))^2) + f[0])
  ROPE,       // src0 x f32 [D, H, T], src1 pos i32 [T]; i0 = n_rot, i1 = RopeMode, f0 = freq_base, f1 = freq_scale
  SILU,       // x * sigmoid(x)
  GELU,       // tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  GELU_ERF,   // exact: 0.5 x (1 + erf(x / sqrt(2))) (BERT's "gelu")
  SWIGLU,     // silu(src0) * src1
  GEGLU,      // gelu(src0) * src1
  SOFTMAX,    // per row: softmax(f[0] * x)
  KV_STORE,   // src0 cache TENSOR [D, H, cells], src1 x f32 [D, H, T], src2 meta i32 [2, T]
              // writes x[:, :, t] into cell meta[0,t] + meta[1,t] (slot base + position);
              // converts to the cache dtype; its result aliases the cache
  ATTENTION,  // src0 q f32 [D, Hq, T], src1 k cache [D, Hkv, cells], src2 v cache [Dv, Hkv, cells],
              // src3 meta i32 [2, T] (slot base cell, position). Token t attends to cells
              // base + j for j in [max(0, pos - window + 1), pos] (window i1, 0 = unbounded),
              // head h uses kv head h / (Hq / Hkv). f0 = scale, f1 = logit softcap (0 = none),
              // i0 = cells per sequence slot. -> f32 [Dv, Hq, T]
  RESHAPE,    // same data, new shape with the same element count (contiguous)
  VIEW_ROWS,  // rows [i0, i0 + i1) of src0, flattened to [K, i1]
  COUNT
};

enum class RopeMode : int64_t {
  NORMAL = 0,  // rotate adjacent pairs (x[2i], x[2i+1])
  NEOX = 2,    // rotate halves (x[i], x[i + n_rot/2])
};

const char* op_name(Op op);

inline bool op_is_leaf(Op op) { return op == Op::INPUT || op == Op::TENSOR; }
// The result shares storage with src0 (at an offset for VIEW_ROWS).
inline bool op_aliases_src0(Op op) { return op == Op::RESHAPE || op == Op::VIEW_ROWS || op == Op::KV_STORE; }
// A backend kernel runs for the node (leaves and pure views need none).
inline bool op_runs_kernel(Op op) { return !op_is_leaf(op) && op != Op::RESHAPE && op != Op::VIEW_ROWS; }

}  // namespace osprey::ir
