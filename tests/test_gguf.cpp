// GGUF reader and writer: round trips, a corpus of malformed files, and the real models
// cross-checked against gguf-py's view of them (tests/data/models/*.txt, made by
// tests/scripts/dump_gguf.py).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "test_models.h"

namespace {

using osprey::DType;
using osprey::Result;
using osprey::Status;
using namespace osprey::gguf;
namespace fs = std::filesystem;

// ---- helpers ----

struct TempDir {
  fs::path dir;
  TempDir() {
    dir = fs::temp_directory_path() / ("osprey_test_gguf_" + std::to_string(::getpid()));
    fs::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), (std::streamsize)b.size());
}

Value scalar(ValueType t, uint64_t u = 0, int64_t i = 0, double f = 0) {
  Value v;
  v.type = t;
  v.u = u;
  v.i = i;
  v.f = f;
  return v;
}

Value array_of(ValueType elem, std::vector<Value> items) {
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = elem;
  v.array = std::move(items);
  return v;
}

bool same_value(const Value& a, const Value& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case ValueType::STRING: return a.s == b.s;
    case ValueType::FLOAT32: case ValueType::FLOAT64:
      return std::memcmp(&a.f, &b.f, sizeof(double)) == 0;
    case ValueType::INT8: case ValueType::INT16: case ValueType::INT32: case ValueType::INT64:
      return a.i == b.i;
    case ValueType::ARRAY:
      if (a.elem_type != b.elem_type || a.array.size() != b.array.size()) return false;
      for (size_t k = 0; k < a.array.size(); ++k)
        if (!same_value(a.array[k], b.array[k])) return false;
      return true;
    default: return a.u == b.u;
  }
}

// Reads everything a consumer might: every value, every tensor's first and last byte.
uint64_t touch_all(const File& f) {
  uint64_t acc = 0;
  for (const KeyValue& kv : f.metadata()) acc += kv.key.size() + kv.value.to_display(4).size();
  for (const TensorInfo& t : f.tensors()) {
    EXPECT_GE(t.data, f.bytes());
    EXPECT_LE(t.data + t.nbytes, f.bytes() + f.size());
    if (t.nbytes) acc += t.data[0] + t.data[t.nbytes - 1];
    acc += (uint64_t)t.n_elements();
  }
  return acc;
}

// Byte builder for hand-crafted (often deliberately broken) files.
struct Bytes {
  std::vector<uint8_t> b;
  template <class T>
  Bytes& pod(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof v);
    return *this;
  }
  Bytes& u32(uint32_t v) { return pod(v); }
  Bytes& u64(uint64_t v) { return pod(v); }
  Bytes& raw(const std::string& s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& str(const std::string& s) { return u64(s.size()).raw(s); }
  Bytes& pad(size_t align) {
    b.resize((b.size() + align - 1) / align * align, 0);
    return *this;
  }
};

Bytes header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
  Bytes b;
  b.raw("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  return b;
}

Bytes& tensor_info(Bytes& b, const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
  b.str(name).u32((uint32_t)dims.size());
  for (uint64_t d : dims) b.u64(d);
  return b.u32(type).u64(offset);
}

// A valid file with one kv and one F32 [8, 2] tensor; the pieces the crafted cases break.
std::vector<uint8_t> crafted(uint32_t type = 0, std::vector<uint64_t> dims = {8, 2}, uint64_t offset = 0,
                             size_t data_bytes = 64) {
  Bytes b = header(1, 1);
  b.str("general.architecture").u32(8).str("llama");
  tensor_info(b, "blk.0.attn_q.weight", dims, type, offset);
  b.pad(32);
  b.b.resize(b.b.size() + data_bytes, 0x5a);
  return b.b;
}

Result<std::unique_ptr<File>> parse(const std::vector<uint8_t>& b, const std::string& name = "crafted.gguf") {
  return File::parse(b.data(), b.size(), name);
}

// Expect a parse error whose message names the file and contains `want`.
void expect_error(const std::vector<uint8_t>& b, const std::string& want) {
  auto r = parse(b);
  ASSERT_FALSE(r.ok()) << "parsed but should fail with: " << want;
  EXPECT_NE(r.error().find("crafted.gguf: "), std::string::npos) << r.error();
  EXPECT_NE(r.error().find(want), std::string::npos) << "message: " << r.error() << "\nwanted: " << want;
}

// ---- round trip ----

