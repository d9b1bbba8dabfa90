// Bindings of the loss family.
#include "common.h"

namespace fastnn_py {

void bind_loss(py::module_& m) {}

}  // namespace fastnn_py
