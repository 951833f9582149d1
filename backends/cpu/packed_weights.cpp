#include "backends/cpu/packed_weights.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace osprey {

uint8_t* PackedWeights::allocate(size_t bytes) {
  constexpr size_t kHuge = size_t{2} << 20, kChunk = size_t{8} << 20;
  bytes = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  for (Chunk& c : chunks_)
    if (c.size - c.used >= bytes) {
      uint8_t* p = c.mem.get() + c.used;
      c.used += bytes;
      return p;
    }
  Chunk c;
  c.size = std::max(kChunk, (bytes + kHuge - 1) / kHuge * kHuge);
  c.mem.reset((uint8_t*)std::aligned_alloc(kHuge, c.size));
  if (!c.mem) return nullptr;
#ifdef MADV_HUGEPAGE
  madvise(c.mem.get(), c.size, MADV_HUGEPAGE);  // advice only: without it, 4 KiB pages
#endif
  c.used = bytes;
  chunks_.push_back(std::move(c));
  return chunks_.back().mem.get();
}

const uint8_t* PackedWeights::get(const kernels::PackedFormat& f, const uint8_t* w, size_t offset, int64_t K,
                                  int64_t N, ThreadPool& pool) {
  std::lock_guard<std::mutex> lock(mu_);
  const Key key{offset, &f, K, N};
  if (auto it = packed_.find(key); it != packed_.end()) return it->second;
  const int64_t groups = N / kernels::kPackRows;
  const size_t gb = f.group_bytes(K), wrow = (size_t)dtype_row_bytes(f.weight, K);
  uint8_t* out = allocate(gb * (size_t)groups);
  if (!out) return nullptr;
  pool.parallel_for(groups, [&](int64_t b, int64_t e, int) {
    for (int64_t g = b; g < e; ++g) f.pack(w + (size_t)g * kernels::kPackRows * wrow, wrow, K, out + (size_t)g * gb);
  });
  return packed_[key] = out;
}

const uint8_t* PackedWeights::copy(const uint8_t* w, size_t offset, size_t bytes, ThreadPool& pool) {
  std::lock_guard<std::mutex> lock(mu_);
  const Key key{offset, nullptr, (int64_t)bytes, 0};
  if (auto it = packed_.find(key); it != packed_.end()) return it->second;
  uint8_t* out = allocate(bytes);
  if (!out) return nullptr;
  constexpr int64_t kPiece = 1 << 20;
  pool.parallel_for(((int64_t)bytes + kPiece - 1) / kPiece, [&](int64_t b, int64_t e, int) {
    const size_t lo = (size_t)(b * kPiece), hi = std::min(bytes, (size_t)(e * kPiece));
    std::memcpy(out + lo, w + lo, hi - lo);
  });
  return packed_[key] = out;
}

}  // namespace osprey
