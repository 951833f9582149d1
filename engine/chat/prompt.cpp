// Prompt assembly: Ollama's Go-template semantics (collation, legacy per-turn rendering, FIM),
// the Jinja context HF/llama.cpp templates expect, and capability detection.
#include "prompt.h"

#include <algorithm>

#include "go_template.h"
#include "jinja.h"

namespace osprey::chat {
namespace {

using OJson = nlohmann::ordered_json;

// Keys in `order` first (when present), then the rest in their existing order.
OJson reorder(const OJson& obj, std::initializer_list<const char*> order) {
  if (!obj.is_object()) return obj;
  OJson out = OJson::object();
  for (const char* k : order)
    if (auto it = obj.find(k); it != obj.end()) out[k] = *it;
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (!out.contains(it.key())) out[it.key()] = it.value();
  return out;
}

OJson canonical_property(const OJson& p, int depth) {
  if (!p.is_object() || depth > 32) return p;
  OJson out = reorder(p, {"anyOf", "type", "items", "description", "enum", "properties"});
  if (out.contains("properties") && out["properties"].is_object())
    for (auto it = out["properties"].begin(); it != out["properties"].end(); ++it)
      it.value() = canonical_property(it.value(), depth + 1);
  if (out.contains("items")) out["items"] = canonical_property(out["items"], depth + 1);
  return out;
}

struct Collated {
  std::string system;
  std::vector<Message> messages;
};

// Ollama's collate(): system texts joined by a blank line, consecutive same-role messages
// merged (except tool results), system messages kept in the list too.
Collated collate(const std::vector<Message>& msgs) {
  Collated c;
  bool first_system = true;
  for (const auto& m : msgs) {
    if (m.role == "system") {
      if (!first_system) c.system += "\n\n";
      c.system += m.content;
      first_system = false;
    }
    if (!c.messages.empty() && c.messages.back().role == m.role && m.role != "tool") {
      c.messages.back().content += "\n\n" + m.content;
    } else {
      c.messages.push_back(m);
    }
  }
  return c;
}

OJson go_tool_calls(const nlohmann::json& calls) {
  OJson out = OJson::array();
  if (!calls.is_array()) return out;
  for (const auto& c : calls) {
    OJson oc = OJson::parse(c.dump());
    if (oc.contains("function")) oc["function"] = reorder(oc["function"], {"index", "name", "arguments"});
    out.push_back(reorder(oc, {"id", "function"}));
  }
  return out;
}

OJson go_message(const Message& m) {
  OJson images = OJson::array();
  for (const auto& i : m.images) images.push_back(i);
  return OJson{{"Role", m.role},          {"Content", m.content},      {"Thinking", m.thinking},
               {"Images", images},        {"ToolCalls", go_tool_calls(m.tool_calls)},
               {"ToolName", m.tool_name}, {"ToolCallID", m.tool_call_id}};
}

void add_think(OJson& data, const PromptOptions& o) {
  data["Think"] = o.think.value_or(false);
  data["ThinkLevel"] = o.think_level;
  data["IsThinkSet"] = o.think.has_value();
}

OJson tools_or_null(const PromptOptions& o) {
  if (!o.tools.is_array() || o.tools.empty()) return nullptr;
  return canonical_tools(o.tools);
}

Result<std::unique_ptr<GoTemplate>> parse_go(const std::string& src) {
  auto t = GoTemplate::parse(src);
  if (!t.ok()) return t;
  // Ollama appends {{ .Response }} to templates that use neither .Messages nor .Response.
  if (!(*t)->uses("messages") && !(*t)->uses("response")) return GoTemplate::parse(src + "{{ .Response }}");
  return t;
}

Result<std::string> render_go(const std::string& src, const std::vector<Message>& msgs, const PromptOptions& o) {
  auto parsed = parse_go(src);
  if (!parsed.ok()) return parsed.status();
  const GoTemplate& t = **parsed;
  Collated c = collate(msgs);
  if (t.uses("messages")) {
    OJson list = OJson::array();
    for (const auto& m : c.messages) list.push_back(go_message(m));
    OJson data{{"System", c.system}, {"Messages", list}, {"Tools", tools_or_null(o)}, {"Response", ""}};
    add_think(data, o);
    return t.render(data, o.now);
  }
  // Legacy template: one rendering per user turn with the previous reply as .Response; the
  // last rendering stops right after {{ .Response }} so generation continues there.
  std::string out, system, prompt, response;
  auto vars = [&]() {
    OJson d{{"System", system}, {"Prompt", prompt}, {"Response", response}};
    add_think(d, o);
    return d;
  };
  auto execute = [&]() -> Status {
    auto r = t.render(vars(), o.now);
    if (!r.ok()) return r.status();
    out += *r;
    system.clear();
    prompt.clear();
    response.clear();
    return Status();
  };
  for (const auto& m : c.messages) {
    if (m.role == "system") {
      if (!prompt.empty() || !response.empty()) OSPREY_TRY(execute());
      system = m.content;
    } else if (m.role == "user") {
      if (!response.empty()) OSPREY_TRY(execute());
      prompt = m.content;
    } else if (m.role == "assistant") {
      response = m.content;
    }
  }
  auto last = t.render_cut_after_response(vars(), o.now);
  if (!last.ok()) return last.status();
  return out + *last;
}

OJson jinja_message(const Message& m) {
  OJson out{{"role", m.role}, {"content", m.content}};
  // Prior reasoning under both names transformers gives it (gpt-oss templates read `thinking`).
  if (!m.thinking.empty()) {
    out["reasoning_content"] = m.thinking;
    out["thinking"] = m.thinking;
  }
  if (m.tool_calls.is_array() && !m.tool_calls.empty()) {
    OJson calls = OJson::array();
    for (const auto& c : m.tool_calls) {
      OJson call{{"type", "function"}};
      if (c.contains("id") && c["id"].is_string() && !c["id"].get<std::string>().empty()) call["id"] = c["id"];
      OJson fn = OJson::object();
      if (c.contains("function") && c["function"].is_object()) {
        const auto& f = c["function"];
        fn["name"] = f.value("name", "");
        fn["arguments"] = f.contains("arguments") ? OJson::parse(f["arguments"].dump()) : OJson::object();
      }
      call["function"] = fn;
      calls.push_back(call);
    }
    out["tool_calls"] = calls;
  }
  if (!m.tool_name.empty()) out["name"] = m.tool_name;
  if (!m.tool_call_id.empty()) out["tool_call_id"] = m.tool_call_id;
  return out;
}

Result<std::string> render_jinja(const TemplateSource& t, const std::vector<Message>& msgs, const PromptOptions& o) {
  auto parsed = JinjaTemplate::parse(t.jinja_template);
  if (!parsed.ok()) return parsed.status();
  OJson list = OJson::array();
  for (const auto& m : msgs) list.push_back(jinja_message(m));
  OJson ctx{{"messages", list}};
  OJson tools = tools_or_null(o);
  if (!tools.is_null()) ctx["tools"] = tools;
  ctx["add_generation_prompt"] = o.add_generation_prompt;
  ctx["bos_token"] = t.bos_token;
  ctx["eos_token"] = t.eos_token;
  if (o.think) ctx["enable_thinking"] = *o.think;
  // gpt-oss style templates know low/medium/high; Ollama maps "max" to "high" for them.
  if (!o.think_level.empty()) ctx["reasoning_effort"] = o.think_level == "max" ? "high" : o.think_level;
  return (*parsed)->render(ctx, o.now);
}

constexpr const char* kDefaultGoTemplate = "{{ .Prompt }}";

}  // namespace

nlohmann::ordered_json canonical_tools(const nlohmann::json& tools) {
  OJson in = OJson::parse(tools.dump());
  if (!in.is_array()) return in;
  OJson out = OJson::array();
  for (const auto& t : in) {
    OJson tool = reorder(t, {"type", "items", "function"});
    if (tool.contains("function") && tool["function"].is_object()) {
      OJson fn = reorder(tool["function"], {"name", "description", "parameters"});
      if (fn.contains("parameters") && fn["parameters"].is_object()) {
        OJson params = reorder(fn["parameters"], {"type", "$defs", "items", "required", "properties"});
        if (params.contains("properties") && params["properties"].is_object())
          for (auto it = params["properties"].begin(); it != params["properties"].end(); ++it)
            it.value() = canonical_property(it.value(), 0);
        fn["parameters"] = params;
      }
      tool["function"] = fn;
    }
    out.push_back(tool);
  }
  return out;
}

Result<std::string> render_chat(const TemplateSource& t, const std::vector<Message>& messages, const PromptOptions& o) {
  if (!t.go_template.empty()) return render_go(t.go_template, messages, o);
  if (!t.jinja_template.empty()) return render_jinja(t, messages, o);
  return render_go(kDefaultGoTemplate, messages, o);
}

Result<std::string> render_generate(const TemplateSource& t, const std::string& system, const std::string& prompt,
                                    const std::string& suffix, const PromptOptions& o) {
  if (!suffix.empty()) {
    if (t.go_template.empty()) return Status::error("model does not support insert");
    auto parsed = parse_go(t.go_template);
    if (!parsed.ok()) return parsed.status();
    if (!(*parsed)->uses("suffix")) return Status::error("model does not support insert");
    OJson data{{"Prompt", prompt}, {"Suffix", suffix}, {"Response", ""}};
    return (*parsed)->render(data, o.now);
  }
  std::vector<Message> msgs;
  Message m;
  if (!system.empty()) {
    m.role = "system";
    m.content = system;
    msgs.push_back(m);
  }
  m.role = "user";
  m.content = prompt;
  msgs.push_back(m);
  return render_chat(t, msgs, o);
}

TemplateCaps template_caps(const TemplateSource& t) {
  TemplateCaps caps;
  if (!t.go_template.empty()) {
    auto parsed = GoTemplate::parse(t.go_template);
    if (!parsed.ok()) return caps;
    caps.tools = (*parsed)->uses("tools");
    caps.insert = (*parsed)->uses("suffix");
    caps.thinking = !(*parsed)->thinking_tags().first.empty();
    return caps;
  }
  if (!t.jinja_template.empty()) {
    const std::string& s = t.jinja_template;
    caps.tools = s.find("tools") != std::string::npos;
    caps.thinking = s.find("enable_thinking") != std::string::npos || s.find("reasoning_content") != std::string::npos ||
                    s.find("<think>") != std::string::npos;
  }
  return caps;
}

TemplateTags template_tags(const TemplateSource& t) {
  TemplateTags tags;
  if (t.go_template.empty()) return tags;
  auto parsed = GoTemplate::parse(t.go_template);
  if (!parsed.ok()) return tags;
  std::tie(tags.think_open, tags.think_close) = (*parsed)->thinking_tags();
  if ((*parsed)->uses("toolcalls")) {
    tags.tool_call = (*parsed)->tool_call_tag();
    if (tags.tool_call.empty()) tags.tool_call.assign(1, '{');
  }
  return tags;
}

}  // namespace osprey::chat
