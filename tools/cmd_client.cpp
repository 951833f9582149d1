// Client commands that talk to a running `osprey serve` the way Ollama's CLI does: list, ps,
// stop, rm, cp, pull, create, show NAME and run NAME.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <openssl/evp.h>

#include "engine/convert/convert.h"
#include "commands.h"
#include "engine/store/modelfile.h"
#include "server/client.h"
#include "server/http_util.h"

namespace osprey::cli {

using nlohmann::json;
using server::ApiClient;

namespace {

int fail(const std::string& msg) {
  std::fprintf(stderr, "Error: %s\n", msg.c_str());
  return 1;
}

int fail_status(int status, const json& body, const ApiClient& c) {
  if (status == 0) return fail("could not connect to osprey server at " + c.base() + " (is `osprey serve` running?)");
  if (body.contains("error") && body["error"].is_string()) return fail(body["error"].get<std::string>());
  return fail("server answered " + std::to_string(status));
}

std::string ago(const std::string& rfc3339) {
  struct tm tm {};
  if (!strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return rfc3339;
  const time_t t = timegm(&tm);  // local offsets are rare in practice; close enough for a listing
  const long d = (long)(std::time(nullptr) - t);
  if (d < 60) return "Less than a minute ago";
  if (d < 3600) return std::to_string(d / 60) + " minutes ago";
  if (d < 86400) return std::to_string(d / 3600) + " hours ago";
  return std::to_string(d / 86400) + " days ago";
}

// Progress bars for pull/create: one line per status, redrawn in place while it counts.
struct ProgressPrinter {
  std::string last;
  bool on(const json& j) {
    const std::string status = j.value("status", "");
    const int64_t total = j.value("total", (int64_t)0), done = j.value("completed", (int64_t)0);
    if (status != last && !last.empty()) std::fputc('\n', stderr);
    if (total > 0) {
      const int pct = (int)(100.0 * (double)done / (double)total);
      std::string bar(20, ' ');
      for (int i = 0; i < pct / 5; ++i) bar[(size_t)i] = '#';
      std::fprintf(stderr, "\r%s %3d%% |%s| %s/%s ", status.c_str(), pct, bar.c_str(),
                   server::human_size(done).c_str(), server::human_size(total).c_str());
    } else {
      std::fprintf(stderr, "\r%s ", status.c_str());
    }
    last = status;
    return true;
  }
  void end() {
    if (!last.empty()) std::fputc('\n', stderr);
  }
};

// "sha256:<hex>" of a local file, for uploading it as a blob.
std::string file_digest(const std::string& path, std::string* err) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    *err = "cannot open " + path;
    return "";
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (f) {
    f.read(buf.data(), (std::streamsize)buf.size());
    if (f.gcount() > 0) EVP_DigestUpdate(ctx, buf.data(), (size_t)f.gcount());
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, md, &n);
  EVP_MD_CTX_free(ctx);
  std::string hex = "sha256:";
  char b[3];
  for (unsigned i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "%02x", md[i]);
    hex += b;
  }
  return hex;
}

int list_cmd() {
  ApiClient c;
  json r;
  const int st = c.call("GET", "/api/tags", nullptr, &r);
  if (st != 200) return fail_status(st, r, c);
  std::printf("%-40s %-14s %-10s %s\n", "NAME", "ID", "SIZE", "MODIFIED");
  for (const auto& m : r.value("models", json::array()))
    std::printf("%-40s %-14s %-10s %s\n", m.value("name", "").c_str(), m.value("digest", "").substr(0, 12).c_str(),
                server::human_size(m.value("size", (int64_t)0)).c_str(), ago(m.value("modified_at", "")).c_str());
  return 0;
}

int ps_cmd() {
  ApiClient c;
  json r;
  const int st = c.call("GET", "/api/ps", nullptr, &r);
  if (st != 200) return fail_status(st, r, c);
  std::printf("%-40s %-14s %-10s %-10s %-8s %s\n", "NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL");
  for (const auto& m : r.value("models", json::array())) {
    std::string until = m.value("expires_at", "");
    if (until.size() >= 4 && until.substr(0, 4) > "2100") until = "Forever";
    std::printf("%-40s %-14s %-10s %-10s %-8lld %s\n", m.value("name", "").c_str(),
                m.value("digest", "").substr(0, 12).c_str(), server::human_size(m.value("size", (int64_t)0)).c_str(),
                "100% CPU", (long long)m.value("context_length", (int64_t)0), until.c_str());
  }
  return 0;
}

int stop_cmd(const std::string& name) {
  ApiClient c;
  json r, body{{"model", name}, {"keep_alive", 0}, {"stream", false}};
  const int st = c.call("POST", "/api/generate", &body, &r);
  return st == 200 ? 0 : fail_status(st, r, c);
}

int rm_cmd(const std::vector<std::string>& names) {
  ApiClient c;
  for (const auto& n : names) {
    json r, body{{"model", n}};
    const int st = c.call("DELETE", "/api/delete", &body, &r);
    if (st != 200) return fail_status(st, r, c);
    std::printf("deleted '%s'\n", n.c_str());
  }
  return 0;
}

int cp_cmd(const std::string& src, const std::string& dst) {
  ApiClient c;
  json r, body{{"source", src}, {"destination", dst}};
  const int st = c.call("POST", "/api/copy", &body, &r);
  if (st != 200) return fail_status(st, r, c);
  std::printf("copied '%s' to '%s'\n", src.c_str(), dst.c_str());
  return 0;
}

int progress_call(const std::string& path, const json& body) {
  ApiClient c;
  ProgressPrinter p;
  std::string err;
  const int st = c.stream(path, body, [&](const json& j) { return p.on(j); }, &err);
  p.end();
  if (st == 0) return fail("could not connect to osprey server at " + c.base() + " (is `osprey serve` running?)");
  if (!err.empty()) return fail(err);
  return st == 200 ? 0 : fail("server answered " + std::to_string(st));
}

int create_cmd(const std::string& name, const std::string& modelfile, const std::string& quantize) {
  std::ifstream f(modelfile);
  if (!f) return fail("cannot read " + modelfile);
  std::stringstream ss;
  ss << f.rdbuf();
  auto req = store::parse_modelfile(ss.str());
  if (!req) return fail(req.error());
  store::CreateRequest cr = req.value();
  std::string dir = modelfile.find('/') == std::string::npos ? "." : modelfile.substr(0, modelfile.rfind('/'));
  store::resolve_modelfile_from(cr, dir);
  json body{{"model", name}, {"stream", true}};
  ApiClient c;
  if (!cr.from_file.empty() && convert::is_checkpoint_dir(cr.from_file)) {
    // A safetensors checkpoint folder: converted here (cached), then uploaded like a GGUF.
    std::fprintf(stderr, "converting model\n");
    auto converted = convert::cached_conversion(cr.from_file);
    if (!converted) return fail(converted.error());
    cr.from_file = converted.value();
  }
  if (!cr.from_file.empty()) {
    // The server never reads client paths: hash the file here and upload it as a blob.
    std::fprintf(stderr, "gathering model components\n");
    std::string err;
    const std::string digest = file_digest(cr.from_file, &err);
    if (digest.empty()) return fail(err);
    std::fprintf(stderr, "copying file %s\n", digest.c_str());
    const int st = c.upload_blob(digest, cr.from_file, &err);
    if (st != 200 && st != 201) return fail(err.empty() ? "blob upload failed" : err);
    const std::string base = cr.from_file.substr(cr.from_file.rfind('/') + 1);
    body["files"] = json{{base, digest}};
  } else if (!cr.files.empty()) {
    json files = json::object();
    for (const auto& [fn, d] : cr.files) files[fn] = d;
    body["files"] = files;
  } else {
    body["from"] = cr.from;
  }
  if (cr.template_text) body["template"] = *cr.template_text;
  if (cr.system) body["system"] = *cr.system;
  if (!cr.parameters.empty()) body["parameters"] = cr.parameters;
  if (cr.messages) body["messages"] = *cr.messages;
  if (cr.license) body["license"] = *cr.license;
  if (!quantize.empty()) body["quantize"] = quantize;
  return progress_call("/api/create", body);
}

int show_remote(const std::string& name, bool modelfile) {
  ApiClient c;
  json r, body{{"model", name}};
  const int st = c.call("POST", "/api/show", &body, &r);
  if (st != 200) return fail_status(st, r, c);
  if (modelfile) {
    std::printf("%s\n", r.value("modelfile", "").c_str());
    return 0;
  }
  const json& info = r.value("model_info", json::object());
  const json& d = r.value("details", json::object());
  const std::string arch = info.value("general.architecture", "");
  std::printf("  Model\n");
  std::printf("    %-20s %s\n", "architecture", arch.c_str());
  std::printf("    %-20s %s\n", "parameters", d.value("parameter_size", "").c_str());
  if (info.contains(arch + ".context_length"))
    std::printf("    %-20s %s\n", "context length", info[arch + ".context_length"].dump().c_str());
  if (info.contains(arch + ".embedding_length"))
    std::printf("    %-20s %s\n", "embedding length", info[arch + ".embedding_length"].dump().c_str());
  std::printf("    %-20s %s\n\n", "quantization", d.value("quantization_level", "").c_str());
  std::printf("  Capabilities\n");
  for (const auto& cap : r.value("capabilities", json::array())) std::printf("    %s\n", cap.get<std::string>().c_str());
  std::string params = r.value("parameters", "");
  if (!params.empty()) {
    for (size_t at = params.find('\n'); at != std::string::npos; at = params.find('\n', at + 5)) params.replace(at, 1, "\n    ");
    std::printf("\n  Parameters\n    %s\n", params.c_str());
  }
  const std::string sys = r.value("system", "");
  if (!sys.empty()) std::printf("\n  System\n    %s\n", sys.c_str());
  return 0;
}

}  // namespace

