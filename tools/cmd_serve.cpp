// `osprey serve`: run the Ollama-compatible HTTP server (OSPREY_HOST, default 127.0.0.1:11434).
#include "commands.h"
#include "server/server.h"

namespace osprey::cli {

void add_serve_command(CLI::App& app, int* exit_code) {
  auto threads = std::make_shared<int>(0);
  CLI::App* c = app.add_subcommand("serve", "Start the Ollama-compatible API server");
  c->add_option("-t,--threads", *threads, "CPU threads per model (0: all)");
  c->callback([threads, exit_code] { *exit_code = osprey::server::serve_main(*threads); });
}

}  // namespace osprey::cli
