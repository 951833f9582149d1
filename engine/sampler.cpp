#include "engine/sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <unordered_map>

#include "engine/grammar/token_mask.h"

namespace osprey {

Sampler::Sampler(const SamplerParams& p) : p_(p) {
  const uint64_t seed =
      p.random_seed ? (uint64_t)std::chrono::high_resolution_clock::now().time_since_epoch().count() : p.seed;
  rng_.seed(seed);
}

void Sampler::reset() { history_.clear(); }

void Sampler::accept(int32_t token) {
  history_.push_back(token);
  const size_t keep = p_.repeat_last_n < 0 ? SIZE_MAX : (size_t)p_.repeat_last_n;
  while (history_.size() > keep) history_.pop_front();
}

void Sampler::apply_penalties(std::vector<Candidate>& c) const {
  if (history_.empty() || (p_.repeat_penalty == 1.0f && p_.presence_penalty == 0 && p_.frequency_penalty == 0)) return;
  std::unordered_map<int32_t, int> count;
  for (int32_t t : history_) ++count[t];
  for (const auto& [id, n] : count) {
    if (id < 0 || (size_t)id >= c.size()) continue;
    float& l = c[(size_t)id].logit;  // candidates are still in id order here
    l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    l -= (float)n * p_.frequency_penalty + p_.presence_penalty;
  }
}

int32_t Sampler::sample(const float* logits, int64_t n, grammar::TokenMatcher* constraint) {
  if (!constraint) return sample(logits, n);
  const int32_t first = sample(logits, n);
  if (constraint->allows(first)) return first;
  masked_.assign(logits, logits + n);
  // Nothing allowed cannot happen with the grammars we build; the caller's accept() then
  // rejects the token and reports it, instead of sampling from all -infinity.
  if (constraint->mask_logits(masked_.data(), n) == 0) return first;
  return sample(masked_.data(), n);
}

int32_t Sampler::sample(const float* logits, int64_t n) {
  cand_.resize((size_t)n);
  for (int64_t i = 0; i < n; ++i) cand_[(size_t)i] = {(int32_t)i, logits[i]};
  apply_penalties(cand_);
  auto by_logit = [](const Candidate& a, const Candidate& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  if (p_.temperature <= 0) return std::min_element(cand_.begin(), cand_.end(), by_logit)->id;

  size_t k = cand_.size();
  if (p_.top_k > 0 && (size_t)p_.top_k < k) k = (size_t)p_.top_k;
  std::partial_sort(cand_.begin(), cand_.begin() + (ptrdiff_t)k, cand_.end(), by_logit);
  cand_.resize(k);
  // Probabilities of the surviving candidates (before temperature) for top-p and min-p.
  std::vector<double> prob(k);
  double sum = 0;
  for (size_t i = 0; i < k; ++i) sum += prob[i] = std::exp((double)cand_[i].logit - cand_[0].logit);
  for (double& v : prob) v /= sum;
  if (p_.top_p < 1.0f) {
    double cum = 0;
    size_t keep = k;
    for (size_t i = 0; i < k; ++i) {
      cum += prob[i];
      if (cum >= p_.top_p) { keep = i + 1; break; }
    }
    k = std::max<size_t>(keep, 1);
  }
  if (p_.min_p > 0) {
    size_t keep = 1;
    while (keep < k && prob[keep] >= p_.min_p * prob[0]) ++keep;
    k = keep;
  }
  std::vector<double> w(k);
  for (size_t i = 0; i < k; ++i) w[i] = std::exp(((double)cand_[i].logit - cand_[0].logit) / p_.temperature);
  std::discrete_distribution<size_t> dist(w.begin(), w.end());
  return cand_[dist(rng_)].id;
}

}  // namespace osprey
