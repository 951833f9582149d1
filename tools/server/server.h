// `osprey serve`: the HTTP front end. Routes are registered in three groups (native
// inference, model management, OpenAI) on one httplib server sharing a ServerState.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include <httplib.h>

#include "server/native.h"

namespace osprey::server {

// Wraps a handler so an HttpError or any exception becomes a JSON error with its status,
// in the native shape or OpenAI's.
httplib::Server::Handler guarded(std::function<void(const httplib::Request&, httplib::Response&)> fn,
                                 bool openai = false);
void send_error(httplib::Response& res, int status, const std::string& msg, bool openai = false);
void send_json(httplib::Response& res, const json& j, int status = 200);
// Streams a NativeRun: `encode` turns each native object into bytes to send ("" to skip),
// `trailer` is sent after the last one. A failed write cancels generation.
void stream_run(httplib::Response& res, std::shared_ptr<NativeRun> run, const char* content_type,
                std::function<std::string(const json&)> encode, std::function<std::string()> trailer = {});

void register_native_routes(httplib::Server& svr, ServerState& st);
void register_model_routes(httplib::Server& svr, ServerState& st);
void register_openai_routes(httplib::Server& svr, ServerState& st);
void register_embed_routes(httplib::Server& svr, ServerState& st);  // /api/embed, /api/embeddings, /v1/embeddings

// Reads the environment (OSPREY_* first, then OLLAMA_*), binds, serves until stopped.
int serve_main(int threads);

}  // namespace osprey::server
