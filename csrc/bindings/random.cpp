// Bindings of the random family.
#include "common.h"

namespace fastnn_py {

void bind_random(py::module_& m) {}

}  // namespace fastnn_py
