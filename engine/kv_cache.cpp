#include "engine/kv_cache.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace osprey {

// The cache types offered; the backend must also support storing them (checked at run).
constexpr DType kCacheTypes[] = {DType::F16, DType::BF16, DType::F32, DType::Q8_0, DType::Q4_0};

Result<DType> parse_cache_type(std::string_view name) {
  std::string n(name);
  for (char& c : n) c = (char)std::tolower((unsigned char)c);
  for (DType t : kCacheTypes)
    if (n == dtype_name(t)) return t;
  return Status::error("unknown KV cache type '" + std::string(name) + "' (use f16, bf16, f32, q8_0 or q4_0)");
}

Status cache_types_from_env(DType* k, DType* v) {
  *k = *v = DType::F16;
  auto apply = [](const char* var, std::initializer_list<DType*> out) -> Status {
    const char* s = std::getenv(var);
    if (!s || !*s) return Status();
    auto t = parse_cache_type(s);
    if (!t) return t.status().with_context(var);
    for (DType* o : out) *o = t.value();
    return Status();
  };
  OSPREY_TRY(apply("OLLAMA_KV_CACHE_TYPE", {k, v}));
  OSPREY_TRY(apply("OSPREY_KV_CACHE_TYPE", {k, v}));
  OSPREY_TRY(apply("OSPREY_KV_CACHE_TYPE_K", {k}));
  OSPREY_TRY(apply("OSPREY_KV_CACHE_TYPE_V", {v}));
  return Status();
}

Result<std::unique_ptr<KvCache>> KvCache::create(const Model& m, int64_t n_ctx, int64_t n_seq, DType k_type,
                                                 DType v_type) {
  const HParams& hp = m.hparams();
  if (n_ctx <= 0 || n_seq <= 0 || n_ctx > (1 << 24) || n_seq > 4096)
    return Status::error("kv cache: bad size n_ctx " + std::to_string(n_ctx) + ", n_seq " + std::to_string(n_seq));
  for (auto [type, d] : {std::pair{k_type, hp.head_dim_k}, std::pair{v_type, hp.head_dim_v}}) {
    const bool offered = std::find(std::begin(kCacheTypes), std::end(kCacheTypes), type) != std::end(kCacheTypes);
    if (!offered || dtype_row_bytes(type, d) < 0)
      return Status::error(std::string("kv cache: type ") + dtype_name(type) + " is not supported for head size " +
                           std::to_string(d) + " (use f16, bf16, f32, q8_0 or q4_0)");
  }
  std::unique_ptr<KvCache> c(new KvCache());
  c->n_ctx_ = n_ctx;
  c->n_seq_ = n_seq;
  const int64_t cells = n_ctx * n_seq;
  const size_t k_bytes = (size_t)dtype_row_bytes(k_type, hp.head_dim_k) * (size_t)(hp.n_head_kv * cells);
  const size_t v_bytes = (size_t)dtype_row_bytes(v_type, hp.head_dim_v) * (size_t)(hp.n_head_kv * cells);
  const size_t total = (k_bytes + v_bytes) * (size_t)hp.n_layer;
  auto buf = m.backend().alloc(total);
  if (!buf)
    return buf.status().with_context("kv cache of " + std::to_string(total >> 20) + " MiB for " +
                                     std::to_string(n_ctx) + " tokens x " + std::to_string(n_seq) + " sequences");
  c->buffer_ = std::move(buf.value());
  OSPREY_TRY(m.backend().fill_zero(*c->buffer_, 0, total));
  size_t off = 0;
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    auto add = [&](const char* kind, DType type, int64_t d, size_t bytes) {
      ir::Tensor t;
      t.name = std::string("cache_") + kind + "." + std::to_string(il);
      t.dtype = type;
      t.ne = {d, hp.n_head_kv, cells, 1};
      t.buffer = c->buffer_.get();
      t.offset = off;
      off += bytes;
      c->tensors_.push_back(std::move(t));
      return &c->tensors_.back();
    };
    KvLayer L;
    L.k = add("k", k_type, hp.head_dim_k, k_bytes);
    L.v = add("v", v_type, hp.head_dim_v, v_bytes);
    c->layers_.push_back(L);
  }
  return c;
}

}  // namespace osprey
