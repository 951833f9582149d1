// The scheduler the server drives: loads models on demand within a budget, keeps them for
// their keep-alive, and runs up to n_parallel requests per model together in one batch per
// decode step (continuous batching: a request joins between steps, a finished one frees its
// slot at once). Requests are Jobs; the HTTP thread reads a Job's text as it is produced, so
// a slow client never holds up the batch.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/embed.h"
#include "engine/generate.h"
#include "engine/model/model.h"
#include "engine/session.h"

namespace osprey {

using SteadyTime = std::chrono::steady_clock::time_point;

// One generation request. The submitter fills the inputs, then reads with next() until it
// returns false; cancel() (or a disconnect noticed by the submitter) ends it early.
class Job {
 public:
  std::vector<int32_t> prompt;
  GenerateParams gen;

  // Waits up to `timeout_ms` for text; appends it to *text. Returns false once the job has
  // finished and everything was read.
  bool next(std::string* text, int timeout_ms);
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }
  bool finished() const;
  // Valid after next() returned false.
  const GenerateResult& result() const { return result_; }
  const std::string& error() const { return error_; }
  int64_t queued_ns() const { return queued_ns_; }  // waiting for a slot

 private:
  friend class Runner;
  void push(const std::string& text);
  void finish(const std::string& error);
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string pending_;
  bool finished_ = false;
  std::atomic<bool> cancelled_{false};
  GenerateResult result_;
  std::string error_;
  int64_t queued_ns_ = 0, submit_ns_ = 0;
};

// A loaded model with its context of n_parallel sequence slots and the thread that decodes.
class Runner {
 public:
  ~Runner();
  const std::string& name() const { return name_; }
  const Model& model() const { return *model_; }
  int64_t n_ctx() const { return n_ctx_; }
  DType k_type() const { return k_type_; }
  DType v_type() const { return v_type_; }
  size_t bytes() const { return bytes_; }
  // Queues a job; it starts when a slot is free.
  void submit(std::shared_ptr<Job> job);
  // Embeds token sequences in one forward pass (see engine/embed.h), taking turns with the
  // decode loop; the model counts as busy meanwhile.
  Result<std::vector<std::vector<float>>> embed(const std::vector<std::vector<int32_t>>& seqs);
  bool idle() const;
  SteadyTime expires() const;
  int64_t keep_alive_ns() const { return keep_alive_ns_; }

 private:
  friend class Scheduler;
  struct Slot;
  Runner() = default;
  void loop();
  std::string name_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Context> ctx_;
  std::unique_ptr<Embedder> embedder_;  // made on first use
  std::mutex compute_mu_;               // one graph run at a time on backend_
  int embedding_ = 0;                   // embed() calls in progress (under mu_)
  int64_t n_ctx_ = 0, n_parallel_ = 1;
  int64_t n_ctx_requested_ = 0;  // before clamping to the training context: what reuse compares
  DType k_type_ = DType::F16, v_type_ = DType::F16;
  size_t bytes_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> waiting_;
  int active_ = 0;
  bool stop_ = false;
  int64_t keep_alive_ns_ = 0;  // < 0: forever
  SteadyTime expires_{};
  std::atomic<int>* pending_ = nullptr;  // the scheduler's count of waiting requests
  std::function<void()> on_idle_;
  std::thread thread_;
};

struct SchedulerOptions {
  int max_loaded = 3;
  int n_parallel = 1;
  int max_queue = 512;
  int64_t n_batch = 512;
  DType k_type = DType::F16, v_type = DType::F16;  // KV cache
  // The engine knows no concrete backend; the caller says how to make one per model.
  std::function<std::unique_ptr<Backend>()> make_backend;
};

struct LoadRequest {
  std::string name;  // the key (fully qualified model name)
  std::string path;  // GGUF file
  int64_t n_ctx = 4096;
  int64_t keep_alive_ns = 5LL * 60 * 1000000000;  // < 0: forever
  // KV cache types for this request; unset: the scheduler's (from the environment).
  std::optional<DType> k_type, v_type;
};

// Why acquire failed, so the server can pick the status code.
enum class SchedError { NONE, BUSY, LOAD, NO_MEMORY };

class Scheduler {
 public:
  explicit Scheduler(SchedulerOptions o);
  ~Scheduler();
  const SchedulerOptions& options() const { return o_; }

  // Returns a loaded runner for the model, loading (and evicting idle models) as needed.
  // Counts as a pending request until release_pending() or the job it submits starts.
  std::shared_ptr<Runner> acquire(const LoadRequest& r, SchedError* why, std::string* error, int64_t* load_ns);
  // Reserves a place in the bounded queue; false when it is full (answer 503).
  bool enter_queue();
  void leave_queue();
  // Sets the keep-alive the runner counts down from when it is next idle.
  void touch(Runner& r, int64_t keep_alive_ns);
  void unload(const std::string& name);
  std::vector<std::shared_ptr<Runner>> loaded();

 private:
  void reaper();
  void evict_expired(std::unique_lock<std::mutex>& lk);
  SchedulerOptions o_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Runner>> runners_;
  std::atomic<int> pending_{0};
  bool stop_ = false;
  std::thread reaper_;
};

// Bytes of memory available for new allocations (MemAvailable), 0 if unknown.
size_t available_memory();

}  // namespace osprey
