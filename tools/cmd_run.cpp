// `osprey run MODEL.gguf "prompt"`: load a model on the CPU and stream a reply to stdout; the
// prompt goes through the GGUF's chat template unless --raw. `osprey run NAME` (not a file)
// chats with a model on the running server instead. Timings go to stderr with --verbose.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>

#include "backends/cpu/cpu_backend.h"
#include "commands.h"
#include "engine/chat/prompt.h"
#include "engine/generate.h"
#include "engine/kv_cache.h"

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
  bool raw = false;
  std::string cache_k, cache_v;  // KV cache types; empty: OSPREY_KV_CACHE_TYPE or f16
};

// The prompt as the model's chat template wants it: one user turn and the assistant cue.
// A model without a template gets the text as is.
Result<std::string> templated(const Model& m, const std::string& prompt) {
  chat::TemplateSource src;
  src.jinja_template = m.file().get_string("tokenizer.chat_template").value();
  if (src.jinja_template.empty()) return prompt;
  const Tokenizer& tok = m.tokenizer();
  if (tok.bos() >= 0) src.bos_token = tok.token_to_piece(tok.bos(), true);
  const int64_t eos = m.file().get_int("tokenizer.ggml.eos_token_id", -1).value();
  if (eos >= 0) src.eos_token = tok.token_to_piece((int32_t)eos, true);
  chat::Message user;
  user.role = "user";
  user.content = prompt;
  auto r = chat::render_chat(src, {user}, chat::PromptOptions{});
  if (!r) return Status::error("chat template: " + r.error());
  return r.value();
}

int run_local(const RunOptions& o);

int run(const RunOptions& o) {
  if (is_local_model_arg(o.model)) return run_local(o);
  // Only the options the user set travel to the server; the model's own defaults apply otherwise.
  nlohmann::json opts = nlohmann::json::object();
  const SamplerParams& s = o.gen.sampling;
  const SamplerParams d;
  if (s.temperature != d.temperature) opts["temperature"] = s.temperature;
  if (s.top_k != d.top_k) opts["top_k"] = s.top_k;
  if (s.top_p != d.top_p) opts["top_p"] = s.top_p;
  if (s.min_p != d.min_p) opts["min_p"] = s.min_p;
  if (s.repeat_penalty != d.repeat_penalty) opts["repeat_penalty"] = s.repeat_penalty;
  if (s.repeat_last_n != d.repeat_last_n) opts["repeat_last_n"] = s.repeat_last_n;
  if (o.seed >= 0) opts["seed"] = o.seed;
  if (!o.gen.stop.empty()) opts["stop"] = o.gen.stop;
  if (o.gen.max_tokens >= 0) opts["num_predict"] = o.gen.max_tokens;
  if (o.n_ctx != 4096) opts["num_ctx"] = o.n_ctx;
  return run_remote(o.model, o.prompt, opts, o.verbose);
}

int run_local(const RunOptions& o) {
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
  Status kv = cache_types_from_env(&cp.k_type, &cp.v_type);
  for (auto [name, type] : {std::pair{&o.cache_k, &cp.k_type}, std::pair{&o.cache_v, &cp.v_type}}) {
    if (!kv.ok() || name->empty()) continue;
    auto t = parse_cache_type(*name);
    if (t) *type = t.value();
    else kv = t.status();
  }
  if (!kv.ok()) {
    std::fprintf(stderr, "osprey: error: %s\n", kv.message().c_str());
    return 1;
  }
  auto ctx = Context::create(m, cp);
  if (!ctx) {
    std::fprintf(stderr, "osprey: error: %s\n", ctx.error().c_str());
    return 1;
  }
  std::string prompt = o.prompt;
  if (prompt.empty()) prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  bool add_special = true;
  if (!o.raw) {
    auto t = templated(m, prompt);
    if (!t) {
      std::fprintf(stderr, "osprey: error: %s\n", t.error().c_str());
      return 1;
    }
    // A template that writes the BOS text itself must not get a second BOS token.
    const std::string bos = m.tokenizer().bos() >= 0 ? m.tokenizer().token_to_piece(m.tokenizer().bos(), true) : "";
    if (t.value() != prompt && !bos.empty() && t.value().rfind(bos, 0) == 0) add_special = false;
    prompt = t.value();
  }
  const std::vector<int32_t> tokens = m.tokenizer().encode(prompt, add_special, /*parse_special=*/true);
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
  CLI::App* c = app.add_subcommand("run", "Chat with a model: a GGUF file locally, or a model name on the server");
  c->add_option("model", o->model, "GGUF model file, or a model name on the running server")->required();
  c->add_option("prompt", o->prompt, "prompt text (read from stdin if omitted; interactive for a served model on a terminal)");
  c->add_flag("--raw", o->raw, "local files: send the prompt as is, without the chat template");
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
  c->add_option("-k,--cache-type-k", o->cache_k, "KV cache type for keys: f16, bf16, f32, q8_0, q4_0");
  c->add_option("-V,--cache-type-v", o->cache_v, "KV cache type for values");
  c->add_flag("--verbose", o->verbose, "print timings");
  c->add_flag("--reference-kernels", o->reference, "use the scalar reference kernels (slow)");
  c->callback([o, exit_code] { *exit_code = run(*o); });
}

}  // namespace osprey::cli
