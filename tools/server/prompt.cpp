#include "server/prompt.h"

#include <map>
#include <memory>
#include <mutex>

#include "formats/gguf.h"

#include "engine/chat/prompt.h"

namespace osprey::server {
namespace {

json value_to_json(const gguf::Value& v) {
  using T = gguf::ValueType;
  switch (v.type) {
    case T::STRING: return v.s;
    case T::BOOL: return v.u != 0;
    case T::FLOAT32:
    case T::FLOAT64: return v.f;
    case T::ARRAY: {
      json a = json::array();
      for (const auto& e : v.array) a.push_back(value_to_json(e));
      return a;
    }
    case T::INT8:
    case T::INT16:
    case T::INT32:
    case T::INT64: return v.i;
    default: return v.u;
  }
}

struct GgufCache {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<std::vector<std::pair<std::string, json>>>> meta;
};

GgufCache& cache() {
  static GgufCache c;
  return c;
}

std::string meta_string(const std::vector<std::pair<std::string, json>>& md, const std::string& key) {
  for (const auto& [k, v] : md)
    if (k == key && v.is_string()) return v.get<std::string>();
  return "";
}

std::string token_text(const std::vector<std::pair<std::string, json>>& md, const std::string& id_key) {
  const json* tokens = nullptr;
  int64_t id = -1;
  for (const auto& [k, v] : md) {
    if (k == "tokenizer.ggml.tokens") tokens = &v;
    if (k == id_key && v.is_number_integer()) id = v.get<int64_t>();
  }
  if (!tokens || id < 0 || id >= (int64_t)tokens->size() || !(*tokens)[(size_t)id].is_string()) return "";
  return (*tokens)[(size_t)id].get<std::string>();
}

std::string content_of(const json& m) {
  auto it = m.find("content");
  return it != m.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

const std::vector<std::pair<std::string, json>>* gguf_metadata(const std::string& path) {
  if (path.empty()) return nullptr;
  GgufCache& c = cache();
  std::lock_guard<std::mutex> lk(c.mu);
  auto it = c.meta.find(path);
  if (it != c.meta.end()) return it->second.get();
  auto f = gguf::File::open(path);
  if (!f) return nullptr;
  auto md = std::make_shared<std::vector<std::pair<std::string, json>>>();
  for (const auto& kv : f.value()->metadata()) md->emplace_back(kv.key, value_to_json(kv.value));
  c.meta[path] = md;
  return md.get();
}

ModelTemplate model_template(const store::ModelInfo& m) {
  ModelTemplate t;
  const auto* md = gguf_metadata(m.model_path);
  if (md) {
    t.bos = token_text(*md, "tokenizer.ggml.bos_token_id");
    t.eos = token_text(*md, "tokenizer.ggml.eos_token_id");
  }
  if (!m.template_text.empty()) {
    t.text = m.template_text;
    t.is_go = true;
  } else if (md) {
    t.text = meta_string(*md, "tokenizer.chat_template");
  }
  return t;
}

chat::TemplateSource template_source(const ModelTemplate& t) {
  chat::TemplateSource src;
  (t.is_go ? src.go_template : src.jinja_template) = t.text;
  src.bos_token = t.bos;
  src.eos_token = t.eos;
  return src;
}

std::vector<std::string> capabilities(const store::ModelInfo& m) {
  // As Ollama: a GGUF that declares <arch>.pooling_type is an embedding model, else a
  // completion model.
  if (const auto* md = gguf_metadata(m.model_path)) {
    const std::string pooling_key = meta_string(*md, "general.architecture") + ".pooling_type";
    for (const auto& kv : *md)
      if (kv.first == pooling_key) return {"embedding"};
  }
  std::vector<std::string> caps = {"completion"};
  const ModelTemplate t = model_template(m);
  const chat::TemplateCaps tc = chat::template_caps(template_source(t));
  if (tc.tools) caps.push_back("tools");
  if (tc.insert) caps.push_back("insert");
  if (tc.thinking) caps.push_back("thinking");
  return caps;
}

bool has_capability(const store::ModelInfo& m, const std::string& cap) {
  for (const auto& c : capabilities(m))
    if (c == cap) return true;
  return false;
}

std::string render_messages(const ModelTemplate& t, const json& messages, const json& tools,
                            std::optional<bool> think, const std::string& think_level) {
  std::vector<chat::Message> msgs;
  for (const auto& m : messages) {
    chat::Message c;
    c.role = m.value("role", "user");
    c.content = content_of(m);
    if (m.contains("thinking") && m["thinking"].is_string()) c.thinking = m["thinking"].get<std::string>();
    if (m.contains("tool_calls") && m["tool_calls"].is_array()) c.tool_calls = m["tool_calls"];
    if (m.contains("tool_name") && m["tool_name"].is_string()) c.tool_name = m["tool_name"].get<std::string>();
    if (m.contains("tool_call_id") && m["tool_call_id"].is_string()) c.tool_call_id = m["tool_call_id"].get<std::string>();
    msgs.push_back(std::move(c));
  }
  chat::PromptOptions o;
  if (tools.is_array() && !tools.empty()) o.tools = tools;
  o.think = think;
  o.think_level = think_level;
  auto r = chat::render_chat(template_source(t), msgs, o);
  if (!r) throw HttpError{500, "template: " + r.error()};
  return r.value();
}

std::string render_legacy(const std::string& go_template, const std::string& system, const std::string& prompt) {
  chat::TemplateSource src;
  src.go_template = go_template;
  auto r = chat::render_generate(src, system, prompt, "", chat::PromptOptions{});
  if (!r) throw HttpError{400, "template error: " + r.error()};
  return r.value();
}

}  // namespace osprey::server
