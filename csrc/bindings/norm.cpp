// Bindings of the norm family.
#include "common.h"

namespace fastnn_py {

void bind_norm(py::module_& m) {}

}  // namespace fastnn_py
