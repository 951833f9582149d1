// The KV cache: per layer, K and V tensors of [head_dim, n_head_kv, n_seq * n_ctx] cells on
// the model's backend. Sequence slot s owns cells [s * n_ctx, (s + 1) * n_ctx) and a token at
// position p of that sequence lives in cell s * n_ctx + p, so attention needs no cell map.
#pragma once
#include <deque>
#include <memory>

#include "engine/model/model.h"

namespace osprey {

class KvCache {
 public:
  static Result<std::unique_ptr<KvCache>> create(const Model& m, int64_t n_ctx, int64_t n_seq, DType k_type,
                                                 DType v_type);
  const std::vector<KvLayer>& layers() const { return layers_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_seq() const { return n_seq_; }
  size_t bytes() const { return buffer_ ? buffer_->size() : 0; }

 private:
  KvCache() = default;
  int64_t n_ctx_ = 0, n_seq_ = 0;
  std::unique_ptr<Buffer> buffer_;
  std::deque<ir::Tensor> tensors_;
  std::vector<KvLayer> layers_;
};

}  // namespace osprey
