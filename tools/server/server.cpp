#include "server/server.h"

#include <csignal>
#include <cstdio>
#include <regex>
#include <thread>

#include "backends/cpu/cpu_backend.h"
#include "engine/kv_cache.h"

namespace osprey::server {
namespace {

const char* kVersion = "0.12.6";

std::string env_first(const char* a, const char* b, const char* def = "") {
  if (const char* v = std::getenv(a); v && *v) return v;
  if (const char* v = std::getenv(b); v && *v) return v;
  return def;
}

int env_int(const char* a, const char* b, int def) {
  const std::string v = env_first(a, b);
  if (v.empty()) return def;
  char* end = nullptr;
  const long n = std::strtol(v.c_str(), &end, 10);
  return end && *end == '\0' ? (int)n : def;
}

const char* openai_type(int status) {
  if (status == 400 || status == 413) return "invalid_request_error";
  if (status == 404) return "not_found_error";
  return "api_error";
}

// Known paths and their methods, so a wrong method is 405 rather than 404 (§1.4).
struct KnownPath {
  std::regex re;
  std::vector<std::string> methods;
};

const std::vector<KnownPath>& known_paths() {
  static const std::vector<KnownPath> k = [] {
    std::vector<KnownPath> v;
    auto add = [&](const char* re, std::vector<std::string> m) { v.push_back({std::regex(re), std::move(m)}); };
    add("/", {"GET", "HEAD"});
    add("/api/version", {"GET", "HEAD"});
    add("/api/tags", {"GET", "HEAD"});
    add("/api/ps", {"GET", "HEAD"});
    for (const char* p : {"/api/generate", "/api/chat", "/api/show", "/api/create", "/api/copy", "/api/pull",
                          "/api/push", "/api/embed", "/api/embeddings", "/v1/chat/completions", "/v1/completions",
                          "/v1/embeddings"})
      add(p, {"POST"});
    add("/api/delete", {"DELETE"});
    add("/api/blobs/[^/]+", {"HEAD", "POST"});
    add("/v1/models", {"GET", "HEAD"});
    add("/v1/models/.+", {"GET", "HEAD"});
    return v;
  }();
  return k;
}

}  // namespace

void send_json(httplib::Response& res, const json& j, int status) {
  res.status = status;
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json; charset=utf-8");
}

void send_error(httplib::Response& res, int status, const std::string& msg, bool openai) {
  if (openai)
    send_json(res, json{{"error", {{"message", msg}, {"type", openai_type(status)}, {"param", nullptr}, {"code", nullptr}}}},
              status);
  else
    send_json(res, json{{"error", msg}}, status);
}

httplib::Server::Handler guarded(std::function<void(const httplib::Request&, httplib::Response&)> fn, bool openai) {
  return [fn = std::move(fn), openai](const httplib::Request& req, httplib::Response& res) {
    try {
      fn(req, res);
    } catch (const HttpError& e) {
      send_error(res, e.status, e.message, openai);
    } catch (const std::exception& e) {
      send_error(res, 500, e.what(), openai);
    }
  };
}

void stream_run(httplib::Response& res, std::shared_ptr<NativeRun> run, const char* content_type,
                std::function<std::string(const json&)> encode, std::function<std::string()> trailer) {
  res.status = 200;
  res.set_chunked_content_provider(content_type, [run, encode, trailer](size_t, httplib::DataSink& sink) {
    json o;
    bool ready = false;
    while (run->next(&o, &ready, 100)) {
      if (!ready) {
        if (!sink.is_writable()) {
          run->cancel();
          return false;
        }
        continue;
      }
      const std::string bytes = encode(o);
      if (!bytes.empty() && !sink.write(bytes.data(), bytes.size())) {
        run->cancel();  // the client went away: free the slot at once
        return false;
      }
    }
    if (trailer) {
      const std::string t = trailer();
      if (!t.empty()) sink.write(t.data(), t.size());
    }
    sink.done();
    return true;
  });
}

void register_native_routes(httplib::Server& svr, ServerState& st) {
  auto health = [](const httplib::Request&, httplib::Response& res) {
    res.set_content("Ollama is running", "text/plain; charset=utf-8");
  };
  svr.Get("/", health);
  svr.Get("/api/version", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, json{{"version", kVersion}});
  });
  for (const bool chat : {false, true}) {
    svr.Post(chat ? "/api/chat" : "/api/generate", guarded([&st, chat](const httplib::Request& req, httplib::Response& res) {
               if (req.body.size() > st.cfg.max_body) throw HttpError{413, "request body too large"};
               const json body = decode_body(req.body, chat ? "ChatRequest" : "GenerateRequest");
               auto run = std::make_shared<NativeRun>(st, chat);
               run->prepare(body);
               if (!run->stream()) {
                 send_json(res, run->collect());
                 return;
               }
               stream_run(res, run, "application/x-ndjson",
                          [](const json& o) { return o.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; });
             }));
  }
  svr.Post("/api/push", guarded([](const httplib::Request& req, httplib::Response&) {
             decode_body(req.body, "PushRequest");
             throw HttpError{501, "push is not supported by this server"};
           }));
}

