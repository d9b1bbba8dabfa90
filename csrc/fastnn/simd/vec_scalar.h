// Vec<T> for the scalar path: one lane. See README.md for the contract.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstring>

namespace fastnn {
namespace scalar {

template <class T>
struct Vec {
  static constexpr int N = 1;
  T v;
  using Mask = bool;
  static Vec set1(T x) { return {x}; }
  static Vec zero() { return {T(0)}; }
  static Vec load(const T* p) { return {*p}; }
  static Vec load_partial(const T* p, int n) { return {n > 0 ? *p : T(0)}; }
  void store(T* p) const { *p = v; }
  void store_partial(T* p, int n) const { if (n > 0) *p = v; }
  void stream(T* p) const { *p = v; }
};

inline void stream_fence() {}

// S x S tile transpose for packing (see vec_avx512.h); the scalar path has
// none: kTransposeTile is 0 and packing moves element by element.
template <class T> constexpr int kTransposeTile = 0;
template <class T> void transpose_tile(const T* src, std::size_t lds, T* dst, std::size_t ldd) = delete;

template <class T> inline Vec<T> operator+(Vec<T> a, Vec<T> b) { return {a.v + b.v}; }
template <class T> inline Vec<T> operator-(Vec<T> a, Vec<T> b) { return {a.v - b.v}; }
template <class T> inline Vec<T> operator*(Vec<T> a, Vec<T> b) { return {a.v * b.v}; }
template <class T> inline Vec<T> operator/(Vec<T> a, Vec<T> b) { return {a.v / b.v}; }
template <class T> inline Vec<T> operator-(Vec<T> a) { return {-a.v}; }
template <class T> inline Vec<T> fmadd(Vec<T> a, Vec<T> b, Vec<T> c) { return {a.v * b.v + c.v}; }
template <class T> inline Vec<T> fnmadd(Vec<T> a, Vec<T> b, Vec<T> c) { return {c.v - a.v * b.v}; }
template <class T> inline Vec<T> sqrt(Vec<T> a) { return {std::sqrt(a.v)}; }
template <class T> inline Vec<T> abs(Vec<T> a) { return {std::fabs(a.v)}; }
// x86 semantics: the second operand when either is NaN.
template <class T> inline Vec<T> max(Vec<T> a, Vec<T> b) { return {a.v > b.v ? a.v : b.v}; }
template <class T> inline Vec<T> min(Vec<T> a, Vec<T> b) { return {a.v < b.v ? a.v : b.v}; }
template <class T> inline Vec<T> round_even(Vec<T> a) { return {std::nearbyint(a.v)}; }
template <class T> inline Vec<T> pow2n(Vec<T> n) { return {std::ldexp(T(1), static_cast<int>(n.v))}; }
template <class T> inline bool lt(Vec<T> a, Vec<T> b) { return a.v < b.v; }
template <class T> inline bool le(Vec<T> a, Vec<T> b) { return a.v <= b.v; }
template <class T> inline bool gt(Vec<T> a, Vec<T> b) { return a.v > b.v; }
template <class T> inline bool ge(Vec<T> a, Vec<T> b) { return a.v >= b.v; }
template <class T> inline bool eq(Vec<T> a, Vec<T> b) { return a.v == b.v; }
template <class T> inline bool is_nan(Vec<T> a) { return a.v != a.v; }
template <class T> inline Vec<T> select(bool m, Vec<T> a, Vec<T> b) { return m ? a : b; }
template <class T> inline T reduce_add(Vec<T> a) { return a.v; }
template <class T> inline T reduce_max(Vec<T> a) { return a.v; }

// Vec<double>::N floats widened to doubles (reductions accumulate float data in double).
inline Vec<double> load_wide(const float* p) { return {double(*p)}; }

}  // namespace scalar
}  // namespace fastnn
