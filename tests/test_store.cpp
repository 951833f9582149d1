// The model store: names, Modelfiles, create/list/resolve/copy/remove, blobs, path-safety,
// registry pulls against an in-test registry, and crash consistency.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "engine/store/model_store.h"
#include "engine/store/modelfile.h"
#include "formats/gguf.h"
#include "test_models.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace osprey;
using namespace osprey::store;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "osprey_store_XXXXXX").string();
    path = ::mkdtemp(tmpl.data()) ? fs::path(tmpl) : fs::path();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str(const std::string& sub = "") const { return sub.empty() ? path.string() : (path / sub).string(); }
};

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void spit(const std::string& p, const std::string& bytes) {
  fs::create_directories(fs::path(p).parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

// A small valid GGUF: 64x4 f32 embedding (256 parameters) and a chosen architecture.
std::string tiny_gguf(const std::string& path, const std::string& arch, int file_type = 0, float fill = 0.5f) {
  gguf::Writer w;
  w.add("general.architecture", gguf::Writer::str(arch));
  if (file_type >= 0) w.add("general.file_type", gguf::Writer::u32(static_cast<uint32_t>(file_type)));
  std::vector<float> data(64 * 4, fill);
  EXPECT_TRUE(w.add_tensor("token_embd.weight", DType::F32, {64, 4}, data.data(), data.size() * 4).ok());
  EXPECT_TRUE(w.write(path).ok());
  return path;
}

// Every manifest file in the store (temp files included), relative to manifests/.
std::vector<std::string> manifest_files(const std::string& root) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(root + "/manifests")) return out;
  for (auto& e : fs::recursive_directory_iterator(root + "/manifests", ec))
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), root + "/manifests").string());
  return out;
}

}  // namespace

// ---- names ---------------------------------------------------------------------------------

TEST(StoreName, ParseAndDisplay) {
  struct Case { const char* in; const char* full; const char* display; };
  const Case cases[] = {
      {"smollm2", "registry.ollama.ai/library/smollm2:latest", "smollm2:latest"},
      {"llama3.2:1b", "registry.ollama.ai/library/llama3.2:1b", "llama3.2:1b"},
      {"myns/foo:q4", "registry.ollama.ai/myns/foo:q4", "myns/foo:q4"},
      {"library/foo", "registry.ollama.ai/library/foo:latest", "foo:latest"},
      {"registry.ollama.ai/library/foo:latest", "registry.ollama.ai/library/foo:latest", "foo:latest"},
      {"example.com/ns/m:tag", "example.com/ns/m:tag", "example.com/ns/m:tag"},
      {"localhost:5000/ns/m", "localhost:5000/ns/m:latest", "localhost:5000/ns/m:latest"},
      {"  Foo_bar-1.2:Q4_K_M  ", "registry.ollama.ai/library/Foo_bar-1.2:Q4_K_M", "Foo_bar-1.2:Q4_K_M"},
      {"_x/_y:_z", "registry.ollama.ai/_x/_y:_z", "_x/_y:_z"},
  };
  for (const auto& c : cases) {
    auto n = ModelName::parse(c.in);
    ASSERT_TRUE(n.ok()) << c.in << ": " << n.error();
    EXPECT_EQ(n->full(), c.full) << c.in;
    EXPECT_EQ(n->display(), c.display) << c.in;
  }
  EXPECT_TRUE(ModelName::parse("Foo:Latest")->same_as(*ModelName::parse("foo")));
}

TEST(StoreName, RejectsInvalid) {
  const std::string long_part(81, 'a');
  const std::string invalid[] = {
      "", "   ", "foo:", ":tag", "/foo", "foo/", "a//b", "a/b/c/d", "foo bar", "foo!", "..", ".",
      "../x", "ns/..", "a/../b", "../../etc/passwd", "ns.x/model", "-foo", "foo:-x", "foo:.x",
      "foo:ba/r", "a..b/ns/m", "x/y:z:w", long_part, "ns/" + long_part, "m:" + long_part,
      std::string("nul\0x", 5), "tab\tx", "ünïcode"};
  for (const auto& s : invalid) {
    auto n = ModelName::parse(s);
    EXPECT_FALSE(n.ok()) << "'" << s << "' parsed as " << (n.ok() ? n->full() : "");
    if (!n.ok()) {
      EXPECT_EQ(n.error(), "invalid model name");
    }
  }
  EXPECT_TRUE(ModelName::parse(std::string(80, 'a')).ok());
}

TEST(StoreName, Digests) {
  const std::string hex(64, 'a');
  EXPECT_TRUE(valid_digest("sha256:" + hex));
  EXPECT_FALSE(valid_digest("sha256-" + hex));
  EXPECT_FALSE(valid_digest("sha256:" + std::string(64, 'A')));
  EXPECT_FALSE(valid_digest("sha256:" + hex.substr(1)));
  EXPECT_FALSE(valid_digest("sha256:../../" + hex.substr(6)));
  EXPECT_EQ(*normalize_digest("sha256-" + std::string(64, 'A')), "sha256:" + hex);
  EXPECT_EQ(normalize_digest("sha512:" + hex).error(), "invalid digest format");
  EXPECT_FALSE(normalize_digest("sha256:" + hex + "0").ok());
  EXPECT_FALSE(normalize_digest("sha256:" + std::string(63, 'a') + "/").ok());
}

