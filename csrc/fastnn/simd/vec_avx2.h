// Vec<T> for AVX2+FMA: 8 floats or 4 doubles. Include only from *_avx2.cpp.
// See README.md for the contract.
#pragma once
#include <immintrin.h>

#include <cstddef>

namespace fastnn {
namespace avx2 {

template <class T> struct Vec;

namespace detail {
// lane i of the result is all-ones when i < n
inline __m256i lane_mask32(int n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}
inline __m256i lane_mask64(int n) {
  const __m256i idx = _mm256_setr_epi64x(0, 1, 2, 3);
  return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), idx);
}
}  // namespace detail

template <>
struct Vec<float> {
  static constexpr int N = 8;
  __m256 v;
  using Mask = __m256;
  static Vec set1(float x) { return {_mm256_set1_ps(x)}; }
  static Vec zero() { return {_mm256_setzero_ps()}; }
  static Vec load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static Vec load_partial(const float* p, int n) { return {_mm256_maskload_ps(p, detail::lane_mask32(n))}; }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  void store_partial(float* p, int n) const { _mm256_maskstore_ps(p, detail::lane_mask32(n), v); }
  void stream(float* p) const { _mm256_stream_ps(p, v); }  // p 32-byte aligned
};

template <>
struct Vec<double> {
  static constexpr int N = 4;
  __m256d v;
  using Mask = __m256d;
  static Vec set1(double x) { return {_mm256_set1_pd(x)}; }
  static Vec zero() { return {_mm256_setzero_pd()}; }
  static Vec load(const double* p) { return {_mm256_loadu_pd(p)}; }
  static Vec load_partial(const double* p, int n) { return {_mm256_maskload_pd(p, detail::lane_mask64(n))}; }
  void store(double* p) const { _mm256_storeu_pd(p, v); }
  void store_partial(double* p, int n) const { _mm256_maskstore_pd(p, detail::lane_mask64(n), v); }
  void stream(double* p) const { _mm256_stream_pd(p, v); }  // p 32-byte aligned
};

// orders non-temporal stores before the stores that follow
inline void stream_fence() { _mm_sfence(); }


// S x S transpose of a tile, for packing a transposed GEMM operand with vector
// stores: dst[q * ldd + i] = src[i * lds + q] for i, q < S. kTransposeTile<T>
// is S for the types that have one (0: none, pack element by element).
template <class T> constexpr int kTransposeTile = 0;
template <> constexpr int kTransposeTile<float> = 8;
inline void transpose_tile(const float* src, std::size_t lds, float* dst, std::size_t ldd) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    const __m256 r0 = _mm256_loadu_ps(src + i * lds), r1 = _mm256_loadu_ps(src + (i + 1) * lds);
    t[i] = _mm256_unpacklo_ps(r0, r1);
    t[i + 1] = _mm256_unpackhi_ps(r0, r1);
  }
  for (int g = 0; g < 8; g += 4) {  // u[g + q], lane L: column 4L + q of rows g..g+3
    u[g + 0] = _mm256_shuffle_ps(t[g + 0], t[g + 2], 0x44);
    u[g + 1] = _mm256_shuffle_ps(t[g + 0], t[g + 2], 0xEE);
    u[g + 2] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0x44);
    u[g + 3] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
  }
  for (int q = 0; q < 4; ++q) {
    _mm256_storeu_ps(dst + q * ldd, _mm256_permute2f128_ps(u[q], u[4 + q], 0x20));
    _mm256_storeu_ps(dst + (4 + q) * ldd, _mm256_permute2f128_ps(u[q], u[4 + q], 0x31));
  }
}

using VF = Vec<float>;
using VD = Vec<double>;

