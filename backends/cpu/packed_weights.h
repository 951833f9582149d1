// Weights repacked for this CPU's packed products (kernels/cpu/packed_gemm.h), kept beside
// the buffer they came from. Only memory mapped with map_host (model files, constant for the
// buffer's life) is repacked, so a cached copy can never go stale: it dies with its buffer.
// The packed copy is extra RAM, as large as the weights it replaces; the mapped originals
// are clean file pages the kernel may drop while they go unread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "backends/cpu/thread_pool.h"
#include "kernels/cpu/packed_gemm.h"

namespace osprey {

class PackedWeights {
 public:
  // The first N - N % 16 rows of the [K, N] weight at `offset` bytes into the buffer (`w`
  // points there), packed as f says; packed on first use, in parallel on the pool.
  // nullptr when out of memory (the caller keeps the unpacked path).
  const uint8_t* get(const kernels::PackedFormat& f, const uint8_t* w, size_t offset, int64_t K, int64_t N,
                     ThreadPool& pool);

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  using Key = std::tuple<size_t, const kernels::PackedFormat*, int64_t, int64_t>;
  std::mutex mu_;
  std::map<Key, std::unique_ptr<uint8_t, Free>> packed_;
};

}  // namespace osprey