std::vector<KeyValue> every_value_type() {
  std::vector<KeyValue> kv;
  kv.push_back({"t.u8", scalar(ValueType::UINT8, 255)});
  kv.push_back({"t.i8", scalar(ValueType::INT8, 0, -128)});
  kv.push_back({"t.u16", scalar(ValueType::UINT16, 65535)});
  kv.push_back({"t.i16", scalar(ValueType::INT16, 0, -32768)});
  kv.push_back({"t.u32", scalar(ValueType::UINT32, 4000000000u)});
  kv.push_back({"t.i32", scalar(ValueType::INT32, 0, -2000000000)});
  kv.push_back({"t.f32", scalar(ValueType::FLOAT32, 0, 0, 0.15625)});
  kv.push_back({"t.bool", scalar(ValueType::BOOL, 1)});
  kv.push_back({"t.str", Writer::str(std::string("hello\0world \xe2\x9c\x93", 15))});
  kv.push_back({"t.empty_str", Writer::str("")});
  kv.push_back({"t.u64", scalar(ValueType::UINT64, 18446744073709551615ull)});
  kv.push_back({"t.i64", scalar(ValueType::INT64, 0, INT64_MIN)});
  kv.push_back({"t.f64", scalar(ValueType::FLOAT64, 0, 0, 3.141592653589793)});
  kv.push_back({"t.arr_u8", array_of(ValueType::UINT8, {scalar(ValueType::UINT8, 1), scalar(ValueType::UINT8, 2)})});
  kv.push_back({"t.arr_i32", array_of(ValueType::INT32, {scalar(ValueType::INT32, 0, -1), scalar(ValueType::INT32, 0, 7)})});
  kv.push_back({"t.arr_f32", array_of(ValueType::FLOAT32, {scalar(ValueType::FLOAT32, 0, 0, -0.5), scalar(ValueType::FLOAT32, 0, 0, 1e-3f)})});
  kv.push_back({"t.arr_f64", array_of(ValueType::FLOAT64, {scalar(ValueType::FLOAT64, 0, 0, 1e300)})});
  kv.push_back({"t.arr_bool", array_of(ValueType::BOOL, {scalar(ValueType::BOOL, 0), scalar(ValueType::BOOL, 1)})});
  kv.push_back({"t.arr_u64", array_of(ValueType::UINT64, {scalar(ValueType::UINT64, 1ull << 40)})});
  kv.push_back({"t.arr_i64", array_of(ValueType::INT64, {scalar(ValueType::INT64, 0, -(1ll << 40))})});
  kv.push_back({"t.arr_u16", array_of(ValueType::UINT16, {scalar(ValueType::UINT16, 513)})});
  kv.push_back({"t.arr_i16", array_of(ValueType::INT16, {scalar(ValueType::INT16, 0, -513)})});
  kv.push_back({"t.arr_u32", array_of(ValueType::UINT32, {scalar(ValueType::UINT32, 70000)})});
  kv.push_back({"t.arr_i8", array_of(ValueType::INT8, {scalar(ValueType::INT8, 0, -3)})});
  kv.push_back({"t.arr_str", Writer::str_array({"a", "", "ccc"})});
  kv.push_back({"t.arr_empty", array_of(ValueType::UINT32, {})});
  kv.push_back({"t.nested", array_of(ValueType::ARRAY,
                                     {array_of(ValueType::UINT32, {scalar(ValueType::UINT32, 1), scalar(ValueType::UINT32, 2)}),
                                      array_of(ValueType::STRING, {Writer::str("x")}),
                                      array_of(ValueType::ARRAY, {array_of(ValueType::INT8, {scalar(ValueType::INT8, 0, 5)})})})});
  kv.push_back({"t.writer_u32", Writer::u32(7)});
  kv.push_back({"t.writer_i32", Writer::i32(-7)});
  kv.push_back({"t.writer_f32", Writer::f32(2.5f)});
  kv.push_back({"t.writer_bool", Writer::boolean(false)});
  return kv;
}

struct TensorSpec {
  std::string name;
  DType type;
  std::vector<int64_t> ne;
  std::vector<uint8_t> data;
};

std::vector<TensorSpec> some_tensors() {
  auto filled = [](size_t n, int seed) {
    std::vector<uint8_t> v(n);
    for (size_t k = 0; k < n; ++k) v[k] = (uint8_t)(k * 31 + seed);
    return v;
  };
  return {{"f32", DType::F32, {3, 5}, filled(60, 1)},
          {"q4_0", DType::Q4_0, {64, 3}, filled(2 * 18 * 3, 2)},
          {"q4_k", DType::Q4_K, {256}, filled(144, 3)},
          {"f16_4d", DType::F16, {2, 3, 4, 5}, filled(2 * 120, 4)},
          {"i32", DType::I32, {7}, filled(28, 5)},
          {"empty", DType::F32, {0, 4}, {}}};
}

