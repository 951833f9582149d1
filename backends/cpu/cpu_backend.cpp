#include "backends/cpu/cpu_backend.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "backends/cpu/packed_weights.h"
#include "kernels/cpu/packed_gemm.h"
#include "kernels/cpu/quant_dot.h"
#include "kernels/dequant.h"
#include "kernels/ops.h"

namespace osprey {
namespace {

using ir::Node;
using ir::Op;
namespace kc = kernels::cpu;
namespace kr = kernels::ref;

class HostBuffer final : public Buffer {
 public:
  HostBuffer(Backend& b, void* p, size_t n, bool owned) : Buffer(b, n), p_(p), owned_(owned) {}
  ~HostBuffer() override {
    if (owned_) std::free(p_);
  }
  void* host_ptr() const override { return p_; }
  // map_host memory holds model files: constant while the buffer lives, so repackable.
  PackedWeights* packs() { return owned_ ? nullptr : &packs_; }

 private:
  void* p_;
  bool owned_;
  PackedWeights packs_;
};

const float* F(const void* p) { return (const float*)p; }
float* F(void* p) { return (float*)p; }
const int32_t* I(const void* p) { return (const int32_t*)p; }

const Node& src(const CpuBackend::Call& c, int i) { return c.g.node(c.n.src[(size_t)i]); }

bool is_f32(const ir::Graph&, const Node&) { return true; }  // the IR's shape rules already demand f32
bool weights_dequantizable(const ir::Graph& g, const Node& n) {
  return kernels::has_dequantizer(g.node(n.src[n.op == Op::MATMUL ? 1 : 0]).dtype);
}
bool cache_storable(const ir::Graph&, const Node& n) {
  return kernels::has_quantizer(n.dtype) && dtype_row_bytes(n.dtype, n.ne[0]) >= 0;
}
bool kv_dequantizable(const ir::Graph& g, const Node& n) {
  return kernels::has_dequantizer(g.node(n.src[1]).dtype) && kernels::has_dequantizer(g.node(n.src[2]).dtype);
}

kernels::AttentionArgs attention_args(const CpuBackend::Call& c) {
  const Node &q = src(c, 0), &k = src(c, 1), &v = src(c, 2);
  kernels::AttentionArgs a{};
  a.q = F(c.src[0]);
  a.D = q.ne[0]; a.Hq = q.ne[1]; a.T = q.ne[2];
  a.k_type = k.dtype; a.k = c.src[1];
  a.v_type = v.dtype; a.v = c.src[2];
  a.Dv = v.ne[0]; a.Hkv = k.ne[1];
  a.meta = I(c.src[3]);
  a.cells_per_seq = c.n.p.i[0];
  a.n_cells = k.ne[2];
  a.window = c.n.p.i[1];
  a.scale = c.n.p.f[0];
  a.softcap = c.n.p.f[1];
  a.out = F(c.dst);
  return a;
}

kernels::RopeArgs rope_args(const CpuBackend::Call& c) {
  const Node& x = src(c, 0);
  return {F(c.src[0]), x.ne[0], x.ne[1], x.ne[2], I(c.src[1]), c.n.p.i[0], c.n.p.i[1], c.n.p.f[0], c.n.p.f[1], F(c.dst)};
}

// Runs fn over [0, n) on the pool when the op is big enough to be worth splitting.
template <class Fn>
bool split(CpuBackend::Call& c, int64_t n, int64_t work, Fn fn) {
  std::atomic<bool> ok{true};
  auto body = [&](int64_t b, int64_t e, int t) {
    if (!fn(b, e, t)) ok = false;
  };
  if (work < 32768) {
    body(0, n, 0);
  } else {
    c.pool.parallel_for(n, body);
  }
  return ok;
}

float* scratch(CpuBackend::Call& c, int t, size_t n) {
  auto& s = c.scratch[(size_t)t];
  if (s.size() < n) s.resize(n);
  return s.data();
}

// The M activation rows of a MATMUL quantized as `aq`, `row` bytes each, into dst.
void quantize_activations(CpuBackend::Call& c, kernels::ActQuant aq, int64_t M, int64_t K, size_t row, uint8_t* dst) {
  split(c, M, M * K * 4, [&](int64_t b, int64_t e, int) {
    for (int64_t m = b; m < e; ++m) kernels::quantize_act_row_simd(aq, F(c.src[0]) + m * K, dst + (size_t)m * row, K);
    return true;
  });
}

// A MATMUL through the packed products (kernels/cpu/packed_gemm.h), when its weight is a
// model tensor in mapped memory, the CPU has a packed kernel for the type and there is at
// least one whole group of 16 rows; false: not taken (the caller runs the unpacked path).
// The last N % 16 rows go through the row kernels.
bool matmul_packed(CpuBackend::Call& c, int64_t M, int64_t K, int64_t N) {
  const Node& w = src(c, 1);
  const kernels::PackedFormat* f = kernels::packed_format_for(w.dtype);
  auto* hb = dynamic_cast<HostBuffer*>(c.src_at[1].buffer);
  if (!f || w.op != Op::TENSOR || !hb || !hb->packs() || N < kernels::kPackRows || dtype_row_bytes(w.dtype, K) < 0)
    return false;
  const int64_t groups = N / kernels::kPackRows, tail0 = groups * kernels::kPackRows;
  const kernels::VecDotFn dot = kernels::vec_dot_for(w.dtype);
  if (tail0 < N && !dot) return false;
  const uint8_t* packed = hb->packs()->get(*f, (const uint8_t*)c.src[1], c.src_at[1].offset, K, N, c.pool);
  if (!packed) return false;
  // Activations as the packed kernel reads them, and for a row tail as the row kernels do.
  const kernels::ActQuant row_aq = kernels::act_quant_for(w.dtype);
  const bool second = tail0 < N && row_aq != f->act;
  const size_t row = kernels::act_row_bytes(f->act, K), row2 = second ? kernels::act_row_bytes(row_aq, K) : 0;
  if (c.shared.size() < (row + row2) * (size_t)M) c.shared.resize((row + row2) * (size_t)M);
  uint8_t* xq = c.shared.data();
  uint8_t* xq2 = second ? xq + row * (size_t)M : xq;
  quantize_activations(c, f->act, M, K, row, xq);
  if (second) quantize_activations(c, row_aq, M, K, row2, xq2);
  // Units: the groups, then the tail as one more.
  return split(c, groups + (tail0 < N), N * K * M, [&](int64_t b, int64_t e, int) {
    if (b < groups) kc::matmul_packed(*f, packed, xq, row, M, K, b, std::min(e, groups), N, F(c.dst));
    if (e > groups)
      kc::matmul_quantized(xq2, second ? row2 : row, M, K, w.dtype, c.src[1], dot, kernels::vec_dot4_for(w.dtype),
                           tail0, N, N, F(c.dst));
    return true;
  });
}

// A MATMUL's 16-bit float weight: a model tensor in mapped memory is read from a copy in
// huge-page memory (PackedWeights::copy), made on first use. The bytes are the same; read
// from 4 KiB file pages, the one-token product streamed ~5% slower (1.1B F16 on the 2-core
// Zen 4 machine, passes interleaved in one process, session 11). Otherwise the weight itself.
const void* float_weights(CpuBackend::Call& c, int64_t K, int64_t N) {
  const Node& w = src(c, 1);
  auto* hb = dynamic_cast<HostBuffer*>(c.src_at[1].buffer);
  if ((w.dtype != DType::F16 && w.dtype != DType::BF16) || w.op != Op::TENSOR || !hb || !hb->packs() ||
      !kernels::repack_enabled())
    return c.src[1];
  const int64_t row = dtype_row_bytes(w.dtype, K);
  const uint8_t* copy =
      row < 0 ? nullptr : hb->packs()->copy((const uint8_t*)c.src[1], c.src_at[1].offset, (size_t)row * (size_t)N, c.pool);
  return copy ? copy : c.src[1];
}

}  // namespace

CpuBackend::CpuBackend(CpuBackendOptions opts)
    : opts_(opts),
      pool_(opts.n_threads > 0 ? opts.n_threads : (int)std::max(1u, std::thread::hardware_concurrency())) {
  scratch_.resize((size_t)pool_.size());
  if (opts_.use_reference) {
    register_reference_kernels();
  } else {
    register_working_kernels();
  }
}

CpuBackend::~CpuBackend() {
  if (!opts_.profile) return;
  int64_t total = 0;
  for (int64_t ns : profile_ns_) total += ns;
  std::fprintf(stderr, "%-12s %10s %12s %7s\n", "op", "calls", "ms", "share");
  for (size_t i = 0; i < profile_ns_.size(); ++i)
    if (profile_calls_[i])
      std::fprintf(stderr, "%-12s %10lld %12.2f %6.1f%%\n", ir::op_name((ir::Op)i), (long long)profile_calls_[i],
                   (double)profile_ns_[i] / 1e6, total ? 100.0 * (double)profile_ns_[i] / (double)total : 0.0);
}

DeviceInfo CpuBackend::info() const {
  DeviceInfo d;
  d.backend = "cpu";
  d.device = std::to_string(pool_.size()) + " threads" + (opts_.use_reference ? " (reference kernels)" : "");
  return d;
}

void CpuBackend::register_kernel(Op op, AcceptFn accepts, RunFn run) { kernels_[(size_t)op] = {accepts, run}; }

bool CpuBackend::supports(const ir::Graph& g, const Node& n) const {
  if (!ir::op_runs_kernel(n.op)) return true;
  const Kernel& k = kernels_[(size_t)n.op];
  return k.run && k.accepts(g, n);
}

void CpuBackend::register_working_kernels() {
  register_kernel(Op::GET_ROWS, weights_dequantizable, [](Call& c) {
    const Node& t = src(c, 0);
    return split(c, c.n.ne[1], c.n.ne[0] * c.n.ne[1], [&](int64_t b, int64_t e, int) {
      return kc::get_rows(t.dtype, c.src[0], t.ne[0], t.ne[1], I(c.src[1]), b, e, F(c.dst));
    });
  });
  register_kernel(Op::MATMUL, weights_dequantizable, [](Call& c) {
    const Node &x = src(c, 0), &w = src(c, 1);
    const int64_t K = x.ne[0], M = x.n_rows(), N = w.ne[1];
    const kernels::ActQuant aq = kernels::act_quant_for(w.dtype);
    const kernels::VecDotFn dot = kernels::vec_dot_for(w.dtype);
    if (!c.opts.exact_matmul && matmul_packed(c, M, K, N)) return true;
    if (!c.opts.exact_matmul && aq != kernels::ActQuant::NONE && dot) {
      // Quantize the activations once, then integer dot products against each weight row.
      const size_t row = kernels::act_row_bytes(aq, K);
      if (c.shared.size() < row * (size_t)M) c.shared.resize(row * (size_t)M);
      uint8_t* xq = c.shared.data();
      quantize_activations(c, aq, M, K, row, xq);
      return split(c, N, N * K * M, [&](int64_t b, int64_t e, int) {
        kc::matmul_quantized(xq, row, M, K, w.dtype, c.src[1], dot, kernels::vec_dot4_for(w.dtype), b, e, N, F(c.dst));
        return true;
      });
    }
    const void* wd = float_weights(c, K, N);
    return split(c, N, N * K * M, [&](int64_t b, int64_t e, int t) {
      return kc::matmul(F(c.src[0]), M, K, w.dtype, wd, b, e, N, F(c.dst), scratch(c, t, (size_t)K));
    });
  });
  register_kernel(Op::ADD, is_f32, [](Call& c) {
    const int64_t K = c.n.ne[0];
    return split(c, c.n.n_rows(), c.n.n_elements(), [&](int64_t b, int64_t e, int) {
      kc::add(F(c.src[0]), F(c.src[1]), K, b, e, src(c, 1).n_rows(), F(c.dst));
      return true;
    });
  });
  register_kernel(Op::MUL, is_f32, [](Call& c) {
    const int64_t K = c.n.ne[0];
    return split(c, c.n.n_rows(), c.n.n_elements(), [&](int64_t b, int64_t e, int) {
      kc::mul(F(c.src[0]), F(c.src[1]), K, b, e, src(c, 1).n_rows(), F(c.dst));
      return true;
    });
  });
  register_kernel(Op::SCALE, is_f32, [](Call& c) {
    return split(c, c.n.n_elements(), c.n.n_elements(), [&](int64_t b, int64_t e, int) {
      kc::scale(F(c.src[0]), b, e, c.n.p.f[0], F(c.dst));
      return true;
    });
  });
  register_kernel(Op::RMS_NORM, is_f32, [](Call& c) {
    return split(c, c.n.n_rows(), c.n.n_elements(), [&](int64_t b, int64_t e, int) {
      kc::rms_norm(F(c.src[0]), c.n.ne[0], b, e, c.n.p.f[0], F(c.dst));
      return true;
    });
  });
  register_kernel(Op::LAYER_NORM, is_f32, [](Call& c) {
    return split(c, c.n.n_rows(), c.n.n_elements(), [&](int64_t b, int64_t e, int) {
      kc::layer_norm(F(c.src[0]), c.n.ne[0], b, e, c.n.p.f[0], F(c.dst));
      return true;
    });
  });
  register_kernel(Op::ROPE, is_f32, [](Call& c) {
    const kernels::RopeArgs a = rope_args(c);
    return split(c, a.H * a.T, c.n.n_elements() * 8, [&](int64_t b, int64_t e, int) {
      kc::rope(a, b, e);
      return true;
    });
  });
  register_kernel(Op::SILU, is_f32, [](Call& c) {
    return split(c, c.n.n_elements(), c.n.n_elements() * 8, [&](int64_t b, int64_t e, int) {
      kc::silu(F(c.src[0]), b, e, F(c.dst));
      return true;
    });
  });
  register_kernel(Op::GELU, is_f32, [](Call& c) {
    return split(c, c.n.n_elements(), c.n.n_elements() * 8, [&](int64_t b, int64_t e, int) {
      kc::gelu(F(c.src[0]), b, e, F(c.dst));
      return true;
    });
  });
  register_kernel(Op::GELU_ERF, is_f32, [](Call& c) {
    return split(c, c.n.n_elements(), c.n.n_elements() * 8, [&](int64_t b, int64_t e, int) {
      kc::gelu_erf(F(c.src[0]), b, e, F(c.dst));
      return true;
    });
  });
  register_kernel(Op::SWIGLU, is_f32, [](Call& c) {
    return split(c, c.n.n_elements(), c.n.n_elements() * 8, [&](int64_t b, int64_t e, int) {
      kc::swiglu(F(c.src[0]), F(c.src[1]), b, e, F(c.dst));
      return true;
    });
  });
  register_kernel(Op::GEGLU, is_f32, [](Call& c) {
    return split(c, c.n.n_elements(), c.n.n_elements() * 8, [&](int64_t b, int64_t e, int) {
      kc::geglu(F(c.src[0]), F(c.src[1]), b, e, F(c.dst));
      return true;
    });
  });
  register_kernel(Op::SOFTMAX, is_f32, [](Call& c) {
    return split(c, c.n.n_rows(), c.n.n_elements() * 4, [&](int64_t b, int64_t e, int) {
      kc::softmax(F(c.src[0]), c.n.ne[0], b, e, c.n.p.f[0], F(c.dst));
      return true;
    });
  });
  register_kernel(Op::KV_STORE, cache_storable, [](Call& c) {
    const Node& x = src(c, 1);
    return split(c, x.ne[1] * x.ne[2], x.n_elements(), [&](int64_t b, int64_t e, int) {
      return kc::kv_store(c.n.dtype, c.dst, x.ne[0], x.ne[1], c.n.ne[2], F(c.src[1]), b, e, I(c.src[2]));
    });
  });
  register_kernel(Op::ATTENTION, kv_dequantizable, [](Call& c) {
    const kernels::AttentionArgs a = attention_args(c);
    if (a.Hkv <= 0 || a.Hq % a.Hkv != 0 || a.Hq / a.Hkv > 64) return false;
    const int64_t chunks = kc::attention_chunks(a, c.pool.size());
    std::vector<float> partials((size_t)kc::attention_partial_floats(a, chunks));
    const bool ok = split(c, kc::attention_units(a, chunks), a.Hq * a.T * a.D * 64, [&](int64_t b, int64_t e, int t) {
      return kc::attention(a, chunks, b, e, scratch(c, t, (size_t)kc::attention_scratch_floats(a)), partials.data());
    });
    if (ok && chunks > 1) kc::attention_merge(a, chunks, partials.data());
    return ok;
  });
}

void CpuBackend::register_reference_kernels() {
  register_kernel(Op::GET_ROWS, weights_dequantizable, [](Call& c) {
    const Node& t = src(c, 0);
    return kr::get_rows(t.dtype, c.src[0], t.ne[0], t.ne[1], I(c.src[1]), c.n.ne[1], F(c.dst));
  });
  register_kernel(Op::MATMUL, weights_dequantizable, [](Call& c) {
    const Node &x = src(c, 0), &w = src(c, 1);
    return kr::matmul(F(c.src[0]), x.n_rows(), x.ne[0], w.dtype, c.src[1], w.ne[1], F(c.dst));
  });
  register_kernel(Op::ADD, is_f32, [](Call& c) {
    kr::add(F(c.src[0]), F(c.src[1]), c.n.ne[0], c.n.n_rows(), src(c, 1).n_rows(), F(c.dst));
    return true;
  });
  register_kernel(Op::MUL, is_f32, [](Call& c) {
    kr::mul(F(c.src[0]), F(c.src[1]), c.n.ne[0], c.n.n_rows(), src(c, 1).n_rows(), F(c.dst));
    return true;
  });
  register_kernel(Op::SCALE, is_f32, [](Call& c) {
    kr::scale(F(c.src[0]), c.n.n_elements(), c.n.p.f[0], F(c.dst));
    return true;
  });
  register_kernel(Op::RMS_NORM, is_f32, [](Call& c) {
    kr::rms_norm(F(c.src[0]), c.n.ne[0], c.n.n_rows(), c.n.p.f[0], F(c.dst));
    return true;
  });
  register_kernel(Op::LAYER_NORM, is_f32, [](Call& c) {
    kr::layer_norm(F(c.src[0]), c.n.ne[0], c.n.n_rows(), c.n.p.f[0], F(c.dst));
    return true;
  });
  register_kernel(Op::ROPE, is_f32, [](Call& c) {
    kr::rope(rope_args(c));
    return true;
  });
  register_kernel(Op::SILU, is_f32, [](Call& c) {
    kr::silu(F(c.src[0]), c.n.n_elements(), F(c.dst));
    return true;
  });
  register_kernel(Op::GELU, is_f32, [](Call& c) {
    kr::gelu(F(c.src[0]), c.n.n_elements(), F(c.dst));
    return true;
  });
  register_kernel(Op::GELU_ERF, is_f32, [](Call& c) {
    kr::gelu_erf(F(c.src[0]), c.n.n_elements(), F(c.dst));
    return true;
  });
  register_kernel(Op::SWIGLU, is_f32, [](Call& c) {
    kr::swiglu(F(c.src[0]), F(c.src[1]), c.n.n_elements(), F(c.dst));
    return true;
  });
  register_kernel(Op::GEGLU, is_f32, [](Call& c) {
    kr::geglu(F(c.src[0]), F(c.src[1]), c.n.n_elements(), F(c.dst));
    return true;
  });
  register_kernel(Op::SOFTMAX, is_f32, [](Call& c) {
    kr::softmax(F(c.src[0]), c.n.ne[0], c.n.n_rows(), c.n.p.f[0], F(c.dst));
    return true;
  });
  register_kernel(Op::KV_STORE, cache_storable, [](Call& c) {
    const Node& x = src(c, 1);
    return kr::kv_store(c.n.dtype, c.dst, x.ne[0], x.ne[1], c.n.ne[2], F(c.src[1]), x.ne[2], I(c.src[2]));
  });
  register_kernel(Op::ATTENTION, kv_dequantizable, [](Call& c) { return kr::attention(attention_args(c)); });
}

Result<std::unique_ptr<Buffer>> CpuBackend::alloc(size_t bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!p) return Status::error("cpu: out of memory allocating " + std::to_string(bytes) + " bytes");
  return std::unique_ptr<Buffer>(new HostBuffer(*this, p, bytes, true));
}

