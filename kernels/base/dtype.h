// Element types. The numeric values are GGUF's on-disk tensor type ids, so a file's type
// field maps to DType directly (after dtype_traits() says it is known).
#pragma once
#include <cstdint>

namespace osprey {

enum class DType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct DTypeTraits {
  const char* name;
  int64_t block_elems;  // elements per block (1 for plain types)
  int64_t block_bytes;  // bytes per block
  bool quantized;
};

// nullptr for an id this build does not know.
inline const DTypeTraits* dtype_traits(DType t) {
  static constexpr DTypeTraits kF32{"f32", 1, 4, false}, kF16{"f16", 1, 2, false},
      kQ4_0{"q4_0", 32, 18, true}, kQ4_1{"q4_1", 32, 20, true}, kQ5_0{"q5_0", 32, 22, true},
      // Q8_1 is 36 bytes as in ggml (block_q8_1: two halves + 32 int8); gguf-py's
      // GGML_QUANT_SIZES says 40, a leftover from when d and s were floats.
      kQ5_1{"q5_1", 32, 24, true}, kQ8_0{"q8_0", 32, 34, true}, kQ8_1{"q8_1", 32, 36, true},
      kQ2_K{"q2_k", 256, 84, true}, kQ3_K{"q3_k", 256, 110, true}, kQ4_K{"q4_k", 256, 144, true},
      kQ5_K{"q5_k", 256, 176, true}, kQ6_K{"q6_k", 256, 210, true}, kQ8_K{"q8_k", 256, 292, true},
      kIQ2_XXS{"iq2_xxs", 256, 66, true}, kIQ2_XS{"iq2_xs", 256, 74, true},
      kIQ3_XXS{"iq3_xxs", 256, 98, true}, kIQ1_S{"iq1_s", 256, 50, true},
      kIQ4_NL{"iq4_nl", 32, 18, true}, kIQ3_S{"iq3_s", 256, 110, true},
      kIQ2_S{"iq2_s", 256, 82, true}, kIQ4_XS{"iq4_xs", 256, 136, true}, kI8{"i8", 1, 1, false},
      kI16{"i16", 1, 2, false}, kI32{"i32", 1, 4, false}, kI64{"i64", 1, 8, false},
      kF64{"f64", 1, 8, false}, kIQ1_M{"iq1_m", 256, 56, true}, kBF16{"bf16", 1, 2, false},
      kTQ1_0{"tq1_0", 256, 54, true}, kTQ2_0{"tq2_0", 256, 66, true},
      kMXFP4{"mxfp4", 32, 17, true};
  switch (t) {
    case DType::F32: return &kF32;       case DType::F16: return &kF16;
    case DType::Q4_0: return &kQ4_0;     case DType::Q4_1: return &kQ4_1;
    case DType::Q5_0: return &kQ5_0;     case DType::Q5_1: return &kQ5_1;
    case DType::Q8_0: return &kQ8_0;     case DType::Q8_1: return &kQ8_1;
    case DType::Q2_K: return &kQ2_K;     case DType::Q3_K: return &kQ3_K;
    case DType::Q4_K: return &kQ4_K;     case DType::Q5_K: return &kQ5_K;
    case DType::Q6_K: return &kQ6_K;     case DType::Q8_K: return &kQ8_K;
    case DType::IQ2_XXS: return &kIQ2_XXS; case DType::IQ2_XS: return &kIQ2_XS;
    case DType::IQ3_XXS: return &kIQ3_XXS; case DType::IQ1_S: return &kIQ1_S;
    case DType::IQ4_NL: return &kIQ4_NL; case DType::IQ3_S: return &kIQ3_S;
    case DType::IQ2_S: return &kIQ2_S;   case DType::IQ4_XS: return &kIQ4_XS;
    case DType::I8: return &kI8;         case DType::I16: return &kI16;
    case DType::I32: return &kI32;       case DType::I64: return &kI64;
    case DType::F64: return &kF64;       case DType::IQ1_M: return &kIQ1_M;
    case DType::BF16: return &kBF16;     case DType::TQ1_0: return &kTQ1_0;
    case DType::TQ2_0: return &kTQ2_0;   case DType::MXFP4: return &kMXFP4;
  }
  return nullptr;
}

inline const char* dtype_name(DType t) {
  const DTypeTraits* tr = dtype_traits(t);
  return tr ? tr->name : "unknown";
}

// Bytes for a row of n elements; -1 if the type is unknown, n is not a whole number of blocks,
// or the byte count overflows int64 (n may come from an untrusted file).
inline int64_t dtype_row_bytes(DType t, int64_t n) {
  const DTypeTraits* tr = dtype_traits(t);
  if (!tr || n < 0 || n % tr->block_elems != 0) return -1;
  int64_t bytes;
  if (__builtin_mul_overflow(n / tr->block_elems, tr->block_bytes, &bytes)) return -1;
  return bytes;
}

}  // namespace osprey
