// BatchNorm kernels compiled for the avx512 path.
#include "fastnn/simd/vec_avx512.h"
#define FASTNN_ISA_NS avx512
#include "fastnn/norm/norm_impl.h"