void round_trip(uint32_t version, uint64_t alignment) {
  TempDir tmp;
  Writer w(version, alignment);
  const auto kvs = every_value_type();
  for (const auto& kv : kvs) w.add(kv.key, kv.value);
  const auto ts = some_tensors();
  for (const auto& t : ts) ASSERT_TRUE(w.add_tensor(t.name, t.type, t.ne, t.data.data(), t.data.size()).ok());
  const std::string path = tmp.file("rt.gguf");
  Status st = w.write(path);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.file("")), fs::directory_iterator()), 1)
      << "only the output is left, no temporary file";

  auto r = File::open(path);
  ASSERT_TRUE(r.ok()) << r.error();
  const File& f = **r;
  EXPECT_EQ(f.version(), version);
  EXPECT_EQ(f.alignment(), alignment);
  EXPECT_EQ(f.data_offset() % alignment, 0u);
  for (const auto& kv : kvs) {
    const Value* v = f.find(kv.key);
    ASSERT_NE(v, nullptr) << kv.key;
    // f32 values come back widened from float, so compare against the float-rounded original.
    Value want = kv.value;
    if (want.type == ValueType::FLOAT32) want.f = (float)want.f;
    for (Value& e : want.array)
      if (e.type == ValueType::FLOAT32) e.f = (float)e.f;
    EXPECT_TRUE(same_value(*v, want)) << kv.key << ": " << v->to_display();
  }
  ASSERT_EQ(f.tensors().size(), ts.size());
  for (size_t k = 0; k < ts.size(); ++k) {
    const TensorInfo& t = f.tensors()[k];
    EXPECT_EQ(t.name, ts[k].name);
    EXPECT_EQ(t.type, ts[k].type);
    EXPECT_EQ(t.ne, ts[k].ne);
    EXPECT_EQ(t.nbytes, ts[k].data.size());
    EXPECT_EQ(t.offset % alignment, 0u);
    EXPECT_EQ(t.data, f.bytes() + f.data_offset() + t.offset);
    if (!ts[k].data.empty()) {
      EXPECT_EQ(0, std::memcmp(t.data, ts[k].data.data(), ts[k].data.size())) << t.name;
    }
    EXPECT_EQ(f.find_tensor(ts[k].name), &t);
  }
  EXPECT_EQ(f.find_tensor("nope"), nullptr);
  touch_all(f);
}

TEST(GgufRoundTrip, EveryValueTypeV3) { round_trip(3, 32); }
TEST(GgufRoundTrip, V2) { round_trip(2, 32); }
TEST(GgufRoundTrip, Alignment64) { round_trip(3, 64); }
TEST(GgufRoundTrip, Alignment1) { round_trip(3, 1); }

TEST(GgufRoundTrip, GettersAndConversions) {
  TempDir tmp;
  Writer w;
  for (const auto& kv : every_value_type()) w.add(kv.key, kv.value);
  ASSERT_TRUE(w.write(tmp.file("g.gguf")).ok());
  auto r = File::open(tmp.file("g.gguf"));
  ASSERT_TRUE(r.ok()) << r.error();
  const File& f = **r;

  EXPECT_EQ(*f.get_string("t.str"), std::string("hello\0world \xe2\x9c\x93", 15));
  EXPECT_EQ(*f.get_string("absent", "dflt"), "dflt");
  EXPECT_EQ(*f.get_int("t.u32", 0), 4000000000ll);
  EXPECT_EQ(*f.get_int("t.i64", 0), INT64_MIN);
  EXPECT_EQ(*f.get_int("absent", 42), 42);
  EXPECT_DOUBLE_EQ(*f.get_float("t.f64", 0), 3.141592653589793);
  EXPECT_DOUBLE_EQ(*f.get_float("t.i32", 0), -2000000000.0);
  EXPECT_EQ(*f.get_bool("t.bool", false), true);
  EXPECT_EQ(*f.get_bool("absent", true), true);
  EXPECT_EQ(*f.get_string_array("t.arr_str"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(*f.get_int_array("t.arr_i32"), (std::vector<int64_t>{-1, 7}));
  EXPECT_EQ(*f.get_float_array("t.arr_f32"), (std::vector<double>{-0.5, (double)1e-3f}));
  EXPECT_EQ(*f.get_float_array("t.arr_u8"), (std::vector<double>{1, 2}));

  auto bad = f.get_int("t.str", 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("'t.str' has type string, expected an integer"), std::string::npos) << bad.error();
  auto too_big = f.get_int("t.u64", 0);
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.error().find("does not fit"), std::string::npos) << too_big.error();
  EXPECT_FALSE(f.get_string("t.u8").ok());
  EXPECT_FALSE(f.get_float("t.str", 0).ok());
  EXPECT_FALSE(f.get_bool("t.f32", false).ok());
  EXPECT_FALSE(f.get_string_array("t.arr_i32").ok());
  EXPECT_FALSE(f.get_int_array("t.arr_f32").ok());
  EXPECT_FALSE(f.get_float_array("t.arr_str").ok());
  auto missing = f.get_string_array("absent");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("'absent' is missing"), std::string::npos);

  EXPECT_EQ(f.find("t.arr_str")->to_display(), "[\"a\", \"\", \"ccc\"]");
  EXPECT_EQ(f.find("t.nested")->to_display(1), "[[1, ... (2 items)], ... (3 items)]");
  EXPECT_EQ(f.find("t.bool")->to_display(), "true");
  EXPECT_EQ(f.find("t.i8")->to_display(), "-128");
  int64_t out;
  EXPECT_TRUE(scalar(ValueType::FLOAT64, 0, 0, 12.0).as_int64(&out));
  EXPECT_EQ(out, 12);
  EXPECT_FALSE(scalar(ValueType::FLOAT64, 0, 0, 12.5).as_int64(&out));
  EXPECT_FALSE(scalar(ValueType::FLOAT64, 0, 0, 1e30).as_int64(&out));
  EXPECT_FALSE(Writer::str("1").as_int64(&out));
}

