// Vec<T> for AVX2+FMA: 8 floats or 4 doubles. Include only from *_avx2.cpp.
// See README.md for the contract; the operations are written once, for both x86
// ISAs, in vec_x86.h. Here: what AVX2 spells its own way.
#pragma once
#include <immintrin.h>

#include <cstddef>

#include "fastnn/simd/vec_x86.h"

namespace fastnn {
namespace avx2 {

template <class T> struct Vec;

namespace detail {
// lane i of the result is all-ones when i < n: 32-bit lanes (ps), 64-bit lanes (pd)
inline __m256i lane_mask_ps(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline __m256i lane_mask_pd(int n) {
  return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
}
}  // namespace detail

// The hooks of vec_x86.h: AVX2 masks are vectors of all-ones lanes.
#define FASTNN_AVX2_LOAD_TAIL(S, p, n) _mm256_maskload_##S(p, detail::lane_mask_##S(n))
#define FASTNN_AVX2_STORE_TAIL(S, p, n, v) _mm256_maskstore_##S(p, detail::lane_mask_##S(n), v)
#define FASTNN_AVX2_COMPARE(S, a, b, predicate) _mm256_cmp_##S(a, b, predicate)
#define FASTNN_AVX2_BLEND(S, m, a, b) _mm256_blendv_##S(b, a, m)
#define FASTNN_AVX2_ROUND(S, a, mode) _mm256_round_##S(a, mode)
#define FASTNN_AVX2_HALVE(op, S, a) (a)

FASTNN_X86_ISA(AVX2, 256, __m256, __m256d)

// S x S transpose of a tile, for packing a transposed GEMM operand with vector
// stores: dst[q * ldd + i] = src[i * lds + q] for i, q < S = kTransposeTile<float>
// (0 for the types that have none: pack element by element).
inline void transpose_tile(const float* src, std::size_t lds, float* dst, std::size_t ldd) {
  __m256 u[8];
  detail::transpose_4x4_blocks(src, lds, u);
  for (int q = 0; q < 4; ++q) {
    _mm256_storeu_ps(dst + q * ldd, _mm256_permute2f128_ps(u[q], u[4 + q], 0x20));
    _mm256_storeu_ps(dst + (4 + q) * ldd, _mm256_permute2f128_ps(u[q], u[4 + q], 0x31));
  }
}

// Vec<double>::N floats widened to doubles (reductions accumulate float data in double).
inline Vec<double> load_wide(const float* p) { return {_mm256_cvtps_pd(_mm_loadu_ps(p))}; }

}  // namespace avx2
}  // namespace fastnn
