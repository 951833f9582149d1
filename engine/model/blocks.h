// Shared building blocks of decoder-only transformers. Architectures differ by flags in
// HParams (biases, q/k norms, post-norms, activation, sliding windows), not by copies.
#pragma once
#include "engine/model/model.h"

namespace osprey::blocks {

ir::NodeId norm(ir::Graph& g, ir::NodeId x, const ir::Tensor* weight, float eps);
// LayerNorm with its weight and bias.
ir::NodeId layer_norm(ir::Graph& g, ir::NodeId x, const ir::Tensor* weight, const ir::Tensor* bias, float eps);
ir::NodeId linear(ir::Graph& g, ir::NodeId x, const ir::Tensor* w, const ir::Tensor* bias);
ir::NodeId self_attention(const Model& m, ir::Graph& g, ir::NodeId x, size_t layer, const ForwardInputs& in,
                          const KvLayer& kv);
ir::NodeId feed_forward(const Model& m, ir::Graph& g, ir::NodeId x, const LayerWeights& L);

// The standard pre-norm decoder: embeddings, n_layer blocks, final norm, output projection
// (tied to the embeddings when there is no output.weight). Returns logits [n_vocab, R].
ir::NodeId decoder(const Model& m, ir::Graph& g, const ForwardInputs& in, const std::vector<KvLayer>& kv);

// Looks weights up by name and expected shape, keeping the first error, so a loader can list
// its tensors and check once.
struct TensorLookup {
  const Model& m;
  Status status;
  const ir::Tensor* operator()(const std::string& name, std::vector<int64_t> shape, bool optional = false);
  // Records an error unless every given tensor (null ones skipped) is f32: element-wise
  // weights (norms, biases) are read as f32 by the graph.
  void require_f32(std::initializer_list<const ir::Tensor*> ts);
};

// Finds the standard tensor names ("blk.N.attn_q.weight", ...) with their expected shapes;
// which optional ones are required follows the HParams flags.
Status load_decoder_weights(const Model& m, Weights* w, bool qkv_bias);

}  // namespace osprey::blocks
