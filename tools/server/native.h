// The native /api/generate and /api/chat logic, independent of HTTP framing: the NDJSON
// routes and the OpenAI converters both drive a NativeRun, so this is the only code that
// talks to the engine (ollama-api.md §7).
#pragma once
#include <memory>
#include <string>

#include "engine/scheduler.h"
#include "engine/store/model_store.h"
#include "server/http_util.h"
#include "engine/chat/reply.h"

namespace osprey::server {

struct ServerConfig {
  int64_t keep_alive_ns = 5LL * 60 * 1000000000;
  int64_t num_ctx = 4096;
  size_t max_body = 32u << 20;
};

struct ServerState {
  ServerConfig cfg;
  std::unique_ptr<store::ModelStore> store;
  std::unique_ptr<Scheduler> sched;
};

// One generate or chat request in flight. prepare() validates and starts it (throwing
// HttpError before anything is streamed); next() yields the response objects in order.
class NativeRun {
 public:
  NativeRun(ServerState& s, bool chat) : s_(s), chat_(chat) {}
  ~NativeRun();
  void prepare(const json& req);
  bool stream() const { return stream_; }
  // Next object to send (a delta or the final one). Returns false after the final one.
  // `poll_ms` bounds the wait; *ready=false means no object yet (check the client).
  bool next(json* out, bool* ready, int poll_ms = 100);
  // Non-streaming: runs to the end and returns the single combined object.
  json collect();
  void cancel();

 private:
  json base() const;
  json final_object(const std::string& text);
  ServerState& s_;
  bool chat_;
  bool stream_ = true;
  bool raw_ = false;
  bool done_ = false;
  std::string model_echo_;
  std::string special_reason_;  // "load" / "unload": answered without generating
  std::shared_ptr<Runner> runner_;
  std::shared_ptr<Job> job_;
  std::vector<int32_t> prompt_;
  int64_t t0_ = 0, load_ns_ = 0;
  int64_t keep_alive_ns_ = 0;
  bool in_queue_ = false;
  // Splits the reply into thinking, content and tool calls (set when thinking is on or the
  // request offers tools); objects it yields beyond one per step wait in queued_.
  std::unique_ptr<chat::ReplyParser> reply_;
  bool reply_flushed_ = false;
  std::vector<json> queued_;
  json delta_object(const std::string& thinking, const std::string& content, const std::vector<chat::ToolCall>* calls) const;
};

}  // namespace osprey::server