// ---- Modelfile -----------------------------------------------------------------------------

TEST(Modelfile, ParsesAllCommands) {
  const char* text =
      "# a comment\n"
      "from ./model.gguf\n"
      "\n"
      "PARAMETER temperature 0.7\n"
      "Parameter stop <|im_end|>\n"
      "PARAMETER stop \"user:\"\n"
      "PARAMETER num_ctx 4096\n"
      "PARAMETER use_mmap false\n"
      "TEMPLATE \"\"\"{{ if .System }}<|system|>{{ .System }}\n"
      "{{ end }}{{ .Prompt }}\"\"\"\n"
      "SYSTEM \"You are \\\"helpful\\\".\"\n"
      "MESSAGE user Hi there\n"
      "MESSAGE assistant \"\"\"Hello!\n"
      "How can I help?\"\"\"\n"
      "LICENSE MIT\n"
      "license \"\"\"Apache\n2.0\"\"\"\n";
  auto r = parse_modelfile(text);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->from, "./model.gguf");
  EXPECT_EQ(r->parameters["temperature"], 0.7);
  EXPECT_EQ(r->parameters["stop"], json::array({"<|im_end|>", "user:"}));
  EXPECT_TRUE(r->parameters["num_ctx"].is_number_integer());
  EXPECT_EQ(r->parameters["num_ctx"], 4096);
  EXPECT_EQ(r->parameters["use_mmap"], false);
  EXPECT_EQ(*r->template_text, "{{ if .System }}<|system|>{{ .System }}\n{{ end }}{{ .Prompt }}");
  EXPECT_EQ(*r->system, "You are \"helpful\".");
  ASSERT_EQ(r->messages->size(), 2u);
  EXPECT_EQ((*r->messages)[0], (json{{"role", "user"}, {"content", "Hi there"}}));
  EXPECT_EQ((*r->messages)[1]["content"], "Hello!\nHow can I help?");
  EXPECT_EQ(*r->license, (std::vector<std::string>{"MIT", "Apache\n2.0"}));
}

TEST(Modelfile, ErrorsNameTheLine) {
  struct Case { const char* text; const char* want; };
  const Case cases[] = {
      {"FROM x\nFORM y\n", "line 2: unknown command 'FORM'"},
      {"FROM x\nADAPTER ./lora.gguf\n", "line 2: ADAPTER is not supported"},
      {"FROM x\n\nPARAMETER temperature hot\n", "line 3: invalid value for parameter 'temperature': 'hot'"},
      {"FROM x\nPARAMETER num_ctx 4k\n", "line 2: invalid value for parameter 'num_ctx'"},
      {"FROM x\nPARAMETER bogus 1\n", "line 2: unknown parameter 'bogus'"},
      {"FROM x\nPARAMETER\n", "line 2: missing parameter name"},
      {"FROM x\nTEMPLATE \"\"\"abc\nno end\n", "line 2: unterminated \"\"\" string"},
      {"FROM x\nSYSTEM \"abc\n", "line 2: unterminated quoted string"},
      {"FROM x\nSYSTEM \"\"\"a\n\"\"\" junk\n", "line 3: text after closing \"\"\""},
      {"FROM x\nMESSAGE wizard hi\n", "line 2: invalid message role 'wizard'"},
      {"FROM x\nFROM y\n", "line 2: more than one FROM"},
      {"SYSTEM hi\n", "no FROM line"},
  };
  for (const auto& c : cases) {
    auto r = parse_modelfile(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.error().find(c.want), std::string::npos) << "got: " << r.error();
  }
}

TEST(Modelfile, ParameterTyping) {
  EXPECT_EQ(*parse_parameter("top_k", "40"), 40);
  EXPECT_EQ(*parse_parameter("num_predict", "-1"), -1);
  EXPECT_EQ(*parse_parameter("seed", "42.0"), 42);
  EXPECT_EQ(*parse_parameter("top_p", "1"), 1.0);
  EXPECT_TRUE(parse_parameter("top_p", "1")->is_number_float());
  EXPECT_EQ(*parse_parameter("use_mlock", "TRUE"), true);
  EXPECT_FALSE(parse_parameter("use_mlock", "yes").ok());
  EXPECT_FALSE(parse_parameter("temperature", "nan").ok());
  auto p = check_parameters({{"num_ctx", 2048.7}, {"temperature", 1}, {"stop", {"a"}}, {"unknown", 1}});
  ASSERT_TRUE(p.ok()) << p.error();
  EXPECT_EQ(*p, (json{{"num_ctx", 2048}, {"temperature", 1.0}, {"stop", {"a"}}}));
  EXPECT_EQ(check_parameters({{"stop", "x"}}).error(), "option \"stop\" must be of type array");
  EXPECT_EQ(check_parameters({{"temperature", "hot"}}).error(), "option \"temperature\" must be of type float32");
  EXPECT_EQ(check_parameters({{"num_ctx", true}}).error(), "option \"num_ctx\" must be of type integer");
}