int serve_main(int threads) {
  std::signal(SIGPIPE, SIG_IGN);
  std::string host;
  int port = 11434;
  parse_host_env(env_first("OSPREY_HOST", "OLLAMA_HOST"), &host, &port);

  ServerState st;
  st.cfg.keep_alive_ns = keep_alive_from_env(env_first("OSPREY_KEEP_ALIVE", "OLLAMA_KEEP_ALIVE").c_str(), st.cfg.keep_alive_ns);
  st.cfg.num_ctx = env_int("OSPREY_CONTEXT_LENGTH", "OLLAMA_CONTEXT_LENGTH", 4096);
  if (st.cfg.num_ctx < 4) st.cfg.num_ctx = 4096;
  const std::string models = env_first("OSPREY_MODELS", "OLLAMA_MODELS");
  st.store = std::make_unique<store::ModelStore>(models.empty() ? store::ModelStore::default_root() : models);
  SchedulerOptions so;
  so.max_loaded = env_int("OSPREY_MAX_LOADED_MODELS", "OLLAMA_MAX_LOADED_MODELS", 3);
  so.n_parallel = env_int("OSPREY_NUM_PARALLEL", "OLLAMA_NUM_PARALLEL", 1);
  so.max_queue = env_int("OSPREY_MAX_QUEUE", "OLLAMA_MAX_QUEUE", 512);
  // f32 activations instead of 8-bit integer dot products: slower, closer to exact results.
  const std::string exact = env_first("OSPREY_EXACT_MATMUL", "OSPREY_EXACT_MATMUL");
  const bool exact_matmul = !exact.empty() && exact != "0" && exact != "false";
  so.make_backend = [threads, exact_matmul]() -> std::unique_ptr<Backend> {
    CpuBackendOptions bo;
    bo.n_threads = threads;
    bo.exact_matmul = exact_matmul;
    return std::make_unique<CpuBackend>(bo);
  };
  if (Status kv = cache_types_from_env(&so.k_type, &so.v_type); !kv.ok()) {
    std::fprintf(stderr, "osprey: error: %s\n", kv.message().c_str());
    return 1;
  }
  st.sched = std::make_unique<Scheduler>(so);

  httplib::Server svr;
  const int pool = std::max(32, so.n_parallel * 2 + so.max_queue > 200 ? 64 : so.n_parallel * 2 + so.max_queue + 16);
  svr.new_task_queue = [pool] { return new httplib::ThreadPool((size_t)pool); };
  svr.set_payload_max_length((size_t)1 << 40);  // blobs are large; JSON routes check their own limit
  const bool loopback = is_loopback_bind(host);
  auto origins = std::make_shared<OriginPolicy>(env_first("OSPREY_ORIGINS", "OLLAMA_ORIGINS"));
  const size_t max_body = st.cfg.max_body;

  svr.set_pre_routing_handler([loopback, origins, max_body](const httplib::Request& req, httplib::Response& res) {
    const std::string host_hdr = req.get_header_value("Host");
    if (loopback && !host_allowed(host_hdr)) {
      send_error(res, 403, "host not allowed");
      return httplib::Server::HandlerResponse::Handled;
    }
    const std::string origin = req.get_header_value("Origin");
    if (!origin.empty()) {
      const bool same = origin == "http://" + host_hdr || origin == "https://" + host_hdr;
      if (!same && !origins->allowed(origin)) {
        send_error(res, 403, "origin not allowed");
        return httplib::Server::HandlerResponse::Handled;
      }
      res.set_header("Access-Control-Allow-Origin", origins->allow_all() ? "*" : origin);
      if (!origins->allow_all()) res.set_header("Vary", "Origin");
      if (req.method == "OPTIONS") {
        res.status = 204;
        res.set_header("Access-Control-Allow-Methods", "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS");
        res.set_header("Access-Control-Allow-Headers",
                       "Authorization,Content-Type,User-Agent,Accept,X-Requested-With,OpenAI-Beta,"
                       "x-stainless-arch,x-stainless-async,x-stainless-custom-poll-interval,"
                       "x-stainless-helper-method,x-stainless-lang,x-stainless-os,x-stainless-package-version,"
                       "x-stainless-poll-helper,x-stainless-retry-count,x-stainless-runtime,"
                       "x-stainless-runtime-version,x-stainless-timeout");
        res.set_header("Access-Control-Max-Age", "43200");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    for (const KnownPath& k : known_paths()) {
      if (!std::regex_match(req.path, k.re)) continue;
      if (std::find(k.methods.begin(), k.methods.end(), req.method) == k.methods.end()) {
        if (req.method == "OPTIONS") {
          res.status = 204;
          return httplib::Server::HandlerResponse::Handled;
        }
        send_error(res, 405, "405 method not allowed", req.path.rfind("/v1/", 0) == 0);
        return httplib::Server::HandlerResponse::Handled;
      }
      break;
    }
    if (req.path.rfind("/api/blobs/", 0) != 0 && req.has_header("Content-Length")) {
      const std::string cl = req.get_header_value("Content-Length");
      if (std::strtoull(cl.c_str(), nullptr, 10) > max_body) {
        send_error(res, 413, "request body too large", req.path.rfind("/v1/", 0) == 0);
        res.set_header("Connection", "close");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || req.method == "HEAD") return;
    const bool openai = req.path.rfind("/v1/", 0) == 0;
    if (res.status == 404) send_error(res, 404, "404 page not found", openai);
    else if (res.status == 413) send_error(res, 413, "request body too large", openai);
    else send_error(res, res.status, "HTTP " + std::to_string(res.status), openai);
  });

  register_native_routes(svr, st);
  register_model_routes(svr, st);
  register_openai_routes(svr, st);
  register_embed_routes(svr, st);

  if (!svr.bind_to_port(host, port)) {
    std::fprintf(stderr, "osprey: error: cannot listen on %s:%d\n", host.c_str(), port);
    return 1;
  }
  std::fprintf(stderr, "osprey: listening on %s:%d (models: %s, parallel %d, max loaded %d, queue %d)\n", host.c_str(),
               port, st.store->root().c_str(), so.n_parallel, so.max_loaded, so.max_queue);
  svr.listen_after_bind();
  return 0;
}

}  // namespace osprey::server
