// Gemma 3: sliding-window attention on five of every six layers (with their own RoPE base),
// per-head RMS norms on q and k, norms after attention and FFN outputs, GeGLU, embeddings
// scaled by sqrt(n_embd). GGUF conversion already folds Gemma's (1 + w) norm weights.
#include <cmath>

#include "engine/model/blocks.h"

namespace osprey {

static Status gemma3_hparams(const gguf::File& f, HParams* hp) {
  hp->rope_mode = ir::RopeMode::NEOX;
  hp->ffn_act = FfnActivation::GELU;
  hp->qk_norm = true;
  hp->post_norms = true;
  hp->embd_scale = std::sqrt((float)hp->n_embd);
  auto window = f.get_int(arch_key(*hp, "attention.sliding_window"), 0);
  if (!window) return window.status();
  if (window.value() < 0) return Status::error("negative sliding window");
  hp->sliding_window = window.value();
  // Every sixth layer attends globally; the rest use the window and a local RoPE base.
  for (size_t il = 0; il < hp->layer_is_swa.size(); ++il) hp->layer_is_swa[il] = hp->sliding_window > 0 && (il + 1) % 6 != 0;
  hp->rope_base_swa = 10000.f;
  hp->rope_scale_swa = 1.f;
  // Queries are scaled by query_pre_attn_scalar^-1/2, which GGUF files leave implicit: it
  // equals the head size for all published Gemma 3 sizes but 27B (62 layers), where it is
  // n_embd / n_head.
  hp->attn_scale = hp->n_layer == 62 ? 1.0f / std::sqrt((float)(hp->n_embd / hp->n_head))
                                     : 1.0f / std::sqrt((float)hp->head_dim_k);
  auto softcap = f.get_float(arch_key(*hp, "final_logit_softcapping"), 0.0);
  if (!softcap) return softcap.status();
  if (softcap.value() != 0.0) return Status::error("final logit softcapping is not supported yet");
  return Status();
}

static Status gemma3_weights(const Model& m, Weights* w) { return blocks::load_decoder_weights(m, w, false); }

extern const Architecture kGemma3Arch = {"gemma3", gemma3_hparams, gemma3_weights, blocks::decoder};

}  // namespace osprey
