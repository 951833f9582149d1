// Graph builder: every op's shape rule lives here, checked as the node is added.
#include "engine/ir/graph.h"

#include <sstream>

namespace osprey::ir {
namespace {

std::string shape_str(const std::array<int64_t, kMaxDims>& ne) {
  std::ostringstream o;
  o << "[" << ne[0] << ", " << ne[1] << ", " << ne[2] << ", " << ne[3] << "]";
  return o.str();
}

}  // namespace

NodeId Graph::fail(const std::string& msg) {
  if (status_.ok()) status_ = Status::error(msg);
  return kNoNode;
}

NodeId Graph::push(Node n) {
  nodes_.push_back(std::move(n));
  return (NodeId)nodes_.size() - 1;
}

NodeId Graph::input(DType dt, std::array<int64_t, kMaxDims> ne, std::vector<uint8_t> data, std::string name) {
  Node n;
  n.op = Op::INPUT;
  n.dtype = dt;
  n.ne = ne;
  n.name = std::move(name);
  if (data.size() != n.nbytes()) return fail("input '" + n.name + "': data size does not match shape " + shape_str(ne));
  n.host = std::move(data);
  return push(std::move(n));
}

NodeId Graph::tensor(const Tensor& t) {
  Node n;
  n.op = Op::TENSOR;
  n.dtype = t.dtype;
  n.ne = t.ne;
  n.tensor = &t;
  n.name = t.name;
  return push(std::move(n));
}

#define OSPREY_CHECK_SRC(op, ...)                                                   \
  do {                                                                              \
    if (!status_.ok()) return kNoNode;                                              \
    for (NodeId _s : {__VA_ARGS__})                                                 \
      if (_s < 0 || (size_t)_s >= nodes_.size()) return fail(std::string(op) + ": invalid input node"); \
  } while (0)

static Node make(Op op, std::array<int64_t, kMaxDims> ne, std::initializer_list<NodeId> srcs) {
  Node n;
  n.op = op;
  n.ne = ne;
  int i = 0;
  for (NodeId s : srcs) n.src[(size_t)i++] = s;
  return n;
}

NodeId Graph::get_rows(NodeId table, NodeId ids) {
  OSPREY_CHECK_SRC("get_rows", table, ids);
  const Node &t = node(table), &id = node(ids);
  if (id.dtype != DType::I32 || id.ne[1] * id.ne[2] * id.ne[3] != 1 || t.ne[2] * t.ne[3] != 1)
    return fail("get_rows: need table [K, V] and i32 ids [T], got " + shape_str(t.ne) + " and " + shape_str(id.ne));
  return push(make(Op::GET_ROWS, {t.ne[0], id.ne[0], 1, 1}, {table, ids}));
}

NodeId Graph::matmul(NodeId x, NodeId w) {
  OSPREY_CHECK_SRC("matmul", x, w);
  const Node &a = node(x), &b = node(w);
  if (a.dtype != DType::F32 || a.ne[0] != b.ne[0] || b.ne[2] * b.ne[3] != 1)
    return fail("matmul: x " + shape_str(a.ne) + " (" + dtype_name(a.dtype) + ") does not fit w " + shape_str(b.ne) +
                " '" + b.name + "'");
  return push(make(Op::MATMUL, {b.ne[1], a.ne[1], a.ne[2], a.ne[3]}, {x, w}));
}

NodeId Graph::broadcast_binary(Op op, NodeId a, NodeId b) {
  OSPREY_CHECK_SRC(op_name(op), a, b);
  const Node &x = node(a), &y = node(b);
  if (x.dtype != DType::F32 || y.dtype != DType::F32 || x.ne[0] != y.ne[0] || x.n_rows() % y.n_rows() != 0)
    return fail(std::string(op_name(op)) + ": cannot broadcast " + shape_str(y.ne) + " onto " + shape_str(x.ne));
  return push(make(op, x.ne, {a, b}));
}

NodeId Graph::add(NodeId a, NodeId b) { return broadcast_binary(Op::ADD, a, b); }
NodeId Graph::mul(NodeId a, NodeId b) { return broadcast_binary(Op::MUL, a, b); }

NodeId Graph::scale(NodeId a, float s) {
  const NodeId id = unary(Op::SCALE, a);
  if (id != kNoNode) nodes_[(size_t)id].p.f[0] = s;
  return id;
}

NodeId Graph::rms_norm(NodeId a, float eps) {
  const NodeId id = unary(Op::RMS_NORM, a);
  if (id != kNoNode) nodes_[(size_t)id].p.f[0] = eps;
  return id;
}

NodeId Graph::layer_norm(NodeId a, float eps) {
  const NodeId id = unary(Op::LAYER_NORM, a);
  if (id != kNoNode) nodes_[(size_t)id].p.f[0] = eps;
  return id;
}

NodeId Graph::rope(NodeId x, NodeId pos, int64_t n_rot, RopeMode mode, float freq_base, float freq_scale) {
  OSPREY_CHECK_SRC("rope", x, pos);
  const Node &a = node(x), &p = node(pos);
  if (p.dtype != DType::I32 || p.ne[0] != a.ne[2] || a.ne[3] != 1)
    return fail("rope: positions " + shape_str(p.ne) + " do not match x " + shape_str(a.ne));
  if (n_rot <= 0 || n_rot > a.ne[0] || n_rot % 2 != 0) return fail("rope: bad n_rot " + std::to_string(n_rot));
  Node n = make(Op::ROPE, a.ne, {x, pos});
  n.p.i[0] = n_rot;
  n.p.i[1] = (int64_t)mode;
  n.p.f[0] = freq_base;
  n.p.f[1] = freq_scale;
  return push(std::move(n));
}

NodeId Graph::unary(Op op, NodeId a) {
  OSPREY_CHECK_SRC(op_name(op), a);
  if (node(a).dtype != DType::F32) return fail(std::string(op_name(op)) + ": input must be f32");
  return push(make(op, node(a).ne, {a}));
}

NodeId Graph::gated(Op op, NodeId gate, NodeId up) {
  OSPREY_CHECK_SRC(op_name(op), gate, up);
  if (node(gate).ne != node(up).ne || node(gate).dtype != DType::F32 || node(up).dtype != DType::F32)
    return fail(std::string(op_name(op)) + ": gate " + shape_str(node(gate).ne) + " and up " + shape_str(node(up).ne) +
                " must be f32 of the same shape");
  return push(make(op, node(gate).ne, {gate, up}));
}

NodeId Graph::silu(NodeId a) { return unary(Op::SILU, a); }
NodeId Graph::gelu(NodeId a) { return unary(Op::GELU, a); }
NodeId Graph::gelu_erf(NodeId a) { return unary(Op::GELU_ERF, a); }
NodeId Graph::swiglu(NodeId gate, NodeId up) { return gated(Op::SWIGLU, gate, up); }
NodeId Graph::geglu(NodeId gate, NodeId up) { return gated(Op::GEGLU, gate, up); }

NodeId Graph::softmax(NodeId a, float scale) {
  const NodeId id = unary(Op::SOFTMAX, a);
  if (id != kNoNode) nodes_[(size_t)id].p.f[0] = scale;
  return id;
}

NodeId Graph::kv_store(NodeId cache, NodeId x, NodeId meta) {
  OSPREY_CHECK_SRC("kv_store", cache, x, meta);
  const Node &c = node(cache), &v = node(x), &m = node(meta);
  if (c.op != Op::TENSOR || c.ne[0] != v.ne[0] || c.ne[1] != v.ne[1] || v.ne[3] != 1 || m.dtype != DType::I32 ||
      m.ne[0] != 2 || m.ne[1] != v.ne[2])
    return fail("kv_store: x " + shape_str(v.ne) + " does not fit cache " + shape_str(c.ne));
  Node n = make(Op::KV_STORE, c.ne, {cache, x, meta});
  n.dtype = c.dtype;
  return push(std::move(n));
}

NodeId Graph::attention(NodeId q, NodeId k, NodeId v, NodeId meta, float scale, int64_t window, int64_t cells_per_seq,
                        float softcap) {
  OSPREY_CHECK_SRC("attention", q, k, v, meta);
  const Node &Q = node(q), &K = node(k), &V = node(v), &M = node(meta);
  if (Q.ne[0] != K.ne[0] || K.ne[1] != V.ne[1] || K.ne[2] != V.ne[2] || K.ne[1] == 0 || Q.ne[1] % K.ne[1] != 0 ||
      M.dtype != DType::I32 || M.ne[0] != 2 || M.ne[1] != Q.ne[2] || Q.ne[3] != 1 || cells_per_seq <= 0 ||
      K.ne[2] % cells_per_seq != 0)
    return fail("attention: q " + shape_str(Q.ne) + ", k " + shape_str(K.ne) + ", v " + shape_str(V.ne) +
                " do not fit");
  Node n = make(Op::ATTENTION, {V.ne[0], Q.ne[1], Q.ne[2], 1}, {q, k, v, meta});
  n.p.f[0] = scale;
  n.p.f[1] = softcap;
  n.p.i[0] = cells_per_seq;
  n.p.i[1] = window;
  return push(std::move(n));
}

NodeId Graph::reshape(NodeId a, std::array<int64_t, kMaxDims> ne) {
  OSPREY_CHECK_SRC("reshape", a);
  const Node& x = node(a);
  if (ne[0] * ne[1] * ne[2] * ne[3] != x.n_elements() || dtype_row_bytes(x.dtype, ne[0]) < 0)
    return fail("reshape: " + shape_str(x.ne) + " to " + shape_str(ne));
  Node n = make(Op::RESHAPE, ne, {a});
  n.dtype = x.dtype;
  return push(std::move(n));
}

NodeId Graph::view_rows(NodeId a, int64_t first_row, int64_t n_rows) {
  OSPREY_CHECK_SRC("view_rows", a);
  const Node& x = node(a);
  if (first_row < 0 || n_rows <= 0 || first_row + n_rows > x.n_rows())
    return fail("view_rows: rows [" + std::to_string(first_row) + ", +" + std::to_string(n_rows) + ") of " +
                shape_str(x.ne));
  Node n = make(Op::VIEW_ROWS, {x.ne[0], n_rows, 1, 1}, {a});
  n.dtype = x.dtype;
  n.p.i[0] = first_row;
  n.p.i[1] = n_rows;
  return push(std::move(n));
}

}  // namespace osprey::ir
