// The graph IR: a model's forward pass as a list of nodes in execution order. A node is an
// op, up to four input nodes, small typed parameters, an output shape and dtype. Leaves are
// INPUT (host data uploaded per run) and TENSOR (storage that outlives the graph: weights,
// the KV cache). Shapes follow GGUF: ne[0] is the innermost, contiguous dimension.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/ir/ops.h"
#include "engine/ir/tensor.h"
#include "kernels/base/status.h"

namespace osprey::ir {

using NodeId = int32_t;
constexpr NodeId kNoNode = -1;
constexpr int kMaxSrc = 4;

struct Params {
  std::array<float, 4> f{};
  std::array<int64_t, 4> i{};
};

struct Node {
  Op op = Op::INPUT;
  DType dtype = DType::F32;
  std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};
  std::array<NodeId, kMaxSrc> src{kNoNode, kNoNode, kNoNode, kNoNode};
  Params p;
  const Tensor* tensor = nullptr;  // Op::TENSOR: the external storage
  std::vector<uint8_t> host;       // Op::INPUT: data uploaded before the run
  std::string name;

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  size_t nbytes() const { return (size_t)dtype_row_bytes(dtype, ne[0]) * (size_t)n_rows(); }
  int n_src() const {
    int n = 0;
    while (n < kMaxSrc && src[n] != kNoNode) ++n;
    return n;
  }
};

// Builds a graph; each method checks its shape rule (ops.cpp) and records the first error,
// which build() returns, so model code can chain calls and check once.
class Graph {
 public:
  const std::vector<Node>& nodes() const { return nodes_; }
  const Node& node(NodeId id) const { return nodes_[(size_t)id]; }
  Node& mutable_node(NodeId id) { return nodes_[(size_t)id]; }
  const Status& status() const { return status_; }

  // Leaves.
  NodeId input(DType dt, std::array<int64_t, kMaxDims> ne, std::vector<uint8_t> data, std::string name);
  NodeId tensor(const Tensor& t);

  // Ops (see ops.h for semantics).
  NodeId get_rows(NodeId table, NodeId ids);
  NodeId matmul(NodeId x, NodeId w);
  NodeId add(NodeId a, NodeId b);
  NodeId mul(NodeId a, NodeId b);
  NodeId scale(NodeId a, float s);
  NodeId rms_norm(NodeId a, float eps);
  NodeId layer_norm(NodeId a, float eps);
  NodeId rope(NodeId x, NodeId pos, int64_t n_rot, RopeMode mode, float freq_base, float freq_scale);
  NodeId silu(NodeId a);
  NodeId gelu(NodeId a);
  NodeId gelu_erf(NodeId a);
  NodeId swiglu(NodeId gate, NodeId up);
  NodeId geglu(NodeId gate, NodeId up);
  NodeId softmax(NodeId a, float scale);
  NodeId kv_store(NodeId cache, NodeId x, NodeId meta);
  NodeId attention(NodeId q, NodeId k_cache, NodeId v_cache, NodeId meta, float scale, int64_t window,
                   int64_t cells_per_seq, float softcap);
  NodeId reshape(NodeId a, std::array<int64_t, kMaxDims> ne);
  NodeId view_rows(NodeId a, int64_t first_row, int64_t n_rows);

  // Marks a node whose result the caller reads back after the run.
  void mark_output(NodeId id) { outputs_.push_back(id); }
  const std::vector<NodeId>& outputs() const { return outputs_; }

 private:
  NodeId push(Node n);
  NodeId unary(Op op, NodeId a);
  NodeId gated(Op op, NodeId gate, NodeId up);
  NodeId broadcast_binary(Op op, NodeId a, NodeId b);
  NodeId fail(const std::string& msg);
  std::vector<Node> nodes_;
  std::vector<NodeId> outputs_;
  Status status_;
};

}  // namespace osprey::ir
