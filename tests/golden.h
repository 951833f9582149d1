// Compares the engine with golden llama.cpp outputs (tests/data/golden, made by
// tests/scripts/gen_golden.py). Shared by the golden tests and the broken-kernel check.
#pragma once
#include <string>
#include <vector>

#include "backends/backend.h"

namespace osprey::testing {

struct GoldenReport {
  std::string error;             // load/run failure; empty if the comparison ran
  int positions = 0;             // positions compared
  int logits_compared = 0;       // (position, id) pairs compared
  double max_logit_diff = 0;     // over the reference's top-10 ids at each position
  double mean_logit_diff = 0;
  int top1_mismatches = 0;       // positions whose argmax differs where llama.cpp's margin is clear
  int greedy_compared = 0;       // greedy tokens compared before the first near-tie
  int greedy_mismatches = 0;     // greedy tokens that differ where llama.cpp's margin is clear
  int tokenizer_mismatches = 0;  // prompts our tokenizer encodes differently
  std::vector<std::string> details;
};

// `golden_file` is a JSON under tests/data/golden; greedy tokens are compared up to the
// first step whose reference top-2 margin is below `clear_margin`.
GoldenReport compare_with_golden(const std::string& model_file, const std::string& golden_file, Backend& backend,
                                 double clear_margin);

}  // namespace osprey::testing