TEST(Modelfile, RenderRoundTrips) {
  ModelInfo m;
  m.name = *ModelName::parse("foo:bar");
  m.model_path = "/store/blobs/sha256-abc";
  m.template_text = "{{ .Prompt }}\n";
  m.system = "Be \"brief\".";
  m.params = {{"stop", {"<|im_end|>", "two words"}}, {"temperature", 0.7}, {"num_ctx", 4096}};
  m.messages = json::array({{{"role", "user"}, {"content", "hi\nthere"}}});
  m.licenses = {"MIT"};
  std::string text = render_modelfile(m);
  EXPECT_EQ(text.rfind("# Modelfile generated by \"ollama show\"\n", 0), 0u) << text;
  EXPECT_NE(text.find("# FROM foo:bar\n"), std::string::npos);
  EXPECT_NE(text.find("PARAMETER stop <|im_end|>\n"), std::string::npos) << text;
  auto r = parse_modelfile(text);
  ASSERT_TRUE(r.ok()) << r.error() << "\n" << text;
  EXPECT_EQ(r->from, m.model_path);
  EXPECT_EQ(*r->template_text, m.template_text);
  EXPECT_EQ(*r->system, m.system);
  EXPECT_EQ(r->parameters, m.params);
  EXPECT_EQ(*r->messages, m.messages);
  EXPECT_EQ(*r->license, m.licenses);

  std::string block = format_parameters(m.params);
  EXPECT_NE(block.find("num_ctx                        4096"), std::string::npos) << block;
  EXPECT_NE(block.find("stop                           \"<|im_end|>\"\nstop                           \"two words\""),
            std::string::npos) << block;
  EXPECT_NE(block.find("temperature                    0.7"), std::string::npos) << block;
}

TEST(Modelfile, ResolveFrom) {
  TempDir t;
  spit(t.str("m.gguf"), "x");
  CreateRequest a;
  a.from = "m.gguf";
  resolve_modelfile_from(a, t.str());
  EXPECT_EQ(a.from_file, t.str("m.gguf"));
  EXPECT_TRUE(a.from.empty());
  CreateRequest b;
  b.from = "llama3.2";
  resolve_modelfile_from(b, t.str());
  EXPECT_EQ(b.from, "llama3.2");
  CreateRequest c;
  c.from = "sha256:" + std::string(64, '0');
  resolve_modelfile_from(c, t.str());
  ASSERT_EQ(c.files.size(), 1u);
  EXPECT_EQ(c.files[0].second, "sha256:" + std::string(64, '0'));
}

// ---- create / list / resolve / copy / remove --------------------------------------------

