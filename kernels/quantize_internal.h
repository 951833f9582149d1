// Per-type quantizers behind kernels::quantize_row (private to kernels/). Each takes n, a
// whole number of blocks, and an optional importance row of n weights.
#pragma once
#include <cstdint>

namespace osprey::kernels {

void quantize_row_q2_k(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_q3_k(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_q4_k(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_q5_k(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_q6_k(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_iq4_nl(const float* x, void* dst, int64_t n, const float* importance);
void quantize_row_iq4_xs(const float* x, void* dst, int64_t n, const float* importance);

}  // namespace osprey::kernels
