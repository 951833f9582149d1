#include "engine/generate.h"

#include <chrono>

namespace osprey {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string StopMatcher::feed(const std::string& text, bool* stopped) {
  *stopped = false;
  pending_ += text;
  size_t first = std::string::npos;
  for (const std::string& s : stops_) {
    if (s.empty()) continue;
    const size_t at = pending_.find(s);
    if (at != std::string::npos && at < first) first = at;
  }
  if (first != std::string::npos) {
    *stopped = true;
    std::string out = pending_.substr(0, first);
    pending_.clear();
    return out;
  }
  // Keep the longest suffix that is a prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stops_)
    for (size_t k = std::min(s.size() - (s.empty() ? 0 : 1), pending_.size()); k > hold; --k)
      if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::shared_ptr<const grammar::Vocab> grammar_vocab(const Tokenizer& tok) {
  std::vector<std::string> pieces((size_t)tok.n_vocab());
  std::vector<bool> eog(pieces.size());
  for (int32_t id = 0; id < tok.n_vocab(); ++id) {
    pieces[(size_t)id] = tok.token_to_piece(id);
    eog[(size_t)id] = tok.is_eog(id);
  }
  return std::make_shared<const grammar::Vocab>(std::move(pieces), std::move(eog));
}

Result<GenerateResult> generate(Context& ctx, int32_t seq, const std::vector<int32_t>& prompt,
                                const GenerateParams& p, const TextCallback& on_text) {
  const Model& m = ctx.model();
  const int64_t n_ctx = ctx.params().n_ctx;
  const int64_t n_vocab = m.hparams().n_vocab;
  if (prompt.empty()) return Status::error("generate: empty prompt");
  if ((int64_t)prompt.size() >= n_ctx)
    return Status::error("generate: prompt of " + std::to_string(prompt.size()) +
                         " tokens does not fit the context of " + std::to_string(n_ctx));
  GenerateResult r;
  r.n_prompt = (int64_t)prompt.size();
  Sampler sampler(p.sampling);
  for (int32_t t : prompt) sampler.accept(t);
  std::unique_ptr<grammar::TokenMatcher> constraint;
  if (p.grammar) constraint = std::make_unique<grammar::TokenMatcher>(p.grammar, grammar_vocab(m.tokenizer()));

  std::vector<BatchToken> batch(prompt.size());
  for (size_t i = 0; i < prompt.size(); ++i) batch[i] = {prompt[i], seq, (int32_t)i, i + 1 == prompt.size()};
  std::vector<float> logits;
  int64_t t0 = now_ns();
  OSPREY_TRY(ctx.decode(batch, &logits));
  r.prompt_ns = now_ns() - t0;

  StopMatcher stops(p.stop);
  Utf8StreamDecoder utf8;
  bool stopped = false;  // by a stop string or the callback: nothing more is emitted
  int32_t pos = (int32_t)prompt.size();
  t0 = now_ns();
  r.done_reason = "length";
  while (p.max_tokens < 0 || r.n_generated < p.max_tokens) {
    if (pos >= n_ctx) break;
    const int32_t tok = sampler.sample(logits.data(), n_vocab, constraint.get());
    if (constraint && !constraint->accept(tok)) return Status::error("structured output: no token can continue the text");
    if (m.tokenizer().is_eog(tok)) {
      r.done_reason = "stop";
      break;
    }
    sampler.accept(tok);
    r.tokens.push_back(tok);
    ++r.n_generated;
    const std::string text = stops.feed(utf8.push(m.tokenizer().token_to_piece(tok)), &stopped);
    if (!text.empty() && on_text && !on_text(text)) stopped = true;
    if (stopped || (constraint && constraint->must_end())) {
      r.done_reason = "stop";
      break;
    }
    if (p.max_tokens >= 0 && r.n_generated >= p.max_tokens) break;
    batch.assign(1, {tok, seq, pos++, true});
    OSPREY_TRY(ctx.decode(batch, &logits));
  }
  if (!stopped) {
    std::string rest = stops.feed(utf8.flush(), &stopped);
    if (!stopped) rest += stops.flush();
    if (!rest.empty() && on_text) on_text(rest);
  }
  r.generate_ns = now_ns() - t0;
  return r;
}

}  // namespace osprey
