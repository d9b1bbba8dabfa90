// Vec<T> for AVX-512 (F, DQ, BW, VL): 16 floats or 8 doubles. Include only from
// *_avx512.cpp. See README.md for the contract; the operations are written once,
// for both x86 ISAs, in vec_x86.h. Here: what AVX-512 spells its own way.
#pragma once
#include <immintrin.h>

#include <cstddef>

#include "fastnn/simd/vec_x86.h"

namespace fastnn {
namespace avx512 {

template <class T> struct Vec;

namespace detail {
// bit i of the mask is set when i < n
template <class Mask> inline Mask tail_mask(int n) { return static_cast<Mask>((1u << n) - 1u); }
// the upper 256 bits (AVX512F extracts them as doubles)
inline __m256 upper_half(__m512 a) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)); }
inline __m256d upper_half(__m512d a) { return _mm512_extractf64x4_pd(a, 1); }
}  // namespace detail

// The hooks of vec_x86.h: AVX-512 masks are __mmask16 / __mmask8 (Vec<T>::Mask).
#define FASTNN_AVX512_LOAD_TAIL(S, p, n) _mm512_maskz_loadu_##S(detail::tail_mask<Mask>(n), p)
#define FASTNN_AVX512_STORE_TAIL(S, p, n, v) _mm512_mask_storeu_##S(p, detail::tail_mask<Mask>(n), v)
#define FASTNN_AVX512_COMPARE(S, a, b, predicate) _mm512_cmp_##S##_mask(a, b, predicate)
#define FASTNN_AVX512_BLEND(S, m, a, b) _mm512_mask_blend_##S(m, b, a)
#define FASTNN_AVX512_ROUND(S, a, mode) _mm512_roundscale_##S(a, mode)
#define FASTNN_AVX512_HALVE(op, S, a) _mm256_##op##_##S(_mm512_cast##S##512_##S##256(a), detail::upper_half(a))

FASTNN_X86_ISA(AVX512, 512, __mmask16, __mmask8)

// S x S transpose of a tile, for packing a transposed GEMM operand with vector
// stores: dst[q * ldd + i] = src[i * lds + q] for i, q < S = kTransposeTile<float>
// (0 for the types that have none: pack element by element).
inline void transpose_tile(const float* src, std::size_t lds, float* dst, std::size_t ldd) {
  __m512 u[16];
  detail::transpose_4x4_blocks(src, lds, u);
  for (int q = 0; q < 4; ++q) {  // gather the four row groups of each column
    const __m512 v0 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x88), w0 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x88);
    const __m512 v1 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xDD), w1 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xDD);
    _mm512_storeu_ps(dst + q * ldd, _mm512_shuffle_f32x4(v0, w0, 0x88));
    _mm512_storeu_ps(dst + (8 + q) * ldd, _mm512_shuffle_f32x4(v0, w0, 0xDD));
    _mm512_storeu_ps(dst + (4 + q) * ldd, _mm512_shuffle_f32x4(v1, w1, 0x88));
    _mm512_storeu_ps(dst + (12 + q) * ldd, _mm512_shuffle_f32x4(v1, w1, 0xDD));
  }
}

// Vec<double>::N floats widened to doubles (reductions accumulate float data in double).
inline Vec<double> load_wide(const float* p) { return {_mm512_cvtps_pd(_mm256_loadu_ps(p))}; }

}  // namespace avx512
}  // namespace fastnn
