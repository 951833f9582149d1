// File-system, hashing and GGUF-summary helpers for the store.
#include <functional>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <atomic>
#include <cctype>
#include <cinttypes>
#include <cstring>
#include <map>
#include <vector>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>

#include "engine/store/internal.h"
#include "formats/gguf.h"

namespace osprey::store::detail {
namespace fs = std::filesystem;

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}
Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256::update(const void* data, size_t n) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, n);
}
std::string Sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes.data(), bytes.size());
  return h.hex();
}

Status for_each_chunk(const std::string& path, const std::function<Status(const char*, size_t)>& fn) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::error("open " + path + ": " + std::strerror(errno));
  std::vector<char> buf(1 << 20);
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return Status::error("read " + path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    Status st = fn(buf.data(), static_cast<size_t>(n));
    if (!st.ok()) {
      ::close(fd);
      return st;
    }
  }
  ::close(fd);
  return Status();
}

Result<std::string> sha256_file(const std::string& path) {
  Sha256 h;
  OSPREY_TRY(for_each_chunk(path, [&](const char* p, size_t n) {
    h.update(p, n);
    return Status();
  }));
  return h.hex();
}

// Temp names start with '.', which no name part or blob file may, so list() and garbage
// collection can tell them from real entries.
std::string temp_path_for(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  char suffix[64];
  std::snprintf(suffix, sizeof suffix, ".tmp-%d-%" PRIx64 "-%" PRIu64, static_cast<int>(::getpid()),
                salt & 0xffffff, counter.fetch_add(1));
  fs::path p(path);
  std::string name = ".";  // built by appends: GCC 12 warns falsely on "." + str + suffix
  name += p.filename().string();
  name += suffix;
  return (p.parent_path() / name).string();
}

Status make_dirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::error("create directory " + dir + ": " + ec.message());
  return {};
}

Status write_file_atomic(const std::string& path, std::string_view bytes,
                         const std::function<Status()>& before_rename) {
  OSPREY_TRY(make_dirs(fs::path(path).parent_path().string()));
  std::string tmp = temp_path_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Status::error("create " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::error("write " + tmp + ": " + std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  // fsync before rename: otherwise a power cut can leave the new name with empty content.
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Status::error("sync " + tmp + ": " + std::strerror(errno));
  }
  if (before_rename) {
    Status st = before_rename();
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return Status::error("rename to " + path + ": " + std::strerror(e));
  }
  return {};
}

Result<std::string> read_file(const std::string& path, size_t max_bytes) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::error("open " + path + ": " + std::strerror(errno));
  std::string out;
  char buf[65536];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) {
    out.append(buf, static_cast<size_t>(f.gcount()));
    if (out.size() > max_bytes) return Status::error(path + ": file too large");
  }
  return out;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string str_field(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string rfc3339_local(int64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / 1000000000);
  long nanos = static_cast<long>(unix_ns % 1000000000);
  struct tm tm {};
  localtime_r(&secs, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  long off = tm.tm_gmtoff / 60;
  // Go's RFC3339Nano: the fraction without trailing zeros, none at all when zero.
  std::string out = date;
  if (nanos != 0) {
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%09ld", nanos);
    std::string f = frac;
    while (f.size() > 1 && f.back() == '0') f.pop_back();
    out += f;
  }
  if (off == 0) return out + "Z";
  char zone[48];
  std::snprintf(zone, sizeof zone, "%c%02ld:%02ld", off < 0 ? '-' : '+', std::labs(off) / 60, std::labs(off) % 60);
  return out + zone;
}

std::string digest_to_file(std::string_view digest) {
  std::string f(digest);
  if (f.size() > 6 && f[6] == ':') f[6] = '-';
  return f;
}

std::string format_parameter_count(int64_t n) {
  char buf[32];
  auto fmt = [&](double v, const char* unit) {
    // Whole values print bare ("8B"), others with the precision Ollama uses per unit.
    if (v == static_cast<double>(static_cast<int64_t>(v))) {
      std::snprintf(buf, sizeof buf, "%" PRId64 "%s", static_cast<int64_t>(v), unit);
    } else {
      std::snprintf(buf, sizeof buf, unit[0] == 'M' ? "%.2f%s" : "%.1f%s", v, unit);
    }
  };
  if (n >= 1000000000) {
    fmt(static_cast<double>(n) / 1e9, "B");
  } else if (n >= 1000000) {
    fmt(static_cast<double>(n) / 1e6, "M");
  } else if (n >= 1000) {
    fmt(static_cast<double>(n) / 1e3, "K");
  } else {
    std::snprintf(buf, sizeof buf, "%" PRId64, n);
  }
  return buf;
}

namespace {

// llama.cpp's LLAMA_FTYPE_* numbering, as stored in general.file_type.
const char* file_type_name(int64_t t) {
  switch (t) {
    case 0: return "F32";      case 1: return "F16";      case 2: return "Q4_0";
    case 3: return "Q4_1";     case 7: return "Q8_0";     case 8: return "Q5_0";
    case 9: return "Q5_1";     case 10: return "Q2_K";    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";  case 13: return "Q3_K_L";  case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";  case 16: return "Q5_K_S";  case 17: return "Q5_K_M";
    case 18: return "Q6_K";    case 19: return "IQ2_XXS"; case 20: return "IQ2_XS";
    case 21: return "Q2_K_S";  case 22: return "IQ3_XS";  case 23: return "IQ3_XXS";
    case 24: return "IQ1_S";   case 25: return "IQ4_NL";  case 26: return "IQ3_S";
    case 27: return "IQ3_M";   case 28: return "IQ2_S";   case 29: return "IQ2_M";
    case 30: return "IQ4_XS";  case 31: return "IQ1_M";   case 32: return "BF16";
    case 36: return "TQ1_0";   case 37: return "TQ2_0";   case 38: return "MXFP4";
    default: return nullptr;
  }
}

}  // namespace

Result<nlohmann::json> gguf_config(const std::string& path, std::string* architecture) {
  auto f = gguf::File::open(path);
  if (!f.ok()) return Status::error("supplied file was not in GGUF format: " + f.error());
  const gguf::File& g = **f;
  auto arch = g.get_string("general.architecture", "");
  std::string family = arch.ok() ? *arch : "";
  if (architecture) *architecture = family;
  int64_t params = 0;
  // The quantisation most tensors (by bytes) use stands in when general.file_type is absent.
  std::map<std::string, uint64_t> bytes_by_type;
  for (const auto& t : g.tensors()) {
    params += t.n_elements();
    if (t.ne.size() >= 2) bytes_by_type[dtype_name(t.type)] += t.nbytes;
  }
  std::string quant;
  auto ft = g.get_int("general.file_type", -1);
  if (ft.ok() && *ft >= 0 && file_type_name(*ft)) quant = file_type_name(*ft);
  if (quant.empty()) {
    uint64_t best = 0;
    for (const auto& [name, b] : bytes_by_type)
      if (b > best) best = b, quant = name;
    for (char& c : quant) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  nlohmann::json cfg = {{"model_format", "gguf"},
                        {"model_family", family},
                        {"model_families", family.empty() ? nlohmann::json(nullptr)
                                                          : nlohmann::json::array({family})},
                        {"model_type", params > 0 ? format_parameter_count(params) : ""},
                        {"file_type", quant},
                        {"architecture", "amd64"},
                        {"os", "linux"}};
  return cfg;
}

}  // namespace osprey::store::detail
