// Weights repacked for this CPU's packed products (kernels/cpu/packed_gemm.h), kept beside
// the buffer they came from. Only memory mapped with map_host (model files, constant for the
// buffer's life) is repacked, so a cached copy can never go stale: it dies with its buffer.
// The packed copy is extra RAM, as large as the weights it replaces; the mapped originals
// are clean file pages the kernel may drop while they go unread. Packed tensors are carved
// from 2 MiB-aligned chunks advised for transparent huge pages: a one-token product streams
// every packed byte, and with 4 KiB pages it ran ~5% slower (1.1B Q4_K_M, session 11).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

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
  // The `bytes` bytes at `offset` (`w` points there) copied as they are into huge-page
  // memory, on first use; nullptr when out of memory.
  const uint8_t* copy(const uint8_t* w, size_t offset, size_t bytes, ThreadPool& pool);

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  struct Chunk {
    std::unique_ptr<uint8_t, Free> mem;
    size_t size = 0, used = 0;
  };
  uint8_t* allocate(size_t bytes);  // 64-byte aligned, first fit; nullptr when out of memory

  using Key = std::tuple<size_t, const kernels::PackedFormat*, int64_t, int64_t>;
  std::mutex mu_;
  std::vector<Chunk> chunks_;
  std::map<Key, const uint8_t*> packed_;
};

}  // namespace osprey
