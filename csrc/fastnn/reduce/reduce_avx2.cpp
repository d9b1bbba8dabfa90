// Reduction kernels compiled for the avx2 path.
#include "fastnn/simd/vec_avx2.h"
#define FASTNN_ISA_NS avx2
namespace fastnn::avx2 {
// 4 floats -> 4 doubles
inline Vec<double> load_wide(const float* p) { return {_mm256_cvtps_pd(_mm_loadu_ps(p))}; }
}  // namespace fastnn::avx2
#include "fastnn/reduce/reduce_impl.h"
