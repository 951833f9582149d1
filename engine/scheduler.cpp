#include "engine/scheduler.h"

#include <fstream>
#include <sys/stat.h>

#include "engine/sampler.h"

namespace osprey {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

SteadyTime expiry_after(int64_t keep_alive_ns) {
  // "Forever" as a far future that cannot overflow steady_clock arithmetic.
  if (keep_alive_ns < 0) return SteadyTime::max() - std::chrono::hours(24 * 365 * 10);
  return std::chrono::steady_clock::now() + std::chrono::nanoseconds(keep_alive_ns);
}

}  // namespace

size_t available_memory() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t kb = 0;
  std::string unit;
  while (f >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

// ---- Job ----

bool Job::next(std::string* text, int timeout_ms) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return finished_ || !pending_.empty(); });
  text->append(pending_);
  pending_.clear();
  return !finished_;
}

bool Job::finished() const {
  std::lock_guard<std::mutex> lk(mu_);
  return finished_;
}

void Job::push(const std::string& text) {
  if (text.empty()) return;
  std::lock_guard<std::mutex> lk(mu_);
  pending_ += text;
  cv_.notify_all();
}

void Job::finish(const std::string& error) {
  std::lock_guard<std::mutex> lk(mu_);
  error_ = error;
  finished_ = true;
  cv_.notify_all();
}

// ---- Runner ----

struct Runner::Slot {
  std::shared_ptr<Job> job;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<StopMatcher> stops;
  std::unique_ptr<grammar::TokenMatcher> constraint;  // structured output, if requested
  Utf8StreamDecoder utf8;
  bool prefilled = false;
  int32_t pos = 0, last = 0;
  int64_t t_start = 0, t_gen = 0;
};

Runner::~Runner() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void Runner::submit(std::shared_ptr<Job> job) {
  job->submit_ns_ = now_ns();
  std::lock_guard<std::mutex> lk(mu_);
  waiting_.push_back(std::move(job));
  cv_.notify_all();
}

bool Runner::idle() const {
  std::lock_guard<std::mutex> lk(mu_);
  return active_ == 0 && waiting_.empty() && embedding_ == 0;
}

Result<std::vector<std::vector<float>>> Runner::embed(const std::vector<std::vector<int32_t>>& seqs) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++embedding_;
  }
  Result<std::vector<std::vector<float>>> r = [&]() -> Result<std::vector<std::vector<float>>> {
    std::lock_guard<std::mutex> lk(compute_mu_);
    if (!embedder_) embedder_ = std::make_unique<Embedder>(*model_);
    return embedder_->embed(seqs);
  }();
  std::lock_guard<std::mutex> lk(mu_);
  if (--embedding_ == 0 && active_ == 0 && waiting_.empty()) expires_ = expiry_after(keep_alive_ns_);
  return r;
}

SteadyTime Runner::expires() const {
  std::lock_guard<std::mutex> lk(mu_);
  // While requests run the model stays at least keep-alive from now.
  if (active_ > 0 || !waiting_.empty() || embedding_ > 0) return expiry_after(keep_alive_ns_);
  return expires_;
}

