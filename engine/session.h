// Context: a model plus a KV cache for n_seq sequences, and the batch decode the CLI and the
// server drive. One decode call may mix tokens of different sequences at different
// positions; each token says whether its logits are wanted.
#pragma once
#include <memory>
#include <vector>

#include "engine/executor.h"
#include "engine/kv_cache.h"
#include "engine/model/model.h"

namespace osprey {

struct BatchToken {
  int32_t token = 0;   // ignored when the batch carries embeddings
  int32_t seq = 0;     // sequence slot, [0, n_seq)
  int32_t pos = 0;     // position in that sequence, [0, n_ctx)
  bool logits = false;
};

struct ContextParams {
  int64_t n_ctx = 4096;   // per sequence
  int64_t n_seq = 1;
  int64_t n_batch = 512;  // tokens per graph run; longer batches are split
  DType k_type = DType::F16;  // KV cache element types: f16, bf16, f32, q8_0, q4_0
  DType v_type = DType::F16;
};

class Context {
 public:
  static Result<std::unique_ptr<Context>> create(const Model& m, ContextParams p, std::vector<Backend*> backends = {});
  const Model& model() const { return m_; }
  const ContextParams& params() const { return p_; }
  // Optional; the observer must outlive the decode calls it watches.
  void set_matmul_observer(MatmulObserver* o) { exec_.set_matmul_observer(o); }
  // Runs the batch. `embeddings`, if given, holds n_embd floats per token and replaces the
  // token lookup (image features, say). `logits` receives n_vocab floats for each token
  // with logits=true, in batch order.
  Status decode(const std::vector<BatchToken>& batch, std::vector<float>* logits, const float* embeddings = nullptr);

 private:
  Context(const Model& m, ContextParams p, std::vector<Backend*> b) : m_(m), p_(p), exec_(std::move(b)) {}
  Status decode_chunk(const BatchToken* batch, size_t n, std::vector<float>* logits, const float* embeddings);
  const Model& m_;
  ContextParams p_;
  Executor exec_;
  std::unique_ptr<KvCache> kv_;
};

}  // namespace osprey
