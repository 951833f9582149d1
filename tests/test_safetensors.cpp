// safetensors reader: a fixture written by the `safetensors` package with values from PyTorch
// (tests/scripts/make_safetensors_fixtures.py), every FP8 bit pattern, sharded checkpoints, and
// malformed headers (every truncation, bit flips, each validation rule) that must fail cleanly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <unistd.h>

#include "formats/safetensors.h"

namespace {

using namespace osprey;
using namespace osprey::safetensors;
namespace fs = std::filesystem;

const std::string kData = std::string(OSPREY_TEST_DATA) + "/safetensors/";

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A file from a header JSON text and a data section.
std::vector<uint8_t> make_file(const std::string& header, const std::vector<uint8_t>& data = {}) {
  // Sized once and copied into: GCC 12 warned (-Warray-bounds, a false positive) on the
  // inserts into an 8-byte vector.
  std::vector<uint8_t> b(8 + header.size() + data.size());
  const uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  std::copy(header.begin(), header.end(), b.begin() + 8);
  std::copy(data.begin(), data.end(), b.begin() + 8 + (std::ptrdiff_t)header.size());
  return b;
}

Result<std::unique_ptr<File>> parse(const std::vector<uint8_t>& b) { return File::parse(b.data(), b.size(), "t"); }

void expect_error(const std::string& header, const std::vector<uint8_t>& data, const std::string& needle) {
  auto r = parse(make_file(header, data));
  ASSERT_FALSE(r.ok()) << header;
  EXPECT_NE(r.error().find(needle), std::string::npos) << r.error();
  EXPECT_EQ(r.error().rfind("t: ", 0), 0u) << "errors name their source: " << r.error();
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("osprey_st_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  static inline int counter_ = 0;
};

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), (std::streamsize)b.size());
}

std::vector<uint8_t> f32_bytes(std::initializer_list<float> v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), std::data(v), b.size());
  return b;
}

TEST(Safetensors, FixtureMatchesPyTorch) {
  auto f = File::open(kData + "dtypes.safetensors");
  ASSERT_TRUE(f.ok()) << f.error();
  std::ifstream in(kData + "dtypes.json");
  const nlohmann::json ref = nlohmann::json::parse(in);
  EXPECT_EQ(f.value()->metadata().at("note"), "fixture");
  EXPECT_EQ(f.value()->tensors().size(), ref.size() + 1);  // + the int64 tensor
  for (auto it = ref.begin(); it != ref.end(); ++it) {
    const TensorInfo* t = f.value()->find(it.key());
    ASSERT_NE(t, nullptr) << it.key();
    EXPECT_EQ(t->shape, it.value()["shape"].get<std::vector<int64_t>>()) << it.key();
    std::vector<float> got((size_t)t->n_elements());
    ASSERT_TRUE(to_f32(*t, got.data()).ok()) << it.key();
    const auto& want = it.value()["values"];
    ASSERT_EQ(got.size(), want.size()) << it.key();
    for (size_t i = 0; i < got.size(); ++i) {
      if (want[i].is_string()) {
        const std::string s = want[i];
        if (s == "nan") EXPECT_TRUE(std::isnan(got[i])) << it.key() << "[" << i << "]";
        else EXPECT_EQ(got[i], s == "inf" ? INFINITY : -INFINITY) << it.key() << "[" << i << "]";
      } else {
        EXPECT_EQ(got[i], want[i].get<float>()) << it.key() << "[" << i << "]";  // exact: widening only
      }
    }
  }
  const TensorInfo* i64 = f.value()->find("i64");
  ASSERT_NE(i64, nullptr);
  EXPECT_EQ(i64->dtype, DType::I64);
  std::vector<float> sink(5);
  EXPECT_FALSE(to_f32(*i64, sink.data()).ok()) << "integer tensors are not floats";
}

TEST(Safetensors, EveryTruncationFails) {
  const std::vector<uint8_t> good = read_bytes(kData + "dtypes.safetensors");
  ASSERT_GT(good.size(), 100u);
  for (size_t n = 0; n < good.size(); ++n) {
    auto r = File::parse(good.data(), n, "t");
    // Cutting only trailing data can leave a valid file when the cut is past every tensor.
    if (r.ok()) {
      for (const TensorInfo& t : r.value()->tensors()) EXPECT_LE(t.data + t.nbytes, good.data() + n);
    } else {
      EXPECT_EQ(r.error().rfind("t: ", 0), 0u);
    }
  }
  EXPECT_FALSE(File::parse(good.data(), good.size() - 1, "t").ok()) << "the last tensor ends at the last byte";
}

TEST(Safetensors, BitFlipsNeverCrash) {
  const std::vector<uint8_t> good = read_bytes(kData + "dtypes.safetensors");
  std::mt19937 rng(5);
  int parsed = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<uint8_t> b = good;
    const int flips = 1 + (int)(rng() % 3);
    for (int k = 0; k < flips; ++k) b[rng() % std::min<size_t>(b.size(), 700)] ^= (uint8_t)(1u << (rng() % 8));
    auto r = File::parse(b.data(), b.size(), "t");
    if (!r.ok()) continue;
    ++parsed;
    for (const TensorInfo& t : r.value()->tensors()) {
      ASSERT_GE(t.data, b.data());
      ASSERT_LE(t.data + t.nbytes, b.data() + b.size());
      if (dtype_is_float(t.dtype)) {
        std::vector<float> v((size_t)t.n_elements());
        EXPECT_TRUE(to_f32(t, v.data()).ok());
      }
    }
  }
  EXPECT_GT(parsed, 0) << "some flips (inside tensor data) keep the file valid";
}

