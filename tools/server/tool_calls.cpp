#include "server/tool_calls.h"

#include <random>

#include "engine/chat/prompt.h"

namespace osprey::server {
namespace {

std::string call_id() {
  static thread_local std::mt19937 rng{std::random_device{}()};
  static const char* abc = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string id = "call_";
  for (int i = 0; i < 8; ++i) id += abc[rng() % 36];
  return id;
}

// One call object: {"name":..., "arguments"|"parameters": {...}}; null if it is not one.
json to_call(const json& j, int index) {
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return nullptr;
  json args = j.contains("arguments") ? j["arguments"] : j.contains("parameters") ? j["parameters"] : json::object();
  if (args.is_string()) {
    try {
      args = json::parse(args.get<std::string>());
    } catch (const std::exception&) {
      return nullptr;
    }
  }
  if (!args.is_object()) return nullptr;
  return json{{"id", call_id()}, {"function", {{"index", index}, {"name", j["name"]}, {"arguments", args}}}};
}

// Parses consecutive JSON values from `s`; false if anything but whitespace is left over.
bool parse_values(const std::string& s, std::vector<json>* out) {
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace((unsigned char)s[i])) ++i;
    if (i >= s.size()) break;
    // Find the end of one balanced object/array, respecting strings.
    int depth = 0;
    bool in_str = false, esc = false;
    size_t j = i;
    for (; j < s.size(); ++j) {
      const char c = s[j];
      if (in_str) {
        if (esc) esc = false;
        else if (c == '\\') esc = true;
        else if (c == '"') in_str = false;
      } else if (c == '"') in_str = true;
      else if (c == '{' || c == '[') ++depth;
      else if (c == '}' || c == ']') {
        if (--depth == 0) break;
      }
    }
    if (j >= s.size()) return false;
    try {
      out->push_back(json::parse(s.substr(i, j + 1 - i)));
    } catch (const std::exception&) {
      return false;
    }
    i = j + 1;
  }
  return true;
}

}  // namespace

std::string ToolCallParser::feed(const std::string& text) {
  if (open_.empty() || state_ == State::CONTENT) return text;
  held_ += text;
  if (state_ == State::CALLING) return "";
  const size_t start = held_.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return "";
  const std::string rest = held_.substr(start);
  if (rest.compare(0, open_.size(), open_) == 0) {
    state_ = State::CALLING;
    return "";
  }
  if (open_.compare(0, rest.size(), rest) == 0) return "";  // could still become the tag
  state_ = State::CONTENT;
  return std::exchange(held_, std::string());
}

json ToolCallParser::finish(std::string* content) {
  json calls = json::array();
  if (state_ != State::CALLING) {
    *content = std::exchange(held_, std::string());
    return calls;
  }
  std::string body = held_;
  if (open_ != "{") {
    // Drop the tags; what is between them is JSON.
    for (const std::string& tag : {open_, close_})
      for (size_t at; !tag.empty() && (at = body.find(tag)) != std::string::npos;) body.replace(at, tag.size(), " ");
  }
  std::vector<json> values;
  if (parse_values(body, &values)) {
    for (const json& v : values) {
      if (v.is_array())
        for (const json& e : v) calls.push_back(to_call(e, (int)calls.size()));
      else
        calls.push_back(to_call(v, (int)calls.size()));
    }
  }
  bool ok = !calls.empty();
  for (const json& c : calls) ok = ok && !c.is_null();
  if (!ok) {
    *content = std::exchange(held_, std::string());  // not calls after all: show the text
    return json::array();
  }
  content->clear();
  return calls;
}

void tool_call_tags(const std::string& text, bool is_go, std::string* open, std::string* close) {
  open->clear();
  close->clear();
  if (is_go) {
    chat::TemplateSource src;
    src.go_template = text;
    *open = chat::template_tags(src).tool_call;
  } else if (text.find("<tool_call>") != std::string::npos) {
    *open = "<tool_call>";
  } else {
    *open = "{";
  }
  if (open->size() > 2 && (*open)[0] == '<') *close = "</" + open->substr(1);
}

}  // namespace osprey::server
