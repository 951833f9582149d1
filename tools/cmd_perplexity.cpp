// `osprey perplexity` and `osprey imatrix`: the quality side of quantization. perplexity
// scores a text the way llama.cpp's llama-perplexity does (engine/eval/perplexity.h), saves a
// base model's log-probabilities (--kl-base FILE --save-kl-base) and compares another model
// with them (--kl-base FILE): mean KL divergence, top-token agreement, PPL ratio. imatrix
// collects the importance matrix the K and IQ quantizers weight their error with.
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "backends/cpu/cpu_backend.h"
#include "commands.h"
#include "engine/eval/imatrix_collect.h"
#include "engine/eval/perplexity.h"
#include "engine/kv_cache.h"

namespace osprey::cli {
namespace {

struct EvalOptions {
  std::string model, text_file, kl_base, out = "imatrix.gguf";
  bool save_kl_base = false, process_output = false, exact_matmul = false;
  int64_t n_ctx = 512, n_batch = 512, chunks = -1;
  int threads = 0;
  std::string cache_k = "f16", cache_v = "f16";
};

int fail(const std::string& msg) {
  std::fprintf(stderr, "osprey: error: %s\n", msg.c_str());
  return 1;
}

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error("cannot read text file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (ss.str().empty()) return Status::error("text file " + path + " is empty");
  return ss.str();
}

Result<PerplexityParams> ppl_params(const EvalOptions& o) {
  PerplexityParams p;
  p.n_ctx = o.n_ctx;
  p.n_batch = o.n_batch;
  p.max_chunks = o.chunks;
  auto kt = parse_cache_type(o.cache_k), vt = parse_cache_type(o.cache_v);
  if (!kt) return kt.status();
  if (!vt) return vt.status();
  p.k_type = *kt;
  p.v_type = *vt;
  return p;
}

// Model and tokenized text, shared by both commands.
struct Loaded {
  std::unique_ptr<CpuBackend> cpu;
  std::unique_ptr<Model> model;
  std::vector<int32_t> tokens;
};

Result<Loaded> load(const EvalOptions& o, bool need_text) {
  Loaded l;
  std::string text;
  if (need_text) {  // read the text first: a missing file should not wait for a model load
    auto t = read_text(o.text_file);
    if (!t) return t.status();
    text = std::move(*t);
  }
  CpuBackendOptions bo;
  bo.n_threads = o.threads;
  bo.exact_matmul = o.exact_matmul;
  l.cpu = std::make_unique<CpuBackend>(bo);
  auto m = Model::load(o.model, *l.cpu);
  if (!m) return m.status();
  l.model = std::move(*m);
  if (need_text) l.tokens = perplexity_tokens(l.model->tokenizer(), text);
  return l;
}

void print_running_ppl(int64_t c, const NllStats& s) {
  std::printf("[%lld]%.4f,", (long long)c + 1, s.ppl());
  std::fflush(stdout);
}

int kl_divergence(const EvalOptions& o, const PerplexityParams& p) {
  auto base = open_kl_base(o.kl_base);
  if (!base) return fail(base.error());
  auto l = load(o, false);
  if (!l) return fail(l.error());
  std::fprintf(stderr, "kl divergence: %lld chunks of %lld tokens from %s\n", (long long)base->n_chunks,
               (long long)base->n_ctx, o.kl_base.c_str());
  std::printf("chunk        PPL          ln(PPL/PPL base)        KL divergence        same top\n");
  auto r = run_kl_divergence(*l->model, *base, p, [](int64_t c, const KlResult& k) {
    std::printf("%5lld  %9.4f ± %7.4f  %10.5f ± %8.5f  %10.6f ± %9.6f  %6.2f ± %5.2f %%\n", (long long)c + 1,
                k.nll.ppl(), k.nll.ppl_error(), std::log(k.ppl_ratio()), k.ln_ppl_ratio_error(), k.kl_mean(),
                k.kl_error(), 100 * k.top1(), 100 * k.top1_error());
    std::fflush(stdout);
  });
  if (!r) return fail(r.error());
  std::printf("\nPPL            : %.4f ± %.4f\n", r->nll.ppl(), r->nll.ppl_error());
  std::printf("PPL base       : %.4f ± %.4f\n", r->nll_base.ppl(), r->nll_base.ppl_error());
  std::printf("PPL ratio      : %.5f (ln %.6f ± %.6f)\n", r->ppl_ratio(), std::log(r->ppl_ratio()), r->ln_ppl_ratio_error());
  std::printf("Mean KL        : %.6f ± %.6f\n", r->kl_mean(), r->kl_error());
  std::printf("Same top token : %.3f ± %.3f %%\n", 100 * r->top1(), 100 * r->top1_error());
  std::printf("RMS Δp         : %.3f %%\n", 100 * r->dp_rms());
  std::printf("Tokens scored  : %lld\n", (long long)r->nll.count);
  return 0;
}

int perplexity(const EvalOptions& o) {
  auto p = ppl_params(o);
  if (!p) return fail(p.error());
  if (!o.kl_base.empty() && !o.save_kl_base) return kl_divergence(o, *p);
  if (o.save_kl_base && o.kl_base.empty()) return fail("--save-kl-base needs --kl-base FILE to write to");
  if (o.text_file.empty()) return fail("perplexity needs a text file (-f FILE)");
  auto l = load(o, true);
  if (!l) return fail(l.error());
  auto n_chunks = perplexity_chunks((int64_t)l->tokens.size(), *p);
  if (!n_chunks) return fail(n_chunks.error());
  std::fprintf(stderr, "perplexity: %zu tokens, %lld chunks of %lld\n", l->tokens.size(), (long long)*n_chunks,
               (long long)p->n_ctx);
  std::unique_ptr<KlBaseWriter> save;
  if (o.save_kl_base) {
    std::vector<int32_t> used(l->tokens.begin(), l->tokens.begin() + *n_chunks * p->n_ctx);
    auto w = KlBaseWriter::create(o.kl_base, p->n_ctx, l->model->hparams().n_vocab, used);
    if (!w) return fail(w.error());
    save = std::move(*w);
  }
  auto r = run_perplexity(*l->model, l->tokens, *p, print_running_ppl, save.get());
  std::printf("\n");
  if (!r) return fail(r.error());
  if (save) {
    if (Status s = save->finish(); !s.ok()) return fail(s.message());
    std::fprintf(stderr, "saved the log-probabilities to %s\n", o.kl_base.c_str());
  }
  std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r->nll.ppl(), r->nll.ppl_error());
  return 0;
}

int imatrix(const EvalOptions& o) {
  auto p = ppl_params(o);
  if (!p) return fail(p.error());
  auto l = load(o, true);
  if (!l) return fail(l.error());
  ImatrixParams ip;
  ip.ppl = *p;
  ip.process_output = o.process_output;
  auto r = collect_imatrix(*l->model, l->tokens, ip, print_running_ppl);
  std::printf("\n");
  if (!r) return fail(r.error());
  r->imatrix.datasets.push_back(o.text_file);
  if (Status s = save_imatrix(r->imatrix, o.out); !s.ok()) return fail(s.message());
  std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r->nll.ppl(), r->nll.ppl_error());
  std::printf("saved the importance matrix of %zu tensors over %d chunks to %s\n", r->imatrix.values.size(),
              r->imatrix.n_chunks, o.out.c_str());
  return 0;
}

