// libFuzzer target for the safetensors header parser: any input must parse or fail with a
// message, never crash, read out of bounds, or hand back a tensor whose bytes are outside the
// buffer or overlap another's. Build: -DOSPREY_FUZZ=ON with clang. Run:
//   fuzz_safetensors -max_total_time=300 tests/fuzz/corpus/safetensors
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "formats/safetensors.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace osprey::safetensors;
  auto r = File::parse(data, size, "fuzz");
  if (!r.ok()) {
    check(r.error().rfind("fuzz: ", 0) == 0);  // every error names its source
    return 0;
  }
  const File& f = **r;
  uint64_t acc = 0;
  const uint8_t* prev_end = nullptr;
  for (const TensorInfo& t : f.tensors()) {
    check(f.find(t.name) == &t);
    check(t.data >= data && t.nbytes <= size && t.data + t.nbytes <= data + size);
    check(t.nbytes == (uint64_t)t.n_elements() * dtype_size(t.dtype));
    if (prev_end && t.nbytes) check(t.data >= prev_end);  // sorted by offset, no overlap
    if (t.nbytes) prev_end = t.data + t.nbytes;
    for (uint64_t k = 0; k < t.nbytes; ++k) acc += t.data[k];  // ASan checks every byte
    if (dtype_is_float(t.dtype) && t.n_elements() <= (1 << 20)) {
      std::vector<float> v((size_t)t.n_elements());
      check(to_f32(t, v.data()).ok());
    }
  }
  for (const auto& [k, v] : f.metadata()) acc += k.size() + v.size();
  volatile uint64_t sink = acc;
  (void)sink;
  return 0;
}
