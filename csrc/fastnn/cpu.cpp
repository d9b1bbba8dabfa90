#include "fastnn/cpu.h"

#include <iterator>
#include <stdexcept>

#if defined(FASTNN_X86)
#include <cpuid.h>
#endif

namespace fastnn {
namespace {

#if defined(FASTNN_X86)
unsigned long long read_xcr0() {
  unsigned int lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(FASTNN_X86)
  unsigned int a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  const unsigned int max_leaf = a;
  char vendor[13] = {};
  reinterpret_cast<unsigned int*>(vendor)[0] = b;
  reinterpret_cast<unsigned int*>(vendor)[1] = d;
  reinterpret_cast<unsigned int*>(vendor)[2] = c;
  f.vendor = vendor;

  __get_cpuid(1, &a, &b, &c, &d);
  f.sse2 = d & (1u << 26);
  const bool osxsave = c & (1u << 27);
  f.avx = c & (1u << 28);
  f.fma = c & (1u << 12);
  if (osxsave) {
    const unsigned long long xcr0 = read_xcr0();
    f.os_avx = (xcr0 & 0x6) == 0x6;
    f.os_avx512 = f.os_avx && (xcr0 & 0xe0) == 0xe0;
    f.os_amx = (xcr0 & 0x60000) == 0x60000;
  }
  if (max_leaf >= 7) {
    __get_cpuid_count(7, 0, &a, &b, &c, &d);
    f.avx2 = b & (1u << 5);
    f.avx512f = b & (1u << 16);
    f.avx512dq = b & (1u << 17);
    f.avx512bw = b & (1u << 30);
    f.avx512vl = b & (1u << 31);
    f.amx_bf16 = d & (1u << 22);
    f.amx_tile = d & (1u << 24);
    if (a >= 1) {  // leaf 7's highest subleaf
      unsigned int a1 = 0, b1 = 0, c1 = 0, d1 = 0;
      __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
      f.avx512_bf16 = a1 & (1u << 5);
    }
  }
  unsigned int ext = 0;
  __get_cpuid(0x80000000, &ext, &b, &c, &d);
  if (ext >= 0x80000004) {
    unsigned int regs[12];
    for (unsigned int i = 0; i < 3; ++i)
      __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    char brand[49] = {};
    for (int i = 0; i < 12; ++i) reinterpret_cast<unsigned int*>(brand)[i] = regs[i];
    f.brand = brand;
    while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
  }
#endif
  return f;
}

Isa g_active = Isa::scalar;

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::scalar: return true;
#if defined(FASTNN_X86)
    case Isa::avx2: return f.avx && f.avx2 && f.fma && f.os_avx;
    case Isa::avx512:
      return f.avx2 && f.fma && f.avx512f && f.avx512dq && f.avx512bw && f.avx512vl && f.os_avx512;
#endif
    default: return false;
  }
}

Isa best_isa() {
  if (isa_supported(Isa::avx512)) return Isa::avx512;
  if (isa_supported(Isa::avx2)) return Isa::avx2;
  return Isa::scalar;
}

Isa active_isa() { return g_active; }

// The ISAs' names, in the order of enum Isa.
constexpr const char* kIsaNames[] = {"scalar", "avx2", "avx512"};

const char* isa_name(Isa isa) { return kIsaNames[static_cast<int>(isa)]; }

bool isa_from_name(const std::string& name, Isa* isa) {
  for (int i = 0; i < static_cast<int>(std::size(kIsaNames)); ++i)
    if (name == kIsaNames[i]) {
      *isa = static_cast<Isa>(i);
      return true;
    }
  return false;
}

void select_isa(const std::string& name) {
  if (name.empty() || name == "auto") {
    g_active = best_isa();
    return;
  }
  Isa want;
  if (name == "avx512_bf16") {  // the avx512 kernels, plus the bf16 GEMM's (gemm/bf16)
    if (isa_supported(Isa::avx512) && !cpu_features().avx512_bf16)
      throw std::runtime_error("FASTNN_ISA=avx512_bf16: this CPU (or OS) lacks AVX512-BF16; best available is '" +
                               std::string(isa_name(best_isa())) + "'");
    want = Isa::avx512;
  } else if (!isa_from_name(name, &want)) {
    throw std::invalid_argument("FASTNN_ISA: expected one of 'scalar', 'avx2', 'avx512', 'avx512_bf16' or 'auto', got '" +
                                name + "'");
  }
  if (!isa_supported(want))
    throw std::runtime_error(std::string("FASTNN_ISA=") + name +
                             ": this CPU (or OS, or build) does not support it; best available is '" +
                             isa_name(best_isa()) + "'");
  g_active = want;
}

}  // namespace fastnn
