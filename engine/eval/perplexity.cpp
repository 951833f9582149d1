// Perplexity and KL divergence; see perplexity.h for the method and the base-file layout.
#include "engine/eval/perplexity.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

namespace osprey {
namespace {

constexpr char kKlMagic[8] = {'O', 'S', 'P', 'K', 'L', 'B', '0', '1'};
constexpr uint16_t kKlFloorCode = 65535;

int64_t scored_per_chunk(int64_t n_ctx) { return n_ctx - 1 - n_ctx / 2; }

// max logit and log(sum exp(l - max)) of one row.
void row_lse(const float* l, int64_t n, float* max_out, double* log_sum_out, int64_t* argmax = nullptr) {
  float mx = l[0];
  int64_t am = 0;
  for (int64_t i = 1; i < n; ++i)
    if (l[i] > mx) { mx = l[i]; am = i; }
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(l[i] - mx);
  *max_out = mx;
  *log_sum_out = std::log(s);
  if (argmax) *argmax = am;
}

Result<std::unique_ptr<Context>> make_context(const Model& m, const PerplexityParams& p) {
  ContextParams cp;
  cp.n_ctx = p.n_ctx;
  cp.n_seq = 1;
  cp.n_batch = p.n_batch;
  cp.k_type = p.k_type;
  cp.v_type = p.v_type;
  return Context::create(m, cp);
}

}  // namespace

std::vector<int32_t> perplexity_tokens(const Tokenizer& tok, const std::string& text) {
  return tok.encode(text, /*add_special=*/true, /*parse_special=*/false);
}

Result<int64_t> perplexity_chunks(int64_t n_tokens, const PerplexityParams& p) {
  if (p.n_ctx < 4) return Status::error("perplexity: context of " + std::to_string(p.n_ctx) + " tokens is too small (at least 4)");
  if (p.n_batch < 1) return Status::error("perplexity: batch size must be positive");
  if (n_tokens < 2 * p.n_ctx)
    return Status::error("perplexity: the text has " + std::to_string(n_tokens) + " tokens; a context of " +
                         std::to_string(p.n_ctx) + " needs at least " + std::to_string(2 * p.n_ctx));
  int64_t n = n_tokens / p.n_ctx;
  if (p.max_chunks >= 0) n = std::min(n, p.max_chunks);
  if (n < 1) return Status::error("perplexity: no chunks to evaluate");
  return n;
}

double NllStats::stderr_mean() const {
  if (count < 2) return 0;
  const double m = mean();
  const double var = sum2 / (double)count - m * m;
  return var > 0 ? std::sqrt(var / (double)(count - 1)) : 0;
}

double NllStats::ppl() const { return std::exp(mean()); }

double token_nll(const float* logits, int64_t n_vocab, int32_t target) {
  float mx;
  double lse;
  row_lse(logits, n_vocab, &mx, &lse);
  return (double)mx + lse - (double)logits[target];
}

Status eval_chunk(Context& ctx, const std::vector<int32_t>& tokens, int64_t chunk, std::vector<float>* logits) {
  const int64_t n_ctx = ctx.params().n_ctx;
  const int64_t start = chunk * n_ctx;
  if (chunk < 0 || start + n_ctx > (int64_t)tokens.size())
    return Status::error("perplexity: chunk " + std::to_string(chunk) + " is outside the text");
  const Tokenizer& tok = ctx.model().tokenizer();
  const int64_t first = n_ctx / 2;
  std::vector<BatchToken> batch((size_t)n_ctx);
  for (int64_t i = 0; i < n_ctx; ++i) {
    int32_t t = tokens[(size_t)(start + i)];
    if (i == 0 && tok.add_bos() && tok.bos() >= 0) t = tok.bos();  // every chunk starts like a document
    batch[(size_t)i] = {t, 0, (int32_t)i, i >= first && i < n_ctx - 1};
  }
  OSPREY_TRY(ctx.decode(batch, logits));
  const size_t want = (size_t)scored_per_chunk(n_ctx) * (size_t)ctx.model().hparams().n_vocab;
  if (logits->size() != want)
    return Status::error("perplexity: decode returned " + std::to_string(logits->size()) + " logits, expected " +
                         std::to_string(want));
  return Status();
}

Result<PerplexityResult> run_perplexity(const Model& m, const std::vector<int32_t>& tokens, const PerplexityParams& p,
                                        const std::function<void(int64_t, const NllStats&)>& on_chunk,
                                        KlBaseWriter* save, MatmulObserver* observer) {
  auto n_chunks = perplexity_chunks((int64_t)tokens.size(), p);
  if (!n_chunks) return n_chunks.status();
  auto ctx = make_context(m, p);
  if (!ctx) return ctx.status();
  (*ctx)->set_matmul_observer(observer);
  const int64_t n_vocab = m.hparams().n_vocab;
  const int64_t first = p.n_ctx / 2, rows = scored_per_chunk(p.n_ctx);
  PerplexityResult r;
  r.n_chunks = *n_chunks;
  r.n_tokens = (int64_t)tokens.size();
  std::vector<float> logits;
  for (int64_t c = 0; c < *n_chunks; ++c) {
    OSPREY_TRY(eval_chunk(**ctx, tokens, c, &logits));
    for (int64_t i = 0; i < rows; ++i) {
      const int32_t target = tokens[(size_t)(c * p.n_ctx + first + i + 1)];
      r.nll.add(token_nll(logits.data() + (size_t)i * (size_t)n_vocab, n_vocab, target));
    }
    if (save) OSPREY_TRY(save->add_rows(logits.data(), rows));
    if (on_chunk) on_chunk(c, r.nll);
  }
  return r;
}

// ---- base file ----

Result<std::unique_ptr<KlBaseWriter>> KlBaseWriter::create(const std::string& path, int64_t n_ctx, int64_t n_vocab,
                                                           const std::vector<int32_t>& chunk_tokens) {
  if (n_ctx < 4 || n_vocab < 1 || chunk_tokens.empty() || chunk_tokens.size() % (size_t)n_ctx != 0 ||
      n_ctx > INT32_MAX || n_vocab > INT32_MAX)
    return Status::error("kl base: bad shape (n_ctx " + std::to_string(n_ctx) + ", " +
                         std::to_string(chunk_tokens.size()) + " tokens)");
  std::unique_ptr<KlBaseWriter> w(new KlBaseWriter());
  w->path_ = path;
  w->tmp_ = path + ".tmp";
  w->n_vocab_ = n_vocab;
  const int64_t n_chunks = (int64_t)chunk_tokens.size() / n_ctx;
  w->rows_left_ = n_chunks * scored_per_chunk(n_ctx);
  w->f_ = std::fopen(w->tmp_.c_str(), "wb");
  if (!w->f_) return Status::error("kl base: cannot write " + w->tmp_ + ": " + std::strerror(errno));
  const int32_t head[3] = {(int32_t)n_ctx, (int32_t)n_vocab, (int32_t)n_chunks};
  if (std::fwrite(kKlMagic, 1, 8, w->f_) != 8 || std::fwrite(head, sizeof(int32_t), 3, w->f_) != 3 ||
      std::fwrite(chunk_tokens.data(), sizeof(int32_t), chunk_tokens.size(), w->f_) != chunk_tokens.size())
    return Status::error("kl base: writing " + w->tmp_ + " failed");
  return w;
}

KlBaseWriter::~KlBaseWriter() {
  if (f_) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

Status KlBaseWriter::add_rows(const float* logits, int64_t n_rows) {
  if (!f_) return Status::error("kl base: writer is closed");
  if (n_rows > rows_left_) return Status::error("kl base: more rows than the header announced");
  std::vector<uint16_t> code((size_t)n_vocab_);
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* l = logits + (size_t)r * (size_t)n_vocab_;
    float mx;
    double lse;
    row_lse(l, n_vocab_, &mx, &lse);
    const float lp_max = (float)-lse;  // log p of the most likely token
    for (int64_t i = 0; i < n_vocab_; ++i) {
      const double q = std::round((double)(mx - l[i]) / kKlStep);
      code[(size_t)i] = q >= (double)kKlFloorCode ? kKlFloorCode : (uint16_t)q;
    }
    if (std::fwrite(&lp_max, sizeof(float), 1, f_) != 1 || std::fwrite(code.data(), 2, code.size(), f_) != code.size())
      return Status::error("kl base: writing " + tmp_ + " failed");
  }
  rows_left_ -= n_rows;
  return Status();
}

Status KlBaseWriter::finish() {
  if (!f_) return Status::error("kl base: writer is closed");
  if (rows_left_ != 0) return Status::error("kl base: " + std::to_string(rows_left_) + " rows were never written");
  const bool ok = std::fflush(f_) == 0;
  const bool closed = std::fclose(f_) == 0;
  f_ = nullptr;
  if (!ok || !closed || std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_.c_str());
    return Status::error("kl base: cannot write " + path_ + ": " + std::strerror(errno));
  }
  return Status();
}

