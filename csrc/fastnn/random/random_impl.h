// Per-ISA dropout kernel. Included once by random_{scalar,avx2,avx512}.cpp.
// An ISA file may define FASTNN_PHILOX_GROUP_SIMD and provide
//   void philox_group(std::uint64_t block0, std::uint32_t k0, std::uint32_t k1, std::uint32_t* out)
// writing the 4*kGroup words of blocks block0 .. block0+kGroup-1 in element order;
// otherwise the portable round function is used.
#pragma once
#include <cstddef>
#include <cstdint>

#include "fastnn/random/philox.h"
#include "fastnn/random/random.h"

namespace fastnn {
namespace FASTNN_ISA_NS {

constexpr std::size_t kGroupBlocks = 16;              // Philox blocks per inner step
constexpr std::size_t kGroupElems = 4 * kGroupBlocks;  // 64 values

#ifndef FASTNN_PHILOX_GROUP_SIMD
inline void philox_group(std::uint64_t block0, std::uint32_t k0, std::uint32_t k1, std::uint32_t* out) {
  for (std::size_t j = 0; j < kGroupBlocks; ++j) {
    const std::uint64_t b = block0 + j;
    std::uint32_t c[4] = {std::uint32_t(b), std::uint32_t(b >> 32), 0u, 0u};
    philox::block(c, k0, k1);
    for (int w = 0; w < 4; ++w) out[4 * j + w] = c[w];
  }
}
#endif

// y_i = x_i * mask_i for the `cnt` values starting at element e0, from their words.
template <class T>
inline void apply_mask(const DropoutArgs<T>& a, std::size_t e0, const std::uint32_t* bits, std::size_t cnt) {
  const T scale = a.scale;
  const std::uint32_t thr = a.threshold;
  if (a.mask) {
    for (std::size_t j = 0; j < cnt; ++j) {
      const T mk = (bits[j] >> 8) >= thr ? scale : T(0);
      a.mask[e0 + j] = mk;
      a.y[e0 + j] = a.x[e0 + j] * mk;
    }
  } else {
    for (std::size_t j = 0; j < cnt; ++j) {
      const T mk = (bits[j] >> 8) >= thr ? scale : T(0);
      a.y[e0 + j] = a.x[e0 + j] * mk;
    }
  }
}

template <class T>
void dropout_kernel(const DropoutArgs<T>& a, std::size_t begin, std::size_t end) {
  alignas(64) std::uint32_t bits[kGroupElems];
  std::size_t e = begin;
  // leading values up to a group boundary (group = 64 elements)
  while (e < end) {
    const std::size_t g0 = e / kGroupElems * kGroupElems;  // first element of e's group
    philox_group(g0 / 4, a.key0, a.key1, bits);
    const std::size_t stop = g0 + kGroupElems < end ? g0 + kGroupElems : end;
    apply_mask(a, e, bits + (e - g0), stop - e);
    e = stop;
  }
}

const RandomKernels random_kernels = {{&dropout_kernel<float>}, {&dropout_kernel<double>}};

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