inline VF operator+(VF a, VF b) { return {_mm256_add_ps(a.v, b.v)}; }
inline VF operator-(VF a, VF b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline VF operator*(VF a, VF b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline VF operator/(VF a, VF b) { return {_mm256_div_ps(a.v, b.v)}; }
inline VF operator-(VF a) { return {_mm256_xor_ps(a.v, _mm256_set1_ps(-0.0f))}; }
inline VF fmadd(VF a, VF b, VF c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline VF fnmadd(VF a, VF b, VF c) { return {_mm256_fnmadd_ps(a.v, b.v, c.v)}; }
inline VF sqrt(VF a) { return {_mm256_sqrt_ps(a.v)}; }
inline VF abs(VF a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
inline VF max(VF a, VF b) { return {_mm256_max_ps(a.v, b.v)}; }
inline VF min(VF a, VF b) { return {_mm256_min_ps(a.v, b.v)}; }
inline VF round_even(VF a) { return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
inline VF pow2n(VF n) {
  const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127));
  return {_mm256_castsi256_ps(_mm256_slli_epi32(e, 23))};
}
inline __m256 lt(VF a, VF b) { return _mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ); }
inline __m256 le(VF a, VF b) { return _mm256_cmp_ps(a.v, b.v, _CMP_LE_OQ); }
inline __m256 gt(VF a, VF b) { return _mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ); }
inline __m256 ge(VF a, VF b) { return _mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ); }
inline __m256 eq(VF a, VF b) { return _mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ); }
inline __m256 is_nan(VF a) { return _mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q); }
inline VF select(__m256 m, VF a, VF b) { return {_mm256_blendv_ps(b.v, a.v, m)}; }
inline float reduce_add(VF a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float reduce_max(VF a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline VD operator+(VD a, VD b) { return {_mm256_add_pd(a.v, b.v)}; }
inline VD operator-(VD a, VD b) { return {_mm256_sub_pd(a.v, b.v)}; }
inline VD operator*(VD a, VD b) { return {_mm256_mul_pd(a.v, b.v)}; }
inline VD operator/(VD a, VD b) { return {_mm256_div_pd(a.v, b.v)}; }
inline VD operator-(VD a) { return {_mm256_xor_pd(a.v, _mm256_set1_pd(-0.0))}; }
inline VD fmadd(VD a, VD b, VD c) { return {_mm256_fmadd_pd(a.v, b.v, c.v)}; }
inline VD fnmadd(VD a, VD b, VD c) { return {_mm256_fnmadd_pd(a.v, b.v, c.v)}; }
inline VD sqrt(VD a) { return {_mm256_sqrt_pd(a.v)}; }
inline VD abs(VD a) { return {_mm256_andnot_pd(_mm256_set1_pd(-0.0), a.v)}; }
inline VD max(VD a, VD b) { return {_mm256_max_pd(a.v, b.v)}; }
inline VD min(VD a, VD b) { return {_mm256_min_pd(a.v, b.v)}; }
inline VD round_even(VD a) { return {_mm256_round_pd(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
inline VD pow2n(VD n) {
  // n is integral and within [-1022, 1023]; 2^52+1023 trick puts n+1023 in the low bits.
  const __m256d magic = _mm256_set1_pd(4503599627370496.0 + 1023.0);
  const __m256i bits = _mm256_castpd_si256(_mm256_add_pd(n.v, magic));
  return {_mm256_castsi256_pd(_mm256_slli_epi64(bits, 52))};
}
inline __m256d lt(VD a, VD b) { return _mm256_cmp_pd(a.v, b.v, _CMP_LT_OQ); }
inline __m256d le(VD a, VD b) { return _mm256_cmp_pd(a.v, b.v, _CMP_LE_OQ); }
inline __m256d gt(VD a, VD b) { return _mm256_cmp_pd(a.v, b.v, _CMP_GT_OQ); }
inline __m256d ge(VD a, VD b) { return _mm256_cmp_pd(a.v, b.v, _CMP_GE_OQ); }
inline __m256d eq(VD a, VD b) { return _mm256_cmp_pd(a.v, b.v, _CMP_EQ_OQ); }
inline __m256d is_nan(VD a) { return _mm256_cmp_pd(a.v, a.v, _CMP_UNORD_Q); }
inline VD select(__m256d m, VD a, VD b) { return {_mm256_blendv_pd(b.v, a.v, m)}; }
inline double reduce_add(VD a) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a.v), _mm256_extractf128_pd(a.v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}
inline double reduce_max(VD a) {
  __m128d s = _mm_max_pd(_mm256_castpd256_pd128(a.v), _mm256_extractf128_pd(a.v, 1));
  s = _mm_max_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

// Vec<double>::N floats widened to doubles (reductions accumulate float data in double).
inline Vec<double> load_wide(const float* p) { return {_mm256_cvtps_pd(_mm_loadu_ps(p))}; }

}  // namespace avx2
}  // namespace fastnn