Result<KlBase> open_kl_base(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::error("kl base: cannot open " + path + ": " + std::strerror(errno));
  KlBase b;
  b.path = path;
  char magic[8];
  int32_t head[3];
  const bool head_ok = std::fread(magic, 1, 8, f) == 8 && std::memcmp(magic, kKlMagic, 8) == 0 &&
                       std::fread(head, sizeof(int32_t), 3, f) == 3;
  std::fseek(f, 0, SEEK_END);
  const long long size = std::ftell(f);
  if (!head_ok) {
    std::fclose(f);
    return Status::error("kl base: " + path + " is not an Osprey KL base file (osprey perplexity --save-kl-base writes them)");
  }
  b.n_ctx = head[0];
  b.n_vocab = head[1];
  b.n_chunks = head[2];
  if (b.n_ctx < 4 || b.n_vocab < 1 || b.n_chunks < 1) {
    std::fclose(f);
    return Status::error("kl base: " + path + ": bad header (n_ctx " + std::to_string(b.n_ctx) + ", n_vocab " +
                         std::to_string(b.n_vocab) + ", chunks " + std::to_string(b.n_chunks) + ")");
  }
  const uint64_t n_tok = (uint64_t)b.n_ctx * (uint64_t)b.n_chunks;
  b.rows_offset = 20 + n_tok * 4;
  const uint64_t expect = b.rows_offset + (uint64_t)b.n_chunks * (uint64_t)scored_per_chunk(b.n_ctx) *
                                              (4 + 2 * (uint64_t)b.n_vocab);
  if (size < 0 || (uint64_t)size != expect) {
    std::fclose(f);
    return Status::error("kl base: " + path + " has " + std::to_string(size) + " bytes, its header needs " +
                         std::to_string(expect) + " (truncated?)");
  }
  b.tokens.resize((size_t)n_tok);
  std::fseek(f, 20, SEEK_SET);
  const bool ok = std::fread(b.tokens.data(), sizeof(int32_t), b.tokens.size(), f) == b.tokens.size();
  std::fclose(f);
  if (!ok) return Status::error("kl base: reading tokens of " + path + " failed");
  for (int32_t t : b.tokens)
    if (t < 0 || t >= b.n_vocab) return Status::error("kl base: " + path + ": token id " + std::to_string(t) + " outside the vocabulary");
  return b;
}

