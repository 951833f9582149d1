// `osprey run MODEL.gguf "prompt"`: load a model on the CPU and stream a completion of the raw
// prompt to stdout. Timings go to stderr with --verbose.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>

#include "backends/cpu/cpu_backend.h"
#include "commands.h"
#include "engine/generate.h"

namespace osprey::cli {
namespace {

struct RunOptions {
  std::string model, prompt;
  GenerateParams gen;
  int64_t seed = -1;
  int threads = 0;
  int64_t n_ctx = 4096;
  bool verbose = false;
  bool reference = false;
};

int run(const RunOptions& o) {
  CpuBackendOptions bo;
  bo.n_threads = o.threads;
  bo.use_reference = o.reference;
  CpuBackend cpu(bo);
  auto model = Model::load(o.model, cpu);
  if (!model) {
    std::fprintf(stderr, "osprey: error: %s\n", model.error().c_str());
    return 1;
  }
  const Model& m = *model.value();
  ContextParams cp;
  cp.n_ctx = std::min<int64_t>(o.n_ctx, m.hparams().n_ctx_train);
  auto ctx = Context::create(m, cp);
  if (!ctx) {
    std::fprintf(stderr, "osprey: error: %s\n", ctx.error().c_str());
    return 1;
  }
  std::string prompt = o.prompt;
  if (prompt.empty()) prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  const std::vector<int32_t> tokens = m.tokenizer().encode(prompt, /*add_special=*/true, /*parse_special=*/true);
  if (tokens.empty()) {
    std::fprintf(stderr, "osprey: error: the prompt is empty\n");
    return 1;
  }
  GenerateParams gp = o.gen;
  gp.sampling.random_seed = o.seed < 0;
  gp.sampling.seed = (uint64_t)o.seed;
  auto r = generate(*ctx.value(), 0, tokens, gp, [](const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
  if (!r) {
    std::fprintf(stderr, "osprey: error: %s\n", r.error().c_str());
    return 1;
  }
  if (o.verbose) {
    const GenerateResult& g = r.value();
    auto rate = [](int64_t n, int64_t ns) { return ns > 0 ? (double)n * 1e9 / (double)ns : 0.0; };
    std::fprintf(stderr, "prompt eval: %lld tokens, %.2f tokens/s\n", (long long)g.n_prompt, rate(g.n_prompt, g.prompt_ns));
    std::fprintf(stderr, "generation:  %lld tokens, %.2f tokens/s (%s)\n", (long long)g.n_generated,
                 rate(g.n_generated, g.generate_ns), g.done_reason.c_str());
  }
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* c = app.add_subcommand("run", "Generate a completion of a raw prompt");
  c->add_option("model", o->model, "GGUF model file")->required();
  c->add_option("prompt", o->prompt, "prompt text (read from stdin if omitted)");
  SamplerParams& s = o->gen.sampling;
  c->add_option("--temperature,--temp", s.temperature, "sampling temperature; 0 is greedy")->capture_default_str();
  c->add_option("--top-k", s.top_k, "keep the k most likely tokens (0: off)")->capture_default_str();
  c->add_option("--top-p", s.top_p, "nucleus sampling threshold (1: off)")->capture_default_str();
  c->add_option("--min-p", s.min_p, "drop tokens below min-p times the top probability")->capture_default_str();
  c->add_option("--repeat-penalty", s.repeat_penalty, "penalty for repeated tokens")->capture_default_str();
  c->add_option("--repeat-last-n", s.repeat_last_n, "tokens of history to penalise (-1: all)")->capture_default_str();
  c->add_option("--seed", o->seed, "random seed (-1: random)")->capture_default_str();
  c->add_option("--stop", o->gen.stop, "stop when this text is generated (repeatable)");
  c->add_option("-n,--num-predict,--max-tokens", o->gen.max_tokens, "tokens to generate (-1: until the end)")
      ->capture_default_str();
  c->add_option("-c,--num-ctx", o->n_ctx, "context length")->capture_default_str();
  c->add_option("-t,--threads", o->threads, "CPU threads (0: all)")->capture_default_str();
  c->add_flag("--verbose", o->verbose, "print timings");
  c->add_flag("--reference-kernels", o->reference, "use the scalar reference kernels (slow)");
  c->callback([o, exit_code] { *exit_code = run(*o); });
}

}  // namespace osprey::cli
