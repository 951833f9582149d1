// A sandboxed subset of Jinja2 for Hugging Face chat templates (tokenizer.chat_template). Renders
// with HF's environment: trim_blocks, lstrip_blocks, loop controls, raise_exception, tojson.
// Every failure (syntax, raise_exception, limits, type errors) is a Status, never an abort.
#pragma once
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kernels/base/status.h"

namespace osprey::chat {

namespace jinja {
struct Stmt;
}

struct JinjaLimits {
  size_t max_output = 16u << 20;         // bytes of rendered text
  size_t max_iterations = 1u << 20;      // loop iterations over the whole render
  int max_depth = 64;                     // macro call nesting
};

class JinjaTemplate {
 public:
  static Result<std::unique_ptr<JinjaTemplate>> parse(std::string_view source);
  ~JinjaTemplate();
  // ctx: the template's global variables. Key order of objects is kept (tojson prints it).
  // now: the clock strftime_now() reads (tests pin it); unset = current time.
  Result<std::string> render(const nlohmann::ordered_json& ctx, std::optional<std::time_t> now = std::nullopt) const;
  Result<std::string> render(const nlohmann::json& ctx) const;
  JinjaLimits limits;

 private:
  JinjaTemplate() = default;
  std::vector<std::unique_ptr<jinja::Stmt>> body_;
};

}  // namespace osprey::chat