TEST(Store, CreateListResolveCopyRemove) {
  TempDir t;
  ModelStore s(t.str("models"));
  ASSERT_TRUE(s.list().ok());
  EXPECT_TRUE(s.list()->empty());

  CreateRequest req;
  req.from_file = tiny_gguf(t.str("tiny.gguf"), "llama", 2);
  req.system = "You are tiny.";
  req.parameters = {{"stop", {"<|im_end|>"}}, {"temperature", 0.7}};
  std::vector<std::string> statuses;
  auto m = s.create("Tiny", req, [&](const json& j) { statuses.push_back(j["status"]); });
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(statuses.front(), "copying file");
  EXPECT_EQ(statuses.back(), "success");
  EXPECT_EQ(m->name.display(), "Tiny:latest");
  EXPECT_EQ(m->details, (json{{"parent_model", ""}, {"format", "gguf"}, {"family", "llama"},
                              {"families", {"llama"}}, {"parameter_size", "256"},
                              {"quantization_level", "Q4_0"}}));
  EXPECT_EQ(slurp(m->model_path), slurp(t.str("tiny.gguf")));
  EXPECT_EQ(m->system, "You are tiny.");
  EXPECT_EQ(m->params, req.parameters);
  EXPECT_EQ(m->manifest_digest.size(), 64u);
  EXPECT_EQ(m->manifest_digest.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_GT(m->size, static_cast<int64_t>(fs::file_size(t.str("tiny.gguf"))));
  EXPECT_TRUE(std::regex_match(m->modified_at,
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?(Z|[+-]\d\d:\d\d))")))
      << m->modified_at;
  // The manifest on disk is Ollama's layout.
  json manifest = json::parse(slurp(t.str("models/manifests/registry.ollama.ai/library/Tiny/latest")));
  EXPECT_EQ(manifest["schemaVersion"], 2);
  EXPECT_EQ(manifest["mediaType"], kMediaManifest);
  EXPECT_EQ(manifest["config"]["mediaType"], kMediaConfig);
  EXPECT_EQ(manifest["layers"][0]["mediaType"], kMediaModel);
  json config = json::parse(slurp(s.blob_path(manifest["config"]["digest"].get<std::string>())));
  EXPECT_EQ(config["model_family"], "llama");
  EXPECT_EQ(config["file_type"], "Q4_0");

  // Case-insensitive lookup; the stored spelling wins.
  auto r = s.resolve("tiny:LATEST");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->name.model, "Tiny");
  EXPECT_EQ(s.resolve("nope").error(), "model 'nope' not found");
  EXPECT_EQ(s.resolve("bad name!").error(), "invalid model name");

  // Derived model: shares the weights blob, overrides the system prompt, merges params.
  CreateRequest d;
  d.from = "tiny";
  d.system = "Derived.";
  d.parameters = {{"temperature", 0.1}};
  auto dm = s.create("myns/derived:v1", d);
  ASSERT_TRUE(dm.ok()) << dm.error();
  EXPECT_EQ(dm->model_path, m->model_path);
  EXPECT_EQ(dm->system, "Derived.");
  EXPECT_EQ(dm->params, (json{{"stop", {"<|im_end|>"}}, {"temperature", 0.1}}));
  EXPECT_EQ(dm->details["family"], "llama");

  ASSERT_TRUE(s.copy("tiny", "backup").ok());
  EXPECT_EQ(s.copy("missing", "x").message(), "model 'missing' not found");
  EXPECT_EQ(s.copy("tiny", "bad name").message(), "destination \"bad name\" is invalid");
  EXPECT_EQ(s.copy("bad name", "x").message(), "source \"bad name\" is invalid");
  auto all = s.list();
  ASSERT_TRUE(all.ok());
  std::set<std::string> names;
  for (const auto& x : *all) names.insert(x.name.display());
  EXPECT_EQ(names, (std::set<std::string>{"Tiny:latest", "myns/derived:v1", "backup:latest"}));
  EXPECT_EQ(s.resolve("backup")->manifest_digest, m->manifest_digest);
  for (size_t i = 1; i < all->size(); ++i) EXPECT_GE((*all)[i - 1].modified_unix_ns, (*all)[i].modified_unix_ns);

  // Removing keeps blobs other models still use; the last user takes them with it.
  const std::string weights = m->model_path;
  ASSERT_TRUE(s.remove("tiny").ok());
  EXPECT_EQ(s.remove("tiny").message(), "model 'tiny' not found");
  EXPECT_TRUE(fs::exists(weights));
  ASSERT_TRUE(s.remove("backup").ok());
  EXPECT_TRUE(fs::exists(weights));
  ASSERT_TRUE(s.remove("myns/derived:v1").ok());
  EXPECT_FALSE(fs::exists(weights));
  EXPECT_TRUE(s.list()->empty());
  EXPECT_FALSE(fs::exists(t.str("models/manifests/registry.ollama.ai/myns")));  // pruned dirs
}

TEST(Store, CreateErrors) {
  TempDir t;
  ModelStore s(t.str("models"));
  CreateRequest none;
  EXPECT_EQ(s.create("x", none).error(), "neither 'from' or 'files' was specified");
  CreateRequest from;
  from.from = "missing";
  EXPECT_EQ(s.create("x", from).error(), "model 'missing' not found");
  CreateRequest bad;
  bad.from_file = tiny_gguf(t.str("a.gguf"), "llama");
  EXPECT_EQ(s.create("bad name", bad).error(), "invalid model name");
  bad.quantize = "q4_K_M";
  EXPECT_FALSE(s.create("x", bad).ok());
  CreateRequest files;
  files.files = {{"../model.gguf", "sha256:" + std::string(64, 'a')}};
  EXPECT_EQ(s.create("x", files).error(), "file path must be relative");
  files.files = {{"model.gguf", "sha256:../../../etc/passwd"}};
  EXPECT_EQ(s.create("x", files).error(), "invalid digest format");
  files.files = {{"model.gguf", "sha256:" + std::string(64, 'a')}};
  EXPECT_NE(s.create("x", files).error().find("not found"), std::string::npos);
  // A blob that is not GGUF.
  std::string text = "not a gguf";
  auto digest = s.import_file((spit(t.str("t.txt"), text), t.str("t.txt")));
  ASSERT_TRUE(digest.ok());
  files.files = {{"model.gguf", *digest}};
  EXPECT_NE(s.create("x", files).error().find("not in GGUF format"), std::string::npos);
  CreateRequest params;
  params.from_file = t.str("a.gguf");
  params.parameters = {{"stop", "x"}};
  EXPECT_EQ(s.create("x", params).error(), "option \"stop\" must be of type array");
  EXPECT_TRUE(manifest_files(s.root()).empty());
}

TEST(Store, CreateFromUploadedBlobsWithProjector) {
  TempDir t;
  ModelStore s(t.str("models"));
  auto model = s.import_file(tiny_gguf(t.str("m.gguf"), "qwen2", -1));
  auto proj = s.import_file(tiny_gguf(t.str("p.gguf"), "clip", 1, 0.25f));
  ASSERT_TRUE(model.ok() && proj.ok());
  CreateRequest req;
  req.files = {{"mmproj.gguf", *proj}, {"model.gguf", *model}};
  auto m = s.create("vision", req);
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(m->model_path, s.blob_path(*model));
  ASSERT_EQ(m->projector_paths.size(), 1u);
  EXPECT_EQ(m->projector_paths[0], s.blob_path(*proj));
  EXPECT_EQ(m->details["families"], json::array({"qwen2", "clip"}));
  EXPECT_EQ(m->details["quantization_level"], "F32");  // derived from tensor types
}

TEST(Store, CreateFromSmolLM2) {
  OSPREY_REQUIRE_MODEL(path, osprey::testing::kSmolLM2);
  TempDir t;
  ModelStore s(t.str("models"));
  CreateRequest req;
  req.from_file = path;
  auto m = s.create("smollm2", req);
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(m->details["family"], "llama");
  EXPECT_EQ(m->details["quantization_level"], "Q4_1");
  EXPECT_EQ(m->details["parameter_size"], "134.52M");
  EXPECT_EQ(fs::file_size(m->model_path), fs::file_size(path));
  EXPECT_EQ(s.resolve("smollm2:latest")->model_path, m->model_path);
}

// ---- blobs and path safety ----------------------------------------------------------------

TEST(Store, Blobs) {
  TempDir t;
  ModelStore s(t.str("models"));
  const std::string data = "hello blob";
  const std::string good = "sha256:5e1bd6f5e8a2ba9d3b5ba3a5d1b5cb6b0b3f1a2c4e1df5d5b6a0f05a3bd1b1f1";  // wrong
  Status st = s.put_blob(good, data);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("digest mismatch, expected \"" + good + "\", got \"sha256:", 0), 0u) << st.message();
  EXPECT_FALSE(s.has_blob(good));
  EXPECT_EQ(fs::exists(t.str("models/blobs")) ? std::distance(fs::directory_iterator(t.str("models/blobs")), {}) : 0, 0);
  auto d = s.import_file((spit(t.str("f"), data), t.str("f")));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(s.has_blob(*d));
  EXPECT_TRUE(s.put_blob(*d, data).ok());  // idempotent
  EXPECT_EQ(slurp(s.blob_path(*d)), data);
  EXPECT_EQ(s.begin_blob("sha256-" + d->substr(7)).error(), "invalid digest format");
  EXPECT_EQ(s.put_blob("sha256:../../x", data).message(), "invalid digest format");
  EXPECT_EQ(s.blob_path("sha256:../../../../etc/passwd"), "");
  EXPECT_FALSE(s.has_blob("../../etc/passwd"));
}

