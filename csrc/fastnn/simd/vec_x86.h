// The x86 Vec<T>, written once for AVX2 and AVX-512 and for float and double.
// See README.md for the contract.
//
// vec_avx2.h and vec_avx512.h each expand FASTNN_X86_ISA once, inside their own
// namespace, so every function is still compiled per ISA (no inline function
// built for one ISA is shared with another) but the two ISAs and the two lane
// types cannot drift apart. The technique is Highway's X macros
// (hwy/ops/arm_sve-inl.h): the intrinsic names follow one pattern,
// _mm<W>_<op>_<S> with W the register width in bits (256, 512) and S the
// lane suffix (ps for float, pd for double), so one macro spells them all.
//
// Where the ISAs spell an operation differently, the ISA header defines a hook
// FASTNN_<ISA>_<name> that FASTNN_X86_ISA(<ISA>, ...) calls:
//   LOAD_TAIL(S, p, n), STORE_TAIL(S, p, n, v)   lanes i < n of p, inside Vec<T>
//   COMPARE(S, a, b, predicate)                  -> the ISA's mask type
//   BLEND(S, m, a, b)                            m ? a : b, lane by lane
//   ROUND(S, a, mode)
//   HALVE(op, S, a)                              a folded to 256 bits by `op` on
//                                                its halves (AVX2: a itself)
#pragma once
#include <immintrin.h>

#include <cstddef>

