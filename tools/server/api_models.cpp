// Model management routes: thin handlers over store::ModelStore and the scheduler
// (ollama-api.md §5.5–5.14).
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "engine/quantize/quantize_model.h"
#include "engine/quantize/tensor_types.h"
#include "engine/store/modelfile.h"
#include "server/prompt.h"
#include "server/server.h"

namespace osprey::server {
namespace {

// Maps a store error onto a status: misses are 404, everything else the client's fault.
int store_status(const std::string& msg) {
  if (msg.find("not found") != std::string::npos) return 404;
  return 400;
}

std::string model_field(const json& body, const char* go_type) {
  std::string m = get_string(body, "model", go_type).value_or("");
  if (m.empty()) m = get_string(body, "name", go_type).value_or("");
  m.erase(0, m.find_first_not_of(" \t"));
  while (!m.empty() && (m.back() == ' ' || m.back() == '\t')) m.pop_back();
  return m;
}

// Progress lines produced on a worker thread and written by the HTTP thread, so a slow
// client never stalls a pull and a vanished one never kills it half way.
struct ProgressQueue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<json> items;
  bool done = false;
  void push(const json& j) {
    std::lock_guard<std::mutex> lk(mu);
    items.push_back(j);
    cv.notify_all();
  }
  void finish() {
    std::lock_guard<std::mutex> lk(mu);
    done = true;
    cv.notify_all();
  }
};

// Runs `op` (which reports through the callback and returns its status) either streamed as
// NDJSON ending in {"status":"success"} or an {"error"} line, or as one final object.
void run_progress(httplib::Response& res, bool stream, std::function<Status(const store::Progress&)> op,
                  int error_status) {
  if (!stream) {
    const Status s = op([](const json&) {});
    if (!s.ok()) throw HttpError{error_status ? error_status : store_status(s.message()), s.message()};
    send_json(res, json{{"status", "success"}});
    return;
  }
  auto q = std::make_shared<ProgressQueue>();
  std::thread([q, op] {
    auto said_success = std::make_shared<bool>(false);
    const Status s = op([q, said_success](const json& j) {
      *said_success = j.value("status", "") == "success";
      q->push(j);
    });
    // Every stream ends in exactly one success or error line (the JS client insists).
    if (!s.ok()) q->push(json{{"error", s.message()}});
    else if (!*said_success) q->push(json{{"status", "success"}});
    q->finish();
  }).detach();
  res.status = 200;
  res.set_chunked_content_provider("application/x-ndjson", [q](size_t, httplib::DataSink& sink) {
    for (;;) {
      std::unique_lock<std::mutex> lk(q->mu);
      q->cv.wait_for(lk, std::chrono::milliseconds(200), [&] { return q->done || !q->items.empty(); });
      while (!q->items.empty()) {
        const std::string line = q->items.front().dump() + "\n";
        q->items.pop_front();
        lk.unlock();
        if (!sink.write(line.data(), line.size())) return false;
        lk.lock();
      }
      if (q->done) break;
    }
    sink.done();
    return true;
  });
}

json tag_entry(const store::ModelInfo& m) {
  return json{{"name", m.name.display()}, {"model", m.name.display()}, {"modified_at", m.modified_at},
              {"size", m.size},           {"digest", m.manifest_digest}, {"details", m.details}};
}

json model_info_json(const store::ModelInfo& m, bool verbose) {
  json info = json::object();
  if (const auto* md = gguf_metadata(m.model_path))
    for (const auto& [k, v] : *md) {
      if (k == "general.name" || k == "tokenizer.chat_template") continue;
      info[k] = (!verbose && v.is_array() && v.size() > 5) ? json::array() : v;
    }
  return info;
}

void handle_create(const httplib::Request& req, httplib::Response& res, ServerState& st) {
  const json body = decode_body(req.body, "CreateRequest");
  const std::string name = model_field(body, "CreateRequest");
  if (!store::ModelName::parse(name)) throw HttpError{400, "invalid model name"};
  const bool stream = get_bool(body, "stream", "CreateRequest").value_or(true);
  store::CreateRequest cr;
  cr.from = get_string(body, "from", "CreateRequest").value_or("");
  if (auto files = get_object(body, "files", "CreateRequest"))
    for (auto it = files->begin(); it != files->end(); ++it) {
      const std::string& fn = it.key();
      if (fn.empty() || fn[0] == '/' || fn.find("..") != std::string::npos || fn.find('\\') != std::string::npos)
        throw HttpError{400, "file path must be relative"};
      if (!it.value().is_string() || !store::valid_digest(it.value().get<std::string>()))
        throw HttpError{400, "invalid digest format"};
      cr.files.emplace_back(fn, it.value().get<std::string>());
    }
  if (auto ad = get_object(body, "adapters", "CreateRequest"); ad && !ad->empty())
    throw HttpError{400, "adapters are not supported by this server"};
  if (auto t = get_string(body, "template", "CreateRequest")) {
    size_t open = 0, close = 0;
    for (size_t at = t->find("{{"); at != std::string::npos; at = t->find("{{", at + 2)) ++open;
    for (size_t at = t->find("}}"); at != std::string::npos; at = t->find("}}", at + 2)) ++close;
    if (open != close) throw HttpError{400, "template error: unclosed action"};
    cr.template_text = *t;
  }
  if (auto s = get_string(body, "system", "CreateRequest")) cr.system = *s;
  if (auto p = get_object(body, "parameters", "CreateRequest")) {
    auto checked = store::check_parameters(*p);
    if (!checked) throw HttpError{400, checked.error()};
    cr.parameters = checked.value();
  }
  if (auto m = get_array(body, "messages", "CreateRequest")) {
    json msgs = json::array();
    for (const auto& x : *m) {
      if (!x.is_object()) throw HttpError{400, "json: cannot unmarshal " + go_type_of(x) + " into Go struct field CreateRequest.messages of type api.Message"};
      json l = lower_keys(x);
      msgs.push_back(json{{"role", l.value("role", "user")}, {"content", l.value("content", "")}});
    }
    cr.messages = msgs;
  }
  if (auto it = body.find("license"); it != body.end() && !it->is_null()) {
    std::vector<std::string> lic;
    if (it->is_string()) lic.push_back(it->get<std::string>());
    else if (it->is_array())
      for (const auto& l : *it) {
        if (!l.is_string()) throw HttpError{400, "json: cannot unmarshal " + go_type_of(l) + " into license"};
        lic.push_back(l.get<std::string>());
      }
    else throw HttpError{400, "json: cannot unmarshal " + go_type_of(*it) + " into Go struct field CreateRequest.license"};
    cr.license = lic;
  }
  cr.quantize = get_string(body, "quantize", "CreateRequest").value_or(get_string(body, "quantization", "CreateRequest").value_or(""));
  if (!cr.quantize.empty()) {
    if (!quantize::find_mix(cr.quantize)) throw HttpError{400, "unsupported quantization type " + cr.quantize};
    cr.quantizer = [](const std::string& in, const std::string& out, const std::string& type) -> Status {
      quantize::Options o;
      o.mix = type;
      auto s = quantize::quantize_model(in, out, o);
      return s.ok() ? Status() : s.status();
    };
  }
  if (cr.from.empty() && cr.files.empty()) throw HttpError{400, "neither 'from' or 'files' was specified"};
  if (!cr.from.empty() && !st.store->resolve(cr.from)) throw HttpError{404, "model '" + cr.from + "' not found"};
  for (const auto& [fn, d] : cr.files)
    if (!st.store->has_blob(d)) throw HttpError{400, "blob " + d + " not found; upload it with POST /api/blobs first"};
  store::ModelStore* s = st.store.get();
  Scheduler* sched = st.sched.get();
  run_progress(res, stream, [s, sched, name, cr](const store::Progress& p) -> Status {
    auto r = s->create(name, cr, p);
    if (!r) return Status::error(r.error());
    sched->unload(r.value().name.full());  // a replaced model must not keep serving old weights
    return Status();
  }, 0);
}

void handle_blob_post(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                      ServerState& st) {
  auto d = store::normalize_digest(req.matches[1].str());
  if (!d) {
    reader([](const char*, size_t) { return true; });
    throw HttpError{400, "invalid digest format"};
  }
  if (st.store->has_blob(d.value())) {
    reader([](const char*, size_t) { return true; });
    res.status = 200;
    return;
  }
  auto w = st.store->begin_blob(d.value());
  if (!w) throw HttpError{400, w.error()};
  Status ws;
  reader([&](const char* data, size_t n) {
    if (ws.ok()) ws = w.value()->write(data, n);
    return true;
  });
  if (!ws.ok()) throw HttpError{500, ws.message()};
  const Status c = w.value()->commit();
  if (!c.ok()) throw HttpError{400, c.message()};
  res.status = 201;
}

}  // namespace

