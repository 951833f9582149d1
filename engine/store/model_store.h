// The local model store: Ollama's on-disk layout (manifests/<host>/<ns>/<model>/<tag> JSON
// manifests + content-addressed blobs/sha256-<hex>), so an existing Ollama store can be used
// as is and models created here are readable by Ollama.
//
// Crash safety: every file is written to a temp file in its final directory and renamed; a
// model's manifest is written last, so an interrupted create/pull/copy leaves at most orphan
// blobs, never a manifest naming missing data. Names and digests are validated before they
// become paths, so no request can read or write outside the store root.
//
// Thread safety: a ModelStore may be shared by server threads. Reads (list/resolve/has_blob)
// need no lock; mutations serialise on manifests, and blobs being written by an unfinished
// create/pull are pinned so a concurrent remove() never garbage-collects them.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/base/status.h"

namespace osprey::store {

inline constexpr const char* kDefaultHost = "registry.ollama.ai";
inline constexpr const char* kDefaultNamespace = "library";
inline constexpr const char* kDefaultTag = "latest";

// Layer media types (research §10).
inline constexpr const char* kMediaManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* kMediaConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr const char* kMediaModel = "application/vnd.ollama.image.model";
inline constexpr const char* kMediaProjector = "application/vnd.ollama.image.projector";
inline constexpr const char* kMediaAdapter = "application/vnd.ollama.image.adapter";
inline constexpr const char* kMediaTemplate = "application/vnd.ollama.image.template";
inline constexpr const char* kMediaPrompt = "application/vnd.ollama.image.prompt";  // legacy template
inline constexpr const char* kMediaSystem = "application/vnd.ollama.image.system";
inline constexpr const char* kMediaParams = "application/vnd.ollama.image.params";
inline constexpr const char* kMediaMessages = "application/vnd.ollama.image.messages";
inline constexpr const char* kMediaLicense = "application/vnd.ollama.image.license";

// `[host/][namespace/]model[:tag]` (research §2). Parts keep the spelling they were given;
// comparisons between names are case-insensitive.
struct ModelName {
  std::string host = kDefaultHost;
  std::string ns = kDefaultNamespace;
  std::string model;
  std::string tag = kDefaultTag;

  // Fills defaults for missing parts. Error "invalid model name" for empty input, empty
  // parts ("foo:", "/foo"), bad characters, over-long parts, "." or ".." parts, or more
  // than three '/'-separated parts.
  static Result<ModelName> parse(std::string_view s);
  // Shortest form: drops the default host (and the namespace when it is the default
  // "library" under the default host) but keeps the tag: "smollm2:latest", "myns/foo:q4",
  // "example.com:5000/ns/m:tag".
  std::string display() const;
  // "registry.ollama.ai/library/smollm2:latest".
  std::string full() const;
  bool same_as(const ModelName& o) const;  // case-insensitive on every part
};

// True iff `d` is "sha256:" followed by 64 lowercase hex digits — the only form this API
// accepts for digests, because it is the form that becomes a file name.
bool valid_digest(std::string_view d);
// Accepts what /api/blobs/:digest accepts (`sha256[:-]` + 64 hex, any case) and returns the
// canonical "sha256:<lowercase hex>"; error "invalid digest format" otherwise.
Result<std::string> normalize_digest(std::string_view d);

// One installed model, as the server needs it for /api/tags, /api/show and loading.
struct ModelInfo {
  ModelName name;
  std::string manifest_digest;   // 64 hex, SHA-256 of the manifest file bytes (no prefix)
  int64_t size = 0;              // config blob + all layers, bytes
  std::string modified_at;       // manifest mtime, RFC3339 with nanoseconds and local offset
  int64_t modified_unix_ns = 0;  // same, for sorting
  std::string model_path;        // absolute path of the GGUF weights blob ("" if none)
  std::vector<std::string> projector_paths;  // vision projector blobs
  std::vector<std::string> adapter_paths;    // LoRA adapters (unsupported by the engine)
  std::string template_text;     // Go template layer, "" if none
  std::string system;            // system layer, "" if none
  nlohmann::json params = nlohmann::json::object();    // params layer, typed ({"stop":[..]})
  nlohmann::json messages = nlohmann::json::array();   // messages layer
  std::vector<std::string> licenses;                   // license layers, in order
  // {"parent_model","format","family","families","parameter_size","quantization_level"}
  // with the six keys always present (families may be null), as /api/tags wants.
  nlohmann::json details = nlohmann::json::object();
  nlohmann::json manifest;       // the parsed manifest, for anything not surfaced above
};

// Input for create(): what /api/create's JSON and a parsed Modelfile both reduce to.
struct CreateRequest {
  // An installed model to derive from ("" if none). Ignored when from_file or files is set:
  // those give the weights and nothing is inherited.
  std::string from;
  std::string from_file;  // a local GGUF path (CLI / Modelfile FROM ./x.gguf). Servers must
                          // not fill this from remote input: it reads any readable file.
  // Uploaded blobs, {filename, "sha256:<hex>"}: GGUFs whose general.architecture is "clip"
  // become projector layers, the first other one the model layer.
  std::vector<std::pair<std::string, std::string>> files;
  std::vector<std::pair<std::string, std::string>> adapters;  // rejected: unsupported
  std::optional<std::string> template_text;  // replaces the inherited template when set
  std::optional<std::string> system;         // replaces the inherited system prompt when set
  nlohmann::json parameters = nlohmann::json::object();  // merged over inherited params
  std::optional<nlohmann::json> messages;    // replaces inherited messages when set (array)
  std::optional<std::vector<std::string>> license;  // replaces inherited licenses when set
  // A quantization mix ("Q4_K_M"): the model layer is re-encoded by `quantizer`, which writes
  // the quantized form of GGUF `in` to `out`. The store has no quantizer of its own (it sits
  // below the kernels); callers pass osprey::quantize::quantize_model. Error if unset.
  std::string quantize;
  std::function<Status(const std::string& in, const std::string& out, const std::string& type)> quantizer;
};

// Progress objects in Ollama's shape: {"status":"..."} or
// {"status":"pulling 0123456789ab","digest":"sha256:..","total":N,"completed":M}.
using Progress = std::function<void(const nlohmann::json& status)>;

struct PullOptions {
  // Registry base URL, e.g. "http://127.0.0.1:5000" for tests. Empty: "https://<host>"
  // from the model name.
  std::string base_url;
  bool insecure = false;  // allow an http:// registry (implied when base_url is given)
  int max_retries = 3;    // per blob, resuming from the partial file each time
};

class ModelStore {
 public:
  // `root` is the store directory (created on first write). default_root() gives
  // $OSPREY_MODELS, else ~/.osprey/models.
  explicit ModelStore(std::string root);
  static std::string default_root();
  const std::string& root() const { return root_; }

