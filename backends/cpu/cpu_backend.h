// The CPU backend: host memory, kernels from kernels/ (cpu:: working path), a thread pool.
#pragma once
#include <array>
#include <memory>

#include "backends/backend.h"
#include "backends/cpu/thread_pool.h"

namespace osprey {

struct CpuBackendOptions {
  int n_threads = 0;  // 0: all hardware threads
  bool use_reference = false;  // run the scalar reference kernels (slow; for testing)
  // Matmuls with quantized weights multiply f32 activations with dequantized rows instead of
  // quantizing activations to 8 bits for integer dot products (slower, closer to exact).
  bool exact_matmul = false;
  // Kernel-regression self-check: perturb this op's f32 output by 2% so tests can prove
  // they notice a broken kernel. COUNT: off.
  ir::Op perturb_op = ir::Op::COUNT;
  bool profile = false;  // time every op; print a table per op to stderr when the backend goes
};

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(CpuBackendOptions opts = {});
  ~CpuBackend() override;
  DeviceInfo info() const override;
  bool supports(const ir::Graph& g, const ir::Node& n) const override;
  Result<std::unique_ptr<Buffer>> alloc(size_t bytes) override;
  Result<std::unique_ptr<Buffer>> map_host(const void* ptr, size_t bytes) override;
  Status upload(Buffer& dst, size_t offset, const void* src, size_t bytes) override;
  Status download(const Buffer& src, size_t offset, void* dst, size_t bytes) override;
  Status fill_zero(Buffer& dst, size_t offset, size_t bytes) override;
  Status compute(const ir::Graph& g, const std::vector<ir::NodeId>& nodes,
                 const std::vector<Placement>& where) override;
  Status synchronize() override { return Status(); }

  // What a kernel sees: the node, its inputs' and output's host pointers, the pool.
  struct Call {
    const ir::Graph& g;
    const ir::Node& n;
    std::array<const void*, ir::kMaxSrc> src{};
    void* dst = nullptr;
    ThreadPool& pool;
    std::vector<std::vector<float>>& scratch;  // one per thread
    std::vector<uint8_t>& shared;              // one per backend: e.g. quantized activations
    const CpuBackendOptions& opts;
    std::array<Placement, ir::kMaxSrc> src_at{};  // where each input lives (buffer, offset)
  };
  using AcceptFn = bool (*)(const ir::Graph&, const ir::Node&);
  using RunFn = bool (*)(Call&);  // false: bad data for the op (e.g. an index out of range)

 private:
  struct Kernel {
    AcceptFn accepts = nullptr;
    RunFn run = nullptr;
  };
  void register_kernel(ir::Op op, AcceptFn accepts, RunFn run);
  void register_working_kernels();
  void register_reference_kernels();

  CpuBackendOptions opts_;
  ThreadPool pool_;
  std::array<Kernel, (size_t)ir::Op::COUNT> kernels_{};
  std::vector<std::vector<float>> scratch_;
  std::vector<uint8_t> shared_;
  std::array<int64_t, (size_t)ir::Op::COUNT> profile_ns_{}, profile_calls_{};
};

}  // namespace osprey
