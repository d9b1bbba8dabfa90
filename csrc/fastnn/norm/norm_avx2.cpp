// BatchNorm kernels compiled for the avx2 path.
#include "fastnn/simd/vec_avx2.h"
#define FASTNN_ISA_NS avx2
#include "fastnn/norm/norm_impl.h"
