// Dispatch and threading for Philox dropout (baseline ISA).
#include "fastnn/random/random.h"

#include <cassert>

#include <cmath>
#include <stdexcept>
#include <string>

#include "fastnn/cpu.h"
#include "fastnn/parallel.h"
#include "fastnn/random/philox.h"

namespace fastnn {
namespace {

template <class T> DropoutKernel<T> kernel_for() {
  return FASTNN_KERNELS(T, random_kernels).dropout;
}

// Minimum elements per thread for dropout (Philox costs ~10 rounds per 4 values).
constexpr std::size_t kGrain = 1 << 14;

}  // namespace

std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> ctr, std::array<std::uint32_t, 2> key) {
  philox::block(ctr.data(), key[0], key[1]);
  return ctr;
}

template <class T> void dropout_forward(const T* x, T* y, T* mask, std::size_t n, double rate, std::uint64_t seed) {
  assert(rate >= 0.0 && rate < 1.0);  // checked by the binding
  DropoutArgs<T> a{};
  a.x = x;
  a.y = y;
  a.mask = mask;
  // u = k * 2^-24 >= rate  <=>  k >= ceil(rate * 2^24)  (exact: scaling by 2^24 is exact)
  a.threshold = static_cast<std::uint32_t>(std::ceil(rate * 16777216.0));
  a.scale = T(1.0 / (1.0 - rate));
  a.key0 = static_cast<std::uint32_t>(seed);
  a.key1 = static_cast<std::uint32_t>(seed >> 32);
  const auto fn = kernel_for<T>();
  parallel_for(n, kGrain, [&](std::size_t b, std::size_t e) { fn(a, b, e); });
}

template void dropout_forward<float>(const float*, float*, float*, std::size_t, double, std::uint64_t);
template void dropout_forward<double>(const double*, double*, double*, std::size_t, double, std::uint64_t);

}  // namespace fastnn
