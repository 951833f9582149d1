#include "server/native.h"

#include <cctype>
#include <chrono>
#include <optional>
#include <set>

#include "engine/grammar/json_schema.h"
#include "engine/kv_cache.h"
#include "server/prompt.h"

namespace osprey::server {
namespace {

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t\r\n"));
  while (!s.empty() && std::isspace((unsigned char)s.back())) s.pop_back();
  return s;
}

enum class OptType { INT, FLOAT, BOOL, STRING, STRINGS };

// §3: every option clients send, with its type; unknown keys are ignored as upstream does.
const std::map<std::string, OptType>& option_types() {
  static const std::map<std::string, OptType> t = {
      {"num_ctx", OptType::INT},          {"num_predict", OptType::INT},      {"num_keep", OptType::INT},
      {"seed", OptType::INT},             {"top_k", OptType::INT},            {"repeat_last_n", OptType::INT},
      {"num_batch", OptType::INT},        {"num_gpu", OptType::INT},          {"main_gpu", OptType::INT},
      {"num_thread", OptType::INT},       {"mirostat", OptType::INT},         {"draft_num_predict", OptType::INT},
      {"temperature", OptType::FLOAT},    {"top_p", OptType::FLOAT},          {"min_p", OptType::FLOAT},
      {"typical_p", OptType::FLOAT},      {"repeat_penalty", OptType::FLOAT}, {"presence_penalty", OptType::FLOAT},
      {"frequency_penalty", OptType::FLOAT}, {"mirostat_tau", OptType::FLOAT}, {"mirostat_eta", OptType::FLOAT},
      {"tfs_z", OptType::FLOAT},          {"use_mmap", OptType::BOOL},        {"penalize_newline", OptType::BOOL},
      {"low_vram", OptType::BOOL},        {"f16_kv", OptType::BOOL},          {"logits_all", OptType::BOOL},
      {"vocab_only", OptType::BOOL},      {"use_mlock", OptType::BOOL},       {"numa", OptType::BOOL},
      {"embedding_only", OptType::BOOL},  {"stop", OptType::STRINGS},
      // Osprey's own: the KV cache types (issue 4), as OSPREY_KV_CACHE_TYPE[_K|_V] but per
      // request; a loaded model with other types is reloaded when idle.
      {"kv_cache_type", OptType::STRING}, {"kv_cache_type_k", OptType::STRING}, {"kv_cache_type_v", OptType::STRING}};
  return t;
}

struct Options {
  GenerateParams gen;
  int64_t num_ctx = 0;
  std::optional<DType> k_type, v_type;
};

// Applies one options object over `o`. Type errors are 400 (upstream answers 500, but
// OpenAI clients retry 5xx, so a 4xx ends a bad request at once).
void apply_options(const json& opts, Options* o) {
  if (!opts.is_object()) return;
  for (auto it = opts.begin(); it != opts.end(); ++it) {
    std::string key = it.key();
    for (char& c : key) c = (char)std::tolower((unsigned char)c);
    const json& v = it.value();
    if (v.is_null()) continue;
    auto t = option_types().find(key);
    if (t == option_types().end()) continue;
    switch (t->second) {
      case OptType::INT: {
        if (!v.is_number()) throw HttpError{400, "option \"" + key + "\" must be of type integer"};
        const int64_t n = v.is_number_float() ? (int64_t)v.get<double>() : v.get<int64_t>();
        if (key == "num_ctx") o->num_ctx = std::max<int64_t>(4, n);
        else if (key == "num_predict") o->gen.max_tokens = n < 0 ? -1 : (int32_t)std::min<int64_t>(n, 1 << 30);
        else if (key == "seed") {
          o->gen.sampling.random_seed = n < 0;
          o->gen.sampling.seed = (uint64_t)n;
        } else if (key == "top_k") o->gen.sampling.top_k = (int32_t)n;
        else if (key == "repeat_last_n") o->gen.sampling.repeat_last_n = (int32_t)std::max<int64_t>(-1, n);
        break;
      }
      case OptType::FLOAT: {
        if (!v.is_number()) throw HttpError{400, "option \"" + key + "\" must be of type float32"};
        const float f = (float)v.get<double>();
        if (key == "temperature") o->gen.sampling.temperature = f;
        else if (key == "top_p") o->gen.sampling.top_p = f;
        else if (key == "min_p") o->gen.sampling.min_p = f;
        else if (key == "repeat_penalty") o->gen.sampling.repeat_penalty = f;
        else if (key == "presence_penalty") o->gen.sampling.presence_penalty = f;
        else if (key == "frequency_penalty") o->gen.sampling.frequency_penalty = f;
        break;
      }
      case OptType::BOOL:
        if (!v.is_boolean()) throw HttpError{400, "option \"" + key + "\" must be of type boolean"};
        break;
      case OptType::STRING: {
        if (!v.is_string()) throw HttpError{400, "option \"" + key + "\" must be of type string"};
        auto type = parse_cache_type(v.get<std::string>());
        if (!type) throw HttpError{400, "option \"" + key + "\": " + type.error()};
        if (key != "kv_cache_type_v") o->k_type = *type;
        if (key != "kv_cache_type_k") o->v_type = *type;
        break;
      }
      case OptType::STRINGS: {
        if (!v.is_array()) throw HttpError{400, "option \"" + key + "\" must be of type array"};
        std::vector<std::string> stops;
        for (const auto& s : v) {
          if (!s.is_string()) throw HttpError{400, "option \"" + key + "\" must be of type array of strings"};
          stops.push_back(s.get<std::string>());
        }
        o->gen.stop = stops;  // an explicit list (even empty) replaces the model's
        break;
      }
    }
  }
}

void check_base64(const json& images) {
  if (!images.is_array()) throw HttpError{400, "json: cannot unmarshal " + go_type_of(images) + " into images"};
  for (const auto& im : images) {
    if (!im.is_string()) throw HttpError{400, "json: cannot unmarshal " + go_type_of(im) + " into images"};
    const std::string s = im.get<std::string>();
    size_t pad = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const char c = s[i];
      const bool ok = std::isalnum((unsigned char)c) || c == '+' || c == '/';
      if (c == '=' && i + 2 >= s.size() && s.size() % 4 == 0) {
        ++pad;
        continue;
      }
      if (!ok || pad) throw HttpError{400, "illegal base64 data at input byte " + std::to_string(i)};
    }
    if (s.size() % 4 != 0) throw HttpError{400, "illegal base64 data at input byte " + std::to_string(s.size() / 4 * 4)};
  }
}

