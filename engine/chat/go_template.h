// A subset of Go's text/template for Ollama TEMPLATE layers. The data is JSON with Ollama's
// field names (System, Prompt, Response, Suffix, Messages[{Role, Content, Thinking, ToolCalls,
// ToolName}], Tools, Think, ThinkLevel, IsThinkSet). Objects that Ollama holds as Go structs
// with JSON tags (tools, tool calls) may be stored under their JSON names: `.Function.Name`
// falls back to "function"/"name", and printing such an object yields compact Go-style JSON,
// which is what Ollama's String() methods produce.
#pragma once
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/base/status.h"

namespace osprey::chat {

namespace gotmpl {
struct Node;
}

class GoTemplate {
 public:
  static Result<std::unique_ptr<GoTemplate>> parse(std::string_view source);
  ~GoTemplate();
  Result<std::string> render(const nlohmann::ordered_json& data, std::optional<std::time_t> now = std::nullopt) const;
  Result<std::string> render(const nlohmann::json& data) const;
  // Ollama's legacy mode: stop right after the first `{{ .Response }}` action (in tree order),
  // keeping the enclosing if/range nodes, like Ollama's deleteNode pass.
  Result<std::string> render_cut_after_response(const nlohmann::ordered_json& data,
                                                std::optional<std::time_t> now = std::nullopt) const;
  // Whether a field name appears anywhere (case-insensitive), like Ollama's Template.Vars().
  bool uses(std::string_view field) const;
  // Thinking tags inferred like Ollama: around `{{ .Thinking }}` inside the range over
  // .Messages, the first and last text of the enclosing block (trimmed). Empty when none.
  std::pair<std::string, std::string> thinking_tags() const;
  // First literal text inside an `{{ if .ToolCalls }}` block, cut before any '{' and trimmed
  // (the tool-call opening tag); "" when there is none.
  std::string tool_call_tag() const;

  size_t max_output = 16u << 20;
  size_t max_iterations = 1u << 20;

 private:
  GoTemplate() = default;
  std::unique_ptr<gotmpl::Node> root_;
  std::vector<std::string> vars_;  // lower-cased field identifiers
  int response_id_ = -1;           // tree-order id of the first {{ .Response }} action
};

}  // namespace osprey::chat
