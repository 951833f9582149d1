// The KV cache: per layer, K and V tensors of [head_dim, n_head_kv, n_seq * n_ctx] cells on
// the model's backend. Sequence slot s owns cells [s * n_ctx, (s + 1) * n_ctx) and a token at
// position p of that sequence lives in cell s * n_ctx + p, so attention needs no cell map.
#pragma once
#include <deque>
#include <memory>
#include <string_view>

#include "engine/model/model.h"

namespace osprey {

// "f16", "bf16", "f32", "q8_0", "q4_0" (case-insensitive) -> the type; an error otherwise.
Result<DType> parse_cache_type(std::string_view name);
// K and V cache types from OSPREY_KV_CACHE_TYPE (both; OLLAMA_KV_CACHE_TYPE also honoured),
// overridden by OSPREY_KV_CACHE_TYPE_K / OSPREY_KV_CACHE_TYPE_V; f16 when unset.
Status cache_types_from_env(DType* k, DType* v);

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