void Runner::loop() {
  std::vector<Slot> slots((size_t)n_parallel_);
  const Tokenizer& tok = model_->tokenizer();
  const int64_t n_vocab = model_->hparams().n_vocab;
  std::vector<BatchToken> batch;
  std::vector<float> logits;
  std::vector<int> row_slot;  // which slot each logits row belongs to
  std::shared_ptr<const grammar::Vocab> vocab;  // for structured outputs, built on first use

  auto finish = [&](Slot& s, const std::string& reason, const std::string& error) {
    if (error.empty()) {
      // Text held back for a possible stop string or an unfinished UTF-8 sequence is real
      // output once no stop string can match any more.
      bool stopped = false;
      std::string rest = s.stops->feed(s.utf8.flush(), &stopped);
      if (!stopped) rest += s.stops->flush();
      s.job->push(rest);
    }
    const int64_t t = now_ns();
    GenerateResult& r = s.job->result_;
    r.done_reason = reason;
    r.prompt_ns = (s.t_gen ? s.t_gen : t) - s.t_start;
    r.generate_ns = s.t_gen ? t - s.t_gen : 0;
    s.job->finish(error);
    s.job.reset();
    std::lock_guard<std::mutex> lk(mu_);
    --active_;
    if (active_ == 0 && waiting_.empty()) expires_ = expiry_after(keep_alive_ns_);
  };

  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || active_ > 0 || !waiting_.empty(); });
      if (stop_) break;
      for (Slot& s : slots) {
        if (s.job || waiting_.empty()) continue;
        std::shared_ptr<Job> j = std::move(waiting_.front());
        waiting_.pop_front();
        if (pending_) pending_->fetch_sub(1);
        s = Slot();
        s.job = std::move(j);
        s.t_start = now_ns();
        s.job->queued_ns_ = s.t_start - s.job->submit_ns_;
        s.sampler = std::make_unique<Sampler>(s.job->gen.sampling);
        for (int32_t t : s.job->prompt) s.sampler->accept(t);
        s.stops = std::make_unique<StopMatcher>(s.job->gen.stop);
        if (s.job->gen.grammar) {
          if (!vocab) vocab = grammar_vocab(tok);
          s.constraint = std::make_unique<grammar::TokenMatcher>(s.job->gen.grammar, vocab);
        }
        ++active_;
      }
    }
    batch.clear();
    row_slot.clear();
    for (size_t i = 0; i < slots.size(); ++i) {
      Slot& s = slots[i];
      if (!s.job) continue;
      const auto& prompt = s.job->prompt;
      if (s.job->cancelled()) {
        finish(s, "stop", "request canceled");
        continue;
      }
      if (!s.prefilled) {
        if (prompt.empty() || (int64_t)prompt.size() >= n_ctx_) {
          finish(s, "", prompt.empty() ? "empty prompt" :
                 "the prompt of " + std::to_string(prompt.size()) + " tokens does not fit the context of " +
                     std::to_string(n_ctx_));
          continue;
        }
        s.job->result_.n_prompt = (int64_t)prompt.size();
        for (size_t k = 0; k < prompt.size(); ++k)
          batch.push_back({prompt[k], (int32_t)i, (int32_t)k, k + 1 == prompt.size()});
        s.pos = (int32_t)prompt.size();
      } else {
        batch.push_back({s.last, (int32_t)i, s.pos++, true});
      }
      row_slot.push_back((int)i);
    }
    if (batch.empty()) continue;
    Status st;
    {
      std::lock_guard<std::mutex> compute(compute_mu_);
      st = ctx_->decode(batch, &logits);
    }
    if (!st.ok()) {
      for (int i : row_slot) finish(slots[(size_t)i], "", st.message());
      continue;
    }
    const int64_t t = now_ns();
    for (size_t row = 0; row < row_slot.size(); ++row) {
      Slot& s = slots[(size_t)row_slot[row]];
      if (!s.prefilled) {
        s.prefilled = true;
        s.t_gen = t;
      }
      GenerateResult& r = s.job->result_;
      const GenerateParams& p = s.job->gen;
      if (p.max_tokens == 0) {
        finish(s, "length", "");
        continue;
      }
      const int32_t id = s.sampler->sample(logits.data() + row * (size_t)n_vocab, n_vocab, s.constraint.get());
      if (s.constraint && !s.constraint->accept(id)) {
        finish(s, "", "structured output: no token can continue the text");
        continue;
      }
      if (tok.is_eog(id)) {
        finish(s, "stop", "");
        continue;
      }
      s.sampler->accept(id);
      r.tokens.push_back(id);
      ++r.n_generated;
      bool stopped = false;
      s.job->push(s.stops->feed(s.utf8.push(tok.token_to_piece(id)), &stopped));
      if (stopped) {
        s.utf8.reset();
        s.stops->flush();
        finish(s, "stop", "");
      } else if (s.constraint && s.constraint->must_end()) {
        finish(s, "stop", "");  // the value is complete: end-of-generation is the only choice
      } else if ((p.max_tokens > 0 && r.n_generated >= p.max_tokens) || s.pos >= n_ctx_) {
        finish(s, "length", "");
      } else {
        s.last = id;
      }
    }
  }
  for (Slot& s : slots)
    if (s.job) s.job->finish("the model was unloaded");
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& j : waiting_) {
    if (pending_) pending_->fetch_sub(1);
    j->finish("the model was unloaded");
  }
  waiting_.clear();
}

