// Reduction kernels compiled for the avx512 path.
#include "fastnn/simd/vec_avx512.h"
#define FASTNN_ISA_NS avx512
namespace fastnn::avx512 {
// 8 floats -> 8 doubles
inline Vec<double> load_wide(const float* p) { return {_mm512_cvtps_pd(_mm256_loadu_ps(p))}; }
}  // namespace fastnn::avx512
#include "fastnn/reduce/reduce_impl.h"
