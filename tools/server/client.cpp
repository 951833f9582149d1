#include "server/client.h"

#include <cstdio>
#include <fstream>

#include <httplib.h>

#include "server/http_util.h"

namespace osprey::server {

ApiClient::ApiClient() {
  const char* v = std::getenv("OSPREY_HOST");
  if (!v || !*v) v = std::getenv("OLLAMA_HOST");
  parse_host_env(v ? v : "", &host_, &port_);
  if (host_ == "0.0.0.0" || host_ == "::") host_ = "127.0.0.1";
  base_ = "http://" + host_ + ":" + std::to_string(port_);
}

namespace {

httplib::Client make(const std::string& host, int port) {
  httplib::Client c(host, port);
  c.set_read_timeout(3600, 0);
  c.set_write_timeout(3600, 0);
  c.set_connection_timeout(5, 0);
  return c;
}

nlohmann::json parse_or_raw(const std::string& body) {
  if (body.empty()) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(body);
  } catch (const std::exception&) {
    return nlohmann::json{{"raw", body}};
  }
}

}  // namespace

int ApiClient::call(const std::string& method, const std::string& path, const nlohmann::json* body,
                    nlohmann::json* out) {
  httplib::Client c = make(host_, port_);
  httplib::Request req;
  req.method = method;
  req.path = path;
  if (body) {
    req.body = body->dump();
    req.set_header("Content-Type", "application/json");
  }
  auto r = c.send(req);
  if (!r) return 0;
  *out = parse_or_raw(r->body);
  return r->status;
}

int ApiClient::stream(const std::string& path, const nlohmann::json& body,
                      const std::function<bool(const nlohmann::json&)>& on_line, std::string* error) {
  httplib::Client c = make(host_, port_);
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  std::string buf, all;
  bool stopped = false;
  int status = 0;
  req.response_handler = [&](const httplib::Response& res) {
    status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (status != 200) {
      all.append(data, n);
      return true;
    }
    buf.append(data, n);
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      const std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (line.empty()) continue;
      nlohmann::json j = parse_or_raw(line);
      if (j.contains("error")) {
        *error = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
        return false;
      }
      if (!on_line(j)) {
        stopped = true;
        return false;
      }
    }
    return true;
  };
  auto r = c.send(req);
  if (status == 0 && !r) return 0;
  if (status != 200) {
    const nlohmann::json j = parse_or_raw(all.empty() && r ? r->body : all);
    *error = j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : j.dump();
  }
  (void)stopped;
  return status;
}

int ApiClient::upload_blob(const std::string& digest, const std::string& path, std::string* error) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) {
    *error = "cannot open " + path;
    return 0;
  }
  const size_t size = (size_t)f.tellg();
  f.seekg(0);
  auto file = std::make_shared<std::ifstream>(std::move(f));
  httplib::Client c = make(host_, port_);
  auto r = c.Post(("/api/blobs/" + digest).c_str(), size,
                  [file](size_t offset, size_t length, httplib::DataSink& sink) {
                    std::vector<char> buf(std::min<size_t>(length, 1 << 20));
                    file->seekg((std::streamoff)offset);
                    file->read(buf.data(), (std::streamsize)buf.size());
                    const auto got = file->gcount();
                    return got > 0 && sink.write(buf.data(), (size_t)got);
                  },
                  "application/octet-stream");
  if (!r) {
    *error = "could not connect to the server";
    return 0;
  }
  if (r->status >= 300) *error = parse_or_raw(r->body).value("error", r->body);
  return r->status;
}

std::string human_size(int64_t b) {
  char buf[32];
  if (b >= 1000000000) std::snprintf(buf, sizeof buf, "%.1f GB", b / 1e9);
  else if (b >= 1000000) std::snprintf(buf, sizeof buf, "%.0f MB", b / 1e6);
  else if (b >= 1000) std::snprintf(buf, sizeof buf, "%.0f KB", b / 1e3);
  else std::snprintf(buf, sizeof buf, "%lld B", (long long)b);
  return buf;
}

}  // namespace osprey::server
