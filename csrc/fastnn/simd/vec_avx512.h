// Vec<T> for AVX-512 (F, DQ, BW, VL): 16 floats or 8 doubles. Include only from
// *_avx512.cpp. See README.md for the contract.
#pragma once
#include <immintrin.h>

#include <cstddef>

namespace fastnn {
namespace avx512 {

template <class T> struct Vec;

namespace detail {
inline __mmask16 tail16(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
inline __mmask8 tail8(int n) { return static_cast<__mmask8>((1u << n) - 1u); }
}  // namespace detail

template <>
struct Vec<float> {
  static constexpr int N = 16;
  __m512 v;
  using Mask = __mmask16;
  static Vec set1(float x) { return {_mm512_set1_ps(x)}; }
  static Vec zero() { return {_mm512_setzero_ps()}; }
  static Vec load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static Vec load_partial(const float* p, int n) { return {_mm512_maskz_loadu_ps(detail::tail16(n), p)}; }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  void store_partial(float* p, int n) const { _mm512_mask_storeu_ps(p, detail::tail16(n), v); }
  void stream(float* p) const { _mm512_stream_ps(p, v); }  // p 64-byte aligned
};

template <>
struct Vec<double> {
  static constexpr int N = 8;
  __m512d v;
  using Mask = __mmask8;
  static Vec set1(double x) { return {_mm512_set1_pd(x)}; }
  static Vec zero() { return {_mm512_setzero_pd()}; }
  static Vec load(const double* p) { return {_mm512_loadu_pd(p)}; }
  static Vec load_partial(const double* p, int n) { return {_mm512_maskz_loadu_pd(detail::tail8(n), p)}; }
  void store(double* p) const { _mm512_storeu_pd(p, v); }
  void store_partial(double* p, int n) const { _mm512_mask_storeu_pd(p, detail::tail8(n), v); }
  void stream(double* p) const { _mm512_stream_pd(p, v); }  // p 64-byte aligned
};

// orders non-temporal stores before the stores that follow
inline void stream_fence() { _mm_sfence(); }


// S x S transpose of a tile, for packing a transposed GEMM operand with vector
// stores: dst[q * ldd + i] = src[i * lds + q] for i, q < S. kTransposeTile<T>
// is S for the types that have one (0: none, pack element by element).
template <class T> constexpr int kTransposeTile = 0;
template <> constexpr int kTransposeTile<float> = 16;
inline void transpose_tile(const float* src, std::size_t lds, float* dst, std::size_t ldd) {
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {  // pairs of rows interleaved within 128-bit lanes
    const __m512 r0 = _mm512_loadu_ps(src + i * lds), r1 = _mm512_loadu_ps(src + (i + 1) * lds);
    t[i] = _mm512_unpacklo_ps(r0, r1);
    t[i + 1] = _mm512_unpackhi_ps(r0, r1);
  }
  for (int g = 0; g < 16; g += 4) {  // u[g + q], lane L: column 4L + q of rows g..g+3
    u[g + 0] = _mm512_shuffle_ps(t[g + 0], t[g + 2], 0x44);
    u[g + 1] = _mm512_shuffle_ps(t[g + 0], t[g + 2], 0xEE);
    u[g + 2] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0x44);
    u[g + 3] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
  }
  for (int q = 0; q < 4; ++q) {  // gather the four row groups of each column
    const __m512 v0 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x88), w0 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x88);
    const __m512 v1 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xDD), w1 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xDD);
    _mm512_storeu_ps(dst + q * ldd, _mm512_shuffle_f32x4(v0, w0, 0x88));
    _mm512_storeu_ps(dst + (8 + q) * ldd, _mm512_shuffle_f32x4(v0, w0, 0xDD));
    _mm512_storeu_ps(dst + (4 + q) * ldd, _mm512_shuffle_f32x4(v1, w1, 0x88));
    _mm512_storeu_ps(dst + (12 + q) * ldd, _mm512_shuffle_f32x4(v1, w1, 0xDD));
  }
}

using VF = Vec<float>;
using VD = Vec<double>;

