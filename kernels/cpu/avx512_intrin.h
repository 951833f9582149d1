// <immintrin.h> for the AVX-512 translation units. GCC 12's own AVX-512 headers (their
// _mm512_undefined_* self-initialisations) trip -Wuninitialized / -Wmaybe-uninitialized in
// code that inlines them, so those warnings are off for the rest of a file that includes this.
#pragma once
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
