// ModelStore::create: builds a manifest from a GGUF (local file or uploaded blobs) or an
// installed model, plus template/system/params/messages/license layers.
#include <filesystem>

#include "engine/store/internal.h"
#include "engine/convert/convert.h"
#include "engine/store/model_store.h"
#include "engine/store/modelfile.h"

namespace osprey::store {
using nlohmann::json;

namespace {

// Keeps blobs alive against a concurrent remove() until the manifest naming them exists.
class Pins {
 public:
  Pins(std::function<void(const std::string&)> pin, std::function<void(const std::string&)> unpin)
      : pin_(std::move(pin)), unpin_(std::move(unpin)) {}
  ~Pins() {
    for (const auto& d : held_) unpin_(d);
  }
  void add(const std::string& d) {
    pin_(d);
    held_.push_back(d);
  }

 private:
  std::function<void(const std::string&)> pin_, unpin_;
  std::vector<std::string> held_;
};

json layer(const char* media, const std::string& digest, int64_t size) {
  return {{"mediaType", media}, {"digest", digest}, {"size", size}};
}

bool clean_relative(const std::string& f) {
  if (f.empty() || f[0] == '/') return false;
  for (const auto& part : std::filesystem::path(f))
    if (part == ".." || part == ".") return false;
  return std::filesystem::path(f).lexically_normal().string() == f;
}

// create --quantize: each model layer's GGUF is quantized into a temporary file beside its
// blob (a '.' name garbage collection skips), imported as a new blob that replaces the layer,
// and the config is re-read from the new file so file_type names the mix.
Status quantize_model_layers(ModelStore& store, const CreateRequest& req, std::vector<json>* weights, json* config,
                             const std::function<void(json)>& say, const std::function<void(const std::string&)>& pin) {
  for (json& l : *weights) {
    if (detail::str_field(l, "mediaType") != kMediaModel) continue;
    const std::string src = store.blob_path(detail::str_field(l, "digest"));
    say({{"status", "quantizing model to " + req.quantize}});
    const std::string tmp = detail::temp_path_for(src);
    Status st = req.quantizer(src, tmp, req.quantize);
    auto digest = st.ok() ? store.import_file(tmp) : Result<std::string>(st);
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    if (!digest.ok()) return digest.status();
    pin(*digest);
    std::string arch;
    auto cfg = detail::gguf_config(store.blob_path(*digest), &arch);
    if (!cfg.ok()) return cfg.status();
    *config = *cfg;
    const auto size = static_cast<int64_t>(std::filesystem::file_size(store.blob_path(*digest), ec));
    if (ec) return Status::error("blob " + *digest + ": " + ec.message());
    l = layer(kMediaModel, *digest, size);
    say({{"status", "creating new layer " + *digest}});
  }
  return Status();
}

}  // namespace

Result<ModelInfo> ModelStore::create(std::string_view name, const CreateRequest& req,
                                     const Progress& progress) {
  auto say = [&](json j) {
    if (progress) progress(j);
  };
  auto n = ModelName::parse(name);
  if (!n.ok()) return n.status();
  if (!req.quantize.empty() && !req.quantizer) return Status::error("quantization is not supported here");
  if (!req.adapters.empty()) return Status::error("adapters are not supported");
  if (req.from.empty() && req.from_file.empty() && req.files.empty()) {
    return Status::error("neither 'from' or 'files' was specified");
  }
  Pins pins([this](const std::string& d) { pin(d); }, [this](const std::string& d) { unpin(d); });

  // Stores a text layer's bytes, reporting like Ollama does.
  auto text_layer = [&](const char* media, const std::string& text) -> Result<json> {
    std::string digest = "sha256:" + detail::sha256_hex(text);
    pins.add(digest);
    if (has_blob(digest)) {
      say({{"status", "using existing layer " + digest}});
    } else {
      say({{"status", "creating new layer " + digest}});
      OSPREY_TRY(put_blob(digest, text));
    }
    return layer(media, digest, static_cast<int64_t>(text.size()));
  };

  std::vector<json> weights;  // model / projector / adapter layers
  json config;
  std::string tmpl, system;
  json params = json::object(), messages = json::array();
  std::vector<std::string> licenses;

  if (!req.from.empty() && req.from_file.empty() && req.files.empty()) {
    say({{"status", "reading model metadata"}});
    auto base = resolve(req.from);
    if (!base.ok()) return base.status();
    for (const auto& l : base->manifest["layers"]) {
      std::string media = detail::str_field(l, "mediaType");
      if (media == kMediaModel || media == kMediaProjector || media == kMediaAdapter) {
        pins.add(detail::str_field(l, "digest"));
        weights.push_back(l);
        say({{"status", "using existing layer " + detail::str_field(l, "digest")}});
      }
    }
    tmpl = base->template_text;
    system = base->system;
    params = base->params;
    messages = base->messages;
    licenses = base->licenses;
    config = {{"model_format", base->details["format"]},
              {"model_family", base->details["family"]},
              {"model_families", base->details["families"]},
              {"model_type", base->details["parameter_size"]},
              {"file_type", base->details["quantization_level"]},
              {"architecture", "amd64"},
              {"os", "linux"}};
  } else {
    // GGUF sources: a local file is hashed into the store first, uploaded blobs are used as is.
    std::vector<std::string> digests;
    if (!req.from_file.empty()) {
      std::string gguf_file = req.from_file;
      if (std::filesystem::is_directory(req.from_file)) {
        // A safetensors checkpoint folder: converted (into the conversion cache) first. A
        // --quantize request applies to the converted file like to any other GGUF.
        say({{"status", "converting model"}});
        auto converted = convert::cached_conversion(req.from_file);
        if (!converted.ok()) return converted.status();
        gguf_file = converted.value();
      }
      say({{"status", "copying file"}});
      auto d = import_file(gguf_file);
      if (!d.ok()) return d.status();
      digests.push_back(*d);
    }
    for (const auto& [file, digest] : req.files) {
      if (!clean_relative(file)) return Status::error("file path must be relative");
      if (!valid_digest(digest)) return Status::error("invalid digest format");
      if (!has_blob(digest)) return Status::error("blob " + digest + " not found");
      digests.push_back(digest);
    }
    say({{"status", "parsing GGUF"}});
    for (const auto& digest : digests) {
      pins.add(digest);
      std::string arch;
      auto cfg = detail::gguf_config(blob_path(digest), &arch);
      if (!cfg.ok()) return cfg.status();
      std::error_code ec;
      int64_t size = static_cast<int64_t>(std::filesystem::file_size(blob_path(digest), ec));
      if (ec) return Status::error("blob " + digest + ": " + ec.message());
      bool projector = arch == "clip";
      if (!projector && config.is_null()) config = *cfg;
      weights.push_back(layer(projector ? kMediaProjector : kMediaModel, digest, size));
      say({{"status", "using existing layer " + digest}});
    }
    if (config.is_null()) return Status::error("no model weights among the files (only projectors)");
    // Vision models advertise the projector as a second family, as Ollama does.
    for (const auto& w : weights)
      if (w["mediaType"] == kMediaProjector && config["model_families"].is_array())
        config["model_families"].push_back("clip");
  }

  if (!req.quantize.empty()) {
    OSPREY_TRY(quantize_model_layers(*this, req, &weights, &config, say, [&](const std::string& d) { pins.add(d); }));
  }

  if (req.template_text) tmpl = *req.template_text;
  if (req.system) system = *req.system;
  if (req.messages) {
    if (!req.messages->is_array()) return Status::error("messages must be an array");
    messages = *req.messages;
  }
  if (req.license) licenses = *req.license;
  if (!req.parameters.is_null() && !req.parameters.empty()) {
    auto p = check_parameters(req.parameters);
    if (!p.ok()) return p.status();
    for (auto it = p->begin(); it != p->end(); ++it) params[it.key()] = it.value();
  }

  std::vector<json> layers = weights;
  auto add_text = [&](const char* media, const std::string& text) -> Status {
    auto l = text_layer(media, text);
    if (!l.ok()) return l.status();
    layers.push_back(*l);
    return {};
  };
  if (!tmpl.empty()) OSPREY_TRY(add_text(kMediaTemplate, tmpl));
  if (!system.empty()) OSPREY_TRY(add_text(kMediaSystem, system));
  if (!params.empty()) OSPREY_TRY(add_text(kMediaParams, detail::dump(params)));
  if (!messages.empty()) OSPREY_TRY(add_text(kMediaMessages, detail::dump(messages)));
  for (const auto& lic : licenses) OSPREY_TRY(add_text(kMediaLicense, lic));

  std::string cfg_text = detail::dump(config);
  std::string cfg_digest = "sha256:" + detail::sha256_hex(cfg_text);
  pins.add(cfg_digest);
  if (!has_blob(cfg_digest)) OSPREY_TRY(put_blob(cfg_digest, cfg_text));
  json manifest = {{"schemaVersion", 2},
                   {"mediaType", kMediaManifest},
                   {"config", layer(kMediaConfig, cfg_digest, static_cast<int64_t>(cfg_text.size()))},
                   {"layers", layers}};
  say({{"status", "writing manifest"}});
  {
    std::lock_guard<std::mutex> lock(mu_);
    OSPREY_TRY(write_manifest(*n, detail::dump(manifest)));
  }
  say({{"status", "success"}});
  auto found = find_manifest(*n);
  if (!found) return Status::error("model '" + std::string(name) + "' vanished after create");
  return load(*found);
}

}  // namespace osprey::store
