// ModelStore::pull: the OCI distribution protocol as Ollama's registry speaks it.
// Blobs download into blobs/sha256-<hex>-partial (kept across failures so the next try or
// the next pull resumes with an HTTP Range request), are verified, then renamed; the
// manifest is written only after every blob is in place.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httplib.h>

#include <chrono>
#include <cstring>

#include "engine/store/internal.h"
#include "engine/store/model_store.h"

namespace osprey::store {
using nlohmann::json;

namespace {

struct Base {
  std::string scheme_host_port;  // for httplib::Client
  std::string path_prefix;       // a base URL may carry a path
};

Result<Base> parse_base(const std::string& url) {
  size_t p = url.find("://");
  if (p == std::string::npos) return Status::error("registry URL '" + url + "' has no scheme");
  std::string scheme = url.substr(0, p);
  if (scheme != "http" && scheme != "https") return Status::error("registry URL '" + url + "': unsupported scheme");
  size_t slash = url.find('/', p + 3);
  Base b;
  b.scheme_host_port = url.substr(0, slash);
  if (slash != std::string::npos) b.path_prefix = url.substr(slash);
  while (!b.path_prefix.empty() && b.path_prefix.back() == '/') b.path_prefix.pop_back();
  return b;
}

std::unique_ptr<httplib::Client> make_client(const Base& b) {
  auto c = std::make_unique<httplib::Client>(b.scheme_host_port);
  c->set_follow_location(true);  // the Ollama registry redirects blobs to a CDN
  c->set_connection_timeout(15, 0);
  c->set_read_timeout(60, 0);
  return c;
}

int64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
}

// Ollama omits total/completed when zero (Go omitempty); clients expect the same shape.
json layer_progress(const std::string& status, const std::string& digest, int64_t total, int64_t completed) {
  json j = {{"status", status}, {"digest", digest}};
  if (total != 0) j["total"] = total;
  if (completed != 0) j["completed"] = completed;
  return j;
}

}  // namespace

