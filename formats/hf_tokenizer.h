// Hugging Face checkpoint files other than the weights: JSON config files and tokenizers
// (tokenizer.json, tokenizer_config.json, SentencePiece tokenizer.model), read into the fields
// GGUF files carry under tokenizer.ggml.* in llama.cpp's conventions (the same choices as
// llama.cpp's convert_hf_to_gguf.py: token types, [PADn] filler, phantom-space WordPiece,
// merges, special token ids, add_*_token flags, chat template).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/base/status.h"

namespace osprey::hf {

// Reads and parses a JSON file; errors name the file.
Result<nlohmann::json> read_json(const std::string& path);

// llama.cpp's token types (the SentencePiece piece types).
enum TokenType : int32_t { NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6 };

enum class VocabKind {
  BPE,         // byte-level BPE from tokenizer.json -> tokenizer.ggml.model "gpt2"
  SENTENCEPIECE,  // tokenizer.model -> "llama" (scores + types)
  WORDPIECE,   // tokenizer.json WordPiece or vocab.txt -> "bert"
};

struct Vocab {
  std::string model;  // tokenizer.ggml.model
  std::string pre;    // tokenizer.ggml.pre
  std::vector<std::string> tokens;
  std::vector<float> scores;     // SentencePiece only
  std::vector<int32_t> types;
  std::vector<std::string> merges;  // BPE only, "a b" with spaces inside a part as U+0120
  std::map<std::string, int64_t> special_ids;  // "bos" -> tokenizer.ggml.bos_token_id, ...
  std::map<std::string, bool> add_special;     // "bos" -> tokenizer.ggml.add_bos_token, ...
  std::optional<std::string> chat_template;
  std::optional<bool> normalizer_lowercase, normalizer_strip_accents;
};

// Reads the tokenizer of checkpoint folder `dir`. `vocab_size` (config.json's, 0 if unknown)
// pads the token list with [PADn] entries as llama.cpp does; an id at or past it is an error.
Result<Vocab> load_vocab(const std::string& dir, VocabKind kind, int64_t vocab_size);

// The tokenizer.ggml.pre name llama.cpp uses for a tokenizer.json pre_tokenizer, recognised
// by its structure (llama.cpp hashes the tokenization of a test text instead). Error if unknown.
Result<std::string> bpe_pre_tokenizer_name(const nlohmann::json& tokenizer_json);

// SentencePiece model protobuf: pieces with scores and types (only what GGUF needs).
struct SentencePiece {
  std::string piece;
  float score = 0;
  int32_t type = NORMAL;
};
Result<std::vector<SentencePiece>> parse_sentencepiece_model(const uint8_t* data, size_t size,
                                                             const std::string& name);

}  // namespace osprey::hf