Result<std::unique_ptr<Buffer>> CpuBackend::map_host(const void* ptr, size_t bytes) {
  return std::unique_ptr<Buffer>(new HostBuffer(*this, const_cast<void*>(ptr), bytes, false));
}

static Status check_range(const Buffer& b, size_t offset, size_t bytes, const char* what) {
  if (offset > b.size() || bytes > b.size() - offset)
    return Status::error(std::string("cpu: ") + what + " of " + std::to_string(bytes) + " bytes at offset " +
                         std::to_string(offset) + " is outside a buffer of " + std::to_string(b.size()));
  return Status();
}

Status CpuBackend::upload(Buffer& dst, size_t offset, const void* src, size_t bytes) {
  OSPREY_TRY(check_range(dst, offset, bytes, "upload"));
  std::memcpy((uint8_t*)dst.host_ptr() + offset, src, bytes);
  return Status();
}

Status CpuBackend::download(const Buffer& src, size_t offset, void* dst, size_t bytes) {
  OSPREY_TRY(check_range(src, offset, bytes, "download"));
  std::memcpy(dst, (const uint8_t*)src.host_ptr() + offset, bytes);
  return Status();
}

Status CpuBackend::fill_zero(Buffer& dst, size_t offset, size_t bytes) {
  OSPREY_TRY(check_range(dst, offset, bytes, "fill"));
  std::memset((uint8_t*)dst.host_ptr() + offset, 0, bytes);
  return Status();
}

