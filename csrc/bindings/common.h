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
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

namespace fastnn_py {
namespace py = pybind11;

enum class DType { f32, f64 };

inline std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }
// A number in messages as Python writes it (1e-50, not 0.000000).
inline std::string num(double v) { return py::repr(py::float_(v)).cast<std::string>(); }

// A shape as Python writes it: (2, 3), (4,).
inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

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

// Exactly dtype `dt` (int64 ids, uint64 seeds, float64 rates...), then C-contiguous.
inline void require_dtype(const py::array& a, const py::dtype& dt, const char* name) {
  if (!same_dtype(a.dtype(), dt))
    throw py::type_error(std::string(name) + ": expected dtype " + py::str(dt).cast<std::string>() + ", got " +
                         dtype_str(a));
  require_contiguous(a, name);
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
// ---- overlap between arguments (the one place this is checked) ------------------
// Kernels read their inputs while they write their outputs, so memory shared
// between an input and an output is a hazard unless the kernel is written for
// that exact alias. The policy, for every op:
//  * arrays the kernel writes (outputs, in-place parameters and state) must be
//    pairwise disjoint: any shared byte is refused, naming both (require_disjoint);
//  * an input that shares memory with an output is copied first, as NumPy does
//    (detach_input), except the one exact alias the op's contract allows (the
//    same data, size and dtype: out=x), which the kernel handles in place.
enum class Overlap { none, same, partial };

// The bytes of an array (computed once per array: nbytes() is not free).
struct Span {
  const char* p = nullptr;
  std::size_t n = 0;
};
// (a.nbytes() builds a dtype object per call; this reads the element size as
// py::dtype::itemsize does, without one: these checks run on every kernel call.)
inline std::size_t elsize(const py::array& a) {
  const auto* descr = py::detail::array_proxy(a.ptr())->descr;
  if (py::detail::npy_api::get().PyArray_RUNTIME_VERSION_ < 0x12)
    return static_cast<std::size_t>(py::detail::array_descriptor1_proxy(descr)->elsize);
  return static_cast<std::size_t>(py::detail::array_descriptor2_proxy(descr)->elsize);
}
inline Span span_of(const py::array& a) {
  return {static_cast<const char*>(a.data()), static_cast<std::size_t>(a.size()) * elsize(a)};
}

inline Overlap overlap(Span a, Span b) {
  if (a.n == 0 || b.n == 0 || !(a.p < b.p + b.n && b.p < a.p + a.n)) return Overlap::none;
  return a.p == b.p && a.n == b.n ? Overlap::same : Overlap::partial;
}
inline bool overlaps(const py::array& a, const py::array& b) { return overlap(span_of(a), span_of(b)) != Overlap::none; }

// An argument by name and its bytes; a null array stands for an absent optional argument.
struct Named {
  const py::array* a;
  const char* name;
  Span s;
  Named(const py::array* arr, const char* nm) : a(arr), name(nm), s(arr ? span_of(*arr) : Span{}) {}
};

// Two arrays the kernel writes must not share memory; the error names b first.
inline void require_disjoint(const py::array& a, const py::array& b, const char* an, const char* bn) {
  if (overlaps(a, b)) throw py::value_error(std::string(bn) + ": must not share memory with " + an);
}
// Every pair of the written arrays `outs` disjoint; names the later one of a pair first.
inline void require_disjoint(std::initializer_list<Named> outs) {
  for (auto i = outs.begin(); i != outs.end(); ++i)
    for (auto j = outs.begin(); j != i; ++j)
      if (i->a && j->a && overlap(i->s, j->s) != Overlap::none)
        throw py::value_error(std::string(i->name) + ": must not share memory with " + j->name);
}

// A C-contiguous copy of a, same dtype and shape.
inline py::array fresh_copy(const py::array& a) {
  py::array c(a.dtype(), std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
  if (a.nbytes()) {
    void* dst = c.mutable_data();
    const void* src = a.data();
    const std::size_t n = static_cast<std::size_t>(a.nbytes());
    py::gil_scoped_release nogil;  // a copy of a large array is a kernel too
    std::memcpy(dst, src, n);
  }
  return c;
}

// Replaces the input `in` by a copy when it shares memory with one of the written
// arrays `outs` (reading it while they are written would give wrong numbers), except
// an exact alias of `same_ok` (the alias the op's contract allows).
inline void detach_input(py::array& in, std::initializer_list<Named> outs, const py::array* same_ok = nullptr) {
  const Span s = span_of(in);
  for (const Named& o : outs) {
    if (!o.a) continue;
    const Overlap ov = overlap(s, o.s);
    if (ov == Overlap::none || (ov == Overlap::same && o.a == same_ok)) continue;
    in = fresh_copy(in);
    return;
  }
}
// Refuses an input that shares memory with a written array (ops whose contract says
// the output never overlaps the inputs); the error names the output.
inline void require_no_overlap(const py::array& in, const py::array& out, const char* in_name, const char* out_name) {
  if (overlaps(in, out)) throw py::value_error(std::string(out_name) + ": must not overlap " + in_name);
}

// Calls f(T{}) with T = float or double for the dtype: the one place the float and
// double instantiations of a binding are spelled.
template <class F> decltype(auto) visit_float(DType dt, F&& f) {
  if (dt == DType::f32) return f(float{});
  return f(double{});
}

template <class T> inline const T* cptr(const py::array& a) { return static_cast<const T*>(a.data()); }
template <class T> inline T* mptr(py::array& a) { return static_cast<T*>(a.mutable_data()); }

// An output taken as an object rather than an array argument, so that one that is not an
// array is named (after the checks of the inputs) instead of failing the overload match.
inline py::array array_arg(const py::object& o, const char* name) {
  if (!py::isinstance<py::array>(o))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray, got " +
                         py::str(py::type::handle_of(o).attr("__name__")).cast<std::string>());
  return py::reinterpret_borrow<py::array>(o);
}

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
