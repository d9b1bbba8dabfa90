// The GEMM cache blocking in force, chosen once from what CPUID reports.
//
// Micro-tiles (MR x NR) are compile-time constants per ISA and dtype
// (blocking.h). MC, KC and NC are chosen at first use:
//   - a measured table when the microarchitecture is one fastnn was tuned on:
//     AMD family 19h/1Ah with AVX-512 (Zen 4 / Zen 5): the numbers in
//     blocking.h, measured with bench/compare_gemm.py on an EPYC KVM guest
//     reporting family 19h model 11h (32 KiB L1d, 1 MiB L2, 32 MiB L3);
//   - otherwise derived from the cache sizes (cpu_cache.h) by BLIS's rules
//     (Low et al., "Analytical modeling is enough for high-performance BLIS",
//     2016), which give BLIS's own Haswell numbers (6 x 16, KC 256, MC 168)
//     from Haswell's caches (32 KiB L1d, 256 KiB L2):
//       KC: the kc x NR micro-panel of B fills half the L1d
//           (a multiple of 16 in [128, 512]);
//       MC: the mc x kc block of A fills two thirds of the L2
//           (a multiple of MR in [MR, 1024]);
//       NC: the kc x nc panel of B fills a quarter of the L3 (the L2 when
//           there is no L3; a multiple of NR in [4 NR, 8192]).
//     Intel Xeons (Sapphire Rapids: 48 KiB L1d, 2 MiB L2: avx512 float32
//     8 x 32, KC 192, MC 1024, NC 8192) get derived numbers: none of them was
//     measured on Intel hardware.
//   - blocking.h's numbers when CPUID reports no cache sizes.
#include <algorithm>
#include <type_traits>
#include <stdexcept>
#include <string>

#include "fastnn/cpu_cache.h"
#include "fastnn/gemm/blocking.h"
#include "fastnn/gemm/gemm.h"

namespace fastnn {
namespace {

template <class Blk> GemmBlockSizes table_sizes() { return {Blk::MR, Blk::NR, Blk::MC, Blk::KC, Blk::NC}; }

int round_down(long v, int multiple) { return static_cast<int>(std::max<long>(multiple, v / multiple * multiple)); }

}  // namespace

GemmBlockSizes gemm_derive_blocking(int mr, int nr, std::size_t elem, const CpuCaches& c) {
  GemmBlockSizes s{mr, nr, 0, 0, 0};
  s.kc = std::clamp(round_down(static_cast<long>(c.l1d / 2 / (nr * elem)), 16), 128, 512);
  s.mc = std::clamp(round_down(static_cast<long>(c.l2 * 2 / 3 / (s.kc * elem)), mr), mr, 1024 / mr * mr);
  const std::size_t l3 = c.l3 ? c.l3 : c.l2 * 4;
  s.nc = std::clamp(round_down(static_cast<long>(l3 / 4 / (s.kc * elem)), nr), 4 * nr, 8192 / nr * nr);
  return s;
}

namespace {

enum class Source { table, derived, defaults };

Source choose_source() {
  const CpuCaches& c = cpu_caches();
  const std::string u = cpu_uarch();
  if (u == "zen4" || u == "zen5") return Source::table;
  if (c.l1d == 0 || c.l2 == 0) return Source::defaults;
  return Source::derived;
}

// The measured table reads a transposed A in place: on the Zen 4 class guest,
// 1 thread, packing it cost 2-10% on the dW = Xᵀ·dY products of the notes' MLP
// and 15-20% where C is 10 wide (bench/compare_gemm.py; CPU time, best of 5).
// Where nothing was measured, it is packed: reading it in place was the slow
// case (0.58-0.97x the faster peer) on the Intel Xeon of
// shared/measurements/intel-xeon-2026-12-01.md.
template <class T, class Wide, class Narrow> GemmCacheBlocking choose() {
  const Source src = choose_source();
  GemmCacheBlocking b{table_sizes<Wide>(), table_sizes<Narrow>(), src != Source::table};
  if (src != Source::derived) return b;
  const CpuCaches& c = cpu_caches();
  b.wide = gemm_derive_blocking(Wide::MR, Wide::NR, sizeof(T), c);
  b.narrow = gemm_derive_blocking(Narrow::MR, Narrow::NR, sizeof(T), c);
  return b;
}

// [isa][dtype]: chosen once, then only changed by the testing hook
struct Tables {
  GemmCacheBlocking chosen[3][2], active[3][2];
  Tables() {
    chosen[0][0] = choose<float, scalar::GemmBlocking<float>, scalar::GemmBlockingNarrow<float>>();
    chosen[0][1] = choose<double, scalar::GemmBlocking<double>, scalar::GemmBlockingNarrow<double>>();
    chosen[1][0] = choose<float, avx2::GemmBlocking<float>, avx2::GemmBlockingNarrow<float>>();
    chosen[1][1] = choose<double, avx2::GemmBlocking<double>, avx2::GemmBlockingNarrow<double>>();
    chosen[2][0] = choose<float, avx512::GemmBlocking<float>, avx512::GemmBlockingNarrow<float>>();
    chosen[2][1] = choose<double, avx512::GemmBlocking<double>, avx512::GemmBlockingNarrow<double>>();
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 2; ++j) active[i][j] = chosen[i][j];
  }
};

Tables& tables() {
  static Tables t;
  return t;
}

template <class T> constexpr int dtype_index() { return std::is_same_v<T, float> ? 0 : 1; }

}  // namespace

template <class T> const GemmCacheBlocking& gemm_blocking(Isa isa) {
  return tables().active[static_cast<int>(isa)][dtype_index<T>()];
}

const char* gemm_blocking_source() {
  switch (choose_source()) {
    case Source::table: return "measured table (AMD Zen 4/5 class, blocking.h)";
    case Source::derived: return "derived from the CPUID cache sizes (not measured on this CPU)";
    default: return "built-in defaults (CPUID reported no cache sizes)";
  }
}

template <class T> void gemm_set_blocking(Isa isa, bool narrow, int mc, int kc, int nc) {
  Tables& t = tables();
  const int i = static_cast<int>(isa), j = dtype_index<T>();
  const GemmBlockSizes& chosen = narrow ? t.chosen[i][j].narrow : t.chosen[i][j].wide;
  GemmBlockSizes s = chosen;
  if (mc > 0) s.mc = mc;
  if (kc > 0) s.kc = kc;
  if (nc > 0) s.nc = nc;
  if (s.mc % s.mr != 0 || s.nc % s.nr != 0 || s.mc > (1 << 16) || s.kc > (1 << 16) || s.nc > (1 << 20))
    throw std::invalid_argument("gemm blocking: mc must be a multiple of mr = " + std::to_string(s.mr) +
                                " and nc of nr = " + std::to_string(s.nr) + " (each at most 65536, nc 2^20), got mc=" +
                                std::to_string(s.mc) + " kc=" + std::to_string(s.kc) + " nc=" + std::to_string(s.nc));
  (narrow ? t.active[i][j].narrow : t.active[i][j].wide) = s;
}

template const GemmCacheBlocking& gemm_blocking<float>(Isa);
template const GemmCacheBlocking& gemm_blocking<double>(Isa);
template void gemm_set_blocking<float>(Isa, bool, int, int, int);
template void gemm_set_blocking<double>(Isa, bool, int, int, int);

}  // namespace fastnn
