// Embedding routes (ollama-api.md §5.3, §5.4, §7.4): /api/embed (batch, L2-normalised,
// truncate, dimensions), the legacy /api/embeddings (one raw pooled vector) and OpenAI's
// /v1/embeddings (float or base64). All three reduce to embed_inputs(): tokenize, fit the
// context, one forward pass on the model's runner.
#include <chrono>
#include <cmath>
#include <cstring>

#include "server/server.h"

namespace osprey::server {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One input: text to tokenize, or token ids given by the client (OpenAI only).
struct EmbedInput {
  std::string text;
  std::vector<int32_t> tokens;
  bool is_tokens = false;
};

struct EmbedOutcome {
  std::vector<std::vector<float>> vectors;  // pooled, not normalised
  int64_t n_tokens = 0, load_ns = 0;
};

// num_ctx from an options object, if it carries a usable one.
void read_num_ctx(const json& opts, int64_t* num_ctx) {
  if (!opts.is_object()) return;
  for (auto it = opts.begin(); it != opts.end(); ++it) {
    std::string key = it.key();
    for (char& c : key) c = (char)std::tolower((unsigned char)c);
    if (key != "num_ctx" || it.value().is_null()) continue;
    if (!it.value().is_number()) throw HttpError{400, "option \"num_ctx\" must be of type integer"};
    *num_ctx = std::max<int64_t>(4, it.value().is_number_float() ? (int64_t)it.value().get<double>() : it.value().get<int64_t>());
  }
}

// Resolves and loads the model; `inputs` empty only loads it.
EmbedOutcome embed_inputs(ServerState& st, const std::string& model, const std::vector<EmbedInput>& inputs,
                          bool truncate, const json& body, const char* go_type) {
  if (model.empty()) throw HttpError{400, "model is required"};
  auto info = st.store->resolve(model);
  if (!info) {
    const bool invalid = info.error().find("invalid") != std::string::npos;
    throw HttpError{invalid ? 400 : 404, invalid ? "invalid model name" : "model \"" + model + "\" not found, try pulling it first"};
  }
  const store::ModelInfo& mi = info.value();
  if (mi.model_path.empty()) throw HttpError{400, "\"" + model + "\" does not support embeddings"};
  int64_t num_ctx = st.cfg.num_ctx;
  read_num_ctx(mi.params, &num_ctx);
  if (auto o = get_object(body, "options", go_type)) read_num_ctx(*o, &num_ctx);
  int64_t keep_alive = st.cfg.keep_alive_ns;
  if (auto it = body.find("keep_alive"); it != body.end() && !it->is_null()) keep_alive = parse_keep_alive(*it);

  if (!st.sched->enter_queue()) throw HttpError{503, "server busy, please try again.  maximum pending requests exceeded"};
  struct QueueSeat {
    Scheduler& s;
    ~QueueSeat() { s.leave_queue(); }
  } seat{*st.sched};
  LoadRequest lr;
  lr.name = mi.name.full();
  lr.path = mi.model_path;
  lr.n_ctx = num_ctx;
  lr.keep_alive_ns = keep_alive;
  SchedError why;
  std::string err;
  EmbedOutcome out;
  std::shared_ptr<Runner> runner = st.sched->acquire(lr, &why, &err, &out.load_ns);
  if (!runner) throw HttpError{why == SchedError::BUSY ? 503 : 500, err};
  st.sched->touch(*runner, keep_alive);
  if (inputs.empty()) return out;

  const Model& m = runner->model();
  const Tokenizer& tok = m.tokenizer();
  const int64_t n_ctx = runner->n_ctx();
  std::vector<std::vector<int32_t>> seqs;
  for (const EmbedInput& in : inputs) {
    std::vector<int32_t> ids = in.is_tokens ? in.tokens : tok.encode(in.text, true, true);
    for (int32_t id : ids)
      if (id < 0 || id >= m.hparams().n_vocab) throw HttpError{400, "invalid input: token " + std::to_string(id) + " is outside the vocabulary"};
    if (ids.empty()) throw HttpError{400, "invalid input: it has no tokens"};
    if ((int64_t)ids.size() > n_ctx) {
      if (!truncate) throw HttpError{400, "the input length exceeds the context length"};
      // Keep a closing special token (BERT's [SEP]) where the tokenizer adds one.
      const bool keep_eos = !in.is_tokens && tok.add_eos() && ids.back() == tok.eos();
      ids.resize((size_t)n_ctx);
      if (keep_eos) ids.back() = tok.eos();
    }
    out.n_tokens += (int64_t)ids.size();
    seqs.push_back(std::move(ids));
  }
  auto vecs = runner->embed(seqs);
  if (!vecs) throw HttpError{500, vecs.error()};
  out.vectors = std::move(vecs).value();
  return out;
}

// Keeps the first `dims` components (0: all) and scales to unit length.
void shape_vector(std::vector<float>* v, int64_t dims) {
  if (dims > 0 && dims < (int64_t)v->size()) v->resize((size_t)dims);
  l2_normalize(v);
}

int64_t read_dimensions(const json& body, const char* go_type) {
  const int64_t d = get_int(body, "dimensions", go_type).value_or(0);
  if (d < 0) throw HttpError{400, "dimensions must be a positive integer"};
  return d;
}

std::string base64_of(const void* data, size_t n) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const uint8_t* p = (const uint8_t*)data;
  std::string s;
  s.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    s += k[v >> 18 & 63];
    s += k[v >> 12 & 63];
    s += i + 1 < n ? k[v >> 6 & 63] : '=';
    s += i + 2 < n ? k[v & 63] : '=';
  }
  return s;
}

