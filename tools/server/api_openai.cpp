// The OpenAI-compatible routes (ollama-api.md §7): each converts its request into a native
// chat/generate request, drives the same NativeRun as /api/*, and re-encodes the result.
#include <random>

#include "server/server.h"

namespace osprey::server {
namespace {

std::string random_id(const char* prefix) {
  static std::mt19937 rng{std::random_device{}()};
  static std::mutex mu;
  std::lock_guard<std::mutex> lk(mu);
  return std::string(prefix) + std::to_string(rng() % 999);
}

int64_t unix_now_s() { return unix_now_ns() / 1000000000; }

// Sampling fields shared by both completion routes. OpenAI's defaults for temperature and
// top_p are 1.0, not the model's.
json openai_options(const json& body, const char* go_type) {
  json o = json::object();
  if (auto n = get_int(body, "max_tokens", go_type)) o["num_predict"] = *n;
  o["temperature"] = get_number(body, "temperature", go_type).value_or(1.0);
  const double top_p = get_number(body, "top_p", go_type).value_or(1.0);
  o["top_p"] = top_p == 0 ? 1.0 : top_p;
  if (auto s = get_int(body, "seed", go_type)) o["seed"] = *s;
  if (auto f = get_number(body, "frequency_penalty", go_type)) o["frequency_penalty"] = *f;
  if (auto p = get_number(body, "presence_penalty", go_type)) o["presence_penalty"] = *p;
  if (auto it = body.find("stop"); it != body.end() && !it->is_null()) {
    json stops = json::array();
    if (it->is_string()) stops.push_back(*it);
    else if (it->is_array())
      for (const auto& s : *it) {
        if (!s.is_string()) throw HttpError{400, "invalid type for 'stop' field: " + std::string(s.is_number() ? "float64" : go_type_of(s))};
        stops.push_back(s);
      }
    else throw HttpError{400, "invalid type for 'stop' field: " + std::string(it->is_number() ? "float64" : go_type_of(*it))};
    o["stop"] = stops;
  }
  return o;
}

json format_from(const json& body) {
  auto rf = body.find("response_format");
  if (rf == body.end() || !rf->is_object()) return nullptr;
  const std::string type = rf->value("type", "");
  if (type == "json_object") return "json";
  if (type == "json_schema" && rf->contains("json_schema") && (*rf)["json_schema"].is_object())
    return (*rf)["json_schema"].value("schema", json::object());
  return nullptr;
}

// OpenAI tool calls (arguments a JSON string) in the native shape (arguments an object).
json native_tool_calls(const json& calls) {
  json out = json::array();
  for (const auto& c : calls) {
    if (!c.is_object() || !c.contains("function") || !c["function"].is_object()) throw HttpError{400, "invalid tool call"};
    const json& f = c["function"];
    json args = f.contains("arguments") ? f["arguments"] : json::object();
    if (args.is_string()) {
      args = json::parse(args.get<std::string>(), nullptr, /*allow_exceptions=*/false);
      if (args.is_discarded()) throw HttpError{400, "invalid tool call arguments"};
    }
    if (!args.is_object()) throw HttpError{400, "invalid tool call arguments"};
    json n{{"function", {{"index", (int)out.size()}, {"name", f.value("name", "")}, {"arguments", args}}}};
    if (c.contains("id") && c["id"].is_string()) n["id"] = c["id"];
    out.push_back(n);
  }
  return out;
}

json convert_messages(const json& in) {
  json out = json::array();
  std::map<std::string, std::string> call_names;  // tool_call id -> function name, for tool results
  for (const auto& m0 : in) {
    if (!m0.is_object()) throw HttpError{400, "invalid message format"};
    const json m = lower_keys(m0);
    std::string role = m.value("role", "");
    if (role == "developer") role = "system";
    const json content = m.contains("content") ? m["content"] : json();
    const bool has_calls = m.contains("tool_calls") && m["tool_calls"].is_array() && !m["tool_calls"].empty();
    const json calls = has_calls ? native_tool_calls(m["tool_calls"]) : json();
    if (has_calls)
      for (const auto& c : calls)
        if (c.contains("id")) call_names[c["id"].get<std::string>()] = c["function"]["name"].get<std::string>();
    auto base = [&](const std::string& text) {
      json n{{"role", role}, {"content", text}};
      if (role == "tool") {
        if (m.contains("name") && m["name"].is_string()) n["tool_name"] = m["name"];
        else if (m.contains("tool_call_id") && m["tool_call_id"].is_string())
          if (auto it = call_names.find(m["tool_call_id"].get<std::string>()); it != call_names.end()) n["tool_name"] = it->second;
      }
      if (m.contains("tool_call_id")) n["tool_call_id"] = m["tool_call_id"];
      // Prior reasoning: Ollama's `reasoning`, or the `reasoning_content` other servers use.
      for (const char* k : {"reasoning", "reasoning_content"})
        if (m.contains(k) && m[k].is_string()) n["thinking"] = m[k];
      return n;
    };
    if (content.is_string()) {
      out.push_back(base(content.get<std::string>()));
    } else if (content.is_array()) {
      for (const auto& part : content) {
        if (!part.is_object()) throw HttpError{400, "invalid message format"};
        const std::string type = part.value("type", "");
        if (type == "text" && part.contains("text") && part["text"].is_string()) {
          out.push_back(base(part["text"].get<std::string>()));
        } else if (type == "image_url") {
          json url = part.contains("image_url") ? part["image_url"] : json();
          if (url.is_object()) url = url.value("url", json());
          if (!url.is_string()) throw HttpError{400, "invalid message format"};
          const std::string u = url.get<std::string>();
          if (u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0)
            throw HttpError{400, "image URLs are not currently supported, please use base64 encoded data instead"};
          const size_t comma = u.find(";base64,");
          if (u.rfind("data:", 0) != 0 || comma == std::string::npos) throw HttpError{400, "invalid image input"};
          json n = base("");
          n["images"] = json::array({u.substr(comma + 8)});
          out.push_back(n);
        } else {
          throw HttpError{400, "invalid message format"};
        }
      }
    } else if (content.is_null() && has_calls) {
      out.push_back(base(""));
    } else {
      throw HttpError{400, "invalid message content type: " +
                               std::string(content.is_null() ? "<nil>" : content.is_number() ? "float64" : go_type_of(content))};
    }
    if (has_calls && !out.empty()) out.back()["tool_calls"] = calls;
  }
  return out;
}

std::string sse(const json& j) { return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n"; }

json usage_of(const json& fin) {
  const int64_t p = fin.value("prompt_eval_count", 0), c = fin.value("eval_count", 0);
  return json{{"prompt_tokens", p}, {"completion_tokens", c}, {"total_tokens", p + c}};
}

// The closing stream chunk of stream_options.include_usage: no choices, the totals.
std::string usage_chunk(const json& head, const json& fin) {
  json u = head;
  u["choices"] = json::array();
  u["usage"] = usage_of(fin);
  return sse(u);
}

json finish_reason(const json& fin, bool called = false) {
  const std::string r = fin.value("done_reason", "");
  if (r.empty()) return nullptr;
  if (called) return "tool_calls";
  return r == "length" ? "length" : "stop";
}

// Native tool calls (arguments as objects, index inside function) in OpenAI's shape
// (arguments as JSON strings, index on the call).
json openai_tool_calls(const json& native) {
  json out = json::array();
  for (const auto& c : native) {
    const json& f = c.value("function", json::object());
    const int i = f.value("index", (int)out.size());  // the call's place in the whole reply
    out.push_back(json{{"id", c.value("id", "call_" + std::to_string(i))},
                       {"index", i},
                       {"type", "function"},
                       {"function", {{"name", f.value("name", "")}, {"arguments", f.value("arguments", json::object()).dump()}}}});
  }
  return out;
}

// Reasoning text under both names clients look for: Ollama's `reasoning` and the
// `reasoning_content` of DeepSeek/vLLM-style servers.
void add_reasoning(json* msg, const json& native_message) {
  if (!native_message.contains("thinking")) return;
  (*msg)["reasoning"] = native_message["thinking"];
  (*msg)["reasoning_content"] = native_message["thinking"];
}

json openai_error_chunk(const json& native) {
  return json{{"error", {{"message", native.value("error", "error")}, {"type", "api_error"}, {"param", nullptr}, {"code", nullptr}}}};
}

void chat_completions(const httplib::Request& req, httplib::Response& res, ServerState& st) {
  const json body = decode_body(req.body, "ChatCompletionRequest");
  const std::string model = get_string(body, "model", "ChatCompletionRequest").value_or("");
  auto msgs = get_array(body, "messages", "ChatCompletionRequest");
  if (!msgs || msgs->empty()) throw HttpError{400, "[] is too short - 'messages'"};
  const bool stream = get_bool(body, "stream", "ChatCompletionRequest").value_or(false);
  bool include_usage = false;
  if (auto so = get_object(body, "stream_options", "ChatCompletionRequest")) include_usage = so->value("include_usage", false);
  json native{{"model", model}, {"messages", convert_messages(*msgs)}, {"options", openai_options(body, "ChatCompletionRequest")},
              {"stream", true}};
  if (json f = format_from(body); !f.is_null()) native["format"] = f;
  if (auto t = get_array(body, "tools", "ChatCompletionRequest")) native["tools"] = *t;
  if (auto e = get_string(body, "reasoning_effort", "ChatCompletionRequest")) {
    static const std::map<std::string, json> think = {{"none", false}, {"minimal", "low"}, {"low", "low"}, {"medium", "medium"},
                                                      {"high", "high"}, {"max", "max"}, {"xhigh", "max"}, {"ultra", "max"}};
    auto it = think.find(*e);
    if (it == think.end()) throw HttpError{400, "invalid reasoning value: '" + *e + "' (must be \"high\", \"medium\", \"low\", \"minimal\", or \"none\")"};
    if (!(it->second.is_boolean() && !it->second.get<bool>())) native["think"] = it->second;
  }
  auto run = std::make_shared<NativeRun>(st, true);
  run->prepare(native);
  const std::string id = random_id("chatcmpl-");
  const int64_t created = unix_now_s();
  json head{{"id", id}, {"object", "chat.completion"}, {"created", created}, {"model", model}, {"system_fingerprint", "fp_ollama"}};
  if (!stream) {
    const json fin = run->collect();
    json out = head;
    json msg{{"role", "assistant"}, {"content", fin["message"].value("content", "")}};
    add_reasoning(&msg, fin["message"]);
    const bool called = fin["message"].contains("tool_calls");
    if (called) msg["tool_calls"] = openai_tool_calls(fin["message"]["tool_calls"]);
    out["choices"] = json::array({json{{"index", 0}, {"message", msg}, {"finish_reason", finish_reason(fin, called)}}});
    out["usage"] = usage_of(fin);
    send_json(res, out);
    return;
  }
  head["object"] = "chat.completion.chunk";
  auto first = std::make_shared<bool>(true);
  auto called = std::make_shared<bool>(false);
  stream_run(res, run, "text/event-stream", [head, first, called, include_usage](const json& o) {
    if (o.contains("error")) return sse(openai_error_chunk(o));
    std::string out;
    auto chunk = [&](const json& delta, const json& reason) {
      json c = head;
      c["choices"] = json::array({json{{"index", 0}, {"delta", delta}, {"finish_reason", reason}}});
      out += sse(c);
    };
    const std::string text = o.contains("message") ? o["message"].value("content", "") : "";
    if (o.contains("message") && o["message"].contains("thinking")) {
      json delta = json::object();
      if (*first) delta["role"] = "assistant";
      *first = false;
      add_reasoning(&delta, o["message"]);
      chunk(delta, nullptr);
    }
    if (*first || !text.empty()) {
      json delta{{"content", text}};
      if (*first) delta["role"] = "assistant";
      *first = false;
      chunk(delta, nullptr);
    }
    if (o.contains("message") && o["message"].contains("tool_calls")) {
      *called = true;
      chunk(json{{"tool_calls", openai_tool_calls(o["message"]["tool_calls"])}}, nullptr);
    }
    if (o.value("done", false)) {
      chunk(json::object(), finish_reason(o, *called));
      if (include_usage) out += usage_chunk(head, o);
    }
    return out;
  }, [] { return std::string("data: [DONE]\n\n"); });
}

void completions(const httplib::Request& req, httplib::Response& res, ServerState& st) {
  const json body = decode_body(req.body, "CompletionRequest");
  const std::string model = get_string(body, "model", "CompletionRequest").value_or("");
  const std::string prompt = get_string(body, "prompt", "CompletionRequest").value_or("");
  const bool stream = get_bool(body, "stream", "CompletionRequest").value_or(false);
  bool include_usage = false;
  if (auto so = get_object(body, "stream_options", "CompletionRequest")) include_usage = so->value("include_usage", false);
  json native{{"model", model}, {"prompt", prompt}, {"options", openai_options(body, "CompletionRequest")}, {"stream", true}};
  if (auto s = get_string(body, "suffix", "CompletionRequest")) native["suffix"] = *s;
  auto run = std::make_shared<NativeRun>(st, false);
  run->prepare(native);
  const std::string id = random_id("cmpl-");
  json head{{"id", id}, {"object", "text_completion"}, {"created", unix_now_s()}, {"model", model}, {"system_fingerprint", "fp_ollama"}};
  if (!stream) {
    const json fin = run->collect();
    json out = head;
    out["choices"] = json::array({json{{"text", fin.value("response", "")}, {"index", 0}, {"finish_reason", finish_reason(fin)}}});
    out["usage"] = usage_of(fin);
    send_json(res, out);
    return;
  }
  stream_run(res, run, "text/event-stream", [head, include_usage](const json& o) {
    if (o.contains("error")) return sse(openai_error_chunk(o));
    json c = head;
    c["created"] = unix_now_s();
    const bool done = o.value("done", false);
    c["choices"] = json::array({json{{"text", o.value("response", "")}, {"index", 0}, {"finish_reason", done ? finish_reason(o) : json()}}});
    if (include_usage) c["usage"] = json{{"prompt_tokens", 0}, {"completion_tokens", 0}, {"total_tokens", 0}};
    std::string out = sse(c);
    if (done && include_usage) out += usage_chunk(head, o);
    return out;
  }, [] { return std::string("data: [DONE]\n\n"); });
}

json model_entry(const store::ModelInfo& m, const std::string& id) {
  return json{{"id", id}, {"object", "model"}, {"created", m.modified_unix_ns / 1000000000}, {"owned_by", m.name.ns}};
}

}  // namespace

void register_openai_routes(httplib::Server& svr, ServerState& st) {
  svr.Post("/v1/chat/completions",
           guarded([&st](const httplib::Request& req, httplib::Response& res) { chat_completions(req, res, st); }, true));
  svr.Post("/v1/completions",
           guarded([&st](const httplib::Request& req, httplib::Response& res) { completions(req, res, st); }, true));
  svr.Get("/v1/models", guarded([&st](const httplib::Request&, httplib::Response& res) {
            auto list = st.store->list();
            if (!list) throw HttpError{500, list.error()};
            json data = json::array();
            for (const auto& m : list.value()) data.push_back(model_entry(m, m.name.display()));
            send_json(res, json{{"object", "list"}, {"data", data}});
          }, true));
  svr.Get("/v1/models/(.+)", guarded([&st](const httplib::Request& req, httplib::Response& res) {
            const std::string id = req.matches[1].str();
            auto m = st.store->resolve(id);
            if (!m) throw HttpError{404, "model '" + id + "' not found"};
            send_json(res, model_entry(m.value(), id));
          }, true));
}

}  // namespace osprey::server