// ---- Scheduler ----

Scheduler::Scheduler(SchedulerOptions o) : o_(o) {
  if (o_.max_loaded < 1) o_.max_loaded = 3;
  if (o_.n_parallel < 1) o_.n_parallel = 1;
  if (o_.max_queue < 1) o_.max_queue = 512;
  reaper_ = std::thread([this] { reaper(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  reaper_.join();
  std::map<std::string, std::shared_ptr<Runner>> gone;
  {
    std::lock_guard<std::mutex> lk(mu_);
    gone.swap(runners_);
  }
}

bool Scheduler::enter_queue() {
  if (pending_.fetch_add(1) >= o_.max_queue) {
    pending_.fetch_sub(1);
    return false;
  }
  return true;
}

void Scheduler::leave_queue() { pending_.fetch_sub(1); }

void Scheduler::touch(Runner& r, int64_t keep_alive_ns) {
  std::lock_guard<std::mutex> lk(r.mu_);
  r.keep_alive_ns_ = keep_alive_ns;
  if (r.active_ == 0 && r.waiting_.empty()) r.expires_ = expiry_after(keep_alive_ns);
}

void Scheduler::unload(const std::string& name) {
  std::shared_ptr<Runner> gone;
  std::lock_guard<std::mutex> lk(mu_);
  auto it = runners_.find(name);
  if (it == runners_.end()) return;
  if (it->second->idle()) {
    gone = it->second;
    runners_.erase(it);
  } else {
    touch(*it->second, 0);  // unloads once the running requests finish
  }
  cv_.notify_all();
}

std::vector<std::shared_ptr<Runner>> Scheduler::loaded() {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<std::shared_ptr<Runner>> out;
  for (auto& [k, r] : runners_) out.push_back(r);
  return out;
}

void Scheduler::evict_expired(std::unique_lock<std::mutex>&) {
  const SteadyTime now = std::chrono::steady_clock::now();
  for (auto it = runners_.begin(); it != runners_.end();) {
    if (it->second.use_count() == 1 && it->second->idle() && it->second->expires() <= now)
      it = runners_.erase(it);
    else
      ++it;
  }
}

void Scheduler::reaper() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    cv_.wait_for(lk, std::chrono::milliseconds(200));
    evict_expired(lk);
  }
}

std::shared_ptr<Runner> Scheduler::acquire(const LoadRequest& req, SchedError* why, std::string* error,
                                           int64_t* load_ns) {
  const int64_t t0 = now_ns();
  *why = SchedError::NONE;
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    auto it = runners_.find(req.name);
    if (it != runners_.end()) {
      std::shared_ptr<Runner> r = it->second;
      // A different context length or cache type needs a reload, but never under running
      // requests (those are served with what is loaded).
      const bool same = r->n_ctx_requested_ == req.n_ctx && r->k_type_ == req.k_type.value_or(o_.k_type) &&
                        r->v_type_ == req.v_type.value_or(o_.v_type);
      if (same || !r->idle()) {
        touch(*r, req.keep_alive_ns);
        *load_ns = now_ns() - t0;
        return r;
      }
      if (r.use_count() == 2) runners_.erase(it);  // the map's and ours: nobody else holds it
      else {
        cv_.wait_for(lk, std::chrono::milliseconds(50));
        continue;
      }
    }
    if ((int)runners_.size() < o_.max_loaded) break;
    // Evict the idle model that expires first; wait if all are busy.
    auto victim = runners_.end();
    for (auto j = runners_.begin(); j != runners_.end(); ++j)
      if (j->second.use_count() == 1 && j->second->idle() &&
          (victim == runners_.end() || j->second->expires() < victim->second->expires()))
        victim = j;
    if (victim != runners_.end()) {
      runners_.erase(victim);
      continue;
    }
    if (stop_) {
      *why = SchedError::LOAD;
      *error = "server is shutting down";
      return nullptr;
    }
    cv_.wait_for(lk, std::chrono::milliseconds(100));
  }

  struct stat sb {};
  if (::stat(req.path.c_str(), &sb) != 0) {
    *why = SchedError::LOAD;
    *error = "model file not found: " + req.path;
    return nullptr;
  }
  const size_t avail = available_memory();
  if (avail && (size_t)sb.st_size > avail) {
    *why = SchedError::NO_MEMORY;
    *error = "model requires more system memory (" + std::to_string(sb.st_size >> 20) + " MiB) than is available (" +
             std::to_string(avail >> 20) + " MiB)";
    return nullptr;
  }
  std::shared_ptr<Runner> r(new Runner());
  r->name_ = req.name;
  r->backend_ = o_.make_backend ? o_.make_backend() : nullptr;
  if (!r->backend_) {
    *why = SchedError::LOAD;
    *error = "no compute backend";
    return nullptr;
  }
  auto m = Model::load(req.path, *r->backend_);
  if (!m) {
    *why = SchedError::LOAD;
    *error = m.error();
    return nullptr;
  }
  r->model_ = std::move(m).value();
  const HParams& hp = r->model_->hparams();
  r->n_ctx_requested_ = req.n_ctx;
  r->n_ctx_ = std::max<int64_t>(4, hp.n_ctx_train > 0 ? std::min(req.n_ctx, hp.n_ctx_train) : req.n_ctx);
  r->k_type_ = req.k_type.value_or(o_.k_type);
  r->v_type_ = req.v_type.value_or(o_.v_type);
  r->n_parallel_ = o_.n_parallel;
  // K and V of the cache types for every layer, slot and position.
  const size_t kv = (size_t)hp.n_layer * (size_t)r->n_ctx_ * (size_t)r->n_parallel_ * (size_t)hp.n_head_kv *
                    (size_t)(std::max<int64_t>(0, dtype_row_bytes(r->k_type_, hp.head_dim_k)) +
                             std::max<int64_t>(0, dtype_row_bytes(r->v_type_, hp.head_dim_v)));
  const size_t avail2 = available_memory();
  if (avail2 && kv > avail2) {
    *why = SchedError::NO_MEMORY;
    *error = "the context (" + std::to_string(r->n_ctx_) + " tokens x " + std::to_string(r->n_parallel_) +
             " slots) requires more system memory (" + std::to_string(kv >> 20) + " MiB) than is available (" +
             std::to_string(avail2 >> 20) + " MiB)";
    return nullptr;
  }
  ContextParams cp;
  cp.n_ctx = r->n_ctx_;
  cp.n_seq = r->n_parallel_;
  cp.n_batch = o_.n_batch;
  cp.k_type = r->k_type_;
  cp.v_type = r->v_type_;
  auto ctx = Context::create(*r->model_, cp);
  if (!ctx) {
    *why = SchedError::LOAD;
    *error = ctx.error();
    return nullptr;
  }
  r->ctx_ = std::move(ctx).value();
  r->bytes_ = (size_t)sb.st_size + kv;
  r->keep_alive_ns_ = req.keep_alive_ns;
  r->expires_ = expiry_after(req.keep_alive_ns);
  r->pending_ = &pending_;
  r->thread_ = std::thread([p = r.get()] { p->loop(); });
  runners_[req.name] = r;
  *load_ns = now_ns() - t0;
  return r;
}

}  // namespace osprey
