// The `osprey` subcommands. Each registers its options on the app and returns the exit code
// of its run through the callback it installs.
#pragma once
#include <CLI/CLI.hpp>

namespace osprey::cli {

void add_run_command(CLI::App& app, int* exit_code);
void add_show_command(CLI::App& app, int* exit_code);

}  // namespace osprey::cli
