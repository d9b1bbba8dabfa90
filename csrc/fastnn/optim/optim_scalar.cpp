// Optimizer kernels compiled for the scalar path.
#include "fastnn/simd/vec_scalar.h"
#define FASTNN_ISA_NS scalar
#include "fastnn/optim/optim_impl.h"
