// Splitting a model's reply into what the APIs return separately (ollama-api.md §6.1, §6.2):
// reasoning text inside the template's thinking tags, answer content, and tool calls. Both
// stages are incremental, so a stream shows thinking and content as they are generated.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "prompt.h"
#include "tool_calls.h"

namespace osprey::chat {

// Reasoning at the start of a reply, `<think>...</think>` or the template's own tags.
// Whitespace right after either tag and before the closing tag is dropped, as Ollama does.
// Only a reply that opens with the tag (or whose prompt already opened it) is split.
class ThinkingSplitter {
 public:
  ThinkingSplitter(std::string open, std::string close, bool start_inside);
  // Appends the thinking and content that can be shown now.
  void feed(std::string_view text, std::string* thinking, std::string* content);
  void finish(std::string* thinking, std::string* content);

 private:
  enum class State { LOOKING, THINKING, AFTER, CONTENT };
  void run(bool at_end, std::string* thinking, std::string* content);
  std::string open_, close_, buf_;
  State state_;
  bool started_ = false;  // some reasoning text was shown
};

struct ReplyDelta {
  std::string thinking, content;
  std::vector<ToolCall> calls;
  bool empty() const { return thinking.empty() && content.empty() && calls.empty(); }
};

// How to read a reply: thinking tags when thinking is on, the tool-call syntax when tools
// were offered. `prompt` is the rendered prompt (a template may open the thinking section).
struct ReplyFormat {
  std::string think_open, think_close;  // empty: no thinking split
  bool think_prefilled = false;
  ToolCallSyntax tools;                 // NONE: no tool parsing
  std::vector<std::string> tool_names;
};
ReplyFormat reply_format(const TemplateSource& t, const std::string& prompt, bool thinking,
                         const nlohmann::json& tools);

class ReplyParser {
 public:
  explicit ReplyParser(const ReplyFormat& f);
  ReplyDelta feed(std::string_view text);
  ReplyDelta finish();  // end of generation: held text resolves

 private:
  void tools_stage(const std::string& content, bool at_end, ReplyDelta* d);
  std::unique_ptr<ThinkingSplitter> think_;
  std::unique_ptr<ToolCallParser> tools_;
};

}  // namespace osprey::chat
