#include "golden.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/generate.h"
#include "test_models.h"

namespace osprey::testing {

GoldenReport compare_with_golden(const std::string& model_file, const std::string& golden_file, Backend& backend,
                                 double clear_margin) {
  GoldenReport rep;
  const std::string path = model_path(model_file);
  if (path.empty()) {
    rep.error = "model " + model_file + " not found in " + model_cache_dir() + "; run tools/fetch_models.py";
    return rep;
  }
  std::ifstream in(std::string(OSPREY_TEST_DATA) + "/golden/" + golden_file);
  if (!in) {
    rep.error = "golden data " + golden_file + " missing";
    return rep;
  }
  const nlohmann::json golden = nlohmann::json::parse(in);
  auto model = Model::load(path, backend);
  if (!model) {
    rep.error = model.error();
    return rep;
  }
  const Model& m = *model.value();
  ContextParams cp;
  cp.n_ctx = 1024;
  auto ctx = Context::create(m, cp);
  if (!ctx) {
    rep.error = ctx.error();
    return rep;
  }
  const int64_t V = m.hparams().n_vocab;
  for (const auto& c : golden["cases"]) {
    const std::vector<int32_t> prompt = c["tokens"].get<std::vector<int32_t>>();
    const std::vector<int32_t> greedy = c["greedy"].get<std::vector<int32_t>>();
    const std::vector<double> margins = c["greedy_margins"].get<std::vector<double>>();
    const std::string text = c["prompt"];
    if (m.tokenizer().encode(text, true, true) != prompt) {
      ++rep.tokenizer_mismatches;
    }

    // Logits at the golden positions over prompt + llama.cpp's continuation.
    std::vector<int32_t> seq = prompt;
    seq.insert(seq.end(), greedy.begin(), greedy.end());
    seq.resize((size_t)c["n_eval"].get<int>());
    std::vector<BatchToken> batch(seq.size());
    std::vector<int> positions;
    for (size_t i = 0; i < seq.size(); ++i) {
      const bool want = c["top_logits"].contains(std::to_string(i));
      batch[i] = {seq[i], 0, (int32_t)i, want};
      if (want) positions.push_back((int)i);
    }
    std::vector<float> logits;
    if (Status s = ctx.value()->decode(batch, &logits); !s.ok()) {
      rep.error = s.message();
      return rep;
    }
    double case_max = 0;
    int worst_pos = -1;
    for (size_t r = 0; r < positions.size(); ++r) {
      const float* row = logits.data() + r * (size_t)V;
      const auto& top = c["top_logits"][std::to_string(positions[r])];
      ++rep.positions;
      for (const auto& pair : top) {
        const int id = pair[0];
        const double d = std::fabs((double)row[id] - pair[1].get<double>());
        if (d > case_max) worst_pos = positions[r];
        case_max = std::max(case_max, d);
        rep.mean_logit_diff += d;
        ++rep.logits_compared;
      }
      const double ref_margin = top[0][1].get<double>() - top[1][1].get<double>();
      const int64_t ours = std::max_element(row, row + V) - row;
      if (ours != top[0][0].get<int>() && ref_margin > clear_margin) {
        ++rep.top1_mismatches;
      }
    }

    rep.max_logit_diff = std::max(rep.max_logit_diff, case_max);
    rep.details.push_back("max |logit diff| " + std::to_string(case_max) + " at position " + std::to_string(worst_pos) +
                          " of " + std::to_string(seq.size()) + " for prompt: " + text.substr(0, 30));
    if (greedy.empty()) continue;

    // Greedy continuation with our own loop; compared up to llama.cpp's first near-tie,
    // after which either choice is a correct greedy decode of a slightly different number.
    GenerateParams gp;
    gp.max_tokens = (int32_t)greedy.size();
    gp.sampling.temperature = 0;
    gp.sampling.repeat_penalty = 1.0f;
    gp.sampling.random_seed = false;
    auto g = generate(*ctx.value(), 0, prompt, gp, nullptr);
    if (!g) {
      rep.error = g.error();
      return rep;
    }
    const auto& got = g.value().tokens;
    for (size_t i = 0; i < greedy.size(); ++i) {
      if (margins[i] < clear_margin) break;
      const bool eog_here = i == got.size() && m.tokenizer().is_eog(greedy[i]);
      if (eog_here) break;
      ++rep.greedy_compared;
      if (i >= got.size() || got[i] != greedy[i]) {
        ++rep.greedy_mismatches;
        rep.details.push_back("greedy token " + std::to_string(i) + " differs for prompt: " + text.substr(0, 30));
        break;
      }
    }
  }
  if (rep.logits_compared) rep.mean_logit_diff /= rep.logits_compared;
  return rep;
}

}  // namespace osprey::testing
