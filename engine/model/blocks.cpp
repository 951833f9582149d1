#include "engine/model/blocks.h"

#include <cmath>

namespace osprey::blocks {

using ir::NodeId;

NodeId norm(ir::Graph& g, NodeId x, const ir::Tensor* weight, float eps) {
  return g.mul(g.rms_norm(x, eps), g.tensor(*weight));
}

NodeId linear(ir::Graph& g, NodeId x, const ir::Tensor* w, const ir::Tensor* bias) {
  NodeId y = g.matmul(x, g.tensor(*w));
  return bias ? g.add(y, g.tensor(*bias)) : y;
}

NodeId self_attention(const Model& m, ir::Graph& g, NodeId x, size_t layer, const ForwardInputs& in,
                      const KvLayer& kv) {
  const HParams& hp = m.hparams();
  const LayerWeights& L = m.weights().layers[layer];
  const int64_t T = in.n_tokens;
  const bool swa = hp.layer_is_swa[layer];
  NodeId q = g.reshape(linear(g, x, L.wq, L.bq), {hp.head_dim_k, hp.n_head, T, 1});
  NodeId k = g.reshape(linear(g, x, L.wk, L.bk), {hp.head_dim_k, hp.n_head_kv, T, 1});
  NodeId v = g.reshape(linear(g, x, L.wv, L.bv), {hp.head_dim_v, hp.n_head_kv, T, 1});
  if (hp.qk_norm) {
    q = norm(g, q, L.q_norm, hp.rms_eps);
    k = norm(g, k, L.k_norm, hp.rms_eps);
  }
  const float base = swa ? hp.rope_base_swa : hp.rope_base;
  const float scale = swa ? hp.rope_scale_swa : hp.rope_scale;
  q = g.rope(q, in.positions, hp.n_rot, hp.rope_mode, base, scale);
  k = g.rope(k, in.positions, hp.n_rot, hp.rope_mode, base, scale);
  const NodeId ks = g.kv_store(g.tensor(*kv.k), k, in.kv_meta);
  const NodeId vs = g.kv_store(g.tensor(*kv.v), v, in.kv_meta);
  const float attn_scale = hp.attn_scale > 0 ? hp.attn_scale : 1.0f / std::sqrt((float)hp.head_dim_k);
  NodeId a = g.attention(q, ks, vs, in.kv_meta, attn_scale, swa ? hp.sliding_window : 0, in.cells_per_seq,
                         hp.attn_softcap);
  a = g.reshape(a, {hp.head_dim_v * hp.n_head, T, 1, 1});
  return linear(g, a, L.wo, L.bo);
}

NodeId feed_forward(const Model& m, ir::Graph& g, NodeId x, const LayerWeights& L) {
  const NodeId gate = linear(g, x, L.ffn_gate, nullptr);
  const NodeId up = linear(g, x, L.ffn_up, nullptr);
  const NodeId h = m.hparams().ffn_act == FfnActivation::GELU ? g.geglu(gate, up) : g.swiglu(gate, up);
  return linear(g, h, L.ffn_down, nullptr);
}

NodeId decoder(const Model& m, ir::Graph& g, const ForwardInputs& in, const std::vector<KvLayer>& kv) {
  const HParams& hp = m.hparams();
  const Weights& w = m.weights();
  NodeId x;
  if (in.tokens != ir::kNoNode) {
    x = g.get_rows(g.tensor(*w.tok_embd), in.tokens);
    // Only token embeddings are scaled: spliced-in embeddings (images) arrive ready.
    if (hp.embd_scale != 1.f) x = g.scale(x, hp.embd_scale);
  } else {
    x = in.embeddings;
  }
  for (size_t il = 0; il < (size_t)hp.n_layer; ++il) {
    const LayerWeights& L = w.layers[il];
    NodeId a = self_attention(m, g, norm(g, x, L.attn_norm, hp.rms_eps), il, in, kv[il]);
    if (hp.post_norms) a = norm(g, a, L.post_attn_norm, hp.rms_eps);
    x = g.add(x, a);
    NodeId f = feed_forward(m, g, norm(g, x, L.ffn_norm, hp.rms_eps), L);
    if (hp.post_norms) f = norm(g, f, L.post_ffn_norm, hp.rms_eps);
    x = g.add(x, f);
  }
  x = g.get_rows(x, in.logit_rows);
  x = norm(g, x, w.output_norm, hp.rms_eps);
  return g.matmul(x, g.tensor(w.output ? *w.output : *w.tok_embd));
}

Status load_decoder_weights(const Model& m, Weights* w, bool qkv_bias) {
  const HParams& hp = m.hparams();
  const int64_t E = hp.n_embd, Dq = hp.head_dim_k * hp.n_head, Dk = hp.head_dim_k * hp.n_head_kv,
                Dv = hp.head_dim_v * hp.n_head_kv, Do = hp.head_dim_v * hp.n_head;
  Status st;
  auto get = [&](const std::string& name, std::vector<int64_t> shape, bool optional = false) -> const ir::Tensor* {
    if (!st.ok()) return nullptr;
    auto r = m.tensor(name, std::move(shape), optional);
    if (!r) {
      st = r.status();
      return nullptr;
    }
    return r.value();
  };
  w->tok_embd = get("token_embd.weight", {E, hp.n_vocab});
  w->output_norm = get("output_norm.weight", {E});
  w->output = get("output.weight", {E, hp.n_vocab}, true);
  w->layers.resize((size_t)hp.n_layer);
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    LayerWeights& L = w->layers[(size_t)il];
    const std::string p = "blk." + std::to_string(il) + ".";
    L.attn_norm = get(p + "attn_norm.weight", {E});
    L.wq = get(p + "attn_q.weight", {E, Dq});
    L.wk = get(p + "attn_k.weight", {E, Dk});
    L.wv = get(p + "attn_v.weight", {E, Dv});
    L.wo = get(p + "attn_output.weight", {Do, E});
    L.bq = get(p + "attn_q.bias", {Dq}, !qkv_bias);
    L.bk = get(p + "attn_k.bias", {Dk}, !qkv_bias);
    L.bv = get(p + "attn_v.bias", {Dv}, !qkv_bias);
    L.bo = get(p + "attn_output.bias", {E}, true);
    if (hp.qk_norm) {
      L.q_norm = get(p + "attn_q_norm.weight", {hp.head_dim_k});
      L.k_norm = get(p + "attn_k_norm.weight", {hp.head_dim_k});
    }
    if (hp.post_norms) {
      L.post_attn_norm = get(p + "post_attention_norm.weight", {E});
      L.post_ffn_norm = get(p + "post_ffw_norm.weight", {E});
    }
    L.ffn_norm = get(p + "ffn_norm.weight", {E});
    L.ffn_gate = get(p + "ffn_gate.weight", {E, hp.n_ff});
    L.ffn_up = get(p + "ffn_up.weight", {E, hp.n_ff});
    L.ffn_down = get(p + "ffn_down.weight", {hp.n_ff, E});
  }
  if (!st.ok()) return st;
  // Element-wise weights are read as f32 by the graph; reject other types up front.
  auto f32 = [&](const ir::Tensor* t) {
    if (t && t->dtype != DType::F32 && st.ok())
      st = Status::error("tensor '" + t->name + "' is " + dtype_name(t->dtype) + "; norms and biases must be f32");
  };
  f32(w->output_norm);
  for (const LayerWeights& L : w->layers)
    for (const ir::Tensor* t : {L.attn_norm, L.bq, L.bk, L.bv, L.bo, L.q_norm, L.k_norm, L.post_attn_norm,
                                L.ffn_norm, L.post_ffn_norm})
      f32(t);
  return st;
}

}  // namespace osprey::blocks