TEST(GgufWriter, RejectsBadInput) {
  TempDir tmp;
  std::vector<uint8_t> data(1024, 0);
  Writer w;
  EXPECT_FALSE(w.add_tensor("a", DType::Q4_0, {33}, data.data(), 18).ok());           // partial block
  EXPECT_FALSE(w.add_tensor("a", DType::F32, {4}, data.data(), 15).ok());             // wrong size
  EXPECT_FALSE(w.add_tensor("a", (DType)77, {4}, data.data(), 16).ok());              // unknown type
  EXPECT_FALSE(w.add_tensor("a", DType::F32, {1, 1, 1, 1, 1}, data.data(), 4).ok());  // 5 dims
  EXPECT_FALSE(w.add_tensor("a", DType::F32, {-4}, data.data(), 16).ok());
  ASSERT_TRUE(w.add_tensor("a", DType::F32, {4}, data.data(), 16).ok());
  Status dup = w.add_tensor("a", DType::F32, {4}, data.data(), 16);
  EXPECT_NE(dup.message().find("duplicate"), std::string::npos);

  Writer dk;
  dk.add("k", Writer::u32(1));
  dk.add("k", Writer::u32(2));
  Status st = dk.write(tmp.file("dk.gguf"));
  EXPECT_NE(st.message().find("duplicate metadata key 'k'"), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(tmp.file("dk.gguf")));
  EXPECT_FALSE(fs::exists(tmp.file("dk.gguf.tmp")));

  Writer mixed;
  mixed.add("arr", array_of(ValueType::UINT32, {Writer::u32(1), Writer::str("x")}));
  EXPECT_FALSE(mixed.write(tmp.file("m.gguf")).ok());
  Writer range;
  range.add("x", scalar(ValueType::UINT8, 256));
  EXPECT_FALSE(range.write(tmp.file("r.gguf")).ok());
  EXPECT_FALSE(Writer(1).write(tmp.file("v1.gguf")).ok());
  EXPECT_FALSE(Writer(3, 48).write(tmp.file("a48.gguf")).ok());
  Writer align_kv(3, 64);
  align_kv.add("general.alignment", Writer::u32(32));
  EXPECT_FALSE(align_kv.write(tmp.file("ak.gguf")).ok());
  EXPECT_FALSE(Writer().write(tmp.file("no/such/dir/x.gguf")).ok());
}

// Tensors whose bytes are made at write time give the same file as tensors given as bytes, in
// the order they were added; a failing fill stops the write and leaves no file behind.
TEST(GgufWriter, FilledTensorsWriteTheSameFile) {
  TempDir tmp;
  const auto ts = some_tensors();
  Writer copied(3, 64), filled(3, 64);
  for (Writer* w : {&copied, &filled}) w->add("k", Writer::str("v"));
  std::vector<std::string> order;
  for (const auto& t : ts) {
    ASSERT_TRUE(copied.add_tensor(t.name, t.type, t.ne, t.data.data(), t.data.size()).ok());
    auto fill = [&t, &order](uint8_t* dst, size_t n) {
      order.push_back(t.name);
      if (n) std::memcpy(dst, t.data.data(), std::min(n, t.data.size()));
      return n == t.data.size() ? Status() : Status::error("wrong size " + std::to_string(n));
    };
    ASSERT_TRUE(filled.add_tensor(t.name, t.type, t.ne, fill).ok());
  }
  EXPECT_TRUE(order.empty()) << "nothing is made before write()";
  ASSERT_TRUE(copied.write(tmp.file("a.gguf")).ok());
  Status st = filled.write(tmp.file("b.gguf"));
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(order.size(), ts.size());
  for (size_t k = 0; k < ts.size(); ++k) EXPECT_EQ(order[k], ts[k].name);
  EXPECT_EQ(read_bytes(tmp.file("a.gguf")), read_bytes(tmp.file("b.gguf")));

  Writer failing;
  auto zeros = [](uint8_t* dst, size_t n) { return std::memset(dst, 0, n), Status(); };
  ASSERT_TRUE(failing.add_tensor("ok", DType::F32, {4}, zeros).ok());
  ASSERT_TRUE(failing.add_tensor("bad", DType::F32, {4}, [](uint8_t*, size_t) { return Status::error("source tensor unreadable"); }).ok());
  st = failing.write(tmp.file("f.gguf"));
  EXPECT_NE(st.message().find("source tensor unreadable"), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(tmp.file("f.gguf")));
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.file("")), fs::directory_iterator()), 2)
      << "no temporary file is left";
  Writer throwing;
  ASSERT_TRUE(throwing.add_tensor("t", DType::F32, {4}, [](uint8_t*, size_t) -> Status { throw std::bad_alloc(); }).ok());
  EXPECT_FALSE(throwing.write(tmp.file("t.gguf")).ok());
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.file("")), fs::directory_iterator()), 2) << "nor after a throw";
  EXPECT_FALSE(failing.add_tensor("none", DType::F32, {4}, Writer::Fill()).ok());
  EXPECT_FALSE(failing.add_tensor("ok", DType::F32, {4}, zeros).ok());  // duplicate name
}

