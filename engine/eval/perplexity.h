// Perplexity and KL divergence over a text, as engine developers use them to judge a
// quantization. The method is llama.cpp's (tools/perplexity), so numbers compare across the
// two engines: the whole text is tokenized once with BOS as the vocabulary says; it is cut
// into chunks of n_ctx tokens (the tail that does not fill a chunk is dropped); each chunk is
// decoded from an empty cache with its first token replaced by BOS (when the vocabulary adds
// one); the logits at positions n_ctx/2 .. n_ctx-2 score the next token, so each chunk
// contributes n_ctx - 1 - n_ctx/2 scores and every scored token has at least n_ctx/2 tokens
// of context. PPL = exp(mean negative log-likelihood).
//
// KL mode compares a model with a base model's saved log-probabilities (KlBaseFile, below) at
// the same positions of the same tokens.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/session.h"

namespace osprey {

struct PerplexityParams {
  int64_t n_ctx = 512;       // tokens per chunk
  int64_t n_batch = 512;     // tokens per graph run
  int64_t max_chunks = -1;   // < 0: all whole chunks in the text
  DType k_type = DType::F16;
  DType v_type = DType::F16;
};

// The text's tokens as llama.cpp's perplexity makes them (BOS as the metadata says, special
// token text not parsed).
std::vector<int32_t> perplexity_tokens(const Tokenizer& tok, const std::string& text);

// How many chunks `n_tokens` tokens give (an error when fewer than two: llama.cpp requires
// 2 * n_ctx tokens as well).
Result<int64_t> perplexity_chunks(int64_t n_tokens, const PerplexityParams& p);

// Mean and standard error of the per-token negative log-likelihood.
struct NllStats {
  int64_t count = 0;
  double sum = 0, sum2 = 0;
  void add(double nll) { ++count; sum += nll; sum2 += nll * nll; }
  double mean() const { return count ? sum / (double)count : 0; }
  double stderr_mean() const;  // 0 when undefined
  double ppl() const;
  double ppl_error() const { return ppl() * stderr_mean(); }
};

// Decodes chunk `chunk` of `tokens` and returns the logits of the scored positions n_ctx/2 ..
// n_ctx-2: (n_ctx - 1 - n_ctx/2) rows of n_vocab floats.
Status eval_chunk(Context& ctx, const std::vector<int32_t>& tokens, int64_t chunk, std::vector<float>* logits);

// log softmax(logits)[target] with a double-precision sum, as llama.cpp computes it.
double token_nll(const float* logits, int64_t n_vocab, int32_t target);

struct PerplexityResult {
  NllStats nll;
  int64_t n_chunks = 0;
  int64_t n_tokens = 0;  // tokens in the whole text
};

class KlBaseWriter;

// Runs the chunks; `on_chunk(i, stats)` after each one (for running output). When `save` is
// given, each chunk's log-probabilities are written to it; `observer` sees the matmuls.
Result<PerplexityResult> run_perplexity(const Model& m, const std::vector<int32_t>& tokens, const PerplexityParams& p,
                                        const std::function<void(int64_t, const NllStats&)>& on_chunk,
                                        KlBaseWriter* save = nullptr, MatmulObserver* observer = nullptr);

// ---- KL divergence against a base model ----
//
// Base file (Osprey's own layout, little-endian):
//   char[8] "OSPKLB01"; int32 n_ctx, n_vocab, n_chunks; int32 tokens[n_chunks * n_ctx]
//   then for each chunk, for each of its n_ctx - 1 - n_ctx/2 scored positions, one row:
//     float lp_max     the largest log-probability of the row
//     uint16 code[n_vocab]: log p = lp_max - code * kKlStep; code 65535 means log p below
//                       lp_max - 65534 * kKlStep (~ -24 nats), taken as p = 0.
// The step (~0.37 millinats) bounds the log-probability error by ~0.18 millinats.
constexpr double kKlStep = 24.0 / 65534.0;

class KlBaseWriter {
 public:
  static Result<std::unique_ptr<KlBaseWriter>> create(const std::string& path, int64_t n_ctx, int64_t n_vocab,
                                                      const std::vector<int32_t>& chunk_tokens);
  ~KlBaseWriter();
  Status add_rows(const float* logits, int64_t n_rows);
  Status finish();  // flush, close, rename into place

 private:
  KlBaseWriter() = default;
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  int64_t n_vocab_ = 0, rows_left_ = 0;
};

struct KlBase {
  int64_t n_ctx = 0, n_vocab = 0, n_chunks = 0;
  std::vector<int32_t> tokens;      // n_chunks * n_ctx, the tokens the base model saw
  std::string path;
  uint64_t rows_offset = 0;         // where the rows start in the file
};
Result<KlBase> open_kl_base(const std::string& path);

struct KlResult {
  NllStats nll, nll_base;
  double sum_kl = 0, sum_kl2 = 0;
  double sum_nll_nll_base = 0;
  double sum_dp2 = 0;               // (p - p_base)^2 of the target token
  int64_t same_top = 0;
  int64_t n_chunks = 0;
  double kl_mean() const;
  double kl_error() const;
  double top1() const;              // fraction where both argmax agree
  double top1_error() const;
  double ppl_ratio() const;         // PPL / PPL(base)
  double ln_ppl_ratio_error() const;
  double dp_rms() const;
};

Result<KlResult> run_kl_divergence(const Model& m, const KlBase& base, const PerplexityParams& p,
                                   const std::function<void(int64_t, const KlResult&)>& on_chunk);

}  // namespace osprey
