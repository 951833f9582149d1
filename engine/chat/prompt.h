// Chat prompt construction the way Ollama builds it: the model's Go TEMPLATE layer when it has
// one, else the GGUF's Jinja chat template (rendered like HF / llama.cpp), else Ollama's default
// `{{ .Prompt }}` pass-through.
#pragma once
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/base/status.h"

namespace osprey::chat {

struct Message {
  std::string role;     // "system", "user", "assistant", "tool"
  std::string content;
  std::string thinking;
  std::vector<std::string> images;                       // base64 (only counted/placed, not decoded here)
  nlohmann::json tool_calls = nlohmann::json::array();   // [{"function":{"name":..,"arguments":{..}}}], optional "id"
  std::string tool_name;
  std::string tool_call_id;                              // OpenAI-style id a tool result answers
};

struct TemplateSource {
  std::string go_template;     // Ollama TEMPLATE layer ("" if none)
  std::string jinja_template;  // GGUF tokenizer.chat_template ("" if none)
  std::string bos_token, eos_token;  // token texts, for Jinja templates
};

struct PromptOptions {
  nlohmann::json tools = nullptr;  // array of {"type":"function","function":{...}} or null
  std::optional<bool> think;       // unset: model default
  std::string think_level;         // "low" / "medium" / "high" when the client sent a level (.ThinkLevel)
  bool add_generation_prompt = true;
  std::optional<std::time_t> now;  // clock for strftime_now / currentDate (tests pin it)
};

// Prompt text for a conversation as Ollama builds it: the Go template if present (Ollama's
// semantics of §11.2: consecutive same-role messages merged except tool, .System joined,
// legacy .Prompt/.Response templates rendered per turn), else the Jinja template, else a
// plain fallback. Errors (parse errors, raise_exception) come back as Status, never abort.
Result<std::string> render_chat(const TemplateSource& t, const std::vector<Message>& messages, const PromptOptions& o);

// /api/generate with raw=false: system + prompt (+ suffix for fill-in-the-middle) through the template.
Result<std::string> render_generate(const TemplateSource& t, const std::string& system, const std::string& prompt,
                                    const std::string& suffix, const PromptOptions& o);

// What a template supports, for /api/show capabilities and 400 errors ("does not support tools/thinking/insert").
struct TemplateCaps {
  bool tools = false;
  bool thinking = false;
  bool insert = false;
};
TemplateCaps template_caps(const TemplateSource& t);

// Output-parsing hints from a Go template (Ollama §11.4/§11.5): thinking open/close tags ("" if
// none) and the tool-call opening tag ("{" when the template has tool calls but no literal tag,
// "" when it has no tool calls at all). Jinja templates give empty strings.
struct TemplateTags {
  std::string think_open, think_close, tool_call;
};
TemplateTags template_tags(const TemplateSource& t);

// Tools in Ollama's struct field order (type, function{name, description, parameters{type,
// $defs, items, required, properties}}), which is the order a Go marshal and Ollama's Jinja
// path present them in; unknown keys follow in their original order.
nlohmann::ordered_json canonical_tools(const nlohmann::json& tools);

}  // namespace osprey::chat
