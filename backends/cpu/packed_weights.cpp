#include "backends/cpu/packed_weights.h"

#include <cstdlib>

namespace osprey {

const uint8_t* PackedWeights::get(const kernels::PackedFormat& f, const uint8_t* w, size_t offset, int64_t K,
                                  int64_t N, ThreadPool& pool) {
  std::lock_guard<std::mutex> lock(mu_);
  const Key key{offset, &f, K, N};
  if (auto it = packed_.find(key); it != packed_.end()) return it->second.get();
  const int64_t groups = N / kernels::kPackRows;
  const size_t gb = f.group_bytes(K), wrow = (size_t)dtype_row_bytes(f.weight, K);
  const size_t bytes = (gb * (size_t)groups + 63) / 64 * 64;
  std::unique_ptr<uint8_t, Free> dst((uint8_t*)std::aligned_alloc(64, bytes ? bytes : 64));
  if (!dst) return nullptr;
  uint8_t* out = dst.get();
  pool.parallel_for(groups, [&](int64_t b, int64_t e, int) {
    for (int64_t g = b; g < e; ++g) f.pack(w + (size_t)g * kernels::kPackRows * wrow, wrow, K, out + (size_t)g * gb);
  });
  return (packed_[key] = std::move(dst)).get();
}

}  // namespace osprey
