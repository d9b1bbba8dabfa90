// Shared argument checks for the bindings. These make _core safe on its own
// (never a crash when called directly): dtype, C-contiguity, writeability and
// sizes. ops.py either validates first with friendlier messages, or (the fast
// paths of the per-step kernels) calls _core directly and, when _core rejects
// an argument, reruns its own checks to raise the documented message; such
// bindings check shapes exactly (require_vector / require_matrix) so that they
// accept exactly what ops.py accepts without copying.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <string>

namespace fastnn_py {
namespace py = pybind11;

enum class DType { f32, f64 };

inline std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// Equal dtypes, not the same dtype object: a dtype that went through copy.deepcopy
// or pickle is an equal but distinct object (numpy's ==, PyArray_EquivTypes).
inline bool same_dtype(const py::dtype& a, const py::dtype& b) {
  return py::detail::npy_api::get().PyArray_EquivTypes_(a.ptr(), b.ptr());
}

inline DType float_dtype(const py::array& a, const char* name) {
  if (same_dtype(a.dtype(), py::dtype::of<float>())) return DType::f32;
  if (same_dtype(a.dtype(), py::dtype::of<double>())) return DType::f64;
  throw py::type_error(std::string(name) + ": expected dtype float32 or float64, got " + dtype_str(a));
}

inline void require_same_dtype(const py::array& a, const py::array& b, const char* an, const char* bn) {
  if (!same_dtype(a.dtype(), b.dtype()))
    throw py::type_error(std::string(bn) + ": expected dtype " + dtype_str(a) + " (as " + an + "), got " +
                         dtype_str(b));
}

// C-contiguous and aligned: a misaligned element load is undefined behaviour (and
// auto-vectorized scalar loops may use aligned vector loads on it).
inline void require_contiguous(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": expected a C-contiguous array");
  if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw py::value_error(std::string(name) + ": expected an aligned array, got one at a misaligned address");
}

inline void require_writeable(const py::array& a, const char* name) {
  if (!a.writeable()) throw py::value_error(std::string(name) + ": expected a writeable array");
}

inline void require_size(const py::array& a, std::size_t n, const char* name) {
  if (static_cast<std::size_t>(a.size()) != n)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(n) + " elements, got " +
                          std::to_string(a.size()));
}

// A 1-D array of n elements.
inline void require_vector(const py::array& a, std::size_t n, const char* name) {
  if (a.ndim() != 1 || static_cast<std::size_t>(a.shape(0)) != n)
    throw py::value_error(std::string(name) + ": expected shape (" + std::to_string(n) + ",)");
}
// A 2-D (m, n) array.
inline void require_matrix(const py::array& a, std::size_t m, std::size_t n, const char* name) {
  if (a.ndim() != 2 || static_cast<std::size_t>(a.shape(0)) != m || static_cast<std::size_t>(a.shape(1)) != n)
    throw py::value_error(std::string(name) + ": expected shape (" + std::to_string(m) + ", " + std::to_string(n) +
                          ")");
}
// Two arrays updated in place together must not share memory.
inline void require_disjoint(const py::array& a, const py::array& b, const char* an, const char* bn) {
  const char* pa = static_cast<const char*>(a.data());
  const char* pb = static_cast<const char*>(b.data());
  if (a.nbytes() > 0 && b.nbytes() > 0 && pa < pb + b.nbytes() && pb < pa + a.nbytes())
    throw py::value_error(std::string(an) + ": must not share memory with " + bn);
}

template <class T> inline const T* cptr(const py::array& a) { return static_cast<const T*>(a.data()); }
template <class T> inline T* mptr(py::array& a) { return static_cast<T*>(a.mutable_data()); }

// Checks an input array: float dtype equal to `like`'s, C-contiguous.
inline void check_in(const py::array& a, const py::array& like, const char* name, const char* like_name) {
  float_dtype(a, name);
  require_same_dtype(like, a, like_name, name);
  require_contiguous(a, name);
}
// Checks an output array: as check_in, plus writeable.
inline void check_out(py::array& a, const py::array& like, const char* name, const char* like_name) {
  check_in(a, like, name, like_name);
  require_writeable(a, name);
}

}  // namespace fastnn_py
