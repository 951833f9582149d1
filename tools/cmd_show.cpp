// `osprey show MODEL.gguf`: the file's metadata and tensor list, like gguf-dump.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "formats/gguf.h"

namespace osprey::cli {
namespace {

struct ShowOptions {
  std::string model;
  bool no_tensors = false;
  bool modelfile = false;
  size_t max_array = 8;
};

int show(const ShowOptions& o) {
  if (!is_local_model_arg(o.model)) return show_remote_cmd(o.model, o.modelfile);
  auto f = gguf::File::open(o.model);
  if (!f) {
    std::fprintf(stderr, "osprey: error: %s\n", f.error().c_str());
    return 1;
  }
  const gguf::File& file = *f.value();
  std::printf("GGUF v%u, %zu metadata keys, %zu tensors, alignment %llu\n\n", file.version(), file.metadata().size(),
              file.tensors().size(), (unsigned long long)file.alignment());
  for (const gguf::KeyValue& kv : file.metadata())
    std::printf("%-45s %s\n", kv.key.c_str(), kv.value.to_display(o.max_array).c_str());
  if (o.no_tensors) return 0;
  std::printf("\n%5s  %-40s %-8s %-28s %12s\n", "#", "tensor", "type", "shape", "bytes");
  size_t i = 0;
  for (const gguf::TensorInfo& t : file.tensors()) {
    std::string shape;
    for (size_t d = 0; d < t.ne.size(); ++d) shape += (d ? " x " : "") + std::to_string(t.ne[d]);
    std::printf("%5zu  %-40s %-8s %-28s %12llu\n", i++, t.name.c_str(), dtype_name(t.type), shape.c_str(),
                (unsigned long long)t.nbytes);
  }
  return 0;
}

}  // namespace

void add_show_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ShowOptions>();
  CLI::App* c = app.add_subcommand("show", "Print a GGUF file's metadata and tensors, or a served model's details");
  c->add_option("model", o->model, "GGUF model file or model name on the server")->required();
  c->add_flag("--modelfile", o->modelfile, "print a served model's Modelfile");
  c->add_flag("--no-tensors", o->no_tensors, "metadata only");
  c->add_option("--max-array", o->max_array, "array elements to print")->capture_default_str();
  c->callback([o, exit_code] { *exit_code = show(*o); });
}

}  // namespace osprey::cli