// Messages as the template wants them: lower-cased keys and roles, content a string.
json normalize_messages(const json& arr) {
  json out = json::array();
  for (const auto& m0 : arr) {
    if (!m0.is_object())
      throw HttpError{400, "json: cannot unmarshal " + go_type_of(m0) + " into Go struct field ChatRequest.messages of type api.Message"};
    json m = lower_keys(m0);
    auto role = get_string(m, "role", "Message");
    std::string r = role.value_or("");
    for (char& c : r) c = (char)std::tolower((unsigned char)c);
    m["role"] = r;
    auto content = get_string(m, "content", "Message");
    m["content"] = content.value_or("");
    if (auto im = get_array(m, "images", "Message")) check_base64(*im);
    out.push_back(m);
  }
  return out;
}

}  // namespace

NativeRun::~NativeRun() { cancel(); }

void NativeRun::cancel() {
  if (job_ && !job_->finished()) job_->cancel();
  if (in_queue_) {
    s_.sched->leave_queue();
    in_queue_ = false;
  }
}

json NativeRun::base() const {
  return json{{"model", model_echo_}, {"created_at", now_utc_rfc3339()}};
}

void NativeRun::prepare(const json& req) {
  const char* T = chat_ ? "ChatRequest" : "GenerateRequest";
  t0_ = steady_ns();
  model_echo_ = get_string(req, "model", T).value_or("");
  stream_ = get_bool(req, "stream", T).value_or(true);
  keep_alive_ns_ = s_.cfg.keep_alive_ns;
  if (auto it = req.find("keep_alive"); it != req.end() && !it->is_null()) keep_alive_ns_ = parse_keep_alive(*it);
  json opts = get_object(req, "options", T).value_or(json::object());
  raw_ = !chat_ && get_bool(req, "raw", T).value_or(false);
  const std::string system = chat_ ? "" : get_string(req, "system", T).value_or("");
  const std::string templ = chat_ ? "" : get_string(req, "template", T).value_or("");
  const std::string prompt_text = chat_ ? "" : get_string(req, "prompt", T).value_or("");
  const std::string suffix = chat_ ? "" : get_string(req, "suffix", T).value_or("");
  std::vector<int32_t> context;
  if (auto c = get_array(req, "context", T)) {
    for (const auto& t : *c) {
      if (!t.is_number_integer()) throw HttpError{400, "json: cannot unmarshal " + go_type_of(t) + " into Go struct field GenerateRequest.context of type int"};
      const int64_t id = t.get<int64_t>();
      if (id < INT32_MIN || id > INT32_MAX) throw HttpError{400, "context holds token id " + std::to_string(id) + " outside the vocabulary"};
      context.push_back((int32_t)id);
    }
  }
  std::optional<bool> think;  // unset: the model's default
  std::string think_level;
  if (auto it = req.find("think"); it != req.end() && !it->is_null()) {
    if (it->is_boolean()) {
      think = it->get<bool>();
    } else if (it->is_string() && std::set<std::string>{"high", "medium", "low", "max"}.count(it->get<std::string>())) {
      think = true;
      think_level = it->get<std::string>();
    } else
      throw HttpError{400, "invalid think value: " + it->dump() + " (must be \"high\", \"medium\", \"low\", \"max\", true, or false)"};
  }
  if (auto tl = get_int(req, "top_logprobs", T); tl && (*tl < 0 || *tl > 20))
    throw HttpError{400, "top_logprobs must be between 0 and 20"};
  std::shared_ptr<const grammar::Grammar> format_grammar;  // structured output
  if (auto it = req.find("format"); it != req.end() && !it->is_null()) {
    if (it->is_string() && it->get<std::string>().empty()) {
    } else if (it->is_string() && it->get<std::string>() == "json") {
      format_grammar = grammar::json_object_grammar();
    } else if (it->is_object()) {
      auto g = grammar::compile_json_schema(*it);
      if (!g) throw HttpError{400, "invalid JSON schema in format: " + g.error()};
      format_grammar = std::move(g).value();
    } else {
      throw HttpError{400, "invalid format: " + it->dump() + "; expected \"json\" or a valid JSON Schema"};
    }
  }
  if (!chat_)
    if (auto im = get_array(req, "images", T)) check_base64(*im);
  json messages = json::array();
  if (chat_)
    if (auto m = get_array(req, "messages", T)) messages = normalize_messages(*m);
  json tools;
  if (chat_)
    if (auto t = get_array(req, "tools", T)) tools = *t;

  const std::string name = trim(model_echo_);
  if (name.empty()) throw HttpError{chat_ ? 400 : 404, chat_ ? "model is required" : "model '' not found"};
  if (raw_ && (!templ.empty() || !system.empty() || !context.empty()))
    throw HttpError{400, "raw mode does not support template, system, or context"};
  auto info = s_.store->resolve(name);
  if (!info) {
    const bool invalid = info.error().find("invalid") != std::string::npos;
    throw HttpError{invalid ? 400 : 404, invalid ? "invalid model name" : "model '" + model_echo_ + "' not found"};
  }
  const store::ModelInfo& mi = info.value();
  if (mi.model_path.empty() || !has_capability(mi, "completion"))
    throw HttpError{400, "\"" + model_echo_ + "\" does not support " + (chat_ ? "chat" : "generate")};
  const bool thinking_model = has_capability(mi, "thinking");
  if (think.value_or(false) && !thinking_model) throw HttpError{400, "\"" + model_echo_ + "\" does not support thinking"};
  if (!think && thinking_model) think = true;  // on by default for thinking models (§6.1)
  if (!suffix.empty() && !has_capability(mi, "insert")) throw HttpError{400, mi.name.full() + " does not support insert"};
  if (tools.is_array() && !tools.empty() && !has_capability(mi, "tools"))
    throw HttpError{400, mi.name.full() + " does not support tools"};
  bool has_images = false;
  for (const auto& m : messages)
    if (m.contains("images") && m["images"].is_array() && !m["images"].empty()) has_images = true;
  if (!chat_ && req.contains("images") && req["images"].is_array() && !req["images"].empty()) has_images = true;
  if (has_images) throw HttpError{400, "\"" + model_echo_ + "\" does not support images"};

  Options o;
  o.num_ctx = s_.cfg.num_ctx;
  apply_options(mi.params, &o);
  apply_options(opts, &o);

  const bool empty = chat_ ? messages.empty() : (prompt_text.empty() && suffix.empty());
  if (empty && keep_alive_ns_ == 0) {
    s_.sched->unload(mi.name.full());
    special_reason_ = "unload";
    return;
  }
  if (!s_.sched->enter_queue())
    throw HttpError{503, "server busy, please try again.  maximum pending requests exceeded"};
  in_queue_ = true;
  LoadRequest lr;
  lr.name = mi.name.full();
  lr.path = mi.model_path;
  lr.n_ctx = o.num_ctx;
  lr.k_type = o.k_type;
  lr.v_type = o.v_type;
  lr.keep_alive_ns = keep_alive_ns_;
  SchedError why;
  std::string err;
  runner_ = s_.sched->acquire(lr, &why, &err, &load_ns_);
  if (!runner_) throw HttpError{why == SchedError::BUSY ? 503 : 500, err};
  if (empty) {
    s_.sched->leave_queue();
    in_queue_ = false;
    special_reason_ = "load";
    return;
  }

  std::string text;
  const ModelTemplate mt = model_template(mi);
  if (raw_) {
    text = prompt_text;
  } else if (!chat_ && !templ.empty()) {
    text = render_legacy(templ, system.empty() ? mi.system : system, prompt_text);
  } else {
    json msgs = json::array();
    const std::string sys = chat_ ? mi.system : (system.empty() ? mi.system : system);
    const bool first_is_system = !messages.empty() && messages[0].value("role", "") == "system";
    if (!sys.empty() && !first_is_system) msgs.push_back({{"role", "system"}, {"content", sys}});
    if (context.empty() && mi.messages.is_array())
      for (const auto& m : mi.messages) msgs.push_back(m);
    if (chat_) for (const auto& m : messages) msgs.push_back(m);
    else msgs.push_back({{"role", "user"}, {"content", prompt_text}});
    text = render_messages(mt, msgs, tools, think, think_level);
  }
  // Thinking and tool calls are read back the way the template writes them (not for raw
  // prompts or template overrides, whose format is the client's own).
  const bool offered_tools = chat_ && tools.is_array() && !tools.empty();
  if (!raw_ && templ.empty() && (think.value_or(false) || offered_tools))
    reply_ = std::make_unique<chat::ReplyParser>(
        chat::reply_format(template_source(mt), text, think.value_or(false), offered_tools ? tools : json()));
  const Tokenizer& tok = runner_->model().tokenizer();
  // Client-supplied token ids index the embedding table: never let one out of range.
  const int64_t n_vocab = runner_->model().hparams().n_vocab;
  for (int32_t t : context)
    if (t < 0 || t >= n_vocab) throw HttpError{400, "context holds token id " + std::to_string(t) + " outside the vocabulary"};
  // A template that writes the BOS text itself must not get a second one.
  const bool add_special = context.empty() && (mt.bos.empty() || text.rfind(mt.bos, 0) != 0);
  prompt_ = context;
  const std::vector<int32_t> enc = tok.encode(text, add_special, /*parse_special=*/true);
  prompt_.insert(prompt_.end(), enc.begin(), enc.end());
  if (prompt_.empty()) prompt_ = {tok.bos() >= 0 ? tok.bos() : 0};
  if ((int64_t)prompt_.size() >= runner_->n_ctx())
    throw HttpError{400, "the input of " + std::to_string(prompt_.size()) + " tokens exceeds the context length of " +
                             std::to_string(runner_->n_ctx()) + " tokens"};
  job_ = std::make_shared<Job>();
  job_->prompt = prompt_;
  job_->gen = o.gen;
  job_->gen.grammar = format_grammar;
  in_queue_ = false;  // the runner takes the queue place over from here
  runner_->submit(job_);
}