void register_model_routes(httplib::Server& svr, ServerState& st) {
  svr.Get("/api/tags", guarded([&st](const httplib::Request&, httplib::Response& res) {
            auto list = st.store->list();
            if (!list) throw HttpError{500, list.error()};
            json models = json::array();
            for (const auto& m : list.value()) models.push_back(tag_entry(m));
            send_json(res, json{{"models", models}});
          }));

  svr.Post("/api/show", guarded([&st](const httplib::Request& req, httplib::Response& res) {
             const json body = decode_body(req.body, "ShowRequest");
             const std::string name = model_field(body, "ShowRequest");
             const bool verbose = get_bool(body, "verbose", "ShowRequest").value_or(false);
             if (name.empty()) throw HttpError{400, "model is required"};
             auto r = st.store->resolve(name);
             if (!r) {
               if (r.error().find("invalid") != std::string::npos) throw HttpError{400, "invalid model name"};
               throw HttpError{404, "model '" + name + "' not found"};
             }
             store::ModelInfo m = r.value();
             if (auto s = get_string(body, "system", "ShowRequest")) m.system = *s;
             std::string license;
             for (const auto& l : m.licenses) license += (license.empty() ? "" : "\n") + l;
             json out{{"license", license},
                      {"modelfile", store::render_modelfile(m)},
                      {"parameters", store::format_parameters(m.params)},
                      {"template", model_template(m).text},
                      {"system", m.system},
                      {"details", m.details},
                      {"model_info", model_info_json(m, verbose)},
                      {"capabilities", capabilities(m)},
                      {"modified_at", m.modified_at}};
             if (m.messages.is_array() && !m.messages.empty()) out["messages"] = m.messages;
             send_json(res, out);
           }));

  svr.Get("/api/ps", guarded([&st](const httplib::Request&, httplib::Response& res) {
            json models = json::array();
            std::vector<std::pair<int64_t, json>> rows;
            for (const auto& r : st.sched->loaded()) {
              auto info = st.store->resolve(r->name());
              if (!info) continue;
              const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(r->expires() - std::chrono::steady_clock::now()).count();
              // "Forever" shows as a far-future date without overflowing the clock.
              const int64_t capped = std::min<int64_t>(std::max<int64_t>(left, 0), (int64_t)200 * 365 * 86400 * 1000000000LL / 4 * 4);
              const int64_t expires = unix_now_ns() / 1000000000 * 1000000000 + (capped >= 0 ? capped : 0);
              json e = tag_entry(info.value());
              e.erase("modified_at");
              e["size"] = (int64_t)r->bytes();
              e["size_vram"] = 0;
              e["expires_at"] = local_rfc3339(expires);
              e["context_length"] = r->n_ctx();
              rows.emplace_back(left, e);
            }
            std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
            for (auto& [k, e] : rows) models.push_back(e);
            send_json(res, json{{"models", models}});
          }));

  svr.Post("/api/copy", guarded([&st](const httplib::Request& req, httplib::Response& res) {
             const json body = decode_body(req.body, "CopyRequest");
             const std::string src = get_string(body, "source", "CopyRequest").value_or("");
             const std::string dst = get_string(body, "destination", "CopyRequest").value_or("");
             if (!store::ModelName::parse(src)) throw HttpError{400, "source \"" + src + "\" is invalid"};
             if (!store::ModelName::parse(dst)) throw HttpError{400, "destination \"" + dst + "\" is invalid"};
             if (!st.store->resolve(src)) throw HttpError{404, "model \"" + src + "\" not found"};
             const Status s = st.store->copy(src, dst);
             if (!s.ok()) throw HttpError{store_status(s.message()), s.message()};
             res.status = 200;
           }));

  svr.Delete("/api/delete", guarded([&st](const httplib::Request& req, httplib::Response& res) {
               const json body = decode_body(req.body, "DeleteRequest");
               const std::string name = model_field(body, "DeleteRequest");
               if (name.empty()) throw HttpError{400, "model is required"};
               auto info = st.store->resolve(name);
               if (!info) {
                 if (info.error().find("invalid") != std::string::npos) throw HttpError{400, "invalid model name"};
                 throw HttpError{404, "model '" + name + "' not found"};
               }
               st.sched->unload(info.value().name.full());
               const Status s = st.store->remove(name);
               if (!s.ok()) throw HttpError{store_status(s.message()), s.message()};
               res.status = 200;
             }));

  svr.Post("/api/create", guarded([&st](const httplib::Request& req, httplib::Response& res) { handle_create(req, res, st); }));

  svr.Get("/api/blobs/([^/]+)", guarded([&st](const httplib::Request& req, httplib::Response& res) {
            auto d = store::normalize_digest(req.matches[1].str());
            if (!d) throw HttpError{400, "invalid digest format"};
            if (!st.store->has_blob(d.value())) throw HttpError{404, "blob \"" + d.value() + "\" not found"};
            res.status = 200;
          }));
  svr.Post("/api/blobs/([^/]+)", [&st](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    try {
      handle_blob_post(req, res, reader, st);
    } catch (const HttpError& e) {
      send_error(res, e.status, e.message);
    } catch (const std::exception& e) {
      send_error(res, 500, e.what());
    }
  });

  svr.Post("/api/pull", guarded([&st](const httplib::Request& req, httplib::Response& res) {
             const json body = decode_body(req.body, "PullRequest");
             const std::string name = model_field(body, "PullRequest");
             if (!store::ModelName::parse(name)) throw HttpError{400, "invalid model name"};
             const bool stream = get_bool(body, "stream", "PullRequest").value_or(true);
             store::PullOptions po;
             po.insecure = get_bool(body, "insecure", "PullRequest").value_or(false);
             if (const char* r = std::getenv("OSPREY_REGISTRY"); r && *r) po.base_url = r;
             store::ModelStore* s = st.store.get();
             Scheduler* sched = st.sched.get();
             run_progress(res, stream, [s, sched, name, po](const store::Progress& p) {
               const Status r = s->pull(name, po, p);
               if (r.ok())
                 if (auto m = store::ModelName::parse(name)) sched->unload(m.value().full());
               return r;
             }, 500);
           }));
}

}  // namespace osprey::server