TEST(Safetensors, HeaderRules) {
  const std::vector<uint8_t> d8 = f32_bytes({1, 2});
  // Baseline parses.
  ASSERT_TRUE(parse(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d8)).ok());
  {
    std::vector<uint8_t> b = {1, 2, 3};
    auto r = File::parse(b.data(), b.size(), "t");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().find("too short"), std::string::npos);
  }
  {
    std::vector<uint8_t> b = make_file("{}");
    const uint64_t huge = 1ull << 62;
    std::memcpy(b.data(), &huge, 8);
    auto r = parse(b);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().find("past the end"), std::string::npos);
  }
  expect_error("[1,2]", {}, "not a JSON object");
  expect_error(R"({"a":)", {}, "not valid JSON");
  expect_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
               d8, "twice");
  expect_error(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", d8, "unknown dtype 'Q4'");
  expect_error(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", d8, "non-negative integer");
  expect_error(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", d8, "non-negative integer");
  expect_error(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", d8, "shape");
  expect_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", d8, "begin 8 > end 0");
  expect_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", d8, "past the data section");
  expect_error(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8, "need 12");
  expect_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", d8, "data_offsets");
  expect_error(R"({"a":{"dtype":"F32","shape":[2]}})", d8, "data_offsets");
  expect_error(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", d8, "dtype");
  expect_error(R"({"a":[1]})", d8, "not an object");
  expect_error(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", d8,
               "overflows");
  expect_error(R"({"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,2],"data_offsets":[0,8]}})", d8, "dimensions");
  expect_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
               d8, "overlap");
  expect_error(R"({"__metadata__":{"k":1}})", {}, "not a string");
  expect_error(R"({"__metadata__":[]})", {}, "__metadata__");
}

TEST(Safetensors, OpenErrors) {
  auto r = File::open("/no/such/file.safetensors");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("/no/such/file.safetensors"), std::string::npos);
  TempDir dir;
  write_bytes(dir.file("empty.safetensors"), {});
  EXPECT_FALSE(File::open(dir.file("empty.safetensors")).ok());
  EXPECT_FALSE(Checkpoint::open(dir.path().string() + "/nothing").ok());
}

TEST(Safetensors, ShardedCheckpoint) {
  TempDir dir;
  write_bytes(dir.file("model-00001-of-00002.safetensors"),
              make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32_bytes({1, 2})));
  write_bytes(dir.file("model-00002-of-00002.safetensors"),
              make_file(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"c":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                        f32_bytes({3, 4})));
  auto index = [&](const std::string& text) {
    std::ofstream(dir.file("model.safetensors.index.json")) << text;
  };
  index(R"({"metadata":{"total_size":16},"weight_map":{"a":"model-00001-of-00002.safetensors",
           "b":"model-00002-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}})");
  auto c = Checkpoint::open(dir.path().string());
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c.value()->files().size(), 2u);
  ASSERT_EQ(c.value()->tensors().size(), 3u);
  for (auto [name, value] : {std::pair{"a", 1.f}, std::pair{"b", 3.f}, std::pair{"c", 4.f}}) {
    const TensorInfo* t = c.value()->find(name);
    ASSERT_NE(t, nullptr) << name;
    float v[2];
    ASSERT_TRUE(to_f32(*t, v).ok());
    EXPECT_EQ(v[0], value) << name;
  }
  // The index file itself can be named.
  EXPECT_TRUE(Checkpoint::open(dir.file("model.safetensors.index.json")).ok());

  index(R"({"weight_map":{"a":"model-00001-of-00002.safetensors","zz":"model-00002-of-00002.safetensors"}})");
  auto missing = Checkpoint::open(dir.path().string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("'zz'"), std::string::npos) << missing.error();

  index(R"({"weight_map":{"a":"../model-00001-of-00002.safetensors"}})");
  auto escape = Checkpoint::open(dir.path().string());
  ASSERT_FALSE(escape.ok());
  EXPECT_NE(escape.error().find("plain file name"), std::string::npos) << escape.error();

  index(R"({"weight_map":{"a":"absent.safetensors"}})");
  EXPECT_FALSE(Checkpoint::open(dir.path().string()).ok());
  index(R"({"weight_map":{}})");
  EXPECT_FALSE(Checkpoint::open(dir.path().string()).ok());
  index("not json");
  EXPECT_FALSE(Checkpoint::open(dir.path().string()).ok());

  // Without an index every *.safetensors file is read; a name in two shards is an error.
  fs::remove(dir.file("model.safetensors.index.json"));
  EXPECT_TRUE(Checkpoint::open(dir.path().string()).ok());
  write_bytes(dir.file("model-extra.safetensors"),
              make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f32_bytes({9})));
  auto dup = Checkpoint::open(dir.path().string());
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().find("another shard"), std::string::npos) << dup.error();
}

TEST(Safetensors, Fp8Decoders) {
  // Spot values from the OCP FP8 definitions (the fixture test covers all 256 against PyTorch).
  EXPECT_EQ(f8_e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(f8_e4m3_to_f32(0x7e), 448.0f);  // largest finite
  EXPECT_TRUE(std::isnan(f8_e4m3_to_f32(0x7f)));
  EXPECT_EQ(f8_e4m3_to_f32(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(f8_e5m2_to_f32(0x3c), 1.0f);
  EXPECT_EQ(f8_e5m2_to_f32(0x7c), INFINITY);
  EXPECT_EQ(f8_e5m2_to_f32(0xc0), -2.0f);
}

}  // namespace
