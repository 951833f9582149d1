// ModelStore: reading manifests, listing, copy/remove with blob garbage collection, blobs.
#include "engine/store/model_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "engine/store/internal.h"

namespace osprey::store {
namespace fs = std::filesystem;
using nlohmann::json;

ModelStore::ModelStore(std::string root) : root_(std::move(root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

std::string ModelStore::default_root() {
  if (const char* m = std::getenv("OSPREY_MODELS"); m && *m) return m;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.osprey/models";
}

std::string ModelStore::manifest_path(const ModelName& n) const {
  return root_ + "/manifests/" + n.host + "/" + n.ns + "/" + n.model + "/" + n.tag;
}

std::string ModelStore::blob_path(std::string_view digest) const {
  if (!valid_digest(digest)) return "";
  return root_ + "/blobs/" + detail::digest_to_file(digest);
}

bool ModelStore::has_blob(std::string_view digest) const {
  std::string p = blob_path(digest);
  struct stat st {};
  return !p.empty() && ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

namespace {

// The entry of `dir` equal to `want` ignoring case, preferring an exact match.
std::optional<std::string> find_ci(const std::string& dir, const std::string& want) {
  std::error_code ec;
  if (fs::exists(dir + "/" + want, ec)) return want;
  std::string lw = detail::to_lower(want);
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (detail::to_lower(name) == lw) return name;
  }
  return std::nullopt;
}

}  // namespace

std::optional<ModelName> ModelStore::find_manifest(const ModelName& n) const {
  ModelName out;
  std::string dir = root_ + "/manifests";
  std::string* parts[] = {&out.host, &out.ns, &out.model, &out.tag};
  const std::string* want[] = {&n.host, &n.ns, &n.model, &n.tag};
  for (int i = 0; i < 4; ++i) {
    auto got = find_ci(dir, *want[i]);
    if (!got) return std::nullopt;
    *parts[i] = *got;
    dir += "/" + *got;
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return out;
}

Result<ModelInfo> ModelStore::load(const ModelName& n) const {
  const std::string path = manifest_path(n);
  auto bytes = detail::read_file(path, 16u << 20);
  if (!bytes.ok()) return bytes.status();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::error("stat " + path + ": " + std::strerror(errno));
  ModelInfo m;
  m.name = n;
  m.manifest_digest = detail::sha256_hex(*bytes);
  m.modified_unix_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  m.modified_at = detail::rfc3339_local(m.modified_unix_ns);
  m.manifest = json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
  if (!m.manifest.is_object() || !m.manifest.contains("layers") || !m.manifest["layers"].is_array())
    return Status::error("manifest " + path + " is not a valid manifest");

  // A text layer's content; layers are small, but a hostile store must not make us read GBs.
  auto text_of = [&](const std::string& digest) -> Result<std::string> {
    return detail::read_file(blob_path(digest), 64u << 20);
  };
  json config;
  std::vector<json> entries(m.manifest["layers"].begin(), m.manifest["layers"].end());
  if (m.manifest.contains("config") && m.manifest["config"].is_object()) {
    entries.insert(entries.begin(), m.manifest["config"]);
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const json& l = entries[i];
    if (!l.is_object()) return Status::error("manifest " + path + ": bad layer");
    std::string media = detail::str_field(l, "mediaType");
    std::string digest = detail::str_field(l, "digest");
    if (!valid_digest(digest)) return Status::error("manifest " + path + ": bad digest '" + digest + "'");
    if (l.contains("size") && l["size"].is_number_integer()) m.size += l["size"].get<int64_t>();
    const bool is_config = media == kMediaConfig;
    if (!has_blob(digest)) {
      // Weights must be there; a missing optional text layer only loses that layer.
      if (media == kMediaModel || media == kMediaProjector) {
        return Status::error("model '" + n.display() + "': blob " + digest + " is missing");
      }
      continue;
    }
    if (is_config) {
      auto t = text_of(digest);
      if (t.ok()) config = json::parse(*t, nullptr, false);
    } else if (media == kMediaModel) {
      if (m.model_path.empty()) m.model_path = blob_path(digest);
    } else if (media == kMediaProjector) {
      m.projector_paths.push_back(blob_path(digest));
    } else if (media == kMediaAdapter) {
      m.adapter_paths.push_back(blob_path(digest));
    } else if (media == kMediaTemplate || media == kMediaPrompt) {
      auto t = text_of(digest);
      if (t.ok()) m.template_text = *t;
    } else if (media == kMediaSystem) {
      auto t = text_of(digest);
      if (t.ok()) m.system = *t;
    } else if (media == kMediaParams) {
      auto t = text_of(digest);
      json p = t.ok() ? json::parse(*t, nullptr, false) : json();
      if (p.is_object()) m.params = p;
    } else if (media == kMediaMessages) {
      auto t = text_of(digest);
      json p = t.ok() ? json::parse(*t, nullptr, false) : json();
      if (p.is_array()) m.messages = p;
    } else if (media == kMediaLicense) {
      auto t = text_of(digest);
      if (t.ok()) m.licenses.push_back(*t);
    }
  }
  if (!config.is_object()) config = json::object();
  auto str = [&](const char* k) {
    return config.contains(k) && config[k].is_string() ? config[k].get<std::string>() : std::string();
  };
  json families = config.contains("model_families") && config["model_families"].is_array()
                      ? config["model_families"]
                      : json(nullptr);
  std::string format = str("model_format");
  m.details = {{"parent_model", ""},
               {"format", format.empty() ? "gguf" : format},
               {"family", str("model_family")},
               {"families", families},
               {"parameter_size", str("model_type")},
               {"quantization_level", str("file_type")}};
  return m;
}

Result<ModelInfo> ModelStore::resolve(std::string_view name) const {
  auto n = ModelName::parse(name);
  if (!n.ok()) return n.status();
  auto found = find_manifest(*n);
  if (!found) return Status::error("model '" + std::string(name) + "' not found");
  return load(*found);
}

Result<std::vector<ModelInfo>> ModelStore::list() const {
  std::vector<ModelInfo> out;
  const fs::path base = root_ + "/manifests";
  std::error_code ec;
  if (!fs::exists(base, ec)) return out;
  // Exactly host/ns/model/tag: anything shallower or deeper is not ours to interpret.
  for (fs::recursive_directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
    if (it.depth() != 3 || !it->is_regular_file(ec)) continue;
    fs::path rel = fs::relative(it->path(), base, ec);
    std::vector<std::string> parts;
    for (const auto& p : rel) parts.push_back(p.string());
    if (parts.size() != 4) continue;
    auto n = ModelName::parse(parts[0] + "/" + parts[1] + "/" + parts[2] + ":" + parts[3]);
    if (!n.ok() || n->host != parts[0]) continue;  // temp files and foreign entries
    auto m = load(*n);
    if (m.ok()) out.push_back(std::move(*m));
  }
  if (ec) return Status::error("list " + base.string() + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const ModelInfo& a, const ModelInfo& b) {
    return a.modified_unix_ns > b.modified_unix_ns;
  });
  return out;
}

namespace {

std::set<std::string> digests_of(const json& m) {
  std::set<std::string> out;
  if (!m.is_object()) return out;
  if (m.contains("config") && m["config"].is_object()) out.insert(detail::str_field(m["config"], "digest"));
  if (m.contains("layers") && m["layers"].is_array())
    for (const auto& l : m["layers"])
      if (l.is_object()) out.insert(detail::str_field(l, "digest"));
  return out;
}

}  // namespace

Status ModelStore::write_manifest(const ModelName& n, const std::string& bytes) {
  json manifest = json::parse(bytes, nullptr, false);
  if (!manifest.is_object() || !manifest.contains("layers") || !manifest["layers"].is_array())
    return Status::error("writing manifest: not a valid manifest");
  // Never publish a manifest whose blobs are not all in place (a concurrent remove or a
  // crashed download could otherwise leave a model that lists but cannot load).
  for (const auto& d : digests_of(manifest))
    if (!has_blob(d)) return Status::error("writing manifest: blob " + d + " is missing");
  std::set<std::string> old_digests;
  auto old = find_manifest(n);
  if (old) {
    auto b = detail::read_file(manifest_path(*old), 16u << 20);
    if (b.ok()) old_digests = digests_of(json::parse(*b, nullptr, false));
  }
  OSPREY_TRY(detail::write_file_atomic(manifest_path(n), bytes, before_manifest_commit));
  // Another spelling of the same name must not survive as a second model.
  if (old && manifest_path(*old) != manifest_path(n)) ::unlink(manifest_path(*old).c_str());
  // Layers only the replaced manifest used are now garbage.
  return collect_garbage(false, &old_digests);
}

Status ModelStore::copy(std::string_view src, std::string_view dst) {
  auto s = ModelName::parse(src);
  if (!s.ok()) return Status::error("source \"" + std::string(src) + "\" is invalid");
  auto d = ModelName::parse(dst);
  if (!d.ok()) return Status::error("destination \"" + std::string(dst) + "\" is invalid");
  std::lock_guard<std::mutex> lock(mu_);
  auto found = find_manifest(*s);
  if (!found) return Status::error("model '" + std::string(src) + "' not found");
  auto bytes = detail::read_file(manifest_path(*found), 16u << 20);
  if (!bytes.ok()) return bytes.status();
  if (found->same_as(*d)) return {};
  // The bytes verbatim, so the copy keeps the source's digest as Ollama's does.
  return write_manifest(*d, *bytes);
}

Status ModelStore::remove(std::string_view name) {
  auto n = ModelName::parse(name);
  if (!n.ok()) return n.status();
  std::lock_guard<std::mutex> lock(mu_);
  auto found = find_manifest(*n);
  if (!found) return Status::error("model '" + std::string(name) + "' not found");
  fs::path p = manifest_path(*found);
  auto bytes = detail::read_file(p.string(), 16u << 20);
  std::set<std::string> own = bytes.ok() ? digests_of(json::parse(*bytes, nullptr, false))
                                         : std::set<std::string>();
  if (::unlink(p.c_str()) != 0) return Status::error("remove " + p.string() + ": " + std::strerror(errno));
  // Prune now-empty directories up to (not including) manifests/.
  const fs::path stop = root_ + "/manifests";
  for (fs::path dir = p.parent_path(); dir != stop && dir.string().size() > stop.string().size();
       dir = dir.parent_path()) {
    if (::rmdir(dir.c_str()) != 0) break;  // not empty: stop
  }
  return collect_garbage(false, &own);
}

void ModelStore::pin(const std::string& digest) {
  std::lock_guard<std::mutex> lock(mu_);
  pinned_.insert(digest);
}

void ModelStore::unpin(const std::string& digest) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pinned_.find(digest);
  if (it != pinned_.end()) pinned_.erase(it);
}

// Caller holds mu_ (or is prune(), which takes it).
Status ModelStore::collect_garbage(bool temps, const std::set<std::string>* only) {
  std::set<std::string> keep(pinned_.begin(), pinned_.end());
  const fs::path base = root_ + "/manifests";
  std::error_code ec;
  if (fs::exists(base, ec)) {
    for (fs::recursive_directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      if (it->path().filename().string().starts_with(".")) {
        if (temps) fs::remove(it->path(), ec);
        ec.clear();
        continue;
      }
      auto bytes = detail::read_file(it->path().string(), 16u << 20);
      json m = bytes.ok() ? json::parse(*bytes, nullptr, false) : json();
      // One unreadable manifest means we cannot know what is referenced: keep everything.
      if (!m.is_object()) return {};
      if (m.contains("config") && m["config"].is_object()) keep.insert(detail::str_field(m["config"], "digest"));
      if (m.contains("layers") && m["layers"].is_array())
        for (const auto& l : m["layers"])
          if (l.is_object()) keep.insert(detail::str_field(l, "digest"));
    }
    if (ec) return {};
  }
  const fs::path blobs = root_ + "/blobs";
  if (!fs::exists(blobs, ec)) return {};
  for (fs::directory_iterator it(blobs, ec), end; !ec && it != end; it.increment(ec)) {
    std::string f = it->path().filename().string();
    if (f.starts_with(".")) {
      // Lock files stay: deleting one another process holds would let a third one in.
      if (temps && !f.ends_with(".lock")) fs::remove(it->path(), ec);
      ec.clear();
      continue;
    }
    if (f.size() != 71 || !f.starts_with("sha256-")) continue;  // partials, foreign files
    std::string digest = "sha256:" + f.substr(7);
    if (!valid_digest(digest) || keep.count(digest) || (only && !only->count(digest))) continue;
    fs::remove(it->path(), ec);
    ec.clear();
  }
  return {};
}

Status ModelStore::prune() {
  std::lock_guard<std::mutex> lock(mu_);
  return collect_garbage(true, nullptr);
}

// ---- blobs -------------------------------------------------------------------------------

namespace {

class FileBlobWriter : public ModelStore::BlobWriter {
 public:
  FileBlobWriter(std::string digest, std::string final_path, std::string tmp, int fd)
      : digest_(std::move(digest)), final_(std::move(final_path)), tmp_(std::move(tmp)), fd_(fd) {}
  ~FileBlobWriter() override {
    if (fd_ >= 0) ::close(fd_);
    if (!done_) ::unlink(tmp_.c_str());
  }
  Status write(const void* data, size_t n) override {
    if (fd_ < 0) return Status::error("blob writer is closed");
    hash_.update(data, n);
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return Status::error("write " + tmp_ + ": " + std::strerror(errno));
      p += w;
      n -= static_cast<size_t>(w);
    }
    return {};
  }
  Status commit() override {
    if (fd_ < 0) return Status::error("blob writer is closed");
    std::string got = "sha256:" + hash_.hex();
    bool synced = ::fsync(fd_) == 0;
    ::close(fd_);
    fd_ = -1;
    if (got != digest_) {
      return Status::error("digest mismatch, expected \"" + digest_ + "\", got \"" + got + "\"");
    }
    if (!synced || ::rename(tmp_.c_str(), final_.c_str()) != 0) {
      return Status::error("store blob " + final_ + ": " + std::strerror(errno));
    }
    done_ = true;
    return {};
  }

 private:
  std::string digest_, final_, tmp_;
  int fd_;
  bool done_ = false;
  detail::Sha256 hash_;
};

}  // namespace

Result<std::unique_ptr<ModelStore::BlobWriter>> ModelStore::begin_blob(std::string_view digest) {
  if (!valid_digest(digest)) return Status::error("invalid digest format");
  std::string final_path = blob_path(digest);
  OSPREY_TRY(detail::make_dirs(root_ + "/blobs"));
  std::string tmp = detail::temp_path_for(final_path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Status::error("create " + tmp + ": " + std::strerror(errno));
  return std::unique_ptr<BlobWriter>(new FileBlobWriter(std::string(digest), final_path, tmp, fd));
}

Status ModelStore::put_blob(std::string_view digest, std::string_view bytes) {
  auto w = begin_blob(digest);
  if (!w.ok()) return w.status();
  OSPREY_TRY((*w)->write(bytes.data(), bytes.size()));
  return (*w)->commit();
}

Status ModelStore::put_blob_file(std::string_view digest, const std::string& path) {
  auto w = begin_blob(digest);
  if (!w.ok()) return w.status();
  OSPREY_TRY(detail::for_each_chunk(path, [&](const char* p, size_t n) { return (*w)->write(p, n); }));
  return (*w)->commit();
}

Result<std::string> ModelStore::import_file(const std::string& path) {
  // One pass: copy into a temp file while hashing, then rename to the digest's name.
  OSPREY_TRY(detail::make_dirs(root_ + "/blobs"));
  int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Status::error("open " + path + ": " + std::strerror(errno));
  std::string tmp = detail::temp_path_for(root_ + "/blobs/import");
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    int e = errno;
    ::close(in);
    return Status::error("create " + tmp + ": " + std::strerror(e));
  }
  auto fail = [&](const std::string& what) {
    int e = errno;
    ::close(in);
    ::close(out);
    ::unlink(tmp.c_str());
    return Status::error(what + ": " + std::strerror(e));
  };
  detail::Sha256 hash;
  std::vector<char> buf(1 << 20);
  while (true) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("read " + path);
    if (n == 0) break;
    hash.update(buf.data(), static_cast<size_t>(n));
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(out, buf.data() + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return fail("write " + tmp);
      off += w;
    }
  }
  if (::fsync(out) != 0) return fail("sync " + tmp);
  ::close(in);
  ::close(out);
  std::string digest = "sha256:" + hash.hex();
  if (has_blob(digest)) {
    ::unlink(tmp.c_str());
  } else if (::rename(tmp.c_str(), blob_path(digest).c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return Status::error("store blob " + digest + ": " + std::strerror(e));
  }
  return digest;
}

}  // namespace osprey::store