// ---- malformed files ----

TEST(GgufMalformed, CraftedBaselineParses) {
  auto r = parse(crafted());
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ((*r)->tensors().size(), 1u);
  EXPECT_EQ((*r)->tensors()[0].nbytes, 64u);
  EXPECT_EQ(*(*r)->get_string("general.architecture"), "llama");
}

TEST(GgufMalformed, HeaderProblems) {
  expect_error({}, "too small");
  expect_error({'G', 'G', 'U'}, "too small");
  std::vector<uint8_t> b = crafted();
  b[0] = 'X';
  expect_error(b, "bad magic");
  expect_error(header(0, 0, 1).b, "version 1 is not supported");
  expect_error(header(0, 0, 99).b, "unsupported GGUF version 99");
  expect_error(header(0, 0, 0x03000000).b, "big-endian");
  expect_error(header(1ull << 62, 0).b, "tensor count 4611686018427387904 cannot fit");
  expect_error(header(0, 1ull << 62).b, "metadata count 4611686018427387904 cannot fit");
  expect_error(header(0, ~0ull).b, "metadata count");
  expect_error(std::vector<uint8_t>(12, 0), "bad magic");
  Bytes trunc;
  trunc.raw("GGUF").u32(3).u32(0);  // tensor count cut short
  expect_error(trunc.b, "truncated reading tensor count");
  EXPECT_TRUE(parse(header(0, 0).b).ok());  // an empty GGUF is valid
}

TEST(GgufMalformed, MetadataProblems) {
  Bytes b = header(0, 1);
  b.u64(1ull << 60).raw(std::string(16, 'k'));
  expect_error(b.b, "key length 1152921504606846976 exceeds");

  b = header(0, 1);
  b.str("k").u32(8).u64(~0ull);
  expect_error(b.b, "string value length 18446744073709551615 exceeds");

  b = header(0, 1);
  b.str("k").u32(9).u32(4).u64(1ull << 60).u32(1);
  expect_error(b.b, "array length 1152921504606846976 of u32 cannot fit");

  b = header(0, 1);  // array of arrays: each element needs at least 12 bytes
  b.str("k").u32(9).u32(9).u64(3).raw(std::string(30, '\0'));
  expect_error(b.b, "array length 3 of array cannot fit");

  b = header(0, 1);
  b.str("k").u32(13).u32(0);
  expect_error(b.b, "unknown value type 13");

  b = header(0, 1);
  b.str("k").u32(9).u32(77).u64(0);
  expect_error(b.b, "unknown array element type 77");

  b = header(0, 1);
  b.str("k").u32(7).pod<uint8_t>(2);
  expect_error(b.b, "bool value 2 is neither 0 nor 1");

  b = header(0, 2);
  b.str("dup").u32(4).u32(1).str("dup").u32(4).u32(2);
  expect_error(b.b, "metadata entry 1 'dup': duplicate metadata key");

  b = header(0, 1);
  b.str("deep").u32(9);
  for (int k = 0; k < 40; ++k) b.u32(9).u64(1);
  b.raw(std::string(40, '\0'));
  expect_error(b.b, "nested deeper");

  b = header(0, 1);
  b.str("k").u32(6).raw("\x01\x02");
  expect_error(b.b, "truncated reading f32 value");
}

Bytes with_alignment_kv(uint32_t vtype, const std::string& payload) {
  Bytes b = header(1, 1);
  b.str("general.alignment").u32(vtype).raw(payload);
  tensor_info(b, "t", {8}, 0, 0);
  b.pad(64);
  b.b.resize(b.b.size() + 32, 0);
  return b;
}

TEST(GgufMalformed, AlignmentProblems) {
  expect_error(with_alignment_kv(4, std::string("\x03\0\0\0", 4)).b, "alignment 3 is not a nonzero power of two");
  expect_error(with_alignment_kv(4, std::string("\0\0\0\0", 4)).b, "alignment 0 is not a nonzero power of two");
  expect_error(with_alignment_kv(8, std::string("\x02\0\0\0\0\0\0\0ab", 10)).b, "has type string, expected an unsigned integer");
  expect_error(with_alignment_kv(5, std::string("\xc0\xff\xff\xff", 4)).b, "not a nonzero power of two");  // -64
  auto ok = parse(with_alignment_kv(4, std::string("\x40\0\0\0", 4)).b);
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ((*ok)->alignment(), 64u);
  EXPECT_EQ((*ok)->data_offset() % 64, 0u);
}

