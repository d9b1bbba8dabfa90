// Cycle-level A/B of the float32 activation kernels (csrc/fastnn/eltwise/act_impl.h),
// without Python: times act_forward_range / act_backward_range over 8192 floats that
// stay in L1/L2, keeping the fastest of 3000 runs (robust on a shared machine).
// Build one binary per version and ISA, e.g. (OLD = a directory holding the old
// fastnn/simd/vecmath_impl.h, searched before csrc/):
//   g++ -O3 -std=c++17 -fno-math-errno -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma -mavx2 \
//     -DISA_HEADER='"fastnn/simd/vec_avx512.h"' -DISA_NS=avx512 [-I OLD] -Icsrc \
//     bench/act_kernel_ab.cpp -o /tmp/act_avx512
// and run them alternately; prints ns/element per kernel.
#include ISA_HEADER
#define FASTNN_ISA_NS ISA_NS
#include "fastnn/eltwise/act_impl.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>
#include <algorithm>
using namespace fastnn;
int main(int argc, char** argv) {
  const int n = 8192;
  std::vector<float> x(n), y(n), dy(n, 1.0f);
  std::mt19937 g(0); std::normal_distribution<float> d(0.f, 2.f);
  for (auto& v : x) v = d(g);
  const char* names[] = {"tanh", "sigmoid", "swish", "elu", "tanh_grad", "sigmoid_grad", "swish_grad"};
  for (int k = 0; k < 7; ++k) {
    double best = 1e30;
    for (int rep = 0; rep < 3000; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      switch (k) {
        case 0: ISA_NS::act_forward_range<float>(Act::tanh, x.data(), y.data(), n, 0.f); break;
        case 1: ISA_NS::act_forward_range<float>(Act::sigmoid, x.data(), y.data(), n, 0.f); break;
        case 2: ISA_NS::act_forward_range<float>(Act::swish, x.data(), y.data(), n, 0.f); break;
        case 3: ISA_NS::act_forward_range<float>(Act::elu, x.data(), y.data(), n, 1.f); break;
        case 4: ISA_NS::act_backward_range<float>(Act::tanh, dy.data(), x.data(), nullptr, y.data(), n, 0.f); break;
        case 5: ISA_NS::act_backward_range<float>(Act::sigmoid, dy.data(), x.data(), nullptr, y.data(), n, 0.f); break;
        case 6: ISA_NS::act_backward_range<float>(Act::swish, dy.data(), x.data(), nullptr, y.data(), n, 0.f); break;
      }
      auto t1 = std::chrono::steady_clock::now();
      best = std::min(best, std::chrono::duration<double, std::nano>(t1 - t0).count() / n);
    }
    printf("%s %.4f\n", names[k], best);
  }
  return (int)y[0] & 0;
}