// ---- KL divergence ----

double KlResult::kl_mean() const { return nll.count ? sum_kl / (double)nll.count : 0; }

double KlResult::kl_error() const {
  const int64_t n = nll.count;
  if (n < 2) return 0;
  const double m = kl_mean(), var = sum_kl2 / (double)n - m * m;
  return var > 0 ? std::sqrt(var / (double)(n - 1)) : 0;
}

double KlResult::top1() const { return nll.count ? (double)same_top / (double)nll.count : 0; }

double KlResult::top1_error() const {
  const int64_t n = nll.count;
  const double p = top1();
  return n > 1 ? std::sqrt(p * (1 - p) / (double)(n - 1)) : 0;
}

double KlResult::ppl_ratio() const { return std::exp(nll.mean() - nll_base.mean()); }

double KlResult::ln_ppl_ratio_error() const {
  const int64_t n = nll.count;
  if (n < 2) return 0;
  const double cov = (sum_nll_nll_base / (double)n - nll.mean() * nll_base.mean()) / (double)(n - 1);
  const double a = nll.stderr_mean(), b = nll_base.stderr_mean();
  const double v = a * a + b * b - 2 * cov;
  return v > 0 ? std::sqrt(v) : 0;
}

double KlResult::dp_rms() const { return nll.count ? std::sqrt(sum_dp2 / (double)nll.count) : 0; }

