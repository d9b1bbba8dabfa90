// GEMM kernels compiled for the scalar path.
#include "fastnn/simd/vec_scalar.h"
#define FASTNN_ISA_NS scalar
#include "fastnn/gemm/gemm_impl.h"