TEST(Store, PathTraversalNeverEscapes) {
  TempDir t;
  ModelStore s(t.str("store/models"));
  ASSERT_TRUE(s.create("victim", [&] {
    CreateRequest r;
    r.from_file = tiny_gguf(t.str("v.gguf"), "llama");
    return r;
  }()).ok());
  spit(t.str("store/secret"), "secret");
  for (const char* n : {"../secret", "../../secret", "registry.ollama.ai/../../secret", "..:latest",
                        "x/../../../secret", "%2e%2e/secret", "a/b/c/../../.."}) {
    EXPECT_FALSE(s.resolve(n).ok()) << n;
    EXPECT_FALSE(s.remove(n).ok()) << n;
    EXPECT_FALSE(s.copy("victim", n).ok()) << n;
    EXPECT_FALSE(s.copy(n, "x").ok()) << n;
  }
  EXPECT_TRUE(fs::exists(t.str("store/secret")));
  // A hand-edited manifest pointing outside blobs/ is refused, not followed.
  auto victim = s.resolve("victim");
  json m = victim->manifest;
  m["layers"][0]["digest"] = "sha256:../../secret";
  spit(t.str("store/models/manifests/registry.ollama.ai/library/evil/latest"), m.dump());
  EXPECT_FALSE(s.resolve("evil").ok());
  ASSERT_TRUE(s.list().ok());
  EXPECT_EQ(s.list()->size(), 1u);  // evil is skipped, victim still listed
  EXPECT_TRUE(fs::exists(t.str("store/secret")));
}

