// Model names and digests: the only user input that ever becomes a path, so the rules are
// strict (research §2) and checked before anything touches the file system.
#include <cctype>

#include "engine/store/internal.h"
#include "engine/store/model_store.h"

namespace osprey::store {
namespace {

bool alnum_(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// First char alnum or '_', the rest alnum or one of `extra`; length within [1, max].
bool part_ok(std::string_view p, size_t max, std::string_view extra) {
  if (p.empty() || p.size() > max || !alnum_(p[0])) return false;
  for (char c : p.substr(1))
    if (!alnum_(c) && extra.find(c) == std::string_view::npos) return false;
  // "." and ".." fail the first-character rule; dots later on ("a..b") are harmless, as a
  // part is always exactly one path component and '/' never passes.
  return true;
}

Status invalid() { return Status::error("invalid model name"); }

}  // namespace

Result<ModelName> ModelName::parse(std::string_view s) {
  // Surrounding whitespace is a client slip, not part of the name.
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  if (s.empty()) return invalid();
  ModelName n;
  // Tag: after the last ':' only if that ':' follows the last '/' ("host:5000/ns/m").
  size_t colon = s.rfind(':');
  size_t slash = s.rfind('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    n.tag = std::string(s.substr(colon + 1));
    s = s.substr(0, colon);
    if (n.tag.empty()) return invalid();
  }
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t p = s.find('/', start);
    parts.push_back(s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  if (parts.size() > 3) return invalid();
  n.model = std::string(parts.back());
  if (parts.size() >= 2) n.ns = std::string(parts[parts.size() - 2]);
  if (parts.size() == 3) n.host = std::string(parts[0]);
  if (!part_ok(n.host, 350, "-.:") || !part_ok(n.ns, 80, "-") || !part_ok(n.model, 80, "-.") ||
      !part_ok(n.tag, 80, "-."))
    return invalid();
  // A host may carry a port, but never something a path could misread.
  if (n.host.find("..") != std::string::npos) return invalid();
  return n;
}

std::string ModelName::display() const {
  std::string out;
  if (detail::to_lower(host) != kDefaultHost) {
    out = host + "/" + ns + "/";
  } else if (detail::to_lower(ns) != kDefaultNamespace) {
    out = ns + "/";
  }
  return out + model + ":" + tag;
}

std::string ModelName::full() const { return host + "/" + ns + "/" + model + ":" + tag; }

bool ModelName::same_as(const ModelName& o) const {
  using detail::to_lower;
  return to_lower(host) == to_lower(o.host) && to_lower(ns) == to_lower(o.ns) &&
         to_lower(model) == to_lower(o.model) && to_lower(tag) == to_lower(o.tag);
}

bool valid_digest(std::string_view d) {
  if (d.size() != 71 || d.substr(0, 7) != "sha256:") return false;
  for (char c : d.substr(7))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Result<std::string> normalize_digest(std::string_view d) {
  if (d.size() != 71 || d.substr(0, 6) != "sha256" || (d[6] != ':' && d[6] != '-'))
    return Status::error("invalid digest format");
  std::string out = "sha256:";
  for (char c : d.substr(7)) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return Status::error("invalid digest format");
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace osprey::store