TEST(GgufMalformed, TensorInfoProblems) {
  expect_error(crafted(0, {8, 2}, 4096), "crafted.gguf: tensor 'blk.0.attn_q.weight': data [offset 4224, 64 bytes] extends past end of file (size 192)");
  expect_error(crafted(0, {8, 2}, 0, 63), "extends past end of file");
  expect_error(crafted(0, {8, 2}, 16), "data offset 16 is not a multiple of the alignment 32");
  expect_error(crafted(0, {8, 2}, ~0ull - 31), "overflows");
  expect_error(crafted(77), "tensor 'blk.0.attn_q.weight': unknown tensor type id 77");
  expect_error(crafted(2, {8, 2}), "row of 8 elements is not a whole number of q4_0 blocks");
  expect_error(crafted(0, {1ull << 63, 1}), "dimension 0 is 9223372036854775808");
  expect_error(crafted(0, {~0ull}), "negative or too large");
  expect_error(crafted(0, {1ull << 40, 1ull << 40}), "element count overflows");
  expect_error(crafted(0, {1ull << 20, 1ull << 20}), "extends past end of file");  // fits int64, not the file
  expect_error(crafted(0, {1ull << 61, 2}), "byte size overflows");                  // elements fit, bytes don't
  expect_error(crafted(0, {1, 1, 1, 1, 1}), "5 dimensions (at most 4");

  Bytes b = header(1, 0);
  b.str("t").u32(100).raw(std::string(64, '\0'));
  expect_error(b.b, "tensor 't': 100 dimensions");

  b = header(1, 0);
  b.u64(1ull << 62);
  b.raw(std::string(24, '\0'));
  expect_error(b.b, "tensor name length 4611686018427387904 exceeds");

  b = header(2, 0);
  tensor_info(b, "same", {8}, 0, 0);
  tensor_info(b, "same", {8}, 0, 32);
  b.pad(32);
  b.b.resize(b.b.size() + 64, 0);
  expect_error(b.b, "tensor 'same': duplicate tensor name");

  // Zero-sized and 4-D tensors are fine.
  auto ok = parse(crafted(0, {0, 5}, 0, 0));
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ((*ok)->tensors()[0].nbytes, 0u);
  EXPECT_EQ((*ok)->tensors()[0].n_elements(), 0);
  EXPECT_TRUE(parse(crafted(0, {2, 2, 2, 2}, 0, 64)).ok());
}

// A small but varied valid file written by our Writer, the seed for the mutation tests.
std::vector<uint8_t> writer_sample(const TempDir& tmp) {
  Writer w;
  for (const auto& kv : every_value_type()) w.add(kv.key, kv.value);
  for (const auto& t : some_tensors()) EXPECT_TRUE(w.add_tensor(t.name, t.type, t.ne, t.data.data(), t.data.size()).ok());
  EXPECT_TRUE(w.write(tmp.file("sample.gguf")).ok());
  return read_bytes(tmp.file("sample.gguf"));
}

TEST(GgufMalformed, EveryTruncationFails) {
  TempDir tmp;
  const std::vector<uint8_t> full = writer_sample(tmp);
  auto r = parse(full);
  ASSERT_TRUE(r.ok()) << r.error();
  uint64_t data_end = 0;
  for (const auto& t : (*r)->tensors())
    data_end = std::max<uint64_t>(data_end, (*r)->data_offset() + t.offset + t.nbytes);
  for (size_t len = 0; len < full.size(); ++len) {
    // A fresh copy of exactly `len` bytes, so ASan sees any read past the end.
    std::vector<uint8_t> cut(full.begin(), full.begin() + (std::ptrdiff_t)len);
    auto p = parse(cut);
    if (len < data_end) {
      EXPECT_FALSE(p.ok()) << "truncated to " << len << " bytes of " << full.size() << " still parsed";
      if (!p.ok()) {
        EXPECT_EQ(p.error().rfind("crafted.gguf: ", 0), 0u) << p.error();
      }
    } else if (p.ok()) {
      touch_all(**p);  // only trailing padding is missing
    }
  }
}

TEST(GgufMalformed, BitFlipsNeverCrash) {
  TempDir tmp;
  const std::vector<uint8_t> full = writer_sample(tmp);
  auto r = parse(full);
  ASSERT_TRUE(r.ok());
  const size_t meta_end = (*r)->data_offset();
  int errors = 0, parsed = 0;
  for (size_t byte = 0; byte < meta_end; ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> m = full;
      m[byte] ^= (uint8_t)(1u << bit);
      auto p = parse(m);
      if (p.ok()) {
        ++parsed;
        touch_all(**p);
      } else {
        ++errors;
        EXPECT_FALSE(p.error().empty());
      }
    }
  }
  // Most flips in the structure must be caught; flips inside values just change the values.
  EXPECT_GT(errors, 0);
  EXPECT_GT(parsed, 0);
}

TEST(GgufMalformed, CraftedCountsInWriterSample) {
  // Overwrite the header counts of a real Writer output with absurd values.
  TempDir tmp;
  std::vector<uint8_t> b = writer_sample(tmp);
  for (uint64_t bad : {uint64_t{1} << 62, ~uint64_t{0}, (uint64_t)b.size()}) {
    std::vector<uint8_t> m = b;
    std::memcpy(&m[8], &bad, 8);  // tensor count
    EXPECT_FALSE(parse(m).ok());
    m = b;
    std::memcpy(&m[16], &bad, 8);  // kv count
    EXPECT_FALSE(parse(m).ok());
  }
}