Result<KlResult> run_kl_divergence(const Model& m, const KlBase& base, const PerplexityParams& params,
                                   const std::function<void(int64_t, const KlResult&)>& on_chunk) {
  const int64_t n_vocab = m.hparams().n_vocab;
  if (base.n_vocab != n_vocab)
    return Status::error("kl divergence: the base file has a vocabulary of " + std::to_string(base.n_vocab) +
                         " tokens, the model " + std::to_string(n_vocab));
  PerplexityParams p = params;
  p.n_ctx = base.n_ctx;  // the base file fixes the chunking
  int64_t n_chunks = base.n_chunks;
  if (p.max_chunks >= 0) n_chunks = std::min(n_chunks, p.max_chunks);
  auto ctx = make_context(m, p);
  if (!ctx) return ctx.status();
  std::FILE* f = std::fopen(base.path.c_str(), "rb");
  if (!f) return Status::error("kl base: cannot open " + base.path);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, std::fclose);
  if (fseeko(f, (off_t)base.rows_offset, SEEK_SET) != 0) return Status::error("kl base: seek failed in " + base.path);

  const int64_t first = p.n_ctx / 2, rows = scored_per_chunk(p.n_ctx);
  std::vector<float> logits;
  std::vector<uint16_t> code((size_t)n_vocab);
  KlResult r;
  for (int64_t c = 0; c < n_chunks; ++c) {
    OSPREY_TRY(eval_chunk(**ctx, base.tokens, c, &logits));
    for (int64_t i = 0; i < rows; ++i) {
      float lp_max;
      if (std::fread(&lp_max, sizeof(float), 1, f) != 1 || std::fread(code.data(), 2, code.size(), f) != code.size())
        return Status::error("kl base: reading chunk " + std::to_string(c) + " of " + base.path + " failed");
      const float* l = logits.data() + (size_t)i * (size_t)n_vocab;
      float mx;
      double lse;
      int64_t top = 0;
      row_lse(l, n_vocab, &mx, &lse, &top);
      const int32_t target = base.tokens[(size_t)(c * p.n_ctx + first + i + 1)];
      double kl = 0;
      int64_t top_base = 0;
      for (int64_t v = 0; v < n_vocab; ++v) {
        const uint16_t q = code[(size_t)v];
        if (q < code[(size_t)top_base]) top_base = v;
        if (q == kKlFloorCode) continue;
        const double lp_base = (double)lp_max - q * kKlStep;
        const double lp = (double)l[v] - (double)mx - lse;
        kl += std::exp(lp_base) * (lp_base - lp);
      }
      const double nll = (double)mx + lse - (double)l[target];
      const double nll_base = -((double)lp_max - code[(size_t)target] * kKlStep);
      r.nll.add(nll);
      r.nll_base.add(nll_base);
      r.sum_nll_nll_base += nll * nll_base;
      r.sum_kl += kl;
      r.sum_kl2 += kl * kl;
      const double dp = std::exp(-nll) - std::exp(-nll_base);
      r.sum_dp2 += dp * dp;
      if (top == top_base) ++r.same_top;
    }
    r.n_chunks = c + 1;
    if (on_chunk) on_chunk(c, r);
  }
  return r;
}

}  // namespace osprey
