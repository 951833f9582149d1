#include "tool_calls.h"

#include <random>

#include "go_template.h"

namespace osprey::chat {
namespace {

using OJson = nlohmann::ordered_json;

constexpr const char* kSpace = " \t\r\n";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kMistralTag = "[TOOL_CALLS]";
constexpr std::string_view kFence = "```";

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// Length of the longest proper prefix of `tag` that `s` ends with: text that may still turn
// into the tag and so is held back.
size_t partial_tag_suffix(std::string_view s, std::string_view tag) {
  for (size_t k = std::min(s.size(), tag.size() - 1); k > 0; --k)
    if (s.substr(s.size() - k) == tag.substr(0, k)) return k;
  return 0;
}

std::string new_call_id() {
  static thread_local std::mt19937 rng{std::random_device{}()};
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string id = "call_";
  for (int i = 0; i < 8; ++i) id += kAlphabet[rng() % 36];
  return id;
}

bool name_char(char c) { return std::isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.'; }

}  // namespace

size_t json_value_end(std::string_view s, size_t from, bool* too_deep, int max_depth) {
  *too_deep = false;
  int depth = 0;
  bool in_str = false, esc = false;
  for (size_t i = from; i < s.size(); ++i) {
    const char c = s[i];
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) {
        *too_deep = true;
        return std::string_view::npos;
      }
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

bool tool_call_from_json(const OJson& v, const std::vector<std::string>& names, ToolCall* call) {
  if (!v.is_object()) return false;
  // OpenAI's own shape, {"type":"function","function":{...}}, as some models echo it.
  if (!v.contains("name") && v.contains("function") && v["function"].is_object())
    return tool_call_from_json(v["function"], names, call);
  auto n = v.find("name");
  if (n == v.end() || !n->is_string() || n->get<std::string>().empty()) return false;
  const std::string name = n->get<std::string>();
  if (!names.empty() && std::find(names.begin(), names.end(), name) == names.end()) return false;
  OJson args = OJson::object();
  if (auto a = v.find("arguments"); a != v.end()) args = *a;
  else if (auto p = v.find("parameters"); p != v.end()) args = *p;
  if (args.is_string()) {  // arguments written as a JSON string
    args = OJson::parse(args.get<std::string>(), nullptr, /*allow_exceptions=*/false);
    if (args.is_discarded()) return false;
  }
  if (!args.is_object()) return false;
  call->name = name;
  call->arguments = std::move(args);
  return true;
}

ToolCallSyntax tool_call_syntax(const TemplateSource& t) {
  ToolCallSyntax s;
  if (!t.go_template.empty()) {
    const TemplateTags tags = template_tags(t);
    if (tags.tool_call.empty()) return s;
    if (tags.tool_call == "{" || tags.tool_call == "[") {
      s.format = ToolCallFormat::JSON;
    } else if (tags.tool_call == kMistralTag) {
      s.format = ToolCallFormat::MISTRAL;
      s.open = tags.tool_call;
    } else {
      s.format = ToolCallFormat::TAGGED;
      s.open = tags.tool_call;
      // A closing tag counts only if the template writes it.
      if (s.open.size() > 2 && s.open[0] == '<' && s.open[1] != '/') {
        const std::string close = "</" + s.open.substr(1);
        if (t.go_template.find(close) != std::string::npos) s.close = close;
      }
    }
    return s;
  }
  const std::string& j = t.jinja_template;
  if (j.empty() || j.find("tools") == std::string::npos) return s;
  if (j.find("<tool_call>") != std::string::npos) {
    s = {ToolCallFormat::TAGGED, "<tool_call>", "</tool_call>"};
  } else if (j.find(kMistralTag) != std::string::npos) {
    s = {ToolCallFormat::MISTRAL, std::string(kMistralTag), ""};
  } else if (j.find("<|python_tag|>") != std::string::npos || j.find("<|start_header_id|>") != std::string::npos) {
    s.format = ToolCallFormat::LLAMA3;
  } else {
    s.format = ToolCallFormat::JSON;
  }
  return s;
}

ToolCallParser::ToolCallParser(ToolCallSyntax syntax, std::vector<std::string> tool_names)
    : syntax_(std::move(syntax)), names_(std::move(tool_names)) {
  if (syntax_.format == ToolCallFormat::NONE || (opens_anywhere() && syntax_.open.empty())) state_ = State::PLAIN;
}

bool ToolCallParser::opens_anywhere() const {
  return syntax_.format == ToolCallFormat::TAGGED || syntax_.format == ToolCallFormat::MISTRAL;
}

std::string ToolCallParser::feed(std::string_view text, std::vector<ToolCall>* calls) {
  buf_.append(text);
  return run(false, calls);
}

std::string ToolCallParser::finish(std::vector<ToolCall>* calls) { return run(true, calls); }

bool ToolCallParser::add_calls(const OJson& v, std::vector<ToolCall>* out) {
  std::vector<ToolCall> got;
  auto one = [&](const OJson& c) {
    ToolCall call;
    if (!tool_call_from_json(c, names_, &call)) return false;
    got.push_back(std::move(call));
    return true;
  };
  if (v.is_array()) {
    if (v.empty()) return false;
    for (const auto& c : v)
      if (!one(c)) return false;
  } else if (v.is_object() && !v.contains("name") && v.contains("tool_calls") && v["tool_calls"].is_array()) {
    return add_calls(v["tool_calls"], out);  // llama.cpp's generic {"tool_calls":[...]}
  } else if (v.is_object() && !v.contains("name") && v.contains("tool_call")) {
    return add_calls(v["tool_call"], out);
  } else if (!one(v)) {
    return false;
  }
  for (auto& c : got) {
    c.id = new_call_id();
    c.index = next_index_++;
    out->push_back(std::move(c));
  }
  return true;
}

// One JSON value (after optional whitespace) at s[from]: a call or an array of calls.
ToolCallParser::Step ToolCallParser::parse_json_calls(std::string_view s, size_t from, bool at_end,
                                                      std::vector<ToolCall>* calls, size_t* end) {
  const size_t p = s.find_first_not_of(kSpace, from);
  if (p == std::string::npos) return at_end ? Step::BAD : Step::NEED_MORE;
  if (s[p] != '{' && s[p] != '[') return Step::BAD;
  bool too_deep = false;
  const size_t e = json_value_end(s, p, &too_deep);
  if (e == std::string::npos) return too_deep || at_end ? Step::BAD : Step::NEED_MORE;
  const OJson v = OJson::parse(s.substr(p, e - p), nullptr, false);
  if (v.is_discarded() || !add_calls(v, calls)) return Step::BAD;
  *end = e;
  return Step::DONE;
}

// Mistral v11+: `name[ARGS]{...}` or `name[CALL_ID]id[ARGS]{...}` at buf_[from].
ToolCallParser::Step ToolCallParser::parse_mistral_named(size_t from, bool at_end, std::vector<ToolCall>* calls,
                                                         size_t* end) {
  const Step wait = at_end ? Step::BAD : Step::NEED_MORE;
  size_t q = from;
  while (q < buf_.size() && name_char(buf_[q])) ++q;
  if (q == buf_.size()) return wait;
  const std::string name = buf_.substr(from, q - from);
  if (name.empty()) return Step::BAD;
  auto marker = [&](std::string_view m) -> int {  // 1 found, 0 partial at the end, -1 other text
    const std::string_view rest = std::string_view(buf_).substr(q);
    if (starts_with(rest, m)) return 1;
    return starts_with(m, rest) ? 0 : -1;
  };
  static constexpr std::string_view kCallId = "[CALL_ID]", kArgs = "[ARGS]";
  int id = marker(kCallId);
  if (id == 0) return wait;
  if (id == 1) {
    q += kCallId.size();
    while (q < buf_.size() && std::isalnum((unsigned char)buf_[q])) ++q;
    if (q == buf_.size()) return wait;
  }
  const int args = marker(kArgs);
  if (args == 0) return wait;
  if (args < 0) return Step::BAD;
  q += kArgs.size();
  const size_t p = buf_.find_first_not_of(kSpace, q);
  if (p == std::string::npos) return wait;
  if (buf_[p] != '{') return Step::BAD;
  bool too_deep = false;
  const size_t e = json_value_end(buf_, p, &too_deep);
  if (e == std::string::npos) return too_deep ? Step::BAD : wait;
  OJson call{{"name", name}};
  call["arguments"] = OJson::parse(buf_.begin() + (std::ptrdiff_t)p, buf_.begin() + (std::ptrdiff_t)e, nullptr, false);
  if (call["arguments"].is_discarded() || !add_calls(call, calls)) return Step::BAD;
  *end = e;
  return Step::DONE;
}

// buf_ opens a call (the tag, or the JSON itself). DONE consumes buf_[0, end).
ToolCallParser::Step ToolCallParser::parse_call(bool at_end, std::vector<ToolCall>* calls) {
  size_t end = 0;
  Step st = Step::BAD;
  switch (syntax_.format) {
    case ToolCallFormat::TAGGED: {
      const size_t body = syntax_.open.size();
      if (syntax_.close.empty()) {
        st = parse_json_calls(buf_, body, at_end, calls, &end);
        break;
      }
      const size_t c = buf_.find(syntax_.close, body);
      if (c == std::string::npos && !at_end) return Step::NEED_MORE;
      // Every value between the tags must be a call (several objects are allowed); models
      // that stop without the closing tag still count at the end of generation.
      const size_t stop = c == std::string::npos ? buf_.size() : c;
      std::vector<ToolCall> got;
      size_t at = body;
      const int index0 = next_index_;
      st = Step::DONE;
      const std::string_view inner = std::string_view(buf_).substr(0, stop);
      while (inner.find_first_not_of(kSpace, at) != std::string::npos) {
        size_t e = 0;
        st = parse_json_calls(inner, at, true, &got, &e);
        if (st != Step::DONE) break;
        at = e;
      }
      if (got.empty()) st = Step::BAD;
      if (st != Step::DONE) {
        next_index_ = index0;
        return Step::BAD;
      }
      for (auto& g : got) calls->push_back(std::move(g));
      end = c == std::string::npos ? buf_.size() : c + syntax_.close.size();
      break;
    }
    case ToolCallFormat::MISTRAL: {
      const size_t p = buf_.find_first_not_of(kSpace, syntax_.open.size());
      if (p == std::string::npos) return at_end ? Step::BAD : Step::NEED_MORE;
      st = buf_[p] == '[' || buf_[p] == '{' ? parse_json_calls(buf_, p, at_end, calls, &end)
                                            : parse_mistral_named(p, at_end, calls, &end);
      break;
    }
    case ToolCallFormat::LLAMA3:
    case ToolCallFormat::JSON: {
      const size_t from = starts_with(buf_, kPythonTag) ? kPythonTag.size() : 0;
      st = parse_json_calls(buf_, from, at_end, calls, &end);
      break;
    }
    case ToolCallFormat::NONE: return Step::BAD;
  }
  if (st == Step::DONE) buf_.erase(0, end);
  return st;
}

// TAGGED templates: whether `rest` (the reply from its first non-space byte) may be a bare
// or fenced call; *partial when it is too short to tell.
bool ToolCallParser::bare_call_may_open(std::string_view rest, bool* partial) const {
  *partial = false;
  if (syntax_.format != ToolCallFormat::TAGGED || rest.empty()) return false;
  if (rest[0] == '{' || starts_with(rest, kFence)) return true;
  *partial = starts_with(kFence, rest);
  return false;
}

// buf_ opens with `{` or a ``` fence (after whitespace): DONE consumes the call(s) and the
// closing fence; BAD leaves buf_ as it is (it is then read as content).
ToolCallParser::Step ToolCallParser::parse_bare_call(bool at_end, std::vector<ToolCall>* calls) {
  const Step wait = at_end ? Step::BAD : Step::NEED_MORE;
  size_t p = buf_.find_first_not_of(kSpace);
  const bool fenced = buf_.compare(p, kFence.size(), kFence) == 0;
  if (fenced) {
    const size_t eol = buf_.find('\n', p);  // the fence line may name a language (```json)
    if (eol == std::string::npos) return wait;
    for (size_t i = p + kFence.size(); i < eol; ++i)
      if (!std::isalnum((unsigned char)buf_[i]) && buf_[i] != '_' && buf_[i] != '\r') return Step::BAD;
    p = eol + 1;
  }
  std::vector<ToolCall> got;
  const int index0 = next_index_;
  size_t end = 0;
  Step st = parse_json_calls(buf_, p, at_end, &got, &end);
  if (st == Step::DONE && fenced) {
    // The closing fence; a reply that ends before it still counts.
    const size_t q = buf_.find_first_not_of(kSpace, end);
    const std::string_view tail = q == std::string::npos ? std::string_view() : std::string_view(buf_).substr(q);
    if (starts_with(tail, kFence)) {
      end = q + kFence.size();
    } else if (starts_with(kFence, tail)) {
      if (!at_end) st = Step::NEED_MORE;
      end = buf_.size();
    } else {
      st = Step::BAD;
    }
  }
  if (st != Step::DONE) {
    next_index_ = index0;
    return st;
  }
  for (auto& c : got) calls->push_back(std::move(c));
  buf_.erase(0, end);
  return Step::DONE;
}

std::string ToolCallParser::run(bool at_end, std::vector<ToolCall>* calls) {
  std::string out;
  const std::string& open = syntax_.open;
  for (;;) {
    switch (state_) {
      case State::PLAIN:
        out += buf_;
        buf_.clear();
        return out;
      case State::START: {
        // JSON-style formats count only when the reply opens with the call (§11.5).
        const size_t s = buf_.find_first_not_of(kSpace);
        if (opens_anywhere()) {
          bool partial = false;
          if (s != std::string::npos && bare_call_may_open(std::string_view(buf_).substr(s), &partial)) {
            state_ = State::BARE_CALL;
          } else if ((s == std::string::npos || partial) && !at_end) {
            return out;
          } else {
            state_ = State::CONTENT;
          }
          continue;
        }
        if (s == std::string::npos) {
          if (at_end) state_ = State::PLAIN;
          else return out;
          continue;
        }
        const std::string_view rest = std::string_view(buf_).substr(s);
        if (rest[0] == '{' || rest[0] == '[' ||
            (syntax_.format == ToolCallFormat::LLAMA3 && starts_with(rest, kPythonTag))) {
          state_ = State::CALL;
          continue;
        }
        if (syntax_.format == ToolCallFormat::LLAMA3 && !at_end && starts_with(kPythonTag, rest)) return out;
        state_ = State::PLAIN;
        continue;
      }
      case State::CONTENT: {
        const size_t at = buf_.find(open);
        if (at != std::string::npos) {
          out.append(buf_, 0, at);
          buf_.erase(0, at);
          state_ = State::CALL;
          continue;
        }
        const size_t keep = at_end ? 0 : partial_tag_suffix(buf_, open);
        out.append(buf_, 0, buf_.size() - keep);
        buf_.erase(0, buf_.size() - keep);
        return out;
      }
      case State::AFTER_CALL: {
        // Whitespace (and Llama's ';') after a call is dropped; other text is content.
        size_t s = buf_.find_first_not_of(kSpace);
        if (s != std::string::npos && syntax_.format == ToolCallFormat::LLAMA3 && buf_[s] == ';')
          s = buf_.find_first_not_of(kSpace, s + 1);
        if (s == std::string::npos) {
          if (at_end) buf_.clear();
          return out;
        }
        const std::string_view rest = std::string_view(buf_).substr(s);
        bool call = false, partial = false;
        if (opens_anywhere()) {
          call = starts_with(rest, open);
          partial = starts_with(open, rest);
          bool fence_partial = false;
          if (!call && bare_call_may_open(rest, &fence_partial)) {
            buf_.erase(0, s);
            state_ = State::BARE_CALL;
            continue;
          }
          partial = partial || fence_partial;
        } else {
          call = rest[0] == '{' || rest[0] == '[' || starts_with(rest, kPythonTag);
          partial = syntax_.format == ToolCallFormat::LLAMA3 && starts_with(kPythonTag, rest);
        }
        if (call) {
          buf_.erase(0, s);
          state_ = State::CALL;
        } else if (partial && !at_end) {
          return out;
        } else {
          buf_.erase(0, s);
          state_ = opens_anywhere() ? State::CONTENT : State::PLAIN;
        }
        continue;
      }
      case State::BARE_CALL: {
        const Step st = parse_bare_call(at_end, calls);
        if (st == Step::NEED_MORE) return out;
        state_ = st == Step::DONE ? State::AFTER_CALL : State::CONTENT;  // not a call: plain text
        continue;
      }
      case State::CALL: {
        const Step st = parse_call(at_end, calls);
        if (st == Step::NEED_MORE) return out;
        if (st == Step::DONE) {
          state_ = State::AFTER_CALL;
          continue;
        }
        // Not a call after all: the text is content. With a named tag, show the tag and keep
        // looking in what follows (a later tag may still open a good call).
        if (opens_anywhere()) {
          out.append(buf_, 0, open.size());
          buf_.erase(0, open.size());
          state_ = State::CONTENT;
        } else {
          state_ = State::PLAIN;
        }
        continue;
      }
    }
  }
}

}  // namespace osprey::chat
