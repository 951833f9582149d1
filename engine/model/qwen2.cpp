// Qwen2 / Qwen2.5: the Llama block with biases on q, k and v, and NeoX-style RoPE.
#include "engine/model/blocks.h"

namespace osprey {

static Status qwen2_hparams(const gguf::File& f, HParams* hp) {
  hp->rope_mode = ir::RopeMode::NEOX;
  hp->ffn_act = FfnActivation::SILU;
  return Status();
}

static Status qwen2_weights(const Model& m, Weights* w) { return blocks::load_decoder_weights(m, w, true); }

extern const Architecture kQwen2Arch = {"qwen2", qwen2_hparams, qwen2_weights, blocks::decoder};

}  // namespace osprey
