#include "reply.h"

namespace osprey::chat {
namespace {

constexpr const char* kSpace = " \t\r\n";

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// Bytes at the end of `s` to hold back: trailing whitespace and a proper prefix of `tag`
// (both may still turn out to precede the tag).
size_t held_tail(std::string_view s, std::string_view tag) {
  size_t k = std::min(s.size(), tag.size() - 1);
  for (; k > 0; --k)
    if (s.substr(s.size() - k) == tag.substr(0, k)) break;
  const size_t rest = s.size() - k;
  const size_t last = s.substr(0, rest).find_last_not_of(kSpace);
  return s.size() - (last == std::string_view::npos ? 0 : last + 1);
}

}  // namespace

ThinkingSplitter::ThinkingSplitter(std::string open, std::string close, bool start_inside)
    : open_(std::move(open)), close_(std::move(close)), state_(start_inside ? State::THINKING : State::LOOKING) {}

void ThinkingSplitter::feed(std::string_view text, std::string* thinking, std::string* content) {
  buf_.append(text);
  run(false, thinking, content);
}

void ThinkingSplitter::finish(std::string* thinking, std::string* content) { run(true, thinking, content); }

void ThinkingSplitter::run(bool at_end, std::string* thinking, std::string* content) {
  for (;;) {
    switch (state_) {
      case State::LOOKING: {
        const size_t s = buf_.find_first_not_of(kSpace);
        if (s == std::string::npos) {
          if (!at_end) return;
          state_ = State::CONTENT;
          continue;
        }
        const std::string_view rest = std::string_view(buf_).substr(s);
        if (starts_with(rest, open_)) {
          buf_.erase(0, s + open_.size());
          state_ = State::THINKING;
        } else if (starts_with(open_, rest) && !at_end) {
          return;  // may still become the tag
        } else {
          state_ = State::CONTENT;
        }
        continue;
      }
      case State::THINKING: {
        // Whitespace right after the opening tag is not part of the reasoning.
        const size_t s = started_ ? 0 : buf_.find_first_not_of(kSpace);
        if (s == std::string::npos) {
          if (at_end) buf_.clear();
          return;
        }
        const size_t c = buf_.find(close_);
        if (c != std::string::npos) {
          const size_t last = buf_.find_last_not_of(kSpace, c == 0 ? 0 : c - 1);
          if (c > 0 && last != std::string::npos && last >= s) thinking->append(buf_, s, last + 1 - s);
          buf_.erase(0, c + close_.size());
          state_ = State::AFTER;
          continue;
        }
        const size_t keep = at_end ? 0 : held_tail(buf_, close_);
        if (buf_.size() - keep > s) {
          thinking->append(buf_, s, buf_.size() - keep - s);
          started_ = true;
        }
        buf_.erase(0, std::max(s, buf_.size() - keep));
        return;
      }
      case State::AFTER: {
        const size_t s = buf_.find_first_not_of(kSpace);
        if (s == std::string::npos) {
          buf_.clear();
          return;
        }
        buf_.erase(0, s);
        state_ = State::CONTENT;
        continue;
      }
      case State::CONTENT:
        content->append(buf_);
        buf_.clear();
        return;
    }
  }
}

ReplyFormat reply_format(const TemplateSource& t, const std::string& prompt, bool thinking, const nlohmann::json& tools) {
  ReplyFormat f;
  if (thinking) {
    if (!t.go_template.empty()) {
      const TemplateTags tags = template_tags(t);
      f.think_open = tags.think_open;
      f.think_close = tags.think_close;
    } else if (t.jinja_template.find("<think>") != std::string::npos) {
      f.think_open = "<think>";
      f.think_close = "</think>";
    }
    if (!f.think_open.empty()) {
      // A prompt that ends inside an opened section (e.g. DeepSeek-R1's "<think>\n").
      const size_t last = prompt.find_last_not_of(kSpace);
      const std::string trimmed = prompt.substr(0, last == std::string::npos ? 0 : last + 1);
      f.think_prefilled = trimmed.size() >= f.think_open.size() &&
                          trimmed.compare(trimmed.size() - f.think_open.size(), f.think_open.size(), f.think_open) == 0;
    }
  }
  if (tools.is_array() && !tools.empty()) {
    f.tools = tool_call_syntax(t);
    for (const auto& tool : tools) {
      const nlohmann::json* fn = tool.is_object() && tool.contains("function") ? &tool["function"] : &tool;
      if (fn->is_object() && fn->contains("name") && (*fn)["name"].is_string())
        f.tool_names.push_back((*fn)["name"].get<std::string>());
    }
  }
  return f;
}

ReplyParser::ReplyParser(const ReplyFormat& f) {
  if (!f.think_open.empty() && !f.think_close.empty())
    think_ = std::make_unique<ThinkingSplitter>(f.think_open, f.think_close, f.think_prefilled);
  if (f.tools.format != ToolCallFormat::NONE) tools_ = std::make_unique<ToolCallParser>(f.tools, f.tool_names);
}

void ReplyParser::tools_stage(const std::string& content, bool at_end, ReplyDelta* d) {
  if (!tools_) {
    d->content += content;
    return;
  }
  d->content += tools_->feed(content, &d->calls);
  if (at_end) d->content += tools_->finish(&d->calls);
}

ReplyDelta ReplyParser::feed(std::string_view text) {
  ReplyDelta d;
  std::string content;
  if (think_) think_->feed(text, &d.thinking, &content);
  else content.assign(text);
  tools_stage(content, false, &d);
  return d;
}

ReplyDelta ReplyParser::finish() {
  ReplyDelta d;
  std::string content;
  if (think_) think_->finish(&d.thinking, &content);
  tools_stage(content, true, &d);
  return d;
}

}  // namespace osprey::chat