// Vec<float> and Vec<double> of one ISA with their operations. MaskF and MaskD
// are what compares return (AVX2: a vector of all-ones lanes; AVX-512: __mmaskN).
#define FASTNN_X86_ISA(ISA, W, MaskF, MaskD)              \
  namespace detail {                                      \
  FASTNN_X86_REDUCE_256(add)                              \
  FASTNN_X86_REDUCE_256(max)                              \
  FASTNN_X86_TRANSPOSE_4X4_BLOCKS(W)                      \
  }                                                       \
  FASTNN_X86_VEC(ISA, W, float, ps, __m##W, MaskF)        \
  FASTNN_X86_VEC(ISA, W, double, pd, __m##W##d, MaskD)    \
  FASTNN_X86_POW2N(W)                                     \
  /* orders non-temporal stores before the stores that follow */ \
  inline void stream_fence() { _mm_sfence(); }            \
  template <class T> constexpr int kTransposeTile = 0;    \
  template <> constexpr int kTransposeTile<float> = W / 32;

// One lane type: the register, its loads and stores, and the lane-wise operations.
#define FASTNN_X86_VEC(ISA, W, T, S, Reg, MaskT)                                                       \
  template <>                                                                                           \
  struct Vec<T> {                                                                                       \
    static constexpr int N = W / (8 * static_cast<int>(sizeof(T)));                                     \
    Reg v;                                                                                              \
    using Mask = MaskT;                                                                                 \
    static Vec set1(T x) { return {_mm##W##_set1_##S(x)}; }                                             \
    static Vec zero() { return {_mm##W##_setzero_##S()}; }                                              \
    static Vec load(const T* p) { return {_mm##W##_loadu_##S(p)}; }                                     \
    static Vec load_partial(const T* p, int n) { return {FASTNN_##ISA##_LOAD_TAIL(S, p, n)}; }          \
    void store(T* p) const { _mm##W##_storeu_##S(p, v); }                                               \
    void store_partial(T* p, int n) const { FASTNN_##ISA##_STORE_TAIL(S, p, n, v); }                    \
    void stream(T* p) const { _mm##W##_stream_##S(p, v); } /* p aligned to W / 8 bytes */              \
  };                                                                                                    \
  inline Vec<T> operator+(Vec<T> a, Vec<T> b) { return {_mm##W##_add_##S(a.v, b.v)}; }                  \
  inline Vec<T> operator-(Vec<T> a, Vec<T> b) { return {_mm##W##_sub_##S(a.v, b.v)}; }                  \
  inline Vec<T> operator*(Vec<T> a, Vec<T> b) { return {_mm##W##_mul_##S(a.v, b.v)}; }                  \
  inline Vec<T> operator/(Vec<T> a, Vec<T> b) { return {_mm##W##_div_##S(a.v, b.v)}; }                  \
  inline Vec<T> operator-(Vec<T> a) { return {_mm##W##_xor_##S(a.v, _mm##W##_set1_##S(T(-0.0)))}; }    \
  inline Vec<T> fmadd(Vec<T> a, Vec<T> b, Vec<T> c) { return {_mm##W##_fmadd_##S(a.v, b.v, c.v)}; }    \
  inline Vec<T> fnmadd(Vec<T> a, Vec<T> b, Vec<T> c) { return {_mm##W##_fnmadd_##S(a.v, b.v, c.v)}; }  \
  inline Vec<T> sqrt(Vec<T> a) { return {_mm##W##_sqrt_##S(a.v)}; }                                     \
  inline Vec<T> abs(Vec<T> a) { return {_mm##W##_andnot_##S(_mm##W##_set1_##S(T(-0.0)), a.v)}; }       \
  inline Vec<T> max(Vec<T> a, Vec<T> b) { return {_mm##W##_max_##S(a.v, b.v)}; }                        \
  inline Vec<T> min(Vec<T> a, Vec<T> b) { return {_mm##W##_min_##S(a.v, b.v)}; }                        \
  inline Vec<T> round_even(Vec<T> a) {                                                                  \
    return {FASTNN_##ISA##_ROUND(S, a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};               \
  }                                                                                                     \
  inline MaskT lt(Vec<T> a, Vec<T> b) { return FASTNN_##ISA##_COMPARE(S, a.v, b.v, _CMP_LT_OQ); }       \
  inline MaskT le(Vec<T> a, Vec<T> b) { return FASTNN_##ISA##_COMPARE(S, a.v, b.v, _CMP_LE_OQ); }       \
  inline MaskT gt(Vec<T> a, Vec<T> b) { return FASTNN_##ISA##_COMPARE(S, a.v, b.v, _CMP_GT_OQ); }       \
  inline MaskT ge(Vec<T> a, Vec<T> b) { return FASTNN_##ISA##_COMPARE(S, a.v, b.v, _CMP_GE_OQ); }       \
  inline MaskT eq(Vec<T> a, Vec<T> b) { return FASTNN_##ISA##_COMPARE(S, a.v, b.v, _CMP_EQ_OQ); }       \
  inline MaskT is_nan(Vec<T> a) { return FASTNN_##ISA##_COMPARE(S, a.v, a.v, _CMP_UNORD_Q); }           \
  inline Vec<T> select(MaskT m, Vec<T> a, Vec<T> b) { return {FASTNN_##ISA##_BLEND(S, m, a.v, b.v)}; }  \
  inline T reduce_add(Vec<T> a) { return detail::reduce_add_256(FASTNN_##ISA##_HALVE(add, S, a.v)); }  \
  inline T reduce_max(Vec<T> a) { return detail::reduce_max_256(FASTNN_##ISA##_HALVE(max, S, a.v)); }

// 2^n for integral n in [min_exp, max_exp], built in the exponent field.
#define FASTNN_X86_POW2N(W)                                                                     \
  inline Vec<float> pow2n(Vec<float> n) {                                                       \
    const __m##W##i e = _mm##W##_add_epi32(_mm##W##_cvtps_epi32(n.v), _mm##W##_set1_epi32(127)); \
    return {_mm##W##_castsi##W##_ps(_mm##W##_slli_epi32(e, 23))};                               \
  }                                                                                             \
  /* n + 2^52 + 1023 holds n + 1023 in its low bits */                                          \
  inline Vec<double> pow2n(Vec<double> n) {                                                     \
    const __m##W##d magic = _mm##W##_set1_pd(4503599627370496.0 + 1023.0);                      \
    const __m##W##i bits = _mm##W##_castpd_si##W(_mm##W##_add_pd(n.v, magic));                  \
    return {_mm##W##_castsi##W##_pd(_mm##W##_slli_epi64(bits, 52))};                           \
  }

// reduce_<op>_256: the horizontal add or max of a 256-bit register, halving to 128 bits and
// then within it.
#define FASTNN_X86_REDUCE_256(op)                                                      \
  inline float reduce_##op##_256(__m256 a) {                                           \
    __m128 s = _mm_##op##_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));  \
    s = _mm_##op##_ps(s, _mm_movehl_ps(s, s));                                         \
    s = _mm_##op##_ss(s, _mm_movehdup_ps(s));                                          \
    return _mm_cvtss_f32(s);                                                           \
  }                                                                                    \
  inline double reduce_##op##_256(__m256d a) {                                         \
    __m128d s = _mm_##op##_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1)); \
    s = _mm_##op##_sd(s, _mm_unpackhi_pd(s, s));                                       \
    return _mm_cvtsd_f64(s);                                                           \
  }

// The first two steps of the ISA's S x S float tile transpose (S = W / 32, see
// transpose_tile): rows interleaved in pairs, then in fours, so that 128-bit block L
// of u[g + q] holds column 4L + q of rows g..g+3. transpose_tile gathers the blocks.
#define FASTNN_X86_TRANSPOSE_4X4_BLOCKS(W)                                                     \
  [[gnu::always_inline]] inline void transpose_4x4_blocks(const float* src, std::size_t lds, __m##W* u) { \
    constexpr int S = W / 32;                                                                  \
    __m##W t[S];                                                                               \
    for (int i = 0; i < S; i += 2) {                                                           \
      const __m##W r0 = _mm##W##_loadu_ps(src + i * lds), r1 = _mm##W##_loadu_ps(src + (i + 1) * lds); \
      t[i] = _mm##W##_unpacklo_ps(r0, r1);                                                     \
      t[i + 1] = _mm##W##_unpackhi_ps(r0, r1);                                                 \
    }                                                                                          \
    for (int g = 0; g < S; g += 4) {                                                           \
      u[g + 0] = _mm##W##_shuffle_ps(t[g + 0], t[g + 2], 0x44);                                \
      u[g + 1] = _mm##W##_shuffle_ps(t[g + 0], t[g + 2], 0xEE);                                \
      u[g + 2] = _mm##W##_shuffle_ps(t[g + 1], t[g + 3], 0x44);                                \
      u[g + 3] = _mm##W##_shuffle_ps(t[g + 1], t[g + 3], 0xEE);                                \
    }                                                                                          \
  }