TEST(GgufFile, OpenErrors) {
  TempDir tmp;
  auto missing = File::open(tmp.file("missing.gguf"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("missing.gguf: cannot open"), std::string::npos) << missing.error();
  auto dir = File::open(tmp.dir.string());
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().find("not a regular file"), std::string::npos) << dir.error();
  write_bytes(tmp.file("empty.gguf"), {});
  auto empty = File::open(tmp.file("empty.gguf"));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().find("empty"), std::string::npos);
  write_bytes(tmp.file("bad.gguf"), crafted(0, {8, 2}, 4096));
  auto bad = File::open(tmp.file("bad.gguf"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().rfind(tmp.file("bad.gguf") + ": tensor 'blk.0.attn_q.weight': data [offset", 0), 0u)
      << bad.error();
}

TEST(GgufFile, FuzzSeedsFromGgufPyParse) {
  // The fuzz seeds (tests/fuzz/make_corpus.py) come from gguf-py's writer: a second opinion
  // on the format, nested arrays and custom alignment included.
  const fs::path dir = fs::path(OSPREY_TEST_DATA) / ".." / "fuzz" / "corpus" / "gguf";
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    auto r = File::open(e.path().string());
    ASSERT_TRUE(r.ok()) << r.error();
    touch_all(**r);
    ++n;
  }
  EXPECT_GE(n, 5);
  auto kv = File::open((dir / "kv_types.gguf").string());
  ASSERT_TRUE(kv.ok()) << kv.error();
  const Value* nested = (*kv)->find("t.nested");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->to_display(), "[[1, 2], [3]]");
  EXPECT_EQ(*(*kv)->get_int("t.i64", 0), -(1ll << 40));
  auto a64 = File::open((dir / "tensors_align64.gguf").string());
  ASSERT_TRUE(a64.ok()) << a64.error();
  EXPECT_EQ((*a64)->alignment(), 64u);
  EXPECT_EQ((*a64)->tensors().size(), 7u);
  auto v2 = File::open((dir / "tensors_v2.gguf").string());
  ASSERT_TRUE(v2.ok()) << v2.error();
  EXPECT_EQ((*v2)->version(), 2u);
}

// ---- real models ----

struct ModelCase {
  const char* file;
  const char* arch;
  size_t n_tensors;
};

void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.file; }

class GgufModel : public ::testing::TestWithParam<ModelCase> {};

TEST_P(GgufModel, MatchesGgufPyDump) {
  const ModelCase c = GetParam();
  OSPREY_REQUIRE_MODEL(path, c.file);
  auto r = File::open(path);
  ASSERT_TRUE(r.ok()) << r.error();
  const File& f = **r;
  EXPECT_EQ(*f.get_string("general.architecture"), c.arch);
  ASSERT_EQ(f.tensors().size(), c.n_tensors);
  for (const TensorInfo& t : f.tensors()) {
    ASSERT_GE(t.data, f.bytes() + f.data_offset()) << t.name;
    ASSERT_LE(t.data + t.nbytes, f.bytes() + f.size()) << t.name;
    EXPECT_EQ((uint64_t)(t.data - f.bytes()) % f.alignment(), 0u) << t.name;
  }

  const std::string dump_path = std::string(OSPREY_TEST_DATA) + "/models/" + c.file + ".txt";
  std::ifstream dump(dump_path);
  ASSERT_TRUE(dump) << "missing " << dump_path << " (tests/scripts/dump_gguf.py makes it)";
  std::string line;
  size_t n_kv = 0, n_tensors = 0;
  while (std::getline(dump, line)) {
    std::istringstream in(line);
    std::string what;
    in >> what;
    if (what == "file_size") {
      size_t s;
      in >> s;
      ASSERT_EQ(f.size(), s) << "model file differs from the one the dump was made from";
    } else if (what == "version") {
      uint32_t v;
      in >> v;
      EXPECT_EQ(f.version(), v);
    } else if (what == "alignment") {
      uint64_t a;
      in >> a;
      EXPECT_EQ(f.alignment(), a);
    } else if (what == "data_offset") {
      uint64_t d;
      in >> d;
      EXPECT_EQ(f.data_offset(), d);
    } else if (what == "kv") {
      std::string key, type;
      in >> key >> type;
      ASSERT_LT(n_kv, f.metadata().size());
      const KeyValue& kv = f.metadata()[n_kv++];
      EXPECT_EQ(kv.key, key);
      const Value& v = kv.value;
      if (type.rfind("array:", 0) == 0) {
        EXPECT_EQ(v.type, ValueType::ARRAY) << key;
        std::string elem = type.substr(6, type.find(':', 6) - 6);
        EXPECT_EQ(value_type_name(v.elem_type), elem) << key;
        EXPECT_EQ(std::to_string(v.array.size()), type.substr(type.find(':', 6) + 1)) << key;
      } else {
        EXPECT_EQ(value_type_name(v.type), type) << key;
        if (v.type == ValueType::STRING) {
          size_t len;
          in >> len;
          EXPECT_EQ(v.s.size(), len) << key;
        } else if (v.is_float()) {
          double d;
          in >> d;
          EXPECT_EQ(v.f, d) << key;
        } else {
          int64_t want, got;
          in >> want;
          ASSERT_TRUE(v.as_int64(&got));
          EXPECT_EQ(got, want) << key;
        }
      }
    } else if (what == "tensor") {
      std::string name;
      uint32_t type;
      uint64_t offset, nbytes;
      size_t n_dims;
      in >> name >> type >> offset >> nbytes >> n_dims;
      ASSERT_LT(n_tensors, f.tensors().size());
      const TensorInfo& t = f.tensors()[n_tensors++];
      EXPECT_EQ(t.name, name);
      EXPECT_EQ((uint32_t)t.type, type) << name;
      EXPECT_EQ((uint64_t)(t.data - f.bytes()), offset) << name;
      EXPECT_EQ(t.nbytes, nbytes) << name;
      std::vector<int64_t> ne(n_dims);
      for (auto& d : ne) in >> d;
      EXPECT_EQ(t.ne, ne) << name;
    }
  }
  EXPECT_EQ(n_kv, f.metadata().size());
  EXPECT_EQ(n_tensors, f.tensors().size());
}