Status CpuBackend::compute(const ir::Graph& g, const std::vector<ir::NodeId>& nodes,
                           const std::vector<Placement>& where) {
  auto ptr = [&](ir::NodeId id) -> uint8_t* {
    const Placement& p = where[(size_t)id];
    return p.buffer ? (uint8_t*)p.buffer->host_ptr() + p.offset : nullptr;
  };
  for (ir::NodeId id : nodes) {
    const Node& n = g.node(id);
    if (!ir::op_runs_kernel(n.op)) continue;
    const Kernel& k = kernels_[(size_t)n.op];
    if (!k.run || !k.accepts(g, n))
      return Status::error(std::string("cpu: no kernel for op ") + ir::op_name(n.op) + " (" + n.name + ")");
    Call c{g, n, {}, ptr(id), pool_, scratch_, shared_, opts_};
    for (int i = 0; i < n.n_src(); ++i) {
      c.src[(size_t)i] = ptr(n.src[(size_t)i]);
      c.src_at[(size_t)i] = where[(size_t)n.src[(size_t)i]];
    }
    const auto t0 = opts_.profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    const bool ok = k.run(c);
    if (opts_.profile) {
      profile_ns_[(size_t)n.op] += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
      ++profile_calls_[(size_t)n.op];
    }
    if (!ok)
      return Status::error(std::string("cpu: op ") + ir::op_name(n.op) + " '" + n.name +
                           "' failed: input data out of range (token id, position or cache cell)");
    if (n.op == opts_.perturb_op && n.dtype == DType::F32)
      for (int64_t i = 0; i < n.n_elements(); ++i) ((float*)c.dst)[i] *= 1.02f;
  }
  return Status();
}

}  // namespace osprey
