// Executor: places a graph's nodes on backends, plans intermediate memory by liveness,
// uploads inputs, runs, and reads the marked outputs back.
#pragma once
#include <memory>
#include <vector>

#include "backends/backend.h"
#include "engine/ir/graph.h"

namespace osprey {

// Sees the f32 activations entering matmuls against weight tensors, for `osprey imatrix`.
// Observing splits the run at each observed matmul, so it costs a little speed.
class MatmulObserver {
 public:
  virtual ~MatmulObserver() = default;
  virtual bool wants(const ir::Tensor& weight) const = 0;
  // x: `rows` rows of `cols` floats, each multiplied by every row of `weight`.
  virtual void observe(const ir::Tensor& weight, const float* x, int64_t cols, int64_t rows) = 0;
};

class Executor {
 public:
  // Backends in order of preference; a node goes to the first that supports it.
  explicit Executor(std::vector<Backend*> backends) : backends_(std::move(backends)) {}
  // Runs g; outputs[i] receives the f32 data of g.outputs()[i].
  Status run(const ir::Graph& g, std::vector<std::vector<float>>* outputs);
  size_t arena_bytes() const { return arena_ ? arena_->size() : 0; }
  void set_matmul_observer(MatmulObserver* o) { observer_ = o; }

 private:
  Status compute_observed(const ir::Graph& g, Backend& be, const std::vector<Placement>& where);
  std::vector<Backend*> backends_;
  MatmulObserver* observer_ = nullptr;
  std::unique_ptr<Buffer> arena_;
};

}  // namespace osprey
