// Turning a request into prompt text: which template a model uses (its Ollama TEMPLATE
// layer, else the GGUF's tokenizer.chat_template) and the one call that renders it. Kept in
// one place: this is the only caller of the template engine (engine/chat).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "engine/chat/prompt.h"
#include "engine/store/model_store.h"
#include "server/http_util.h"

namespace osprey::server {

struct ModelTemplate {
  std::string text;
  bool is_go = false;  // Ollama Go template (else Jinja from the GGUF)
  std::string bos, eos;  // token texts the Jinja template may reference
};

// The template a stored model renders with (the GGUF is read once per path, cached).
ModelTemplate model_template(const store::ModelInfo& m);
// GGUF metadata of the model's weights (cached), or nullptr if unreadable.
const std::vector<std::pair<std::string, json>>* gguf_metadata(const std::string& path);

// capabilities for /api/show and request checks: completion, tools, insert, thinking, or
// embedding alone for an embedding model.
std::vector<std::string> capabilities(const store::ModelInfo& m);
bool has_capability(const store::ModelInfo& m, const std::string& cap);

// Renders a conversation (native message objects) for generation. `tools` may be null.
// Errors are HttpErrors (a bad template override is the client's fault: 400).
// `think`/`think_level`: the request's think value (unset: not sent), for the template.
std::string render_messages(const ModelTemplate& t, const json& messages, const json& tools,
                            std::optional<bool> think = std::nullopt, const std::string& think_level = "");
// The template as the chat engine takes it (for reading replies the way it writes them).
chat::TemplateSource template_source(const ModelTemplate& t);
// /api/generate with a `template` override: the legacy .System/.Prompt/.Response variables.
std::string render_legacy(const std::string& go_template, const std::string& system, const std::string& prompt);

}  // namespace osprey::server
