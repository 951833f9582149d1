// Copying quant blocks in and out of tensor data (private to kernels/). Tensor data in a GGUF
// is only guaranteed byte-aligned relative to a block, and reading a uint16_t/float field
// through a misaligned struct pointer is undefined behaviour, so blocks travel by memcpy.
#pragma once
#include <cstdint>
#include <cstring>

namespace osprey::kernels {

template <class Block>
Block load_block(const void* src, int64_t i) {
  Block b;
  std::memcpy(&b, static_cast<const uint8_t*>(src) + i * (int64_t)sizeof(Block), sizeof(Block));
  return b;
}

template <class Block>
void store_block(void* dst, int64_t i, const Block& b) {
  std::memcpy(static_cast<uint8_t*>(dst) + i * (int64_t)sizeof(Block), &b, sizeof(Block));
}

}  // namespace osprey::kernels
