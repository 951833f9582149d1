#include "engine/executor.h"

#include <algorithm>
#include <map>

namespace osprey {
namespace {

constexpr size_t kAlign = 64;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// First-fit allocator over offsets in one arena, with coalescing on free.
class OffsetAllocator {
 public:
  size_t alloc(size_t n) {
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second >= n) {
        const size_t off = it->first, left = it->second - n;
        free_.erase(it);
        if (left) free_[off + n] = left;
        return off;
      }
    }
    // Extend the arena; absorb a free block that ends at the current top.
    if (!free_.empty()) {
      auto last = std::prev(free_.end());
      if (last->first + last->second == top_) {
        const size_t off = last->first;
        free_.erase(last);
        top_ = off + n;
        return off;
      }
    }
    const size_t off = top_;
    top_ += n;
    return off;
  }
  void release(size_t off, size_t n) {
    auto it = free_.emplace(off, n).first;
    auto next = std::next(it);
    if (next != free_.end() && it->first + it->second == next->first) {
      it->second += next->second;
      free_.erase(next);
    }
    if (it != free_.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == it->first) {
        prev->second += it->second;
        free_.erase(it);
      }
    }
  }
  size_t peak() const { return top_; }

 private:
  std::map<size_t, size_t> free_;
  size_t top_ = 0;
};

}  // namespace