int run_remote(const std::string& name, const std::string& prompt, const json& options, bool verbose) {
  ApiClient c;
  json r, load{{"model", name}, {"stream", false}};
  const int st = c.call("POST", "/api/generate", &load, &r);
  if (st != 200) return fail_status(st, r, c);
  json history = json::array();
  auto turn = [&](const std::string& text) -> int {
    history.push_back({{"role", "user"}, {"content", text}});
    json body{{"model", name}, {"messages", history}, {"stream", true}};
    if (!options.empty()) body["options"] = options;
    std::string reply, err;
    json last;
    const int s = c.stream("/api/chat", body, [&](const json& j) {
      const std::string piece = j.contains("message") ? j["message"].value("content", "") : "";
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      reply += piece;
      if (j.value("done", false)) last = j;
      return true;
    }, &err);
    std::printf("\n");
    if (s != 200 || !err.empty()) {
      history.erase(history.end() - 1);
      return fail(err.empty() ? "server answered " + std::to_string(s) : err);
    }
    history.push_back({{"role", "assistant"}, {"content", reply}});
    if (verbose && last.is_object()) {
      const double ev = last.value("eval_duration", (int64_t)0) / 1e9;
      std::fprintf(stderr, "eval count: %lld tokens, eval rate: %.2f tokens/s\n", (long long)last.value("eval_count", (int64_t)0),
                   ev > 0 ? last.value("eval_count", (int64_t)0) / ev : 0.0);
    }
    return 0;
  };
  if (!prompt.empty()) return turn(prompt);
  if (!isatty(STDIN_FILENO)) {
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    return all.empty() ? 0 : turn(all);
  }
  std::string line;
  for (;;) {
    std::printf(">>> ");
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line == "/bye") break;
    if (line == "/clear") {
      history = json::array();
      std::printf("Cleared session context\n");
      continue;
    }
    if (line == "/?" || line == "/help") {
      std::printf("/bye to exit, /clear to forget the conversation, \"\"\" to begin and end multi-line input\n");
      continue;
    }
    if (line.rfind("\"\"\"", 0) == 0) {
      // Multi-line input runs until a line ending in """.
      std::string text = line.substr(3), more;
      bool closed = text.size() >= 3 && text.compare(text.size() - 3, 3, "\"\"\"") == 0;
      while (!closed) {
        std::printf("... ");
        std::fflush(stdout);
        if (!std::getline(std::cin, more)) break;
        text += "\n" + more;
        closed = more.size() >= 3 && more.compare(more.size() - 3, 3, "\"\"\"") == 0;
      }
      if (closed) text.erase(text.size() - 3);
      line = text;
    }
    if (line.empty()) continue;
    turn(line);
  }
  return 0;
}

