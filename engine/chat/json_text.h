// Text renderings of JSON values the way the reference implementations print them: Python's
// json.dumps / repr (what HF Jinja templates produce) and Go's json.Marshal (what Ollama's Go
// templates produce). Byte-exact prompts depend on these details, so they live in one place.
#pragma once
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace osprey::chat {

using OJson = nlohmann::ordered_json;

// json.dumps(v, ensure_ascii=False, indent=indent, separators=None): ", " / ": " separators
// without indent, "," / ": " with it.
std::string py_json_dumps(const OJson& v, std::optional<int> indent = std::nullopt);
// Python repr()/str() of a JSON value: True/False/None, 'single quoted' strings inside containers.
// These throw std::runtime_error for values nested deeper than 512 levels.
std::string py_repr(const OJson& v);
std::string py_repr_at(const OJson& v, int depth);
// str(v): strings raw, everything else repr.
std::string py_str(const OJson& v);
// repr of a float (shortest round-trip, "1.0", "1e+16").
std::string py_float(double d);

// Go json.Marshal: compact, HTML-safe (<, >, & escaped), keys in container order (callers sort
// maps where Go would).
std::string go_json(const OJson& v);
std::string go_json_at(const OJson& v, int depth);

// Number of Unicode code points in UTF-8 text (Python len()).
size_t utf8_length(const std::string& s);
// Byte offset of code point `cp` (clamped to the end).
size_t utf8_offset(const std::string& s, size_t cp);

}  // namespace osprey::chat
