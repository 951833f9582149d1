// Ollama Modelfiles: parse into a CreateRequest, render one back for /api/show.
//
// Grammar accepted (commands are case-insensitive, one per line, `#` starts a comment line):
//   FROM <model name | path | sha256:digest>
//   PARAMETER <key> <value>      typed per the options table; `stop` repeats into an array
//   TEMPLATE <text>  SYSTEM <text>  LICENSE <text>   (LICENSE may repeat)
//   MESSAGE <system|user|assistant|tool> <text>
//   ADAPTER <path>               → error: adapters are not supported
// <text> is the rest of the line, a "quoted string" (\" and \\ escapes), or a """triple
// quoted""" string that may span lines.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/store/model_store.h"
#include "kernels/base/status.h"

namespace osprey::store {

// Errors name the line: "line 3: unknown command 'FORM'". FROM is left in req.from
// verbatim (use resolve_modelfile_from to turn a path into from_file / files).
Result<CreateRequest> parse_modelfile(std::string_view text);

// Turns req.from into from_file when it names an existing file (relative paths against
// `base_dir`, "~/" against $HOME), and into files[] when it is a "sha256:" digest.
// A value that is neither stays a model name.
void resolve_modelfile_from(CreateRequest& req, const std::string& base_dir);

// Converts one PARAMETER value to its JSON type (int/float/bool/string; for "stop" a
// string). Error "unknown parameter 'x'" or "invalid value for parameter 'x': 'v'".
Result<nlohmann::json> parse_parameter(std::string_view key, std::string_view value);
// Checks a JSON parameters object (/api/create `parameters`, a params layer): known keys,
// right types (integers may come as whole-valued floats; stop must be an array of strings).
// Returns the normalised object.
Result<nlohmann::json> check_parameters(const nlohmann::json& params);

// The text /api/show returns as `modelfile`: header comment naming `m.name`, FROM the
// weights blob path, TEMPLATE/SYSTEM/PARAMETER/MESSAGE/LICENSE lines.
std::string render_modelfile(const ModelInfo& m);
// The `parameters` text block of /api/show: key left-justified in 30 columns, then the
// value Go-%#v style (strings quoted); stop repeats per value.
std::string format_parameters(const nlohmann::json& params);

}  // namespace osprey::store
