// The contract every compute backend keeps (DESIGN.md, "Backend interface"). The engine
// talks to devices only through this; nothing here assumes the memory is host memory.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "engine/ir/graph.h"
#include "kernels/base/status.h"

namespace osprey {

class Backend;

class Buffer {
 public:
  Buffer(Backend& owner, size_t size) : owner_(owner), size_(size) {}
  virtual ~Buffer() = default;
  Backend& backend() const { return owner_; }
  size_t size() const { return size_; }
  // Non-null when host code may read and write this memory directly.
  virtual void* host_ptr() const { return nullptr; }

 private:
  Backend& owner_;
  size_t size_;
};

struct DeviceInfo {
  std::string backend;  // "cpu", "cuda", ...
  std::string device;   // human-readable device name
  size_t memory_total = 0;
  size_t memory_free = 0;
};

// Where one node's data lives for a run: a buffer and a byte offset into it.
struct Placement {
  Buffer* buffer = nullptr;
  size_t offset = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual DeviceInfo info() const = 0;
  const std::string name() const { return info().backend; }

  // Whether this backend has a kernel for the node (derived from what it registered).
  virtual bool supports(const ir::Graph& g, const ir::Node& n) const = 0;

  virtual Result<std::unique_ptr<Buffer>> alloc(size_t bytes) = 0;
  // Zero-copy view of host memory (e.g. an mmapped weight file) where the device can read it;
  // an error where it cannot, and the caller allocates and uploads instead.
  virtual Result<std::unique_ptr<Buffer>> map_host(const void* ptr, size_t bytes) {
    return Status::error(name() + ": cannot map host memory");
  }
  virtual Status upload(Buffer& dst, size_t offset, const void* src, size_t bytes) = 0;
  virtual Status download(const Buffer& src, size_t offset, void* dst, size_t bytes) = 0;
  virtual Status fill_zero(Buffer& dst, size_t offset, size_t bytes) = 0;

  // Runs `nodes` (ids into g, in order; all placed on this backend) and may return before they
  // finish; `where[id]` locates every node any of them reads or writes. Errors name the op.
  virtual Status compute(const ir::Graph& g, const std::vector<ir::NodeId>& nodes,
                         const std::vector<Placement>& where) = 0;
  // Waits for all work submitted so far; reports errors of asynchronous work.
  virtual Status synchronize() = 0;
};

}  // namespace osprey
