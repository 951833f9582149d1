#include "engine/eval/imatrix_collect.h"

#include <cmath>
#include <map>

namespace osprey {
namespace {

// Sums of x^2 per input column and the number of rows summed, per weight.
class SquareSums : public MatmulObserver {
 public:
  explicit SquareSums(bool process_output) : process_output_(process_output) {}
  bool wants(const ir::Tensor& w) const override {
    return w.name.rfind("blk.", 0) == 0 || (process_output_ && w.name == "output.weight");
  }
  void observe(const ir::Tensor& w, const float* x, int64_t cols, int64_t rows) override {
    if (!status_.ok()) return;
    Acc& a = acc_[w.name];
    if (a.sum.empty()) a.sum.assign((size_t)cols, 0.0);
    if ((int64_t)a.sum.size() != cols) {
      status_ = Status::error("imatrix: weight '" + w.name + "' was multiplied with rows of " + std::to_string(cols) +
                              " and of " + std::to_string(a.sum.size()) + " columns");
      return;
    }
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x + (size_t)r * (size_t)cols;
      for (int64_t j = 0; j < cols; ++j) a.sum[(size_t)j] += (double)row[j] * (double)row[j];
    }
    a.rows += rows;
  }
  const Status& status() const { return status_; }
  Status finish(Imatrix* out) const {
    for (const auto& [name, a] : acc_) {
      std::vector<float> mean(a.sum.size());
      for (size_t j = 0; j < a.sum.size(); ++j) {
        mean[j] = (float)(a.sum[j] / (double)a.rows);
        if (!std::isfinite(mean[j])) return Status::error("imatrix: non-finite activations entering '" + name + "'");
      }
      out->values[name] = std::move(mean);
    }
    return Status();
  }

 private:
  struct Acc {
    std::vector<double> sum;
    int64_t rows = 0;
  };
  bool process_output_;
  std::map<std::string, Acc> acc_;
  Status status_;
};

}  // namespace

Result<ImatrixRun> collect_imatrix(const Model& m, const std::vector<int32_t>& tokens, const ImatrixParams& p,
                                   const std::function<void(int64_t, const NllStats&)>& on_chunk) {
  SquareSums sums(p.process_output);
  auto progress = [&](int64_t c, const NllStats& s) {
    if (sums.status().ok() && on_chunk) on_chunk(c, s);
  };
  auto r = run_perplexity(m, tokens, p.ppl, progress, nullptr, &sums);
  if (!r) return r.status();
  OSPREY_TRY(sums.status());
  ImatrixRun run;
  run.nll = r->nll;
  OSPREY_TRY(sums.finish(&run.imatrix));
  run.imatrix.n_chunks = (int32_t)r->n_chunks;
  run.imatrix.chunk_size = (int32_t)p.ppl.n_ctx;
  return run;
}

}  // namespace osprey
