// A loaded model: hyperparameters from GGUF metadata, weight tensors placed on a backend,
// the tokenizer, and the architecture that turns a batch into a graph.
#pragma once
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "engine/ir/graph.h"
#include "engine/tokenizer/tokenizer.h"
#include "formats/gguf.h"

namespace osprey {

enum class FfnActivation { SILU, GELU };
// How a sequence's hidden states become one embedding; GGUF <arch>.pooling_type numbering.
enum class Pooling : int64_t { NONE = 0, MEAN = 1, CLS = 2, LAST = 3 };

struct HParams {
  std::string arch;
  int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ff = 0, n_ctx_train = 0;
  int64_t head_dim_k = 0, head_dim_v = 0, n_rot = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.f, rope_scale = 1.f;          // full-attention layers
  float rope_base_swa = 10000.f, rope_scale_swa = 1.f;  // sliding-window layers
  ir::RopeMode rope_mode = ir::RopeMode::NORMAL;
  int64_t sliding_window = 0;
  std::vector<bool> layer_is_swa;  // per layer
  float attn_scale = 0;            // 0: 1/sqrt(head_dim_k)
  float attn_softcap = 0, final_softcap = 0;
  float embd_scale = 1.f;          // multiplies token embeddings (Gemma: sqrt(n_embd))
  bool qk_norm = false;            // per-head RMS norm of q and k before rope
  bool post_norms = false;         // norms after attention and FFN outputs (Gemma 3)
  FfnActivation ffn_act = FfnActivation::SILU;
  bool rope = true;                // rotary positions (BERT: learned absolute positions instead)
  bool causal = true;              // false: each token attends to its whole sequence (BERT)
  float layer_norm_eps = 1e-12f;   // LayerNorm models (BERT)
  // Embedding pooling: <arch>.pooling_type when the file has it (NONE there means the last
  // token, as Ollama falls back to), else the architecture's default (decoders: last token).
  Pooling pooling = Pooling::LAST;
};

struct LayerWeights {
  const ir::Tensor *attn_norm = nullptr, *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr;
  const ir::Tensor *bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr;
  const ir::Tensor *q_norm = nullptr, *k_norm = nullptr, *post_attn_norm = nullptr;
  const ir::Tensor *ffn_norm = nullptr, *ffn_gate = nullptr, *ffn_up = nullptr, *ffn_down = nullptr;
  const ir::Tensor* post_ffn_norm = nullptr;
  // LayerNorm biases and FFN biases (BERT; there attn_norm / ffn_norm are the norms after
  // the attention and FFN residual adds).
  const ir::Tensor *attn_norm_b = nullptr, *ffn_norm_b = nullptr, *ffn_up_b = nullptr, *ffn_down_b = nullptr;
};

struct Weights {
  const ir::Tensor *tok_embd = nullptr, *output_norm = nullptr, *output = nullptr;
  // Learned absolute positions, token-type (segment) embeddings, the LayerNorm after the
  // embeddings (BERT).
  const ir::Tensor *pos_embd = nullptr, *tok_types = nullptr, *tok_embd_norm = nullptr, *tok_embd_norm_b = nullptr;
  std::vector<LayerWeights> layers;
};

// The per-run inputs a model's graph reads, already validated by the caller.
struct ForwardInputs {
  ir::NodeId tokens = ir::kNoNode;     // i32 [T], or kNoNode when embeddings are given
  ir::NodeId embeddings = ir::kNoNode; // f32 [n_embd, T]
  ir::NodeId positions = ir::kNoNode;  // i32 [T]
  ir::NodeId kv_meta = ir::kNoNode;    // i32 [2, T]: slot base cell, position
  ir::NodeId logit_rows = ir::kNoNode; // i32 [R]: rows whose logits are wanted
  // Bidirectional attention (HParams::causal false): i32 [2, T], slot base cell and the last
  // position of the token's sequence, so every token sees its whole sequence.
  ir::NodeId seq_ends = ir::kNoNode;
  // Return the final hidden states [n_embd, R] of the logit rows instead of logits.
  bool hidden_states = false;
  int64_t n_tokens = 0;
  int64_t cells_per_seq = 0;
};

struct KvLayer {
  const ir::Tensor* k = nullptr;
  const ir::Tensor* v = nullptr;
};

class Model;

struct Architecture {
  const char* name;
  // Reads hyperparameters (hp->arch and the common keys are filled in already).
  Status (*load_hparams)(const gguf::File& f, HParams* hp);
  // Finds the weights by name (hp is final).
  Status (*load_weights)(const Model& m, Weights* w);
  // Adds the forward pass; returns the logits node [n_vocab, R] (or the hidden states, see
  // ForwardInputs::hidden_states; encoders without an LM head always return those).
  ir::NodeId (*build)(const Model& m, ir::Graph& g, const ForwardInputs& in, const std::vector<KvLayer>& kv);
};

const Architecture* find_architecture(const std::string& name);
std::vector<std::string> architecture_names();

class Model {
 public:
  static Result<std::unique_ptr<Model>> load(const std::string& path, Backend& backend);

  const HParams& hparams() const { return hp_; }
  const Weights& weights() const { return w_; }
  const Tokenizer& tokenizer() const { return *tok_; }
  const gguf::File& file() const { return *file_; }
  const Architecture& arch() const { return *arch_; }
  Backend& backend() const { return *backend_; }

  // A weight by GGUF name with an expected shape (trailing 1s may be omitted); an error
  // names the tensor and the mismatch. `optional` tensors may be absent (returns nullptr).
  Result<const ir::Tensor*> tensor(const std::string& name, std::vector<int64_t> shape, bool optional = false) const;

 private:
  Model() = default;
  HParams hp_;
  Weights w_;
  const Architecture* arch_ = nullptr;
  Backend* backend_ = nullptr;
  std::unique_ptr<gguf::File> file_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Buffer> weights_buffer_;
  std::deque<ir::Tensor> tensors_;  // stable addresses
};

// Key for per-architecture metadata: "<arch>.<suffix>".
std::string arch_key(const HParams& hp, const char* suffix);

}  // namespace osprey
