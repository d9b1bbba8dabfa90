// Reduction kernels compiled for the scalar path.
#include "fastnn/simd/vec_scalar.h"
#define FASTNN_ISA_NS scalar
namespace fastnn::scalar {
inline Vec<double> load_wide(const float* p) { return {double(*p)}; }
}  // namespace fastnn::scalar
#include "fastnn/reduce/reduce_impl.h"
