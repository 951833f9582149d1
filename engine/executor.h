// Executor: places a graph's nodes on backends, plans intermediate memory by liveness,
// uploads inputs, runs, and reads the marked outputs back.
#pragma once
#include <memory>
#include <vector>

#include "backends/backend.h"
#include "engine/ir/graph.h"

namespace osprey {

class Executor {
 public:
  // Backends in order of preference; a node goes to the first that supports it.
  explicit Executor(std::vector<Backend*> backends) : backends_(std::move(backends)) {}
  // Runs g; outputs[i] receives the f32 data of g.outputs()[i].
  Status run(const ir::Graph& g, std::vector<std::vector<float>>* outputs);
  size_t arena_bytes() const { return arena_ ? arena_->size() : 0; }

 private:
  std::vector<Backend*> backends_;
  std::unique_ptr<Buffer> arena_;
};

}  // namespace osprey
