// Token sampling: repetition penalties, then top-k, top-p, min-p on the penalised logits,
// then temperature and a seeded draw (llama.cpp's default order). temperature <= 0 is greedy.
#pragma once
#include <cstdint>
#include <deque>
#include <random>
#include <vector>

namespace osprey {
namespace grammar {
class TokenMatcher;
}

struct SamplerParams {
  float temperature = 0.8f;
  int32_t top_k = 40;        // <= 0: off
  float top_p = 0.9f;        // >= 1: off
  float min_p = 0.0f;        // <= 0: off
  float repeat_penalty = 1.1f;
  int32_t repeat_last_n = 64;  // 0: off, -1: whole history
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
  bool random_seed = true;   // seed from the clock unless a seed was given
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  // Picks a token from n logits (not modified) given the accepted history.
  int32_t sample(const float* logits, int64_t n);
  // The same, restricted to the tokens `constraint` allows (structured outputs). The drawn token
  // is checked first and the full mask computed only if it was rejected: a draw from p, kept
  // when allowed, else redrawn from p masked, is exactly a draw from p masked.
  int32_t sample(const float* logits, int64_t n, grammar::TokenMatcher* constraint);
  void accept(int32_t token);
  void reset();

 private:
  struct Candidate {
    int32_t id;
    float logit;
  };
  void apply_penalties(std::vector<Candidate>& c) const;
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::deque<int32_t> history_;
  std::vector<Candidate> cand_;
  std::vector<float> masked_;
};

}  // namespace osprey
