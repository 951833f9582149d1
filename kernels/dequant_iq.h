// Dequantizers for the codebook formats (private to kernels/; dequantize_row dispatches to
// them). Each takes a count of 256-element blocks.
#pragma once
#include <cstdint>

namespace osprey::kernels {

void dq_iq2_xxs(const void* src, float* y, int64_t nb);
void dq_iq2_xs(const void* src, float* y, int64_t nb);
void dq_iq2_s(const void* src, float* y, int64_t nb);
void dq_iq3_xxs(const void* src, float* y, int64_t nb);
void dq_iq3_s(const void* src, float* y, int64_t nb);
void dq_iq1_s(const void* src, float* y, int64_t nb);
void dq_iq1_m(const void* src, float* y, int64_t nb);

}  // namespace osprey::kernels
