// The `osprey` subcommands. Each registers its options on the app and returns the exit code
// of its run through the callback it installs.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

namespace osprey::cli {

void add_run_command(CLI::App& app, int* exit_code);
void add_show_command(CLI::App& app, int* exit_code);
void add_quantize_command(CLI::App& app, int* exit_code);
void add_convert_command(CLI::App& app, int* exit_code);
void add_bench_command(CLI::App& app, int* exit_code);
// perplexity and imatrix.
void add_perplexity_command(CLI::App& app, int* exit_code);
void add_serve_command(CLI::App& app, int* exit_code);
// list, ps, stop, rm, cp, pull, create: clients of a running server.
void add_client_commands(CLI::App& app, int* exit_code);
// `run NAME` and `show NAME` against the server (when NAME is not a local file).
int run_remote(const std::string& name, const std::string& prompt, const nlohmann::json& options, bool verbose);
int show_remote_cmd(const std::string& name, bool modelfile);
// A model argument is a local file when it exists or is spelled like a path (so a typo in a
// path still says "no such file" instead of asking a server).
bool is_local_model_arg(const std::string& arg);

}  // namespace osprey::cli
