// Binding of the row gather: take_rows(x, indices, out), the trainer's shuffled batch.
#include "fastnn/gather/gather.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "common.h"

namespace fastnn_py {

namespace {

std::string shape_str(const std::vector<py::ssize_t>& s) {
  std::string r = "(";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

// The rows are copied as bytes: any fixed-size dtype, except one holding Python objects
// (copying their pointers would skip the reference counts).
void check_rows_source(const py::array& x) {
  constexpr std::uint64_t kHasObject = 0x01;  // NPY_ITEM_HASOBJECT (NPY_ITEM_REFCOUNT)
  if (x.dtype().flags() & kHasObject)
    throw py::type_error("x: expected a dtype of fixed-size values, got " + dtype_str(x) + " (Python objects)");
  if (x.ndim() < 1) throw py::value_error("x: expected at least 1 dimension (rows first), got a 0-d array");
  require_contiguous(x, "x");
}

// int32 or int64 indices, 1-D, C-contiguous; returns true for int64.
bool check_indices(const py::array& idx) {
  const bool i64 = same_dtype(idx.dtype(), py::dtype::of<std::int64_t>());
  if (!i64 && !same_dtype(idx.dtype(), py::dtype::of<std::int32_t>()))
    throw py::type_error("indices: expected dtype int64 or int32, got " + dtype_str(idx));
  if (idx.ndim() != 1)
    throw py::value_error("indices: expected 1 dimension, got " + std::to_string(idx.ndim()));
  require_contiguous(idx, "indices");
  return i64;
}

// Every index in [0, n): checked before anything is written (a refused call leaves out as it was).
template <class I> void check_range(const py::array& idx, std::int64_t n) {
  const I* p = static_cast<const I*>(idx.data());
  const std::ptrdiff_t bad = fastnn::first_index_out_of_range<I>(p, idx.size(), n);
  if (bad >= 0)
    throw py::value_error("indices: expected values in [0, " + std::to_string(n) + ") (the rows of x), got " +
                          std::to_string(static_cast<long long>(p[bad])) + " at position " + std::to_string(bad) +
                          (p[bad] < 0 ? " (negative indices are refused, not counted from the end)" : ""));
}

void take_rows(py::array x, py::array indices, py::array out) {
  check_rows_source(x);
  const bool i64 = check_indices(indices);
  require_same_dtype(x, out, "x", "out");
  std::vector<py::ssize_t> want(x.shape(), x.shape() + x.ndim());
  want[0] = indices.shape(0);
  if (!std::equal(want.begin(), want.end(), out.shape(), out.shape() + out.ndim()))
    throw py::value_error("out: expected shape " + shape_str(want) + " (len(indices) rows of x), got " +
                          shape_str(std::vector<py::ssize_t>(out.shape(), out.shape() + out.ndim())));
  require_contiguous(out, "out");
  require_writeable(out, "out");
  require_no_overlap(x, out, "x", "out");
  require_no_overlap(indices, out, "indices", "out");
  const std::int64_t n = x.shape(0);
  if (i64) check_range<std::int64_t>(indices, n);
  else check_range<std::int32_t>(indices, n);
  const std::size_t k = indices.shape(0);
  const std::size_t row_bytes = k ? static_cast<std::size_t>(out.size() / k) * elsize(out) : 0;
  const char* src = static_cast<const char*>(x.data());
  char* dst = static_cast<char*>(out.mutable_data());
  py::gil_scoped_release nogil;
  if (i64) fastnn::take_rows<std::int64_t>(src, n, cptr<std::int64_t>(indices), k, row_bytes, dst);
  else fastnn::take_rows<std::int32_t>(src, n, cptr<std::int32_t>(indices), k, row_bytes, dst);
}

}  // namespace

void bind_gather(py::module_& m) {
  m.def("take_rows", &take_rows, py::arg("x"), py::arg("indices"), py::arg("out"),
        "out[r] = x[indices[r]] for the rows (first axis) of x; every index in [0, len(x)), checked before "
        "anything is written; out must not overlap x or indices.");
}

}  // namespace fastnn_py
