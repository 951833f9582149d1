// `osprey convert DIR -o OUT.gguf [--outtype auto|f32|f16|bf16|q8_0]`: a Hugging Face checkpoint
// folder to GGUF (engine/convert), with a progress line on stderr.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "engine/convert/convert.h"

namespace osprey::cli {
namespace {

struct ConvertOptions {
  std::string dir, out, outtype = "auto";
  bool quiet = false;
};

int convert_cmd(const ConvertOptions& o) {
  auto type = convert::parse_outtype(o.outtype);
  if (!type) {
    std::fprintf(stderr, "osprey: error: %s\n", type.error().c_str());
    return 1;
  }
  convert::Options opt;
  opt.outtype = type.value();
  if (!o.quiet)
    opt.progress = [](size_t done, size_t total, const std::string& name) {
      std::fprintf(stderr, "\r[%zu/%zu] %-48s", done, total, name.c_str());
    };
  Status st = convert::convert_checkpoint(o.dir, o.out, opt);
  if (!st.ok()) {
    if (!o.quiet) std::fputc('\n', stderr);
    std::fprintf(stderr, "osprey: error: %s\n", st.message().c_str());
    return 1;
  }
  if (!o.quiet) std::fprintf(stderr, "\nwrote %s\n", o.out.c_str());
  return 0;
}

}  // namespace

void add_convert_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ConvertOptions>();
  CLI::App* c = app.add_subcommand("convert", "Convert a Hugging Face checkpoint folder (safetensors) to GGUF");
  c->add_option("dir", o->dir, "folder with config.json, tokenizer files and *.safetensors")->required();
  c->add_option("-o,--output", o->out, "GGUF file to write")->required();
  c->add_option("--outtype", o->outtype, "auto (the checkpoint's float type), f32, f16, bf16 or q8_0")
      ->capture_default_str();
  c->add_flag("-q,--quiet", o->quiet, "no progress output");
  c->callback([o, exit_code] { *exit_code = convert_cmd(*o); });
}

}  // namespace osprey::cli
