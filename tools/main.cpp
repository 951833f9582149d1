#include <cstdio>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"osprey: a local LLM engine"};
  app.require_subcommand(1);
  int exit_code = 0;
  osprey::cli::add_run_command(app, &exit_code);
  osprey::cli::add_show_command(app, &exit_code);
  osprey::cli::add_quantize_command(app, &exit_code);
  osprey::cli::add_convert_command(app, &exit_code);
  osprey::cli::add_bench_command(app, &exit_code);
  osprey::cli::add_perplexity_command(app, &exit_code);
  osprey::cli::add_serve_command(app, &exit_code);
  osprey::cli::add_client_commands(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
