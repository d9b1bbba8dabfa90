// fastnn._core._testing: probes for the tests (not API).
#include <pybind11/stl.h>

#include <vector>

#include "common.h"
#include "fastnn/optim/denormals.h"
#include "fastnn/parallel.h"

namespace fastnn_py {

void bind_testing(py::module_& m) {
  m.def("mxcsr_of_threads", [](int n) {
    // MXCSR seen by each thread of an OpenMP team of n (tests: nothing leaks out of a kernel call)
    if (n < 1 || n > 1024) throw py::value_error("n: expected 1..1024, got " + std::to_string(n));
    std::vector<unsigned> out(n, 0);
    {
      py::gil_scoped_release nogil;
#pragma omp parallel num_threads(n)
      out[omp_get_thread_num()] = fastnn::current_mxcsr();
    }
    return out;
  }, py::arg("n"), "MXCSR of each thread of an OpenMP team of n threads (0 on non-x86).");
  m.def("forked_after_threads", &fastnn::forked_after_threads,
        "True in a child forked after fastnn's own OpenMP team ran (threads cannot be re-enabled there).");
}

}  // namespace fastnn_py
