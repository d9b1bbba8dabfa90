// Bindings of the gemm family.
#include "common.h"

namespace fastnn_py {

void bind_gemm(py::module_& m) {}

}  // namespace fastnn_py
