// `osprey quantize IN.gguf OUT.gguf TYPE`: re-encode a model's weights to a quantization mix.
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "commands.h"
#include "engine/quantize/imatrix.h"
#include "engine/quantize/quantize_model.h"
#include "engine/quantize/tensor_types.h"

namespace osprey::cli {
namespace {

struct QuantizeOptions {
  std::string in, out, type;
  std::string imatrix;
  bool allow_requantize = false;
  bool pure = false;
  bool quiet = false;
  int threads = 0;
};

// One line redrawn in place on a terminal; otherwise a line per tenth of the tensors, so logs
// stay short. Fallback types (rows not a whole number of blocks) are counted in the summary.
void show_progress(const quantize::TensorDone& d, bool tty) {
  const int width = 30, filled = (d.index + 1) * width / d.total;
  if (tty) {
    std::fprintf(stderr, "\r[%-*s] %4d/%d %-32.32s %6s -> %-6s", width, std::string(filled, '#').c_str(), d.index + 1,
                 d.total, d.name.c_str(), dtype_name(d.from), dtype_name(d.to));
    if (d.index + 1 == d.total) std::fputc('\n', stderr);
  } else if ((d.index + 1) * 10 / d.total != d.index * 10 / d.total) {
    std::fprintf(stderr, "quantize: %d/%d tensors\n", d.index + 1, d.total);
  }
}

int run_quantize(const QuantizeOptions& o) {
  quantize::Options opt;
  opt.mix = o.type;
  opt.allow_requantize = o.allow_requantize;
  opt.pure = o.pure;
  opt.threads = o.threads;
  Imatrix im;
  if (!o.imatrix.empty()) {
    auto loaded = load_imatrix(o.imatrix);
    if (!loaded.ok()) {
      std::fprintf(stderr, "osprey: error: %s\n", loaded.error().c_str());
      return 1;
    }
    im = std::move(*loaded);
    opt.imatrix = &im.values;
    opt.imatrix_file = o.imatrix;
    opt.imatrix_chunks = im.n_chunks;
  }
  const bool tty = isatty(STDERR_FILENO);
  if (!o.quiet) opt.on_tensor = [tty](const quantize::TensorDone& d) { show_progress(d, tty); };
  auto s = quantize::quantize_model(o.in, o.out, opt);
  if (!s.ok()) {
    if (tty && !o.quiet) std::fputc('\n', stderr);
    std::fprintf(stderr, "osprey: error: %s\n", s.error().c_str());
    return 1;
  }
  std::string types;
  for (const auto& [t, n] : s->type_counts) types += std::string(types.empty() ? "" : ", ") + dtype_name(t) + " " + std::to_string(n);
  std::printf("%s -> %s (%s): %.2f MiB -> %.2f MiB in %.2f s; %d tensors quantized, %d with importance; types: %s\n",
              o.in.c_str(), o.out.c_str(), quantize::find_mix(o.type)->name, s->bytes_in / 1048576.0,
              s->bytes_out / 1048576.0, s->seconds, s->n_quantized, s->n_imatrix, types.c_str());
  if (s->n_fallback)
    std::printf("%d tensors have rows that are not a whole number of the type's blocks and use a fallback type\n",
                s->n_fallback);
  return 0;
}

}  // namespace

void add_quantize_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<QuantizeOptions>();
  std::string types;
  for (const std::string& n : quantize::mix_names()) types += (types.empty() ? "" : ", ") + n;
  CLI::App* c = app.add_subcommand("quantize", "Quantize a GGUF model (types: " + types + ")");
  c->add_option("input", o->in, "source GGUF (F32/F16/BF16 weights)")->required();
  c->add_option("output", o->out, "GGUF to write (via a temporary file)")->required();
  c->add_option("type", o->type, "quantization mix, e.g. Q4_K_M")->required();
  c->add_option("--imatrix", o->imatrix, "importance matrix from `osprey imatrix` (or llama.cpp's llama-imatrix)");
  c->add_flag("--allow-requantize", o->allow_requantize, "accept already-quantized input (loses quality)");
  c->add_flag("--pure", o->pure, "every weight at the base type: no per-tensor upgrades");
  c->add_option("-t,--threads", o->threads, "threads (default: all cores)");
  c->add_flag("-q,--quiet", o->quiet, "no progress on stderr");
  c->callback([o, exit_code] { *exit_code = run_quantize(*o); });
}

}  // namespace osprey::cli