  // All installed models, newest first. Manifests that cannot be read or name missing blobs
  // are skipped (a store shared with other tools may hold odd entries), never fatal.
  Result<std::vector<ModelInfo>> list() const;
  // Error "invalid model name" for a bad name, "model 'x' not found" (x as given) on a miss.
  Result<ModelInfo> resolve(std::string_view name) const;

  // Overwrites `dst`. Errors: "model 'src' not found", "source \"x\" is invalid",
  // "destination \"x\" is invalid".
  Status copy(std::string_view src, std::string_view dst);
  // Removes the manifest, then each of its blobs that no other manifest references; prunes
  // empty directories. Error "model 'x' not found" on a miss.
  Status remove(std::string_view name);

  // Blobs by canonical digest ("sha256:<hex>", see valid_digest).
  bool has_blob(std::string_view digest) const;
  std::string blob_path(std::string_view digest) const;  // "" for an invalid digest
  // Streamed upload: write() chunks, then commit() checks the SHA-256 and renames into
  // place. Destroying an uncommitted writer deletes its temp file.
  class BlobWriter {
   public:
    virtual ~BlobWriter() = default;
    virtual Status write(const void* data, size_t n) = 0;
    // Error `digest mismatch, expected "sha256:..", got "sha256:.."` and nothing stored.
    virtual Status commit() = 0;
  };
  Result<std::unique_ptr<BlobWriter>> begin_blob(std::string_view digest);
  Status put_blob(std::string_view digest, std::string_view bytes);
  Status put_blob_file(std::string_view digest, const std::string& path);
  // Copies a local file into the store (one pass, hashing as it copies); returns its
  // "sha256:<hex>". Used for Modelfile FROM paths.
  Result<std::string> import_file(const std::string& path);

  // Builds (or overwrites) model `name`. Progress follows /api/create's status lines.
  Result<ModelInfo> create(std::string_view name, const CreateRequest& req, const Progress& p = {});
  // Downloads from an OCI-style registry (GET /v2/<ns>/<model>/manifests/<tag> and
  // /blobs/<digest>), resuming partial blobs (blobs/sha256-<hex>-partial, kept across
  // failures) and verifying every digest before the manifest is written. Concurrent pulls
  // of one blob (threads or processes) serialise on a lock file; the second finds it done.
  // Manifest errors are prefixed "pull model manifest: " ("... file does not exist" for an
  // unknown model); a corrupt blob gives "digest mismatch, ..." and its partial is deleted.
  Status pull(std::string_view name, const PullOptions& o = {}, const Progress& p = {});

  // Deletes every blob no manifest references and all temp files (not partial downloads,
  // which later pulls resume): for server start-up only, as it would also delete blobs
  // uploaded for a create not yet made and temp files of another process mid-write.
  Status prune();

  // Test hook: called just before a manifest is renamed into place; a non-ok status aborts
  // the write (simulates a crash between blobs and manifest).
  std::function<Status()> before_manifest_commit;

 private:
  std::string manifest_path(const ModelName& n) const;
  std::optional<ModelName> find_manifest(const ModelName& n) const;  // stored spelling
  Result<ModelInfo> load(const ModelName& n) const;
  // Caller holds mu_. Checks every blob exists, writes atomically, collects the layers only
  // a replaced manifest used.
  Status write_manifest(const ModelName& n, const std::string& bytes);
  // Caller holds mu_. Deletes unreferenced blobs — only those in `only` when given (so a
  // remove never touches blobs uploaded for a create still to come) — and, with `temps`,
  // leftover temp files.
  Status collect_garbage(bool temps, const std::set<std::string>* only);
  void pin(const std::string& digest);
  void unpin(const std::string& digest);

  std::string root_;
  mutable std::mutex mu_;           // manifests + garbage collection
  std::multiset<std::string> pinned_;  // digests of blobs still being assembled
};

}  // namespace osprey::store
