// Llama family (Llama 2/3, SmolLM, Mistral-style dense models): pre-norm decoder, RoPE on
// adjacent pairs (GGUF conversion permutes q/k for this), SwiGLU FFN, optional output tie.
#include "engine/model/blocks.h"

namespace osprey {

static Status llama_hparams(const gguf::File& f, HParams* hp) {
  hp->rope_mode = ir::RopeMode::NORMAL;
  hp->ffn_act = FfnActivation::SILU;
  return Status();
}

static Status llama_weights(const Model& m, Weights* w) { return blocks::load_decoder_weights(m, w, false); }

extern const Architecture kLlamaArch = {"llama", llama_hparams, llama_weights, blocks::decoder};

}  // namespace osprey
