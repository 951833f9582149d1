// `osprey bench`: prompt-processing and generation throughput like llama-bench: for each
// model, pp<P> (one batch of P tokens) and tg<N> (N single-token steps), optionally after
// prefilling D tokens of context, repeated R times; mean ± sd tokens/s as Markdown or JSON.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "backends/cpu/cpu_backend.h"
#include "commands.h"
#include "engine/kv_cache.h"
#include "engine/session.h"

namespace osprey::cli {
namespace {

struct BenchOptions {
  std::vector<std::string> models;
  int64_t n_prompt = 512, n_gen = 128, depth = 0;
  int threads = 0, reps = 5;
  std::string output = "md";
  bool exact_matmul = false;
  bool profile = false;
  std::string cache_k = "f16", cache_v = "f16";
};

struct Sample {
  std::string model, test;
  double mean = 0, sd = 0;
  std::vector<double> runs;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Status prefill(Context& ctx, const std::vector<int32_t>& toks, int32_t from) {
  std::vector<BatchToken> b;
  for (size_t i = 0; i < toks.size(); ++i) b.push_back({toks[i], 0, from + (int32_t)i, i + 1 == toks.size()});
  std::vector<float> logits;
  return ctx.decode(b, &logits);
}

Result<Sample> measure(const Model& m, const BenchOptions& o, bool prompt_test, std::mt19937& rng) {
  Sample s;
  const int64_t n = prompt_test ? o.n_prompt : o.n_gen;
  s.test = (prompt_test ? "pp" : "tg") + std::to_string(n) + (o.depth ? " @ d" + std::to_string(o.depth) : "") +
           (o.cache_k != "f16" || o.cache_v != "f16" ? " kv " + o.cache_k + "/" + o.cache_v : "");
  ContextParams cp;
  cp.n_ctx = o.depth + n + 1;
  cp.n_batch = std::max<int64_t>(512, n);
  auto kt = parse_cache_type(o.cache_k), vt = parse_cache_type(o.cache_v);
  if (!kt) return kt.status();
  if (!vt) return vt.status();
  cp.k_type = kt.value();
  cp.v_type = vt.value();
  auto ctx = Context::create(m, cp);
  if (!ctx) return ctx.status();
  std::uniform_int_distribution<int32_t> tok(0, (int32_t)m.hparams().n_vocab - 1);
  auto random_tokens = [&](int64_t k) {
    std::vector<int32_t> v((size_t)k);
    for (auto& t : v) t = tok(rng);
    return v;
  };
  for (int r = -1; r < o.reps; ++r) {  // r = -1: warm-up, not counted
    if (o.depth > 0) OSPREY_TRY(prefill(*ctx.value(), random_tokens(o.depth), 0));
    const auto t0 = std::chrono::steady_clock::now();
    if (prompt_test) {
      OSPREY_TRY(prefill(*ctx.value(), random_tokens(n), (int32_t)o.depth));
    } else {
      std::vector<float> logits;
      int32_t t = tok(rng);
      for (int64_t i = 0; i < n; ++i) {
        OSPREY_TRY(ctx.value()->decode({{t, 0, (int32_t)(o.depth + i), true}}, &logits));
        t = (int32_t)(std::max_element(logits.begin(), logits.end()) - logits.begin());
      }
    }
    if (r >= 0) s.runs.push_back((double)n / seconds_since(t0));
  }
  for (double v : s.runs) s.mean += v / (double)s.runs.size();
  for (double v : s.runs) s.sd += (v - s.mean) * (v - s.mean);
  s.sd = s.runs.size() > 1 ? std::sqrt(s.sd / (double)(s.runs.size() - 1)) : 0;
  return s;
}

int bench(const BenchOptions& o) {
  CpuBackendOptions bo;
  bo.n_threads = o.threads;
  bo.exact_matmul = o.exact_matmul;
  bo.profile = o.profile;
  CpuBackend cpu(bo);
  std::vector<Sample> samples;
  std::mt19937 rng(1234);
  for (const std::string& path : o.models) {
    auto model = Model::load(path, cpu);
    if (!model) {
      std::fprintf(stderr, "osprey: error: %s\n", model.error().c_str());
      return 1;
    }
    for (bool pp : {true, false}) {
      if ((pp ? o.n_prompt : o.n_gen) <= 0) continue;
      auto s = measure(*model.value(), o, pp, rng);
      if (!s) {
        std::fprintf(stderr, "osprey: error: %s\n", s.error().c_str());
        return 1;
      }
      s.value().model = path.substr(path.find_last_of('/') + 1);
      samples.push_back(s.value());
      if (o.output == "md") {
        if (samples.size() == 1)
          std::printf("| model | backend | threads | test | t/s |\n|---|---|---|---|---|\n");
        std::printf("| %s | %s | %d | %s | %.2f ± %.2f |\n", samples.back().model.c_str(), cpu.info().backend.c_str(),
                    o.threads, samples.back().test.c_str(), samples.back().mean, samples.back().sd);
        std::fflush(stdout);
      }
    }
  }
  if (o.output == "json") {
    nlohmann::json j = nlohmann::json::array();
    for (const Sample& s : samples)
      j.push_back({{"model", s.model}, {"backend", "cpu"}, {"threads", o.threads}, {"test", s.test},
                   {"n_prompt", o.n_prompt}, {"n_gen", o.n_gen}, {"depth", o.depth}, {"avg_ts", s.mean},
                   {"stddev_ts", s.sd}, {"samples_ts", s.runs}});
    std::printf("%s\n", j.dump(2).c_str());
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* c = app.add_subcommand("bench", "Measure prompt-processing and generation tokens/s");
  c->add_option("-m,--model", o->models, "GGUF model file (repeatable)")->required();
  c->add_option("-p,--n-prompt", o->n_prompt, "prompt tokens per pp test (0: skip)")->capture_default_str();
  c->add_option("-n,--n-gen", o->n_gen, "generated tokens per tg test (0: skip)")->capture_default_str();
  c->add_option("-d,--depth", o->depth, "context tokens already in the cache")->capture_default_str();
  c->add_option("-t,--threads", o->threads, "CPU threads (0: all)")->capture_default_str();
  c->add_option("-r,--repetitions", o->reps, "measured repetitions")->capture_default_str()->check(CLI::Range(1, 1000));
  c->add_option("-o,--output", o->output, "md or json")->check(CLI::IsMember({"md", "json"}))->capture_default_str();
  c->add_flag("--exact-matmul", o->exact_matmul, "f32 activations instead of 8-bit integer dot products");
  c->add_flag("--profile", o->profile, "print time per op at the end");
  c->add_option("-k,--cache-type-k", o->cache_k, "KV cache type for keys")->capture_default_str();
  c->add_option("-V,--cache-type-v", o->cache_v, "KV cache type for values")->capture_default_str();
  c->callback([o, exit_code] { *exit_code = bench(*o); });
}

}  // namespace osprey::cli