json NativeRun::final_object(const std::string& text) {
  json o = base();
  if (chat_) o["message"] = {{"role", "assistant"}, {"content", text}};
  else o["response"] = text;
  o["done"] = true;
  if (!special_reason_.empty()) {
    o["done_reason"] = special_reason_;
    return o;
  }
  const GenerateResult& r = job_->result();
  o["done_reason"] = r.done_reason;
  if (!chat_ && !raw_) {
    std::vector<int32_t> ctx = prompt_;
    ctx.insert(ctx.end(), r.tokens.begin(), r.tokens.end());
    o["context"] = ctx;
  }
  o["total_duration"] = steady_ns() - t0_;
  o["load_duration"] = std::max<int64_t>(1, load_ns_);
  o["prompt_eval_count"] = r.n_prompt;
  o["prompt_eval_duration"] = std::max<int64_t>(1, r.prompt_ns);
  o["eval_count"] = r.n_generated;
  if (r.n_generated > 0) o["eval_duration"] = std::max<int64_t>(1, r.generate_ns);
  return o;
}

json NativeRun::delta_object(const std::string& thinking, const std::string& content,
                             const std::vector<chat::ToolCall>* calls) const {
  json o = base();
  if (chat_) {
    o["message"] = {{"role", "assistant"}, {"content", content}};
    if (!thinking.empty()) o["message"]["thinking"] = thinking;
    if (calls && !calls->empty()) {
      json arr = json::array();
      for (const auto& c : *calls)
        arr.push_back(json{{"id", c.id},
                           {"function", {{"index", c.index}, {"name", c.name}, {"arguments", json::parse(c.arguments.dump())}}}});
      o["message"]["tool_calls"] = arr;
    }
  } else {
    o["response"] = content;
    if (!thinking.empty()) o["thinking"] = thinking;
  }
  o["done"] = false;
  return o;
}