TEST(Store, HostileManifestsAndTextNeverThrow) {
  TempDir t;
  ModelStore s(t.str("models"));
  CreateRequest req;
  req.from_file = tiny_gguf(t.str("a.gguf"), "llama");
  req.parameters = {{"stop", {std::string("\xff\xfe bad utf8")}}};
  req.system = std::string("\xc3 broken");
  ASSERT_TRUE(s.create("good", req).ok());
  const std::string dir = t.str("models/manifests/registry.ollama.ai/library/");
  const char* bodies[] = {"not json", "[]", "{}", R"({"layers":5})", R"({"layers":[5,"x",null]})",
                          R"({"config":{"digest":7},"layers":[{"digest":["a"],"mediaType":3,"size":"big"}]})",
                          R"({"config":"x","layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:zz"}]})"};
  int i = 0;
  for (const char* b : bodies) spit(dir + "bad" + std::to_string(i++) + "/latest", b);
  EXPECT_NO_THROW({
    auto all = s.list();
    ASSERT_TRUE(all.ok());
    EXPECT_EQ(all->size(), 1u);
    for (int j = 0; j < i; ++j) {
      EXPECT_FALSE(s.resolve("bad" + std::to_string(j)).ok());
      (void)s.remove("bad" + std::to_string(j));
      (void)s.copy("bad" + std::to_string(j), "c");
    }
    EXPECT_TRUE(s.prune().ok());
    CreateRequest from;
    from.from = "good";
    EXPECT_TRUE(s.create("derived", from).ok());
    EXPECT_FALSE(render_modelfile(*s.resolve("good")).empty());
    EXPECT_FALSE(format_parameters(s.resolve("good")->params).empty());
  });
}

// ---- pull against an in-test registry ------------------------------------------------------

