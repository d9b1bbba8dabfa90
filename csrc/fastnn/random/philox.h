// Philox4x32-10 round function, header-only so every ISA file inlines it.
#pragma once
#include <cstdint>

namespace fastnn {
namespace philox {

constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // round multipliers
constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // Weyl key increments

// 10 rounds on c[0..3] in place:  (c0,c1,c2,c3) ->
// (hi(M1*c2) ^ c1 ^ k0, lo(M1*c2), hi(M0*c0) ^ c3 ^ k1, lo(M0*c0)), then k += W.
inline void block(std::uint32_t c[4], std::uint32_t k0, std::uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    const std::uint64_t p0 = std::uint64_t(kM0) * c[0];
    const std::uint64_t p1 = std::uint64_t(kM1) * c[2];
    const std::uint32_t n0 = std::uint32_t(p1 >> 32) ^ c[1] ^ k0;
    const std::uint32_t n2 = std::uint32_t(p0 >> 32) ^ c[3] ^ k1;
    c[0] = n0;
    c[1] = std::uint32_t(p1);
    c[2] = n2;
    c[3] = std::uint32_t(p0);
    k0 += kW0;
    k1 += kW1;
  }
}

}  // namespace philox
}  // namespace fastnn
