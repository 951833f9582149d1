#include "engine/session.h"

#include <cstring>

namespace osprey {
namespace {

template <class T>
std::vector<uint8_t> bytes_of(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

}  // namespace

Result<std::unique_ptr<Context>> Context::create(const Model& m, ContextParams p, std::vector<Backend*> backends) {
  if (p.n_batch <= 0) return Status::error("context: n_batch must be positive");
  if (backends.empty()) backends.push_back(&m.backend());
  std::unique_ptr<Context> c(new Context(m, p, std::move(backends)));
  auto kv = KvCache::create(m, p.n_ctx, p.n_seq, p.k_type, p.v_type);
  if (!kv) return kv.status();
  c->kv_ = std::move(kv.value());
  return c;
}

Status Context::decode(const std::vector<BatchToken>& batch, std::vector<float>* logits, const float* embeddings) {
  if (logits) logits->clear();
  const HParams& hp = m_.hparams();
  // Encoders (BERT) end in hidden states, not logits; they embed through engine/embed.h.
  if (!hp.causal) return Status::error("this is an embedding model: it has no language-model head to generate text with");
  for (size_t i = 0; i < batch.size(); ++i) {
    const BatchToken& t = batch[i];
    if (t.seq < 0 || t.seq >= p_.n_seq)
      return Status::error("decode: token " + std::to_string(i) + " has sequence " + std::to_string(t.seq) +
                           ", outside [0, " + std::to_string(p_.n_seq) + ")");
    if (t.pos < 0 || t.pos >= p_.n_ctx)
      return Status::error("decode: position " + std::to_string(t.pos) + " is outside the context of " +
                           std::to_string(p_.n_ctx) + " tokens");
    if (!embeddings && (t.token < 0 || t.token >= hp.n_vocab))
      return Status::error("decode: token id " + std::to_string(t.token) + " is outside the vocabulary of " +
                           std::to_string(hp.n_vocab));
  }
  // Tokens of one sequence must see the keys of earlier ones in the same batch; running the
  // chunks in order keeps that true across chunk boundaries too.
  for (size_t b = 0; b < batch.size(); b += (size_t)p_.n_batch) {
    const size_t n = std::min(batch.size() - b, (size_t)p_.n_batch);
    OSPREY_TRY(decode_chunk(batch.data() + b, n, logits, embeddings ? embeddings + b * hp.n_embd : nullptr));
  }
  return Status();
}

Status Context::decode_chunk(const BatchToken* batch, size_t n, std::vector<float>* logits, const float* embeddings) {
  const HParams& hp = m_.hparams();
  const int64_t T = (int64_t)n;
  std::vector<int32_t> tokens(n), pos(n), meta(2 * n), rows;
  for (size_t i = 0; i < n; ++i) {
    tokens[i] = batch[i].token;
    pos[i] = batch[i].pos;
    meta[2 * i] = (int32_t)(batch[i].seq * p_.n_ctx);
    meta[2 * i + 1] = batch[i].pos;
    if (batch[i].logits) rows.push_back((int32_t)i);
  }
  // The graph always ends in logits; with none wanted we still compute one row (cheap
  // compared with the layers) rather than special-case the graph.
  const bool want = !rows.empty();
  if (!want) rows.push_back((int32_t)(n - 1));

  ir::Graph g;
  ForwardInputs in;
  in.n_tokens = T;
  in.cells_per_seq = p_.n_ctx;
  if (embeddings) {
    std::vector<float> e(embeddings, embeddings + n * (size_t)hp.n_embd);
    in.embeddings = g.input(DType::F32, {hp.n_embd, T, 1, 1}, bytes_of(e), "embeddings");
  } else {
    in.tokens = g.input(DType::I32, {T, 1, 1, 1}, bytes_of(tokens), "tokens");
  }
  in.positions = g.input(DType::I32, {T, 1, 1, 1}, bytes_of(pos), "positions");
  in.kv_meta = g.input(DType::I32, {2, T, 1, 1}, bytes_of(meta), "kv_meta");
  in.logit_rows = g.input(DType::I32, {(int64_t)rows.size(), 1, 1, 1}, bytes_of(rows), "logit_rows");
  const ir::NodeId out = m_.arch().build(m_, g, in, kv_->layers());
  OSPREY_TRY(g.status().with_context("building graph"));
  g.mark_output(out);
  std::vector<std::vector<float>> outs;
  OSPREY_TRY(exec_.run(g, &outs));
  if (want && logits) logits->insert(logits->end(), outs[0].begin(), outs[0].end());
  return Status();
}

}  // namespace osprey
