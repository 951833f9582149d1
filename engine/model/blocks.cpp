#include "engine/model/blocks.h"

#include "engine/model/tensor_names.h"

#include <cmath>

namespace osprey::blocks {

using ir::NodeId;

NodeId norm(ir::Graph& g, NodeId x, const ir::Tensor* weight, float eps) {
  return g.mul(g.rms_norm(x, eps), g.tensor(*weight));
}

NodeId layer_norm(ir::Graph& g, NodeId x, const ir::Tensor* weight, const ir::Tensor* bias, float eps) {
  return g.add(g.mul(g.layer_norm(x, eps), g.tensor(*weight)), g.tensor(*bias));
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
  if (hp.rope) {
    const float base = swa ? hp.rope_base_swa : hp.rope_base;
    const float scale = swa ? hp.rope_scale_swa : hp.rope_scale;
    q = g.rope(q, in.positions, hp.n_rot, hp.rope_mode, base, scale);
    k = g.rope(k, in.positions, hp.n_rot, hp.rope_mode, base, scale);
  }
  const NodeId ks = g.kv_store(g.tensor(*kv.k), k, in.kv_meta);
  const NodeId vs = g.kv_store(g.tensor(*kv.v), v, in.kv_meta);
  const float attn_scale = hp.attn_scale > 0 ? hp.attn_scale : 1.0f / std::sqrt((float)hp.head_dim_k);
  NodeId a = g.attention(q, ks, vs, hp.causal ? in.kv_meta : in.seq_ends, attn_scale, swa ? hp.sliding_window : 0, in.cells_per_seq,
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
  if (in.hidden_states) return x;  // what llama.cpp pools for embeddings
  return g.matmul(x, g.tensor(w.output ? *w.output : *w.tok_embd));
}

const ir::Tensor* TensorLookup::operator()(const std::string& name, std::vector<int64_t> shape, bool optional) {
  if (!status.ok()) return nullptr;
  auto r = m.tensor(name, std::move(shape), optional);
  if (!r) {
    status = r.status();
    return nullptr;
  }
  return r.value();
}

void TensorLookup::require_f32(std::initializer_list<const ir::Tensor*> ts) {
  for (const ir::Tensor* t : ts)
    if (t && t->dtype != DType::F32 && status.ok())
      status = Status::error("tensor '" + t->name + "' is " + dtype_name(t->dtype) + "; norms and biases must be f32");
}

Status load_decoder_weights(const Model& m, Weights* w, bool qkv_bias) {
  const HParams& hp = m.hparams();
  const int64_t E = hp.n_embd, Dq = hp.head_dim_k * hp.n_head, Dk = hp.head_dim_k * hp.n_head_kv,
                Dv = hp.head_dim_v * hp.n_head_kv, Do = hp.head_dim_v * hp.n_head;
  TensorLookup get{m, Status()};
  using tn::T;
  w->tok_embd = get(tn::gguf(T::TOKEN_EMBD), {E, hp.n_vocab});
  w->output_norm = get(tn::gguf(T::OUTPUT_NORM), {E});
  w->output = get(tn::gguf(T::OUTPUT), {E, hp.n_vocab}, true);
  w->layers.resize((size_t)hp.n_layer);
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    LayerWeights& L = w->layers[(size_t)il];
    auto name = [&](T t, const char* suffix = "weight") { return tn::gguf(t, il, suffix); };
    L.attn_norm = get(name(T::ATTN_NORM), {E});
    L.wq = get(name(T::ATTN_Q), {E, Dq});
    L.wk = get(name(T::ATTN_K), {E, Dk});
    L.wv = get(name(T::ATTN_V), {E, Dv});
    L.wo = get(name(T::ATTN_OUT), {Do, E});
    L.bq = get(name(T::ATTN_Q, "bias"), {Dq}, !qkv_bias);
    L.bk = get(name(T::ATTN_K, "bias"), {Dk}, !qkv_bias);
    L.bv = get(name(T::ATTN_V, "bias"), {Dv}, !qkv_bias);
    L.bo = get(name(T::ATTN_OUT, "bias"), {E}, true);
    if (hp.qk_norm) {
      L.q_norm = get(name(T::ATTN_Q_NORM), {hp.head_dim_k});
      L.k_norm = get(name(T::ATTN_K_NORM), {hp.head_dim_k});
    }
    if (hp.post_norms) {
      L.post_attn_norm = get(name(T::ATTN_POST_NORM), {E});
      L.post_ffn_norm = get(name(T::FFN_POST_NORM), {E});
    }
    L.ffn_norm = get(name(T::FFN_NORM), {E});
    L.ffn_gate = get(name(T::FFN_GATE), {E, hp.n_ff});
    L.ffn_up = get(name(T::FFN_UP), {E, hp.n_ff});
    L.ffn_down = get(name(T::FFN_DOWN), {hp.n_ff, E});
  }
  if (!get.status.ok()) return get.status;
  get.require_f32({w->output_norm});
  for (const LayerWeights& L : w->layers)
    get.require_f32({L.attn_norm, L.bq, L.bk, L.bv, L.bo, L.q_norm, L.k_norm, L.post_attn_norm, L.ffn_norm,
                     L.post_ffn_norm});
  return get.status;
}

}  // namespace osprey::blocks
