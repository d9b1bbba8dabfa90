// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11) and dropout.
//
// Element i of a stream with seed s uses word i % 4 of the Philox block with
// counter (i/4 low 32 bits, i/4 high 32 bits, 0, 0) and key (s low, s high), so
// every value depends only on (seed, i): never on threads or chunking.
// A uniform is u = (bits >> 8) * 2^-24 in [0, 1).
#pragma once
#include "fastnn/dispatch.h"
#include <array>
#include <cstddef>
#include <cstdint>

namespace fastnn {

// One Philox4x32-10 block (portable reference, used by tests and tails).
std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> ctr, std::array<std::uint32_t, 2> key);

// Inverted dropout over n values: keep x_i when u_i >= rate, then
// mask_i = 1/(1-rate) (kept) or 0, y_i = x_i * mask_i. rate in [0, 1).
// y may equal x; mask may be null (not written).
template <class T> void dropout_forward(const T* x, T* y, T* mask, std::size_t n, double rate, std::uint64_t seed);

// Per-ISA single-threaded kernel over elements [begin, end) of the stream.
// keep when (bits >> 8) >= threshold, threshold = ceil(rate * 2^24).
template <class T> struct DropoutArgs {
  const T* x; T* y; T* mask;
  std::uint32_t threshold;
  T scale;
  std::uint32_t key0, key1;
};
template <class T> using DropoutKernel = void (*)(const DropoutArgs<T>&, std::size_t begin, std::size_t end);
template <class T> struct RandomKernelsT {
  DropoutKernel<T> dropout;
};
FASTNN_DECLARE_KERNELS(RandomKernels, RandomKernelsT, random_kernels)

}  // namespace fastnn
