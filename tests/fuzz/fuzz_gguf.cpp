// libFuzzer target for the GGUF reader: any input must parse or fail with a message, never
// crash, read out of bounds, or hand back a tensor whose data is outside the buffer.
// Build: -DOSPREY_FUZZ=ON with clang (see CMakeLists.txt here). Run:
//   fuzz_gguf -max_total_time=300 tests/fuzz/corpus/gguf
#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/gguf.h"

namespace {

using namespace osprey::gguf;

// Trap rather than return: libFuzzer reports a trap as a crash with the input saved.
void check(bool ok) {
  if (!ok) __builtin_trap();
}

void touch_value(const Value& v, uint64_t* acc) {
  int64_t i;
  double d;
  if (v.as_int64(&i)) *acc += (uint64_t)i;
  if (v.as_double(&d)) *acc += (uint64_t)(d == d);
  *acc += v.s.size();
  for (const Value& e : v.array) {
    check(e.type == v.elem_type);
    touch_value(e, acc);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = File::parse(data, size, "fuzz");
  if (!r.ok()) {
    check(r.error().rfind("fuzz: ", 0) == 0);  // every error names its source
    return 0;
  }
  const File& f = **r;
  check(f.version() == 2 || f.version() == 3);
  check(f.alignment() != 0 && (f.alignment() & (f.alignment() - 1)) == 0);
  uint64_t acc = 0;
  for (const KeyValue& kv : f.metadata()) {
    check(f.find(kv.key) == &kv.value);  // duplicates are rejected, so the first match is this one
    acc += kv.value.to_display(3).size();
    touch_value(kv.value, &acc);
    // Typed getters must answer (value or error) for any key and any type.
    acc += f.get_string(kv.key).ok() + f.get_int(kv.key, 0).ok() + f.get_float(kv.key, 0).ok() +
           f.get_bool(kv.key, false).ok() + f.get_string_array(kv.key).ok() + f.get_int_array(kv.key).ok() +
           f.get_float_array(kv.key).ok();
  }
  for (const TensorInfo& t : f.tensors()) {
    check(f.find_tensor(t.name) == &t);
    check(t.ne.size() <= 4);
    check(t.offset % f.alignment() == 0);
    check(t.data >= f.bytes() + f.data_offset());
    check(t.nbytes <= size && t.data + t.nbytes <= f.bytes() + size);
    check(osprey::dtype_traits(t.type) != nullptr);
    for (uint64_t k = 0; k < t.nbytes; ++k) acc += t.data[k];  // ASan checks every byte
    acc += (uint64_t)t.n_elements();
  }
  volatile uint64_t sink = acc;
  (void)sink;
  return 0;
}