namespace {

// Serves <dir>/manifests/<ns>/<model>/<tag> and <dir>/blobs/sha256-<hex> the way the
// OCI distribution API does, with Range support (httplib applies it) and fault injection.
class Registry {
 public:
  explicit Registry(std::string dir) : dir_(std::move(dir)) {
    svr_.Get(R"(/v2/([^/]+)/([^/]+)/manifests/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::string p = dir_ + "/manifests/" + std::string(req.matches[1]) + "/" + std::string(req.matches[2]) + "/" +
                      std::string(req.matches[3]);
      if (!fs::exists(p)) {
        res.status = 404;
        res.set_content(R"({"errors":[{"code":"MANIFEST_UNKNOWN"}]})", "application/json");
        return;
      }
      res.set_content(slurp(p), "application/vnd.docker.distribution.manifest.v2+json");
    });
    svr_.Get(R"(/v2/([^/]+)/([^/]+)/blobs/(sha256:[0-9a-f]{64}))", [this](const httplib::Request& req, httplib::Response& res) {
      std::string digest = req.matches[3];
      std::string p = dir_ + "/blobs/sha256-" + digest.substr(7);
      if (!fs::exists(p)) {
        res.status = 404;
        return;
      }
      std::string body = slurp(p);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (req.has_header("Range")) ranges_.push_back(req.get_header_value("Range"));
        if (truncate_once_.erase(digest)) body.resize(body.size() / 2);  // a dropped connection
      }
      res.set_content(body, "application/octet-stream");
    });
    port_ = svr_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
    for (int i = 0; i < 500 && !svr_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ~Registry() {
    svr_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void truncate_once(const std::string& digest) {
    std::lock_guard<std::mutex> lock(mu_);
    truncate_once_.insert(digest);
  }
  std::vector<std::string> ranges() {
    std::lock_guard<std::mutex> lock(mu_);
    return ranges_;
  }

 private:
  std::string dir_;
  httplib::Server svr_;
  int port_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::set<std::string> truncate_once_;
  std::vector<std::string> ranges_;
};

// Builds a model in a scratch store and publishes it into a registry folder as ns/model:tag.
json publish(const TempDir& t, const std::string& reg_dir, const std::string& ns_model_tag) {
  ModelStore src(t.str("src-models"));
  CreateRequest req;
  req.from_file = tiny_gguf(t.str("pub.gguf"), "llama", 7, 0.125f);
  req.template_text = "{{ .Prompt }}";
  req.parameters = {{"stop", {"</s>"}}};
  auto m = src.create("tmp", req);
  EXPECT_TRUE(m.ok()) << m.error();
  auto n = *ModelName::parse(ns_model_tag);
  spit(reg_dir + "/manifests/" + n.ns + "/" + n.model + "/" + n.tag,
       slurp(t.str("src-models/manifests/registry.ollama.ai/library/tmp/latest")));
  for (auto& e : fs::directory_iterator(t.str("src-models/blobs")))
    fs::copy_file(e.path(), reg_dir + "/blobs/" + e.path().filename().string(), fs::copy_options::overwrite_existing);
  return m->manifest;
}

std::string model_digest(const json& manifest) { return manifest["layers"][0]["digest"]; }

}  // namespace

TEST(StorePull, PullsVerifiesAndReusesBlobs) {
  TempDir t;
  fs::create_directories(t.str("reg/blobs"));
  json manifest = publish(t, t.str("reg"), "library/tiny:latest");
  Registry reg(t.str("reg"));
  ModelStore s(t.str("models"));
  std::vector<json> events;
  PullOptions o;
  o.base_url = reg.url();
  Status st = s.pull("tiny", o, [&](const json& j) { events.push_back(j); });
  ASSERT_TRUE(st.ok()) << st.message();
  auto m = s.resolve("tiny");
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(slurp(m->model_path), slurp(t.str("pub.gguf")));
  EXPECT_EQ(m->template_text, "{{ .Prompt }}");
  EXPECT_EQ(m->details["quantization_level"], "Q8_0");
  EXPECT_EQ(m->manifest_digest, m->manifest_digest);
  ASSERT_GE(events.size(), 5u);
  EXPECT_EQ(events.front(), (json{{"status", "pulling manifest"}}));
  const std::string d = model_digest(manifest);
  bool saw_layer = false;
  for (const auto& e : events)
    if (e["status"] == "pulling " + d.substr(7, 12) && e["completed"] == e["total"] && e["digest"] == d) saw_layer = true;
  EXPECT_TRUE(saw_layer);
  EXPECT_EQ(events[events.size() - 3]["status"], "verifying sha256 digest");
  EXPECT_EQ(events[events.size() - 2]["status"], "writing manifest");
  EXPECT_EQ(events.back(), (json{{"status", "success"}}));

  // Pulling again downloads nothing and reports every layer complete at once.
  events.clear();
  ASSERT_TRUE(s.pull("tiny", o, [&](const json& j) { events.push_back(j); }).ok());
  EXPECT_TRUE(reg.ranges().empty());
  EXPECT_EQ(s.pull("library/missing:latest", o).message(), "pull model manifest: file does not exist");
  EXPECT_EQ(s.pull("bad name", o).message(), "invalid model name");
}

TEST(StorePull, ResumesFromPartialAndAfterDroppedConnection) {
  TempDir t;
  fs::create_directories(t.str("reg/blobs"));
  json manifest = publish(t, t.str("reg"), "myns/tiny:v2");
  Registry reg(t.str("reg"));
  const std::string d = model_digest(manifest);
  const std::string full = slurp(t.str("reg/blobs/sha256-" + d.substr(7)));
  ModelStore s(t.str("models"));
  // A partial file left by an earlier, interrupted pull.
  spit(t.str("models/blobs/sha256-" + d.substr(7) + "-partial"), full.substr(0, 300));
  PullOptions o;
  o.base_url = reg.url();
  ASSERT_TRUE(s.pull("myns/tiny:v2", o).ok());
  ASSERT_EQ(reg.ranges().size(), 1u);
  EXPECT_EQ(reg.ranges()[0], "bytes=300-");
  EXPECT_EQ(slurp(s.resolve("myns/tiny:v2")->model_path), full);
  EXPECT_FALSE(fs::exists(t.str("models/blobs/sha256-" + d.substr(7) + "-partial")));

  // The connection drops half-way: the retry resumes from where it stopped.
  ModelStore s2(t.str("models2"));
  reg.truncate_once(d);
  ASSERT_TRUE(s2.pull("myns/tiny:v2", o).ok());
  EXPECT_EQ(reg.ranges().size(), 2u);
  EXPECT_EQ(reg.ranges()[1], "bytes=" + std::to_string(full.size() / 2) + "-");
  EXPECT_EQ(slurp(s2.resolve("myns/tiny:v2")->model_path), full);
}

TEST(StorePull, CorruptBlobFailsWithoutManifest) {
  TempDir t;
  fs::create_directories(t.str("reg/blobs"));
  json manifest = publish(t, t.str("reg"), "library/tiny:latest");
  const std::string d = model_digest(manifest);
  std::string bytes = slurp(t.str("reg/blobs/sha256-" + d.substr(7)));
  bytes[bytes.size() / 2] ^= 0x55;
  spit(t.str("reg/blobs/sha256-" + d.substr(7)), bytes);
  Registry reg(t.str("reg"));
  ModelStore s(t.str("models"));
  PullOptions o;
  o.base_url = reg.url();
  Status st = s.pull("tiny", o);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("digest mismatch"), std::string::npos) << st.message();
  EXPECT_TRUE(manifest_files(s.root()).empty());
  EXPECT_TRUE(s.list()->empty());
  EXPECT_FALSE(s.has_blob(d));
  EXPECT_FALSE(fs::exists(s.blob_path(d) + "-partial"));  // a bad download is not resumed from

  // A manifest naming paths outside the store is refused before anything is fetched.
  json evil = manifest;
  evil["layers"][0]["digest"] = "sha256:../../../../tmp/x";
  spit(t.str("reg/manifests/library/evil/latest"), evil.dump());
  EXPECT_NE(s.pull("evil", o).message().find("bad digest"), std::string::npos);
  spit(t.str("reg/manifests/library/odd/latest"), R"({"layers":[{"digest":5,"size":"x"}]})");
  EXPECT_NE(s.pull("odd", o).message().find("bad digest"), std::string::npos);
  spit(t.str("reg/manifests/library/odd2/latest"), "<html>");
  EXPECT_EQ(s.pull("odd2", o).message(), "pull model manifest: not a valid manifest");
  EXPECT_TRUE(manifest_files(s.root()).empty());
}

