// Modelfile parsing and rendering (see modelfile.h for the grammar).
#include "engine/store/modelfile.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <vector>

#include "engine/store/internal.h"

namespace osprey::store {
using nlohmann::json;

namespace {

enum class Kind { Int, Float, Bool, StringArray };

// research §3, including the removed options clients still send.
const std::map<std::string, Kind>& parameter_kinds() {
  static const std::map<std::string, Kind> k = {
      {"num_ctx", Kind::Int},         {"num_predict", Kind::Int},      {"num_keep", Kind::Int},
      {"seed", Kind::Int},            {"top_k", Kind::Int},            {"repeat_last_n", Kind::Int},
      {"num_batch", Kind::Int},       {"num_gpu", Kind::Int},          {"main_gpu", Kind::Int},
      {"num_thread", Kind::Int},      {"mirostat", Kind::Int},         {"draft_num_predict", Kind::Int},
      {"num_gqa", Kind::Int},
      {"temperature", Kind::Float},   {"top_p", Kind::Float},          {"min_p", Kind::Float},
      {"typical_p", Kind::Float},     {"repeat_penalty", Kind::Float}, {"presence_penalty", Kind::Float},
      {"frequency_penalty", Kind::Float}, {"mirostat_tau", Kind::Float}, {"mirostat_eta", Kind::Float},
      {"tfs_z", Kind::Float},
      {"use_mmap", Kind::Bool},       {"use_mlock", Kind::Bool},       {"penalize_newline", Kind::Bool},
      {"low_vram", Kind::Bool},       {"f16_kv", Kind::Bool},          {"logits_all", Kind::Bool},
      {"vocab_only", Kind::Bool},     {"numa", Kind::Bool},            {"embedding_only", Kind::Bool},
      {"stop", Kind::StringArray},
  };
  return k;
}

std::string trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

// Splits off the first whitespace-delimited word.
std::pair<std::string, std::string> split_word(std::string_view s) {
  std::string t = trim(s);
  size_t i = 0;
  while (i < t.size() && !std::isspace(static_cast<unsigned char>(t[i]))) ++i;
  return {t.substr(0, i), trim(std::string_view(t).substr(i))};
}

bool parse_go_bool(std::string_view v, bool* out) {
  static const char* kTrue[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char* kFalse[] = {"0", "f", "F", "FALSE", "false", "False"};
  for (const char* t : kTrue)
    if (v == t) return *out = true, true;
  for (const char* f : kFalse)
    if (v == f) return *out = false, true;
  return false;
}

}  // namespace

Result<json> parse_parameter(std::string_view key_in, std::string_view value) {
  std::string key = detail::to_lower(trim(key_in));
  auto it = parameter_kinds().find(key);
  if (it == parameter_kinds().end()) return Status::error("unknown parameter '" + key + "'");
  std::string v = trim(value);
  auto bad = [&]() { return Status::error("invalid value for parameter '" + key + "': '" + v + "'"); };
  switch (it->second) {
    case Kind::Int: {
      errno = 0;
      char* end = nullptr;
      long long x = std::strtoll(v.c_str(), &end, 10);
      if (!v.empty() && end && *end == '\0' && errno == 0) return json(static_cast<int64_t>(x));
      double d = std::strtod(v.c_str(), &end);  // "4096.0" is still an integer option
      if (v.empty() || !end || *end != '\0' || !std::isfinite(d) || std::fabs(d) > 9e18) return bad();
      return json(static_cast<int64_t>(d));
    }
    case Kind::Float: {
      char* end = nullptr;
      double d = std::strtod(v.c_str(), &end);
      if (v.empty() || !end || *end != '\0' || !std::isfinite(d)) return bad();
      return json(d);
    }
    case Kind::Bool: {
      bool b = false;
      if (!parse_go_bool(v, &b)) return bad();
      return json(b);
    }
    case Kind::StringArray:
      return json(std::string(value));
  }
  return bad();
}

Result<json> check_parameters(const json& params) {
  if (params.is_null()) return json::object();
  if (!params.is_object()) return Status::error("parameters must be an object");
  json out = json::object();
  for (auto p = params.begin(); p != params.end(); ++p) {
    auto it = parameter_kinds().find(p.key());
    if (it == parameter_kinds().end()) continue;  // unknown options are ignored (§3)
    const json& v = p.value();
    const std::string& k = p.key();
    switch (it->second) {
      case Kind::Int:
        if (v.is_number_integer()) {
          out[k] = v.get<int64_t>();
        } else if (v.is_number_float() && std::isfinite(v.get<double>()) && std::fabs(v.get<double>()) < 9e18) {
          out[k] = static_cast<int64_t>(v.get<double>());
        } else {
          return Status::error("option \"" + k + "\" must be of type integer");
        }
        break;
      case Kind::Float:
        if (!v.is_number()) return Status::error("option \"" + k + "\" must be of type float32");
        out[k] = v.get<double>();
        break;
      case Kind::Bool:
        if (!v.is_boolean()) return Status::error("option \"" + k + "\" must be of type boolean");
        out[k] = v;
        break;
      case Kind::StringArray:
        if (!v.is_array()) return Status::error("option \"" + k + "\" must be of type array");
        for (const auto& s : v)
          if (!s.is_string()) return Status::error("option \"" + k + "\" must be of type array");
        out[k] = v;
        break;
    }
  }
  return out;
}

Result<CreateRequest> parse_modelfile(std::string_view text) {
  std::vector<std::string> lines;
  for (size_t start = 0; start <= text.size();) {
    size_t nl = text.find('\n', start);
    std::string_view l = text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    lines.emplace_back(l);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  CreateRequest req;
  bool have_from = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    const size_t lineno = i + 1;
    auto err = [&](const std::string& m) { return Status::error("line " + std::to_string(lineno) + ": " + m); };
    std::string line = trim(lines[i]);
    if (line.empty() || line[0] == '#') continue;
    auto [cmd_raw, rest] = split_word(line);
    std::string cmd = detail::to_lower(cmd_raw);
    std::string arg;  // PARAMETER key / MESSAGE role
    if (cmd == "parameter" || cmd == "message") {
      auto [a, r] = split_word(rest);
      arg = a;
      rest = r;
      if (arg.empty()) return err("missing " + std::string(cmd == "parameter" ? "parameter name" : "message role"));
    }
    // The value: """multi-line""", "quoted", or the bare rest of the line.
    std::string value;
    if (rest.rfind("\"\"\"", 0) == 0) {
      std::string body = rest.substr(3);
      size_t close = body.find("\"\"\"");
      while (close == std::string::npos) {
        if (++i >= lines.size()) return err("unterminated \"\"\" string");
        body += "\n" + lines[i];
        close = body.find("\"\"\"");
      }
      if (!trim(std::string_view(body).substr(close + 3)).empty())
        return Status::error("line " + std::to_string(i + 1) + ": text after closing \"\"\"");
      value = body.substr(0, close);
    } else if (!rest.empty() && rest[0] == '"') {
      size_t j = 1;
      bool closed = false;
      for (; j < rest.size(); ++j) {
        if (rest[j] == '\\' && j + 1 < rest.size()) {
          char e = rest[++j];
          value += e == 'n' ? '\n' : e == 't' ? '\t' : e;
        } else if (rest[j] == '"') {
          closed = true;
          break;
        } else {
          value += rest[j];
        }
      }
      if (!closed) return err("unterminated quoted string");
      if (!trim(std::string_view(rest).substr(j + 1)).empty()) return err("text after closing quote");
    } else {
      value = rest;
    }

    if (cmd == "from") {
      if (value.empty()) return err("FROM needs a model name or path");
      if (have_from) return err("more than one FROM");
      req.from = value;
      have_from = true;
    } else if (cmd == "parameter") {
      auto v = parse_parameter(arg, value);
      if (!v.ok()) return err(v.error());
      std::string key = detail::to_lower(arg);
      if (key == "stop") {
        if (!req.parameters.contains("stop")) req.parameters["stop"] = json::array();
        req.parameters["stop"].push_back(*v);
      } else {
        req.parameters[key] = *v;
      }
    } else if (cmd == "template") {
      req.template_text = value;
    } else if (cmd == "system") {
      req.system = value;
    } else if (cmd == "license") {
      if (!req.license) req.license.emplace();
      req.license->push_back(value);
    } else if (cmd == "message") {
      std::string role = detail::to_lower(arg);
      if (role != "system" && role != "user" && role != "assistant" && role != "tool")
        return err("invalid message role '" + arg + "' (want system, user, assistant or tool)");
      if (!req.messages) req.messages = json::array();
      req.messages->push_back({{"role", role}, {"content", value}});
    } else if (cmd == "adapter") {
      return err("ADAPTER is not supported");
    } else {
      return err("unknown command '" + cmd_raw + "'");
    }
  }
  if (!have_from) return Status::error("no FROM line for the model was specified");
  return req;
}

void resolve_modelfile_from(CreateRequest& req, const std::string& base_dir) {
  namespace fs = std::filesystem;
  if (req.from.empty()) return;
  if (req.from.rfind("sha256:", 0) == 0) {
    req.files.emplace_back("model.gguf", req.from);
    req.from.clear();
    return;
  }
  std::string p = req.from;
  if (p.rfind("~/", 0) == 0) {
    const char* home = std::getenv("HOME");
    p = std::string(home ? home : "") + p.substr(1);
  } else if (!p.empty() && p[0] != '/') {
    p = (fs::path(base_dir.empty() ? "." : base_dir) / p).string();
  }
  std::error_code ec;
  // A GGUF file, or a Hugging Face checkpoint folder (converted to GGUF by whoever reads from_file).
  if (fs::is_regular_file(p, ec) || (fs::is_directory(p, ec) && fs::is_regular_file(fs::path(p) / "config.json", ec))) {
    req.from_file = fs::absolute(p, ec).lexically_normal().string();
    req.from.clear();
  }
}

namespace {

// A value as a Modelfile line argument: bare when it survives parsing unchanged.
std::string quote_arg(const std::string& s) {
  bool bare = !s.empty() && s == trim(s) && s[0] != '"' && s.find('\n') == std::string::npos;
  if (bare) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

// A block value: triple quotes unless the text itself contains them.
std::string quote_block(const std::string& s) {
  if (s.find("\"\"\"") == std::string::npos && (s.empty() || s.back() != '"')) return "\"\"\"" + s + "\"\"\"";
  return quote_arg(s);
}

// Go %v of a JSON scalar: whole floats print without a fraction, as Go prints 1.0 as 1.
std::string go_value(const json& v, bool quote_strings) {
  if (v.is_string()) return quote_strings ? detail::dump(v) : v.get<std::string>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) return std::to_string(static_cast<int64_t>(d));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", d);
    // %g gives 6 significant digits; use the shortest exact form when that loses precision.
    if (std::strtod(buf, nullptr) != d) return detail::dump(v);
    return buf;
  }
  return detail::dump(v);
}

}  // namespace

std::string render_modelfile(const ModelInfo& m) {
  std::string out = "# Modelfile generated by \"ollama show\"\n";
  out += "# To build a new Modelfile based on this, replace FROM with:\n";
  out += "# FROM " + m.name.display() + "\n\n";
  out += "FROM " + m.model_path + "\n";
  if (!m.template_text.empty()) out += "TEMPLATE " + quote_block(m.template_text) + "\n";
  if (!m.system.empty()) out += "SYSTEM " + quote_block(m.system) + "\n";
  if (m.params.is_object()) {
    for (auto it = m.params.begin(); it != m.params.end(); ++it) {
      if (it.value().is_array()) {
        for (const auto& v : it.value()) out += "PARAMETER " + it.key() + " " + quote_arg(go_value(v, false)) + "\n";
      } else {
        out += "PARAMETER " + it.key() + " " + quote_arg(go_value(it.value(), false)) + "\n";
      }
    }
  }
  if (m.messages.is_array()) {
    for (const auto& msg : m.messages) {
      if (!msg.is_object()) continue;
      std::string role = detail::str_field(msg, "role");
      out += "MESSAGE " + (role.empty() ? "user" : role) + " " + quote_block(detail::str_field(msg, "content")) + "\n";
    }
  }
  for (const auto& lic : m.licenses) out += "LICENSE " + quote_block(lic) + "\n";
  return out;
}

std::string format_parameters(const json& params) {
  std::string out;
  if (!params.is_object()) return out;
  auto line = [&](const std::string& k, const json& v) {
    if (!out.empty()) out += "\n";
    std::string key = k;
    if (key.size() < 30) key.append(30 - key.size(), ' ');
    out += key + " " + go_value(v, true);
  };
  for (auto it = params.begin(); it != params.end(); ++it) {
    if (it.value().is_array()) {
      for (const auto& v : it.value()) line(it.key(), v);
    } else {
      line(it.key(), it.value());
    }
  }
  return out;
}

}  // namespace osprey::store