bool is_local_model_arg(const std::string& a) {
  struct stat sb {};
  if (::stat(a.c_str(), &sb) == 0) return true;
  if (a.empty() || a[0] == '/' || a[0] == '.' || a[0] == '~') return true;
  const auto ends = [&](const char* suf) {
    const size_t n = std::strlen(suf);
    return a.size() >= n && a.compare(a.size() - n, n, suf) == 0;
  };
  return ends(".gguf") || ends(".GGUF") || ends(".txt") || ends(".bin");
}

int show_remote_cmd(const std::string& name, bool modelfile) { return show_remote(name, modelfile); }

void add_client_commands(CLI::App& app, int* exit_code) {
  app.add_subcommand("list", "List models on the server")->alias("ls")->callback([exit_code] { *exit_code = list_cmd(); });
  app.add_subcommand("ps", "List loaded models")->callback([exit_code] { *exit_code = ps_cmd(); });
  auto name = std::make_shared<std::string>();
  CLI::App* stop = app.add_subcommand("stop", "Unload a running model");
  stop->add_option("model", *name, "model name")->required();
  stop->callback([name, exit_code] { *exit_code = stop_cmd(*name); });
  auto names = std::make_shared<std::vector<std::string>>();
  CLI::App* rm = app.add_subcommand("rm", "Remove models");
  rm->add_option("models", *names, "model names")->required();
  rm->callback([names, exit_code] { *exit_code = rm_cmd(*names); });
  auto src = std::make_shared<std::string>(), dst = std::make_shared<std::string>();
  CLI::App* cp = app.add_subcommand("cp", "Copy a model");
  cp->add_option("source", *src)->required();
  cp->add_option("destination", *dst)->required();
  cp->callback([src, dst, exit_code] { *exit_code = cp_cmd(*src, *dst); });
  auto pname = std::make_shared<std::string>();
  auto insecure = std::make_shared<bool>(false);
  CLI::App* pull = app.add_subcommand("pull", "Pull a model from a registry");
  pull->add_option("model", *pname)->required();
  pull->add_flag("--insecure", *insecure, "allow an http registry");
  pull->callback([pname, insecure, exit_code] {
    *exit_code = progress_call("/api/pull", json{{"model", *pname}, {"insecure", *insecure}, {"stream", true}});
  });
  auto cname = std::make_shared<std::string>(), file = std::make_shared<std::string>("Modelfile");
  CLI::App* create = app.add_subcommand("create", "Create a model from a Modelfile");
  create->add_option("model", *cname)->required();
  create->add_option("-f,--file", *file, "Modelfile path")->capture_default_str();
  auto cquant = std::make_shared<std::string>();
  create->add_option("-q,--quantize", *cquant, "quantize the model's weights to this type (e.g. Q4_K_M)");
  create->callback([cname, file, cquant, exit_code] { *exit_code = create_cmd(*cname, *file, *cquant); });
}

}  // namespace osprey::cli