TEST(StorePull, ConcurrentPullsOfOneModel) {
  TempDir t;
  fs::create_directories(t.str("reg/blobs"));
  publish(t, t.str("reg"), "library/tiny:latest");
  Registry reg(t.str("reg"));
  ModelStore s(t.str("models"));
  PullOptions o;
  o.base_url = reg.url();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] { ok += s.pull("tiny", o).ok() ? 1 : 0; });
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 4);
  auto m = s.resolve("tiny");
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(slurp(m->model_path), slurp(t.str("pub.gguf")));
  EXPECT_EQ(s.list()->size(), 1u);
}

// ---- crash consistency --------------------------------------------------------------------

TEST(StoreCrash, FailedManifestWriteLeavesNoModel) {
  TempDir t;
  ModelStore s(t.str("models"));
  CreateRequest req;
  req.from_file = tiny_gguf(t.str("a.gguf"), "llama");
  req.system = "x";
  s.before_manifest_commit = [] { return Status::error("simulated crash"); };
  EXPECT_EQ(s.create("half", req).error(), "simulated crash");
  EXPECT_TRUE(manifest_files(s.root()).empty());  // not even a temp file
  ASSERT_TRUE(s.list().ok());
  EXPECT_TRUE(s.list()->empty());
  s.before_manifest_commit = nullptr;
  ASSERT_TRUE(s.create("half", req).ok());
}

TEST(StoreCrash, KilledProcessLeavesStoreValid) {
  TempDir t;
  const std::string root = t.str("models");
  const std::string gguf = tiny_gguf(t.str("a.gguf"), "llama");
  {
    ModelStore s(root);
    CreateRequest req;
    req.from_file = gguf;
    ASSERT_TRUE(s.create("keep", req).ok());
  }
  // Kill a child at the worst moment: blobs written, manifest temp file synced, not renamed.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ModelStore s(root);
    s.before_manifest_commit = [] {
      ::raise(SIGKILL);
      return Status();
    };
    CreateRequest req;
    req.from_file = gguf;
    req.system = "never visible";
    (void)s.create("keep", req);  // overwriting an existing model
    (void)s.create("ghost", req);
    ::_exit(0);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(wstatus));
  ModelStore s(root);
  auto all = s.list();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].name.model, "keep");
  EXPECT_EQ((*all)[0].system, "");  // the old model, untouched
  EXPECT_EQ(s.resolve("ghost").error(), "model 'ghost' not found");
  // The killed write left a temp file; start-up pruning removes it and the orphan blob.
  bool temp_left = false;
  for (const auto& f : manifest_files(root)) temp_left |= fs::path(f).filename().string()[0] == '.';
  EXPECT_TRUE(temp_left);
  ASSERT_TRUE(s.prune().ok());
  EXPECT_EQ(manifest_files(root).size(), 1u);
  for (auto& e : fs::directory_iterator(root + "/blobs")) {
    std::string f = e.path().filename().string();
    EXPECT_NE(f[0], '.') << f;
  }
  EXPECT_TRUE(s.resolve("keep").ok());
}

// ---- an existing Ollama store --------------------------------------------------------------

TEST(Store, ReadsOllamaLayoutFixture) {
  // tests/data/store/ollama was written by tests/data/store/make_ollama_store.py the way
  // Ollama lays a store out (legacy prompt layer, "from" fields, rootfs in the config).
  const std::string fixture = std::string(OSPREY_TEST_DATA) + "/store/ollama";
  ASSERT_TRUE(fs::exists(fixture)) << fixture;
  TempDir t;
  fs::copy(fixture, t.str("models"), fs::copy_options::recursive);
  ModelStore s(t.str("models"));
  auto all = s.list();
  ASSERT_TRUE(all.ok()) << all.error();
  ASSERT_EQ(all->size(), 2u);
  auto m = s.resolve("tinyllama");
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(m->template_text, "<|user|>\n{{ .Prompt }}</s>\n<|assistant|>\n");
  EXPECT_EQ(m->system, "You are a fixture.");
  EXPECT_EQ(m->params, (json{{"stop", {"<|user|>", "</s>"}}, {"temperature", 0.6}}));
  EXPECT_EQ(m->licenses, (std::vector<std::string>{"MIT"}));
  EXPECT_EQ(m->details["family"], "llama");
  EXPECT_EQ(m->details["parameter_size"], "1.1B");
  EXPECT_EQ(m->details["quantization_level"], "Q4_0");
  auto g = gguf::File::open(m->model_path);
  EXPECT_TRUE(g.ok()) << g.error();
  EXPECT_TRUE(s.resolve("someone/other:7b").ok());
  // Our create over an Ollama store keeps the other model intact.
  ASSERT_TRUE(s.copy("tinyllama", "mine").ok());
  ASSERT_TRUE(s.remove("tinyllama").ok());
  EXPECT_TRUE(fs::exists(m->model_path));  // still used by "mine"
  EXPECT_EQ(s.list()->size(), 2u);
}