void add_common(CLI::App* c, EvalOptions* o) {
  c->add_option("-m,--model", o->model, "GGUF model file")->required();
  c->add_option("-c,--ctx-size", o->n_ctx, "tokens per chunk")->capture_default_str()->check(CLI::Range(4, 1 << 20));
  c->add_option("-b,--batch-size", o->n_batch, "tokens per graph run")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  c->add_option("--chunks", o->chunks, "at most this many chunks (-1: all)")->capture_default_str();
  c->add_option("-t,--threads", o->threads, "CPU threads (0: all)")->capture_default_str();
  c->add_option("-k,--cache-type-k", o->cache_k, "KV cache type for keys")->capture_default_str();
  c->add_option("-V,--cache-type-v", o->cache_v, "KV cache type for values")->capture_default_str();
  c->add_flag("--exact-matmul", o->exact_matmul, "f32 activations instead of 8-bit integer dot products");
}

}  // namespace

void add_perplexity_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* c = app.add_subcommand("perplexity", "Perplexity of a model over a text, or its KL divergence from a base model");
  add_common(c, o.get());
  c->add_option("-f,--file", o->text_file, "text file to score");
  c->add_option("--kl-base", o->kl_base, "base log-probabilities: compare with them, or write them with --save-kl-base");
  c->add_flag("--save-kl-base", o->save_kl_base, "write this model's log-probabilities to the --kl-base file");
  c->callback([o, exit_code] { *exit_code = perplexity(*o); });

  auto q = std::make_shared<EvalOptions>();
  CLI::App* im = app.add_subcommand("imatrix", "Importance matrix (mean squared activations per weight column) over a text");
  add_common(im, q.get());
  im->add_option("-f,--file", q->text_file, "text file to collect over")->required();
  im->add_option("-o,--output", q->out, "importance matrix file to write (llama.cpp's GGUF layout)")->capture_default_str();
  im->add_flag("--process-output", q->process_output, "collect output.weight too");
  im->callback([q, exit_code] { *exit_code = imatrix(*q); });
}

}  // namespace osprey::cli
