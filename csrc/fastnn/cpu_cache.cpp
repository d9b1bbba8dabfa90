#include "fastnn/cpu_cache.h"

#include "fastnn/cpu.h"

#if defined(FASTNN_X86)
#include <cpuid.h>
#endif

namespace fastnn {
namespace {

#if defined(FASTNN_X86)
// Walks the subleaves of a deterministic-cache-parameters leaf (4 or 0x8000001D).
bool read_cache_leaf(unsigned int leaf, CpuCaches& c) {
  bool any = false;
  for (unsigned int sub = 0; sub < 16; ++sub) {
    unsigned int a = 0, b = 0, cx = 0, d = 0;
    __cpuid_count(leaf, sub, a, b, cx, d);
    const unsigned int type = a & 0x1f;  // 0: no more caches, 1 data, 2 instruction, 3 unified
    if (type == 0) break;
    if (type == 2) continue;
    const unsigned int level = (a >> 5) & 0x7;
    const int sharing = static_cast<int>(((a >> 14) & 0xfff) + 1);
    const std::size_t ways = ((b >> 22) & 0x3ff) + 1, parts = ((b >> 12) & 0x3ff) + 1, line = (b & 0xfff) + 1;
    const std::size_t sets = static_cast<std::size_t>(cx) + 1;
    const std::size_t bytes = ways * parts * line * sets;
    if (level == 1) c.l1d = bytes;
    if (level == 2) { c.l2 = bytes; c.l2_sharing = sharing; }
    if (level == 3) { c.l3 = bytes; c.l3_sharing = sharing; }
    any = true;
  }
  return any;
}
#endif

CpuCaches detect_caches() {
  CpuCaches c;
  c.source = "none";
#if defined(FASTNN_X86)
  unsigned int a = 0, b = 0, cx = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &cx, &d)) return c;
  const unsigned int max_leaf = a;
  __get_cpuid(1, &a, &b, &cx, &d);
  const int base_family = static_cast<int>((a >> 8) & 0xf), base_model = static_cast<int>((a >> 4) & 0xf);
  c.family = base_family == 0xf ? base_family + static_cast<int>((a >> 20) & 0xff) : base_family;
  c.model = (base_family == 0x6 || base_family == 0xf) ? (static_cast<int>((a >> 16) & 0xf) << 4) | base_model
                                                       : base_model;
  const bool amd = cpu_features().vendor == "AuthenticAMD" || cpu_features().vendor == "HygonGenuine";
  unsigned int ext = 0;
  __get_cpuid(0x80000000, &ext, &b, &cx, &d);
  if (amd && ext >= 0x8000001D) {
    __get_cpuid(0x80000001, &a, &b, &cx, &d);
    const bool topoext = cx & (1u << 22);
    if (topoext && read_cache_leaf(0x8000001D, c)) c.source = "cpuid leaf 0x8000001d";
  }
  if (c.source == "none" && !amd && max_leaf >= 4 && read_cache_leaf(4, c)) c.source = "cpuid leaf 4";
#endif
  return c;
}

}  // namespace

const CpuCaches& cpu_caches() {
  static const CpuCaches c = detect_caches();
  return c;
}

std::string cpu_uarch() {
  const CpuCaches& c = cpu_caches();
  const std::string& v = cpu_features().vendor;
  if (v == "AuthenticAMD") {
    if (c.family == 0x1a) return "zen5";
    if (c.family == 0x19 && ((c.model >= 0x10 && c.model <= 0x1f) || (c.model >= 0x60 && c.model <= 0xaf)))
      return "zen4";
    if (c.family == 0x19) return "zen3";
  }
  if (v == "GenuineIntel" && c.family == 6) {
    switch (c.model) {
      case 0x8f: return "sapphire_rapids";
      case 0xcf: return "emerald_rapids";
      case 0xad: case 0xae: return "granite_rapids";
      case 0x6a: case 0x6c: return "ice_lake_server";
      case 0x55: return "skylake_server";  // also Cascade/Cooper Lake
      default: break;
    }
  }
  return "";
}

}  // namespace fastnn
