// JSON schema -> grammar of the JSON texts that validate against it, for structured outputs.
//
// Supported: `type` (one or a list), `properties` / `required` (members in the order the json
// object holds them, sorted by key for nlohmann::json; optional ones may be left out), `additionalProperties` (false: only the declared members;
// a schema without `properties`: a map of such values), `items`, `minItems` / `maxItems`,
// `enum`, `const`, `anyOf` / `oneOf` (as alternatives; oneOf branches are assumed disjoint),
// `allOf` of one schema, `$ref` to `#`, `#/$defs/...`, `#/definitions/...` (recursion allowed),
// string `minLength` / `maxLength` / `pattern` (regex.h) / `format` (date, time, date-time,
// uuid, email, ipv4, hostname, uri), integer and number `minimum` / `maximum` /
// `exclusiveMinimum` / `exclusiveMaximum`. Annotations (title, description, default, ...) are
// ignored. Any other keyword is an error that names it, never silently dropped.
//
// Outputs are kept finite: whitespace between tokens is at most one newline plus 32 spaces of
// indentation, integers have at most 15 digits (fractions 6 with bounds, 15 without, exponents
// 3), and nothing may follow the complete top-level value.
#pragma once
#include <memory>

#include <nlohmann/json.hpp>

#include "engine/grammar/grammar.h"
#include "kernels/base/status.h"

namespace osprey::grammar {

Result<std::shared_ptr<const Grammar>> compile_json_schema(const nlohmann::json& schema);

// `format: "json"`: any JSON object.
std::shared_ptr<const Grammar> json_object_grammar();

}  // namespace osprey::grammar