Status ModelStore::pull(std::string_view name, const PullOptions& o, const Progress& progress) {
  auto say = [&](json j) {
    if (progress) progress(j);
  };
  auto n = ModelName::parse(name);
  if (!n.ok()) return n.status();
  std::string base_url = o.base_url;
  if (base_url.empty()) base_url = (o.insecure ? "http://" : "https://") + n->host;
  auto base = parse_base(base_url);
  if (!base.ok()) return base.status();

  say({{"status", "pulling manifest"}});
  auto cli = make_client(*base);
  const std::string repo = base->path_prefix + "/v2/" + n->ns + "/" + n->model;
  httplib::Headers accept = {{"Accept", kMediaManifest}};
  auto res = cli->Get(repo + "/manifests/" + n->tag, accept);
  if (!res) return Status::error("pull model manifest: " + httplib::to_string(res.error()));
  if (res->status == 404) return Status::error("pull model manifest: file does not exist");
  if (res->status != 200) {
    return Status::error("pull model manifest: registry answered HTTP " + std::to_string(res->status));
  }
  const std::string manifest_bytes = res->body;
  json manifest = json::parse(manifest_bytes, nullptr, false);
  if (!manifest.is_object() || !manifest.contains("layers") || !manifest["layers"].is_array())
    return Status::error("pull model manifest: not a valid manifest");

  // Everything the manifest names is validated before any of it becomes a path.
  struct Blob {
    std::string digest;
    int64_t size;
  };
  std::vector<Blob> blobs;
  std::vector<json> entries;
  if (manifest.contains("config") && manifest["config"].is_object()) entries.push_back(manifest["config"]);
  for (const auto& l : manifest["layers"]) entries.push_back(l);
  for (const auto& l : entries) {
    if (!l.is_object()) return Status::error("pull model manifest: bad layer");
    std::string d = detail::str_field(l, "digest");
    if (!valid_digest(d)) return Status::error("pull model manifest: bad digest '" + d + "'");
    int64_t size = l.contains("size") && l["size"].is_number_integer() ? l["size"].get<int64_t>() : -1;
    if (size < 0) return Status::error("pull model manifest: bad size for " + d);
    // A digest listed twice is fetched once (and locked once: a second flock on the same
    // file from this process would wait on itself).
    bool seen = false;
    for (const auto& b : blobs) seen |= b.digest == d;
    if (!seen) blobs.push_back({d, size});
  }

  struct PinAll {
    ModelStore* s;
    std::vector<std::string> d;
    ~PinAll() {
      for (const auto& x : d) s->unpin(x);
    }
  } pins{this, {}};
  for (const auto& b : blobs) {
    pin(b.digest);
    pins.d.push_back(b.digest);
  }
  OSPREY_TRY(detail::make_dirs(root_ + "/blobs"));

  // One downloader per blob, across threads and processes: a second pull of the same layer
  // waits on the lock and then finds the blob in place. Locks live until this pull returns.
  struct Locks {
    std::vector<int> fds;
    ~Locks() {
      for (int fd : fds) ::close(fd);
    }
  } locks;
  std::vector<std::string> to_verify;  // partial files completed in this pull
  for (const auto& b : blobs) {
    const std::string status = "pulling " + b.digest.substr(7, 12);
    if (!has_blob(b.digest)) {
      const std::string lock_path = root_ + "/blobs/." + detail::digest_to_file(b.digest) + ".lock";
      int lfd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (lfd < 0) return Status::error("create " + lock_path + ": " + std::strerror(errno));
      locks.fds.push_back(lfd);
      while (::flock(lfd, LOCK_EX) != 0 && errno == EINTR) {
      }
    }
    if (has_blob(b.digest)) {
      say(layer_progress(status, b.digest, b.size, b.size));
      continue;
    }
    const std::string partial = blob_path(b.digest) + "-partial";
    std::string last_error;
    bool done = false;
    for (int attempt = 0; attempt <= std::max(0, o.max_retries) && !done; ++attempt) {
      int64_t have = std::max<int64_t>(0, file_size(partial));
      if (have > b.size) {  // more than the layer holds: junk, start over
        ::unlink(partial.c_str());
        have = 0;
      }
      if (have == b.size) {
        done = true;
        break;
      }
      say(layer_progress(status, b.digest, b.size, have));
      int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) return Status::error("create " + partial + ": " + std::strerror(errno));
      // Identity encoding: a compressed body would make byte ranges and digests disagree.
      httplib::Headers h = {{"Accept-Encoding", "identity"}};
      if (have > 0) h.emplace("Range", "bytes=" + std::to_string(have) + "-");
      int64_t written = have;
      bool write_failed = false;
      auto last = std::chrono::steady_clock::now();
      auto r = cli->Get(
          repo + "/blobs/" + b.digest, h,
          [&](const httplib::Response& resp) {
            if (resp.status == 206 && have > 0) {
              ::lseek(fd, have, SEEK_SET);
              return true;
            }
            if (resp.status == 200) {  // no range support: restart from zero
              if (::ftruncate(fd, 0) != 0) return false;
              ::lseek(fd, 0, SEEK_SET);
              written = 0;
              return true;
            }
            return false;
          },
          [&](const char* data, size_t len) {
            if (written + static_cast<int64_t>(len) > b.size) return false;  // oversize body
            for (size_t off = 0; off < len;) {
              ssize_t w = ::write(fd, data + off, len - off);
              if (w < 0 && errno == EINTR) continue;
              if (w <= 0) return !(write_failed = true);
              off += static_cast<size_t>(w);
            }
            written += static_cast<int64_t>(len);
            auto now = std::chrono::steady_clock::now();
            if (now - last > std::chrono::milliseconds(60)) {
              last = now;
              say(layer_progress(status, b.digest, b.size, written));
            }
            return true;
          });
      bool synced = ::fsync(fd) == 0;
      ::close(fd);
      if (write_failed || !synced) return Status::error("write " + partial + ": " + std::strerror(errno));
      if (r && (r->status == 200 || r->status == 206) && file_size(partial) == b.size) {
        done = true;
      } else if (r && r->status != 200 && r->status != 206) {
        last_error = "HTTP " + std::to_string(r->status);
        if (r->status == 404 || r->status == 401 || r->status == 403) break;  // retrying won't help
        if (r->status == 416) ::unlink(partial.c_str());  // our range makes no sense to it
      } else {
        last_error = r ? "short or oversize body" : httplib::to_string(r.error());
      }
    }
    if (!done) return Status::error("download " + b.digest + ": " + last_error);
    say(layer_progress(status, b.digest, b.size, b.size));
    to_verify.push_back(b.digest);
  }

  say({{"status", "verifying sha256 digest"}});
  for (const auto& d : to_verify) {
    const std::string partial = blob_path(d) + "-partial";
    auto hex = detail::sha256_file(partial);
    if (!hex.ok()) return hex.status();
    if ("sha256:" + *hex != d) {
      // A corrupt download must not be resumed from: the next pull starts clean.
      ::unlink(partial.c_str());
      return Status::error("digest mismatch, file must be downloaded again: want " + d + ", got sha256:" + *hex);
    }
    if (::rename(partial.c_str(), blob_path(d).c_str()) != 0)
      return Status::error("store blob " + d + ": " + std::strerror(errno));
  }

  say({{"status", "writing manifest"}});
  {
    std::lock_guard<std::mutex> lock(mu_);
    bool replacing = find_manifest(*n).has_value();
    OSPREY_TRY(write_manifest(*n, manifest_bytes));
    if (replacing) say({{"status", "removing unused layers"}});
  }
  say({{"status", "success"}});
  return {};
}

}  // namespace osprey::store
