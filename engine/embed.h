// Embeddings: a batch of token sequences in one forward pass, each sequence attending only
// to itself (its own cells of a scratch f32 K/V store sized to the batch), then pooled per
// the model's HParams::pooling (mean over tokens, the first token, or the last token).
#pragma once
#include <vector>

#include "engine/executor.h"
#include "engine/model/model.h"

namespace osprey {

class Embedder {
 public:
  explicit Embedder(const Model& m, std::vector<Backend*> backends = {});
  // One vector of n_embd floats per sequence, in order; pooled, not normalised. Each
  // sequence must be non-empty and fit the model's training context. Not thread-safe.
  Result<std::vector<std::vector<float>>> embed(const std::vector<std::vector<int32_t>>& seqs);
  const Model& model() const { return m_; }
  // Overrides the model's pooling (e.g. mean pooling of a decoder); NONE means the last token.
  void set_pooling(Pooling p) { pooling_ = p == Pooling::NONE ? Pooling::LAST : p; }
  Pooling pooling() const { return pooling_; }

 private:
  const Model& m_;
  Pooling pooling_;
  Executor exec_;
};

// Scales v to unit L2 norm, in double precision; a zero vector stays zero.
void l2_normalize(std::vector<float>* v);

}  // namespace osprey
