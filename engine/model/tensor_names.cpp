#include "engine/model/tensor_names.h"

namespace osprey::tn {

namespace {

struct Base {
  T t;
  const char* name;
  bool layer;
};
constexpr Base kBases[] = {
    {T::TOKEN_EMBD, "token_embd", false},          {T::TOKEN_TYPES, "token_types", false},
    {T::POS_EMBD, "position_embd", false},         {T::TOKEN_EMBD_NORM, "token_embd_norm", false},
    {T::OUTPUT_NORM, "output_norm", false},        {T::OUTPUT, "output", false},
    {T::ATTN_NORM, "attn_norm", true},             {T::ATTN_Q, "attn_q", true},
    {T::ATTN_K, "attn_k", true},                   {T::ATTN_V, "attn_v", true},
    {T::ATTN_OUT, "attn_output", true},            {T::ATTN_Q_NORM, "attn_q_norm", true},
    {T::ATTN_K_NORM, "attn_k_norm", true},         {T::ATTN_POST_NORM, "post_attention_norm", true},
    {T::ATTN_OUT_NORM, "attn_output_norm", true},  {T::FFN_NORM, "ffn_norm", true},
    {T::FFN_GATE, "ffn_gate", true},               {T::FFN_UP, "ffn_up", true},
    {T::FFN_DOWN, "ffn_down", true},               {T::FFN_POST_NORM, "post_ffw_norm", true},
    {T::LAYER_OUT_NORM, "layer_output_norm", true},
};

const Base& base(T t) {
  for (const Base& b : kBases)
    if (b.t == t) return b;
  return kBases[0];
}

// The Llama-style decoder layout shared by Llama, Qwen2 and (with extra norms) Gemma 3.
std::vector<HfTensor> decoder_tensors(bool llama_permute, bool gemma) {
  const uint32_t norm = gemma ? ADD_ONE : NONE;
  std::vector<HfTensor> v = {
      {T::TOKEN_EMBD, "model.embed_tokens", NONE},
      {T::OUTPUT_NORM, "model.norm", norm},
      {T::OUTPUT, "lm_head", NONE},
      {T::ATTN_NORM, "model.layers.{L}.input_layernorm", norm},
      {T::ATTN_Q, "model.layers.{L}.self_attn.q_proj", llama_permute ? PERMUTE_HEADS_Q : NONE},
      {T::ATTN_K, "model.layers.{L}.self_attn.k_proj", llama_permute ? PERMUTE_HEADS_K : NONE},
      {T::ATTN_V, "model.layers.{L}.self_attn.v_proj", NONE},
      {T::ATTN_OUT, "model.layers.{L}.self_attn.o_proj", NONE},
      {T::FFN_GATE, "model.layers.{L}.mlp.gate_proj", NONE},
      {T::FFN_UP, "model.layers.{L}.mlp.up_proj", NONE},
      {T::FFN_DOWN, "model.layers.{L}.mlp.down_proj", NONE},
  };
  if (gemma) {
    v.push_back({T::ATTN_Q_NORM, "model.layers.{L}.self_attn.q_norm", norm});
    v.push_back({T::ATTN_K_NORM, "model.layers.{L}.self_attn.k_norm", norm});
    v.push_back({T::ATTN_POST_NORM, "model.layers.{L}.post_attention_layernorm", norm});
    v.push_back({T::FFN_NORM, "model.layers.{L}.pre_feedforward_layernorm", norm});
    v.push_back({T::FFN_POST_NORM, "model.layers.{L}.post_feedforward_layernorm", norm});
  } else {
    v.push_back({T::FFN_NORM, "model.layers.{L}.post_attention_layernorm", NONE});
  }
  return v;
}

const std::vector<std::string> kDecoderIgnore = {"model.layers.{L}.self_attn.rotary_emb.inv_freq"};
// Gemma 3 multimodal checkpoints: only the text model converts.
const std::vector<std::string> kGemmaIgnore = {"model.layers.{L}.self_attn.rotary_emb.inv_freq", "vision_tower.*",
                                               "multi_modal_projector.*"};

}  // namespace

std::string gguf(T t, int64_t layer, std::string_view suffix) {
  const Base& b = base(t);
  std::string s = b.layer ? "blk." + std::to_string(layer) + "." + b.name : std::string(b.name);
  if (!suffix.empty()) {
    s.push_back('.');
    s.append(suffix);
  }
  return s;
}

bool per_layer(T t) { return base(t).layer; }

const ArchTensors* arch_tensors(std::string_view arch) {
  static const ArchTensors kTables[] = {
      {"llama", decoder_tensors(true, false), {}, kDecoderIgnore},
      {"qwen2", decoder_tensors(false, false), {}, kDecoderIgnore},
      {"gemma3", decoder_tensors(false, true), {"language_model."}, kGemmaIgnore},
      {"bert",
       {
           {T::TOKEN_EMBD, "embeddings.word_embeddings", NONE},
           {T::TOKEN_TYPES, "embeddings.token_type_embeddings", NONE},
           {T::POS_EMBD, "embeddings.position_embeddings", NONE},
           {T::TOKEN_EMBD_NORM, "embeddings.LayerNorm", NONE},
           {T::ATTN_Q, "encoder.layer.{L}.attention.self.query", NONE},
           {T::ATTN_K, "encoder.layer.{L}.attention.self.key", NONE},
           {T::ATTN_V, "encoder.layer.{L}.attention.self.value", NONE},
           {T::ATTN_OUT, "encoder.layer.{L}.attention.output.dense", NONE},
           {T::ATTN_OUT_NORM, "encoder.layer.{L}.attention.output.LayerNorm", NONE},
           {T::FFN_UP, "encoder.layer.{L}.intermediate.dense", NONE},
           {T::FFN_DOWN, "encoder.layer.{L}.output.dense", NONE},
           {T::LAYER_OUT_NORM, "encoder.layer.{L}.output.LayerNorm", NONE},
       },
       {"bert."},
       // Only the encoder is used (for embeddings): no pooler or pre-training heads.
       {"embeddings.position_ids", "pooler.dense", "cls.*"}},
  };
  for (const ArchTensors& a : kTables)
    if (arch == a.arch) return &a;
  return nullptr;
}

}  // namespace osprey::tn
