#include "engine/embed.h"

#include <cmath>
#include <cstring>

#include "engine/kv_cache.h"

namespace osprey {
namespace {

std::vector<uint8_t> bytes_of(const std::vector<int32_t>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(int32_t));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::vector<Backend*> or_model_backend(const Model& m, std::vector<Backend*> b) {
  if (b.empty()) b.push_back(&m.backend());
  return b;
}

}  // namespace

Embedder::Embedder(const Model& m, std::vector<Backend*> backends)
    : m_(m), pooling_(m.hparams().pooling), exec_(or_model_backend(m, std::move(backends))) {}

Result<std::vector<std::vector<float>>> Embedder::embed(const std::vector<std::vector<int32_t>>& seqs) {
  const HParams& hp = m_.hparams();
  std::vector<std::vector<float>> out;
  if (seqs.empty()) return out;
  // Sequences are packed one after another: sequence s owns cells [offset, offset + len).
  std::vector<int32_t> tokens, pos, kv_meta, seq_ends, rows;
  int64_t total = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int64_t len = (int64_t)seqs[s].size();
    if (len == 0) return Status::error("embed: input " + std::to_string(s) + " has no tokens");
    if (len > hp.n_ctx_train)
      return Status::error("embed: input " + std::to_string(s) + " has " + std::to_string(len) +
                           " tokens, more than the model's context of " + std::to_string(hp.n_ctx_train));
    if (total + len > INT32_MAX / 2) return Status::error("embed: batch too large");
    for (int64_t i = 0; i < len; ++i) {
      const int32_t id = seqs[s][(size_t)i];
      if (id < 0 || id >= hp.n_vocab)
        return Status::error("embed: token id " + std::to_string(id) + " is outside the vocabulary of " +
                             std::to_string(hp.n_vocab));
      tokens.push_back(id);
      pos.push_back((int32_t)i);
      kv_meta.insert(kv_meta.end(), {(int32_t)total, (int32_t)i});
      seq_ends.insert(seq_ends.end(), {(int32_t)total, (int32_t)(len - 1)});
      const bool wanted = pooling_ == Pooling::MEAN || (pooling_ == Pooling::CLS && i == 0) ||
                          (pooling_ != Pooling::MEAN && pooling_ != Pooling::CLS && i == len - 1);
      if (wanted) rows.push_back((int32_t)(total + i));
    }
    total += len;
  }
  auto kv = KvCache::create(m_, total, 1, DType::F32, DType::F32);
  if (!kv) return kv.status().with_context("embed");

  ir::Graph g;
  ForwardInputs in;
  in.n_tokens = total;
  in.cells_per_seq = total;
  in.hidden_states = true;
  in.tokens = g.input(DType::I32, {total, 1, 1, 1}, bytes_of(tokens), "tokens");
  in.positions = g.input(DType::I32, {total, 1, 1, 1}, bytes_of(pos), "positions");
  in.kv_meta = g.input(DType::I32, {2, total, 1, 1}, bytes_of(kv_meta), "kv_meta");
  in.seq_ends = g.input(DType::I32, {2, total, 1, 1}, bytes_of(seq_ends), "seq_ends");
  in.logit_rows = g.input(DType::I32, {(int64_t)rows.size(), 1, 1, 1}, bytes_of(rows), "pooled_rows");
  const ir::NodeId h = m_.arch().build(m_, g, in, kv.value()->layers());
  OSPREY_TRY(g.status().with_context("building embedding graph"));
  if (g.node(h).ne[0] != hp.n_embd) return Status::error("embed: the model's graph does not end in hidden states");
  g.mark_output(h);
  std::vector<std::vector<float>> outs;
  OSPREY_TRY(exec_.run(g, &outs));
  const std::vector<float>& hid = outs[0];
  const size_t E = (size_t)hp.n_embd;
  size_t row = 0;
  for (const auto& s : seqs) {
    const size_t n = pooling_ == Pooling::MEAN ? s.size() : 1;
    std::vector<double> acc(E, 0.0);
    for (size_t r = 0; r < n; ++r, ++row)
      for (size_t e = 0; e < E; ++e) acc[e] += hid[row * E + e];
    std::vector<float> v(E);
    for (size_t e = 0; e < E; ++e) v[e] = (float)(acc[e] / (double)n);
    for (float x : v)
      if (!std::isfinite(x)) return Status::error("embed: the embedding has NaN or infinite values");
    out.push_back(std::move(v));
  }
  return out;
}

void l2_normalize(std::vector<float>* v) {
  double ss = 0;
  for (float x : *v) ss += (double)x * x;
  if (ss <= 0) return;
  const double inv = 1.0 / std::sqrt(ss);
  for (float& x : *v) x = (float)(x * inv);
}

}  // namespace osprey
