// Collects an importance matrix over a text (`osprey imatrix`): the text is chunked and
// decoded exactly as perplexity does it (perplexity.h), and every matmul against a layer
// weight ("blk.*") — plus "output.weight" when asked, as llama.cpp's --process-output — adds
// the squares of its input activations to that weight's per-column sums. The perplexity of
// the same pass is reported too.
#pragma once
#include <functional>

#include "engine/eval/perplexity.h"
#include "engine/quantize/imatrix.h"

namespace osprey {

struct ImatrixParams {
  PerplexityParams ppl;
  bool process_output = false;
};

struct ImatrixRun {
  Imatrix imatrix;
  NllStats nll;
};

Result<ImatrixRun> collect_imatrix(const Model& m, const std::vector<int32_t>& tokens, const ImatrixParams& p,
                                   const std::function<void(int64_t, const NllStats&)>& on_chunk);

}  // namespace osprey