inline VF operator+(VF a, VF b) { return {_mm512_add_ps(a.v, b.v)}; }
inline VF operator-(VF a, VF b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline VF operator*(VF a, VF b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline VF operator/(VF a, VF b) { return {_mm512_div_ps(a.v, b.v)}; }
inline VF operator-(VF a) { return {_mm512_xor_ps(a.v, _mm512_set1_ps(-0.0f))}; }
inline VF fmadd(VF a, VF b, VF c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
inline VF fnmadd(VF a, VF b, VF c) { return {_mm512_fnmadd_ps(a.v, b.v, c.v)}; }
inline VF sqrt(VF a) { return {_mm512_sqrt_ps(a.v)}; }
inline VF abs(VF a) { return {_mm512_andnot_ps(_mm512_set1_ps(-0.0f), a.v)}; }
inline VF max(VF a, VF b) { return {_mm512_max_ps(a.v, b.v)}; }
inline VF min(VF a, VF b) { return {_mm512_min_ps(a.v, b.v)}; }
inline VF round_even(VF a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
inline VF pow2n(VF n) {
  const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127));
  return {_mm512_castsi512_ps(_mm512_slli_epi32(e, 23))};
}
inline __mmask16 lt(VF a, VF b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ); }
inline __mmask16 le(VF a, VF b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_LE_OQ); }
inline __mmask16 gt(VF a, VF b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ); }
inline __mmask16 ge(VF a, VF b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_GE_OQ); }
inline __mmask16 eq(VF a, VF b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_EQ_OQ); }
inline __mmask16 is_nan(VF a) { return _mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q); }
inline VF select(__mmask16 m, VF a, VF b) { return {_mm512_mask_blend_ps(m, b.v, a.v)}; }
inline float reduce_add(VF a) {
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a.v),
                           _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a.v), 1)));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float reduce_max(VF a) {
  __m256 h = _mm256_max_ps(_mm512_castps512_ps256(a.v),
                           _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a.v), 1)));
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline VD operator+(VD a, VD b) { return {_mm512_add_pd(a.v, b.v)}; }
inline VD operator-(VD a, VD b) { return {_mm512_sub_pd(a.v, b.v)}; }
inline VD operator*(VD a, VD b) { return {_mm512_mul_pd(a.v, b.v)}; }
inline VD operator/(VD a, VD b) { return {_mm512_div_pd(a.v, b.v)}; }
inline VD operator-(VD a) { return {_mm512_xor_pd(a.v, _mm512_set1_pd(-0.0))}; }
inline VD fmadd(VD a, VD b, VD c) { return {_mm512_fmadd_pd(a.v, b.v, c.v)}; }
inline VD fnmadd(VD a, VD b, VD c) { return {_mm512_fnmadd_pd(a.v, b.v, c.v)}; }
inline VD sqrt(VD a) { return {_mm512_sqrt_pd(a.v)}; }
inline VD abs(VD a) { return {_mm512_andnot_pd(_mm512_set1_pd(-0.0), a.v)}; }
inline VD max(VD a, VD b) { return {_mm512_max_pd(a.v, b.v)}; }
inline VD min(VD a, VD b) { return {_mm512_min_pd(a.v, b.v)}; }
inline VD round_even(VD a) { return {_mm512_roundscale_pd(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
inline VD pow2n(VD n) {
  const __m512d magic = _mm512_set1_pd(4503599627370496.0 + 1023.0);
  const __m512i bits = _mm512_castpd_si512(_mm512_add_pd(n.v, magic));
  return {_mm512_castsi512_pd(_mm512_slli_epi64(bits, 52))};
}
inline __mmask8 lt(VD a, VD b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_LT_OQ); }
inline __mmask8 le(VD a, VD b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_LE_OQ); }
inline __mmask8 gt(VD a, VD b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_GT_OQ); }
inline __mmask8 ge(VD a, VD b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_GE_OQ); }
inline __mmask8 eq(VD a, VD b) { return _mm512_cmp_pd_mask(a.v, b.v, _CMP_EQ_OQ); }
inline __mmask8 is_nan(VD a) { return _mm512_cmp_pd_mask(a.v, a.v, _CMP_UNORD_Q); }
inline VD select(__mmask8 m, VD a, VD b) { return {_mm512_mask_blend_pd(m, b.v, a.v)}; }
inline double reduce_add(VD a) {
  __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(a.v), _mm512_extractf64x4_pd(a.v, 1));
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}
inline double reduce_max(VD a) {
  __m256d h = _mm256_max_pd(_mm512_castpd512_pd256(a.v), _mm512_extractf64x4_pd(a.v, 1));
  __m128d s = _mm_max_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
  s = _mm_max_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

// Vec<double>::N floats widened to doubles (reductions accumulate float data in double).
inline Vec<double> load_wide(const float* p) { return {_mm512_cvtps_pd(_mm256_loadu_ps(p))}; }

}  // namespace avx512
}  // namespace fastnn
