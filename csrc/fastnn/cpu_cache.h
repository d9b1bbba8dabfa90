// Cache sizes and core identity from CPUID, for the GEMM blocking.
//
// Deterministic cache parameters: leaf 4 (Intel) or leaf 0x8000001D (AMD,
// with the topology extension), one subleaf per cache: type, level, ways x
// partitions x line size x sets, and how many logical CPUs share it. Family
// and model (leaf 1, extended fields folded in) name the microarchitecture
// when a measured blocking table exists for it. Zeros where CPUID says
// nothing (non-x86 builds, or a hypervisor that hides the leaves).
#pragma once
#include <cstddef>
#include <string>

namespace fastnn {

struct CpuCaches {
  std::size_t l1d = 0, l2 = 0, l3 = 0;  // bytes, per cache instance
  int l2_sharing = 0, l3_sharing = 0;   // logical CPUs sharing it (0: unknown)
  int family = 0, model = 0;            // leaf 1, extended family/model folded in
  std::string source;                   // "cpuid leaf 4", "cpuid leaf 0x8000001d" or "none"
};

const CpuCaches& cpu_caches();

// The microarchitecture, when fastnn has a name for it ("zen4", "zen5",
// "sapphire_rapids", ...), else "" (see gemm/blocking.cpp for the tables).
std::string cpu_uarch();

}  // namespace fastnn
