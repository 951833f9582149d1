// Tool calls in generated text (ollama-api.md §6.2, §11.5): the model writes a tag (e.g.
// "<tool_call>", or a bare "{" for templates without one) followed by JSON objects with a
// name and arguments. Text that does not open with the tag streams as ordinary content.
#pragma once
#include <string>

#include "server/http_util.h"

namespace osprey::server {

class ToolCallParser {
 public:
  // `open` empty disables parsing (everything is content).
  ToolCallParser(std::string open, std::string close) : open_(std::move(open)), close_(std::move(close)) {}
  // Feeds generated text; returns what can be shown as content now.
  std::string feed(const std::string& text);
  // At the end of generation: the parsed calls (native shape, arguments as objects) or an
  // empty array, and any held text that turned out to be content.
  json finish(std::string* content);

 private:
  enum class State { UNDECIDED, CONTENT, CALLING };
  std::string open_, close_, held_;
  State state_ = State::UNDECIDED;
};

// The tags a model's template implies: Go templates say; Jinja templates are searched for
// the Hermes/Qwen "<tool_call>" convention, else JSON objects are assumed.
void tool_call_tags(const std::string& template_text, bool is_go, std::string* open, std::string* close);

}  // namespace osprey::server
