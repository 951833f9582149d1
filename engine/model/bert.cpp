// BERT encoders (all-MiniLM, bge, ...): learned absolute positions and token-type
// embeddings, a LayerNorm after the embeddings, bidirectional attention, post-norm blocks
// (LayerNorm after each residual add), exact-erf GELU FFN, biases on every projection.
// There is no LM head: the graph ends in the final hidden states, which engine/embed.cpp
// pools. Tensor and key names follow llama.cpp's "bert" GGUF convention.
#include "engine/model/blocks.h"

namespace osprey {

using ir::NodeId;

static Status bert_hparams(const gguf::File& f, HParams* hp) {
  hp->rope = false;
  auto causal = f.get_bool(arch_key(*hp, "attention.causal"), false);
  if (!causal) return causal.status();
  hp->causal = causal.value();
  auto eps = f.get_float(arch_key(*hp, "attention.layer_norm_epsilon"), 1e-12);
  if (!eps) return eps.status();
  if (!(eps.value() > 0 && eps.value() < 1)) return Status::error("bad layer_norm_epsilon " + std::to_string(eps.value()));
  hp->layer_norm_eps = (float)eps.value();
  // sentence-transformers BERT models pool by mean unless the file says otherwise.
  if (!f.find(arch_key(*hp, "pooling_type"))) hp->pooling = Pooling::MEAN;
  return Status();
}

static Status bert_weights(const Model& m, Weights* w) {
  const HParams& hp = m.hparams();
  const int64_t E = hp.n_embd, D = hp.head_dim_k * hp.n_head;
  if (hp.n_head_kv != hp.n_head || hp.head_dim_v != hp.head_dim_k)
    return Status::error("bert: grouped-query attention and distinct value sizes are not part of BERT");
  blocks::TensorLookup get{m, Status()};
  w->tok_embd = get("token_embd.weight", {E, hp.n_vocab});
  w->pos_embd = get("position_embd.weight", {E, hp.n_ctx_train});
  auto n_types = m.file().get_int("tokenizer.ggml.token_type_count", 2);
  if (!n_types) return n_types.status();
  if (n_types.value() < 1 || n_types.value() > 1024)
    return Status::error("bad tokenizer.ggml.token_type_count " + std::to_string(n_types.value()));
  w->tok_types = get("token_types.weight", {E, n_types.value()}, true);
  if (n_types.value() == 1 && !w->tok_types) w->tok_types = get("token_types.weight", {E}, true);
  w->tok_embd_norm = get("token_embd_norm.weight", {E});
  w->tok_embd_norm_b = get("token_embd_norm.bias", {E});
  w->layers.resize((size_t)hp.n_layer);
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    LayerWeights& L = w->layers[(size_t)il];
    const std::string p = "blk." + std::to_string(il) + ".";
    L.wq = get(p + "attn_q.weight", {E, D});
    L.bq = get(p + "attn_q.bias", {D});
    L.wk = get(p + "attn_k.weight", {E, D});
    L.bk = get(p + "attn_k.bias", {D});
    L.wv = get(p + "attn_v.weight", {E, D});
    L.bv = get(p + "attn_v.bias", {D});
    L.wo = get(p + "attn_output.weight", {D, E});
    L.bo = get(p + "attn_output.bias", {E});
    L.attn_norm = get(p + "attn_output_norm.weight", {E});
    L.attn_norm_b = get(p + "attn_output_norm.bias", {E});
    L.ffn_up = get(p + "ffn_up.weight", {E, hp.n_ff});
    L.ffn_up_b = get(p + "ffn_up.bias", {hp.n_ff});
    L.ffn_down = get(p + "ffn_down.weight", {hp.n_ff, E});
    L.ffn_down_b = get(p + "ffn_down.bias", {E});
    L.ffn_norm = get(p + "layer_output_norm.weight", {E});
    L.ffn_norm_b = get(p + "layer_output_norm.bias", {E});
  }
  if (!get.status.ok()) return get.status;
  get.require_f32({w->tok_embd_norm, w->tok_embd_norm_b});
  for (const LayerWeights& L : w->layers)
    get.require_f32({L.bq, L.bk, L.bv, L.bo, L.attn_norm, L.attn_norm_b, L.ffn_up_b, L.ffn_down_b, L.ffn_norm,
                     L.ffn_norm_b});
  return get.status;
}

static NodeId bert_build(const Model& m, ir::Graph& g, const ForwardInputs& in, const std::vector<KvLayer>& kv) {
  const HParams& hp = m.hparams();
  const Weights& w = m.weights();
  const float eps = hp.layer_norm_eps;
  NodeId x = in.tokens != ir::kNoNode ? g.get_rows(g.tensor(*w.tok_embd), in.tokens) : in.embeddings;
  x = g.add(x, g.get_rows(g.tensor(*w.pos_embd), in.positions));
  if (w.tok_types) {  // every token is in segment 0: add that row to all of them
    const NodeId type0 = g.input(DType::I32, {1, 1, 1, 1}, std::vector<uint8_t>(4, 0), "token_type");
    x = g.add(x, g.get_rows(g.tensor(*w.tok_types), type0));
  }
  x = blocks::layer_norm(g, x, w.tok_embd_norm, w.tok_embd_norm_b, eps);
  for (size_t il = 0; il < (size_t)hp.n_layer; ++il) {
    const LayerWeights& L = w.layers[il];
    x = blocks::layer_norm(g, g.add(x, blocks::self_attention(m, g, x, il, in, kv[il])), L.attn_norm, L.attn_norm_b, eps);
    const NodeId h = g.gelu_erf(blocks::linear(g, x, L.ffn_up, L.ffn_up_b));
    x = blocks::layer_norm(g, g.add(x, blocks::linear(g, h, L.ffn_down, L.ffn_down_b)), L.ffn_norm, L.ffn_norm_b, eps);
  }
  return g.get_rows(x, in.logit_rows);
}

extern const Architecture kBertArch = {"bert", bert_hparams, bert_weights, bert_build};

}  // namespace osprey
