// Bindings of the optim family.
#include "common.h"

namespace fastnn_py {

void bind_optim(py::module_& m) {}

}  // namespace fastnn_py
