// Tool calls in generated text (ollama-api.md §6.2, §11.5). Each template family has its own
// way of writing a call; the syntax is chosen from the template text, and an incremental
// parser turns the model's output into content (streamed as it arrives, up to where a call may
// open) and whole calls (emitted as soon as each one is complete). Text that looks like a call
// but does not parse, names an unknown tool or is cut off comes back as plain content.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "prompt.h"

namespace osprey::chat {

enum class ToolCallFormat {
  NONE,     // the template has no tool calls: nothing is parsed
  TAGGED,   // `<tool_call>{"name":..,"arguments":..}</tool_call>`, repeatable (Qwen 2.5/3, Hermes,
            // Go templates with a literal tag); the JSON may also be an array of calls. A reply
            // that opens with the call JSON bare or in a ``` fence counts too (Qwen2.5-Coder
            // writes that; llama.cpp's Hermes parser accepts it as well)
  LLAMA3,   // the reply opens with `{"name":..,"parameters":..}` (optionally after
            // `<|python_tag|>`), several separated by `;` or whitespace
  MISTRAL,  // `[TOOL_CALLS][{"name":..,"arguments":..},..]` (v0.3 / Nemo) or
            // `[TOOL_CALLS]name[ARGS]{..}` / `name[CALL_ID]id[ARGS]{..}` (v11+), repeatable
  JSON,     // generic: the reply opens with a JSON call object or array of them, also
            // `{"tool_call":{..}}` / `{"tool_calls":[..]}` (llama.cpp's generic format)
};

struct ToolCallSyntax {
  ToolCallFormat format = ToolCallFormat::NONE;
  std::string open, close;  // TAGGED: the tags (close may be empty); MISTRAL: "[TOOL_CALLS]"
};

// The syntax a template implies. Go templates: the literal tag inside `{{ if .ToolCalls }}`
// (Ollama's rule; "{" means JSON). Jinja templates: recognised by their call markers.
ToolCallSyntax tool_call_syntax(const TemplateSource& t);

struct ToolCall {
  std::string id;     // "call_" + 8 random lowercase alphanumerics
  int index = 0;      // position within the reply
  std::string name;
  nlohmann::ordered_json arguments = nlohmann::ordered_json::object();  // model's key order
};

class ToolCallParser {
 public:
  // `tool_names`: the offered tools; a call naming another tool is not a call (empty: any).
  ToolCallParser(ToolCallSyntax syntax, std::vector<std::string> tool_names);
  // Feeds generated text; returns the content that can be shown now and appends calls that
  // completed to *calls.
  std::string feed(std::string_view text, std::vector<ToolCall>* calls);
  // End of generation: held text resolves to calls or content (returned).
  std::string finish(std::vector<ToolCall>* calls);

 private:
  enum class State { START, CONTENT, CALL, BARE_CALL, AFTER_CALL, PLAIN };
  enum class Step { NEED_MORE, DONE, BAD };
  std::string run(bool at_end, std::vector<ToolCall>* calls);
  Step parse_call(bool at_end, std::vector<ToolCall>* calls);
  Step parse_bare_call(bool at_end, std::vector<ToolCall>* calls);
  bool bare_call_may_open(std::string_view rest, bool* partial) const;
  Step parse_json_calls(std::string_view s, size_t from, bool at_end, std::vector<ToolCall>* calls, size_t* end);
  Step parse_mistral_named(size_t from, bool at_end, std::vector<ToolCall>* calls, size_t* end);
  bool add_calls(const nlohmann::ordered_json& v, std::vector<ToolCall>* out);
  bool opens_anywhere() const;

  ToolCallSyntax syntax_;
  std::vector<std::string> names_;
  State state_ = State::START;
  std::string buf_;  // held text, not yet shown or parsed
  int next_index_ = 0;
};

// Whether `v` is a call object ({"name":.., "arguments"|"parameters": object or JSON string})
// naming one of `names` (any name when empty); fills *call (id and index left to the caller).
bool tool_call_from_json(const nlohmann::ordered_json& v, const std::vector<std::string>& names, ToolCall* call);

// End of the balanced JSON object/array starting at s[from] ('{' or '['), string- and
// escape-aware; npos while it is incomplete; `*too_deep` when nesting passes `max_depth`.
size_t json_value_end(std::string_view s, size_t from, bool* too_deep, int max_depth = 64);

}  // namespace osprey::chat
