// BatchNorm kernels compiled for the scalar path.
#include "fastnn/simd/vec_scalar.h"
#define FASTNN_ISA_NS scalar
#include "fastnn/norm/norm_impl.h"
