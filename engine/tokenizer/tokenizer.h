// Tokenizers built from GGUF metadata: byte-level BPE (tokenizer.ggml.model = "gpt2", with the
// pre-tokenizer named by tokenizer.ggml.pre) and SentencePiece-style BPE with byte fallback
// (tokenizer.ggml.model = "llama", e.g. Gemma). Token ids match llama.cpp's tokenizer for the
// same file; tests/test_tokenizer.cpp holds the reference corpus.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "formats/gguf.h"
#include "kernels/base/status.h"

namespace osprey {

class Tokenizer {
 public:
  // Errors (never aborts) for: unsupported tokenizer.ggml.model or tokenizer.ggml.pre, missing or
  // mistyped arrays, array lengths that disagree, special-token ids outside the vocabulary.
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const gguf::File& f);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: add BOS/EOS as the metadata says (tokenizer.ggml.add_bos_token /
  // add_eos_token, else the per-model default). parse_special: control-token text in `text`
  // (e.g. "<|im_start|>") becomes that token; user-defined tokens are always matched whole.
  // Any bytes are accepted; invalid UTF-8 is tokenized, never rejected. Texts of 4 GiB or more
  // give an empty result.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // The bytes a token contributes to decoded text: byte-level BPE un-mapping, <0xXX> byte
  // tokens, U+2581 -> space. Control/unknown tokens give "" unless render_special. Out-of-range
  // ids give "".
  std::string token_to_piece(int32_t id) const { return token_to_piece(id, false); }
  std::string token_to_piece(int32_t id, bool render_special) const;
  // Concatenated pieces (bytes, possibly not valid UTF-8 if `ids` is cut mid-character). For a
  // SentencePiece vocabulary with add_space_prefix, the space encoding put in front is dropped,
  // so decode(encode(s)) == s.
  std::string decode(const std::vector<int32_t>& ids, bool render_special = false) const;

  int32_t n_vocab() const;
  int32_t bos() const;  // -1 if none
  int32_t eos() const;  // -1 if none
  bool is_eog(int32_t id) const;  // end of generation: eos, eot, <|im_end|>, <end_of_turn> ...
  bool add_bos() const;
  bool add_eos() const;
  bool is_control(int32_t id) const;  // control or unknown: hidden when decoding by default
  const std::string& token_text(int32_t id) const;  // raw vocabulary text; "" if out of range
  const std::string& model() const;     // tokenizer.ggml.model
  const std::string& pre_type() const;  // tokenizer.ggml.pre ("" for SentencePiece)

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Streaming decode for printing tokens as they arrive: feed token pieces, get back only text
// that ends on a UTF-8 character boundary, so a character split across tokens is printed once
// it is complete. Bytes that can never become valid UTF-8 are passed through, not held.
class Utf8StreamDecoder {
 public:
  std::string push(std::string_view piece);
  std::string push_token(const Tokenizer& tok, int32_t id, bool render_special = false) {
    return push(tok.token_to_piece(id, render_special));
  }
  std::string flush();  // whatever is held back (an unfinished sequence at end of stream)
  bool has_pending() const { return !pending_.empty(); }
  void reset() { pending_.clear(); }

 private:
  std::string pending_;
};

}  // namespace osprey