// Little-endian float32 bytes, as OpenAI's base64 encoding wants.
std::string base64_floats(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    for (int k = 0; k < 4; ++k) b[i * 4 + (size_t)k] = (uint8_t)(u >> (8 * k));
  }
  return base64_of(b.data(), b.size());
}

void api_embed(const httplib::Request& req, httplib::Response& res, ServerState& st) {
  const int64_t t0 = now_ns();
  const json body = decode_body(req.body, "EmbedRequest");
  const std::string model = get_string(body, "model", "EmbedRequest").value_or("");
  std::vector<EmbedInput> inputs;
  if (auto it = body.find("input"); it != body.end() && !it->is_null()) {
    if (it->is_string()) {
      if (!it->get<std::string>().empty()) inputs.push_back({it->get<std::string>(), {}, false});
    } else if (it->is_array()) {
      for (const json& e : *it) {
        if (!e.is_string()) throw HttpError{400, "invalid input type"};
        inputs.push_back({e.get<std::string>(), {}, false});
      }
    } else {
      throw HttpError{400, "invalid input type"};
    }
  }
  const bool truncate = get_bool(body, "truncate", "EmbedRequest").value_or(true);
  const int64_t dims = read_dimensions(body, "EmbedRequest");
  EmbedOutcome r = embed_inputs(st, model, inputs, truncate, body, "EmbedRequest");
  json embeddings = json::array();
  for (auto& v : r.vectors) {
    shape_vector(&v, dims);
    embeddings.push_back(v);
  }
  send_json(res, json{{"model", model}, {"embeddings", embeddings}, {"total_duration", std::max<int64_t>(1, now_ns() - t0)},
                      {"load_duration", std::max<int64_t>(1, r.load_ns)}, {"prompt_eval_count", r.n_tokens}});
}

void api_embeddings(const httplib::Request& req, httplib::Response& res, ServerState& st) {
  const json body = decode_body(req.body, "EmbeddingRequest");
  const std::string model = get_string(body, "model", "EmbeddingRequest").value_or("");
  const std::string prompt = get_string(body, "prompt", "EmbeddingRequest").value_or("");
  std::vector<EmbedInput> inputs;
  if (!prompt.empty()) inputs.push_back({prompt, {}, false});
  EmbedOutcome r = embed_inputs(st, model, inputs, true, body, "EmbeddingRequest");
  json v = json::array();
  if (!r.vectors.empty())
    for (float x : r.vectors[0]) v.push_back((double)x);
  send_json(res, json{{"embedding", v}});
}

void v1_embeddings(const httplib::Request& req, httplib::Response& res, ServerState& st) {
  const json body = decode_body(req.body, "EmbedRequest");
  const std::string model = get_string(body, "model", "EmbedRequest").value_or("");
  std::string format = get_string(body, "encoding_format", "EmbedRequest").value_or("float");
  std::string lower = format;
  for (char& c : lower) c = (char)std::tolower((unsigned char)c);
  if (lower != "float" && lower != "base64")
    throw HttpError{400, "Invalid value for 'encoding_format' = " + format + ". Supported values: ['float', 'base64']."};
  // A string, an array of strings, one token array, or an array of token arrays.
  std::vector<EmbedInput> inputs;
  auto token_array = [](const json& a) {
    EmbedInput in;
    in.is_tokens = true;
    for (const json& t : a) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX) throw HttpError{400, "invalid input"};
      in.tokens.push_back((int32_t)t.get<int64_t>());
    }
    return in;
  };
  const json input = body.contains("input") ? body["input"] : json();
  if (input.is_string()) {
    inputs.push_back({input.get<std::string>(), {}, false});
  } else if (input.is_array() && !input.empty()) {
    if (input[0].is_number()) {
      inputs.push_back(token_array(input));
    } else {
      for (const json& e : input) {
        if (e.is_string()) inputs.push_back({e.get<std::string>(), {}, false});
        else if (e.is_array() && !e.empty()) inputs.push_back(token_array(e));
        else throw HttpError{400, "invalid input"};
      }
    }
  } else {
    throw HttpError{400, "invalid input"};
  }
  const int64_t dims = read_dimensions(body, "EmbedRequest");
  EmbedOutcome r = embed_inputs(st, model, inputs, true, body, "EmbedRequest");
  json data = json::array();
  for (size_t i = 0; i < r.vectors.size(); ++i) {
    shape_vector(&r.vectors[i], dims);
    json e{{"object", "embedding"}, {"index", i}};
    if (lower == "base64") e["embedding"] = base64_floats(r.vectors[i]);
    else e["embedding"] = r.vectors[i];
    data.push_back(std::move(e));
  }
  send_json(res, json{{"object", "list"}, {"data", data}, {"model", model},
                      {"usage", {{"prompt_tokens", r.n_tokens}, {"total_tokens", r.n_tokens}}}});
}

}  // namespace

void register_embed_routes(httplib::Server& svr, ServerState& st) {
  svr.Post("/api/embed", guarded([&st](const httplib::Request& req, httplib::Response& res) { api_embed(req, res, st); }));
  svr.Post("/api/embeddings",
           guarded([&st](const httplib::Request& req, httplib::Response& res) { api_embeddings(req, res, st); }));
  svr.Post("/v1/embeddings",
           guarded([&st](const httplib::Request& req, httplib::Response& res) { v1_embeddings(req, res, st); }, true));
}

}  // namespace osprey::server