INSTANTIATE_TEST_SUITE_P(Real, GgufModel,
                         ::testing::Values(ModelCase{osprey::testing::kSmolLM2, "llama", 272},
                                           ModelCase{osprey::testing::kGemma3, "gemma3", 236},
                                           ModelCase{osprey::testing::kQwen25, "qwen2", 291}),
                         [](const ::testing::TestParamInfo<ModelCase>& i) {
                           return std::string(i.index == 0 ? "SmolLM2" : i.index == 1 ? "Gemma3" : "Qwen25");
                         });

// Real files through the writer: read -> write -> read keeps every key, value and tensor byte,
// and since our writer lays a file out as gguf-py does (metadata in order, tensors padded to the
// alignment), the output is byte-identical to the original.
TEST_P(GgufModel, WriterRoundTripIsLossless) {
  const ModelCase c = GetParam();
  OSPREY_REQUIRE_MODEL(path, c.file);
  auto r = File::open(path);
  ASSERT_TRUE(r.ok()) << r.error();
  const File& f = **r;
  Writer w(f.version(), f.alignment());
  for (const KeyValue& kv : f.metadata()) w.add(kv.key, kv.value);
  for (const TensorInfo& t : f.tensors()) ASSERT_TRUE(w.add_tensor(t.name, t.type, t.ne, t.data, t.nbytes).ok()) << t.name;
  TempDir tmp;
  ASSERT_TRUE(w.write(tmp.file("copy.gguf")).ok());
  auto back = File::open(tmp.file("copy.gguf"));
  ASSERT_TRUE(back.ok()) << back.error();
  const File& g = **back;
  ASSERT_EQ(g.metadata().size(), f.metadata().size());
  for (size_t i = 0; i < f.metadata().size(); ++i) {
    EXPECT_EQ(g.metadata()[i].key, f.metadata()[i].key);
    EXPECT_TRUE(same_value(g.metadata()[i].value, f.metadata()[i].value)) << f.metadata()[i].key;
  }
  ASSERT_EQ(g.tensors().size(), f.tensors().size());
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const TensorInfo &a = f.tensors()[i], &b = g.tensors()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.ne, b.ne);
    EXPECT_EQ(a.offset, b.offset) << a.name;
    ASSERT_EQ(a.nbytes, b.nbytes);
    EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0) << a.name;
  }
  ASSERT_EQ(g.size(), f.size());
  EXPECT_EQ(std::memcmp(g.bytes(), f.bytes(), f.size()), 0) << "not byte-identical to " << c.file;
}

TEST(GgufModel, TypedGettersOnSmolLM2) {
  OSPREY_REQUIRE_MODEL(path, osprey::testing::kSmolLM2);
  auto r = File::open(path);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(*(*r)->get_int("llama.block_count", 0), 30);
  EXPECT_EQ(*(*r)->get_int("llama.embedding_length", 0), 576);
  EXPECT_NEAR(*(*r)->get_float("llama.attention.layer_norm_rms_epsilon", 0), 1e-5, 1e-12);
  auto tokens = (*r)->get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.error();
  EXPECT_EQ(tokens->size(), 49152u);
  auto types = (*r)->get_int_array("tokenizer.ggml.token_type");
  ASSERT_TRUE(types.ok()) << types.error();
  EXPECT_EQ(types->size(), 49152u);
  const TensorInfo* emb = (*r)->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->ne, (std::vector<int64_t>{576, 49152}));
}

}  // namespace