bool NativeRun::next(json* out, bool* ready, int poll_ms) {
  *ready = false;
  if (done_) return false;
  if (!queued_.empty()) {
    *out = std::move(queued_.front());
    queued_.erase(queued_.begin());
    *ready = true;
    return true;
  }
  if (!special_reason_.empty() || !job_) {
    *out = final_object("");
    *ready = done_ = true;
    return true;
  }
  std::string text;
  const bool more = job_->next(&text, poll_ms);
  chat::ReplyDelta d;
  if (reply_) {
    d = reply_->feed(text);
    if (!more && !reply_flushed_ && job_->error().empty()) {
      // Held-back text resolves at the end: tool calls, or content after all.
      reply_flushed_ = true;
      chat::ReplyDelta rest = reply_->finish();
      d.thinking += rest.thinking;
      d.content += rest.content;
      for (auto& c : rest.calls) d.calls.push_back(std::move(c));
    }
  } else {
    d.content = std::move(text);
  }
  if (!d.empty()) {
    // Calls come on a chunk of their own, with empty content (§5.2).
    if (!d.calls.empty() && !(d.thinking.empty() && d.content.empty())) {
      *out = delta_object(d.thinking, d.content, nullptr);
      queued_.push_back(delta_object("", "", &d.calls));
    } else {
      *out = delta_object(d.thinking, d.content, &d.calls);
    }
    *ready = true;
    return true;
  }
  if (more) return true;
  done_ = *ready = true;
  if (!job_->error().empty()) *out = json{{"error", job_->error()}};
  else *out = final_object("");
  return true;
}

json NativeRun::collect() {
  std::string all, thinking;
  json calls = json::array();
  json o;
  bool ready;
  while (next(&o, &ready, 1000)) {
    if (!ready) continue;
    if (o.contains("error")) throw HttpError{500, o["error"].get<std::string>()};
    json& part = chat_ ? o["message"] : o;
    if (o.value("done", false)) {
      part[chat_ ? "content" : "response"] = all;
      if (!thinking.empty()) part["thinking"] = thinking;
      if (!calls.empty()) part["tool_calls"] = calls;
      return o;
    }
    if (part.contains("tool_calls"))
      for (const auto& c : part["tool_calls"]) calls.push_back(c);
    if (part.contains("thinking")) thinking += part["thinking"].get<std::string>();
    all += part[chat_ ? "content" : "response"].get<std::string>();
  }
  throw HttpError{500, "generation ended without a result"};
}

}  // namespace osprey::server
