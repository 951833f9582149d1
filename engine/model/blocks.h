// Shared building blocks of decoder-only transformers. Architectures differ by flags in
// HParams (biases, q/k norms, post-norms, activation, sliding windows), not by copies.
#pragma once
#include "engine/model/model.h"

namespace osprey::blocks {

ir::NodeId norm(ir::Graph& g, ir::NodeId x, const ir::Tensor* weight, float eps);
ir::NodeId linear(ir::Graph& g, ir::NodeId x, const ir::Tensor* w, const ir::Tensor* bias);
ir::NodeId self_attention(const Model& m, ir::Graph& g, ir::NodeId x, size_t layer, const ForwardInputs& in,
                          const KvLayer& kv);
ir::NodeId feed_forward(const Model& m, ir::Graph& g, ir::NodeId x, const LayerWeights& L);

// The standard pre-norm decoder: embeddings, n_layer blocks, final norm, output projection
// (tied to the embeddings when there is no output.weight). Returns logits [n_vocab, R].
ir::NodeId decoder(const Model& m, ir::Graph& g, const ForwardInputs& in, const std::vector<KvLayer>& kv);

// Finds the standard tensor names ("blk.N.attn_q.weight", ...) with their expected shapes;
// which optional ones are required follows the HParams flags.
Status load_decoder_weights(const Model& m, Weights* w, bool qkv_bias);

}  // namespace osprey::blocks