Status Executor::run(const ir::Graph& g, std::vector<std::vector<float>>* outputs) {
  OSPREY_TRY(g.status());
  const auto& nodes = g.nodes();
  const size_t n = nodes.size();
  if (backends_.empty()) return Status::error("executor: no backends");

  // Placement: every kernel node on the first backend that supports it. Seams between
  // backends (copies) are not planned yet, so a graph must fit one backend whole.
  Backend* be = nullptr;
  for (Backend* b : backends_) {
    bool all = true;
    for (const auto& nd : nodes)
      if (!b->supports(g, nd)) { all = false; break; }
    if (all) { be = b; break; }
  }
  if (!be) {
    for (const auto& nd : nodes)
      if (!backends_[0]->supports(g, nd))
        return Status::error(std::string("executor: backend ") + backends_[0]->name() + " does not support op " +
                             ir::op_name(nd.op) + " (" + nd.name + ", " + dtype_name(nd.dtype) + ")");
    return Status::error("executor: no backend supports the whole graph");
  }

  // Storage root of each node (aliases resolve to what they view) and its last use.
  std::vector<ir::NodeId> root(n);
  std::vector<size_t> alias_offset(n, 0);
  std::vector<ir::NodeId> last_use(n, -1);
  for (size_t i = 0; i < n; ++i) {
    const ir::Node& nd = nodes[i];
    root[i] = (ir::NodeId)i;
    if (ir::op_aliases_src0(nd.op)) {
      const ir::NodeId s = nd.src[0];
      root[i] = root[(size_t)s];
      alias_offset[i] = alias_offset[(size_t)s];
      if (nd.op == ir::Op::VIEW_ROWS) alias_offset[i] += (size_t)nd.p.i[0] * (size_t)dtype_row_bytes(nd.dtype, nd.ne[0]);
    }
    for (int k = 0; k < nd.n_src(); ++k) last_use[(size_t)root[(size_t)nd.src[(size_t)k]]] = (ir::NodeId)i;
    last_use[(size_t)root[i]] = std::max<ir::NodeId>(last_use[(size_t)root[i]], (ir::NodeId)i);
  }
  for (ir::NodeId o : g.outputs()) last_use[(size_t)root[(size_t)o]] = (ir::NodeId)n;  // never freed

  // Plan arena offsets for inputs and computed nodes (TENSOR nodes own their storage).
  OffsetAllocator alloc;
  std::vector<size_t> offset(n, 0);
  std::vector<std::vector<size_t>> frees(n + 1);
  auto bytes = [&](size_t i) { return align_up(std::max<size_t>(nodes[i].nbytes(), 1)); };
  // Inputs are all uploaded before the run, so each holds its memory from the start, even
  // one a model adds midway through the graph.
  for (size_t i = 0; i < n; ++i) {
    if (nodes[i].op != ir::Op::INPUT) continue;
    offset[i] = alloc.alloc(bytes(i));
    frees[(size_t)last_use[i]].push_back(i);
  }
  for (size_t i = 0; i < n; ++i) {
    if (root[i] == (ir::NodeId)i && nodes[i].op != ir::Op::TENSOR && nodes[i].op != ir::Op::INPUT) {
      offset[i] = alloc.alloc(bytes(i));  // before freeing inputs: outputs never overlap inputs
      frees[(size_t)last_use[i]].push_back(i);
    }
    for (size_t f : frees[i]) alloc.release(offset[f], bytes(f));
  }
  if (!arena_ || arena_->size() < alloc.peak() || &arena_->backend() != be) {
    arena_.reset();
    auto buf = be->alloc(std::max<size_t>(alloc.peak(), kAlign));
    if (!buf) return buf.status().with_context("executor: allocating " + std::to_string(alloc.peak()) + " bytes");
    arena_ = std::move(buf.value());
  }

  std::vector<Placement> where(n);
  for (size_t i = 0; i < n; ++i) {
    const ir::Node& r = nodes[(size_t)root[i]];
    if (r.op == ir::Op::TENSOR) {
      if (!r.tensor->buffer || &r.tensor->buffer->backend() != be)
        return Status::error("executor: tensor '" + r.name + "' is not in " + be->name() + " memory");
      where[i] = {r.tensor->buffer, r.tensor->offset + alias_offset[i]};
    } else {
      where[i] = {arena_.get(), offset[(size_t)root[i]] + alias_offset[i]};
    }
  }
  for (size_t i = 0; i < n; ++i)
    if (nodes[i].op == ir::Op::INPUT) OSPREY_TRY(be->upload(*arena_, where[i].offset, nodes[i].host.data(), nodes[i].host.size()));

  std::vector<ir::NodeId> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = (ir::NodeId)i;
  OSPREY_TRY(observer_ ? compute_observed(g, *be, where) : be->compute(g, order, where));
  OSPREY_TRY(be->synchronize());

  if (outputs) {
    outputs->resize(g.outputs().size());
    for (size_t k = 0; k < g.outputs().size(); ++k) {
      const ir::Node& o = g.node(g.outputs()[k]);
      if (o.dtype != DType::F32) return Status::error("executor: output '" + o.name + "' is not f32");
      auto& out = (*outputs)[k];
      out.resize((size_t)o.n_elements());
      const Placement& p = where[(size_t)g.outputs()[k]];
      OSPREY_TRY(be->download(*p.buffer, p.offset, out.data(), out.size() * sizeof(float)));
    }
  }
  return Status();
}

// Runs the nodes in segments that end just before each observed matmul, whose input is then
// still live and can be read back.
Status Executor::compute_observed(const ir::Graph& g, Backend& be, const std::vector<Placement>& where) {
  std::vector<ir::NodeId> segment;
  std::vector<float> x;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const ir::Node& nd = g.nodes()[i];
    if (nd.op == ir::Op::MATMUL) {
      const ir::Node& w = g.node(nd.src[1]);
      const ir::Node& xs = g.node(nd.src[0]);
      if (w.op == ir::Op::TENSOR && w.tensor && xs.dtype == DType::F32 && observer_->wants(*w.tensor)) {
        OSPREY_TRY(be.compute(g, segment, where));
        OSPREY_TRY(be.synchronize());
        segment.clear();
        x.resize((size_t)xs.n_elements());
        const Placement& p = where[(size_t)nd.src[0]];
        OSPREY_TRY(be.download(*p.buffer, p.offset, x.data(), x.size() * sizeof(float)));
        observer_->observe(*w.tensor, x.data(), xs.ne[0], xs.n_rows());
      }
    }
    segment.push_back((ir::NodeId)i);
  }
  return be.compute(g, segment, where);
}

}  // namespace osprey
