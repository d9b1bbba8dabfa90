// Flush-to-zero / denormals-are-zero, scoped to fastnn's own kernel calls.
//
// With dead units most of Adam's first-moment entries decay into denormal
// floats (m <- b1*m with g = 0), and on this CPU (AMD Zen 5) an update whose
// results are denormal runs ~3x slower (bench/compare_optim.py, denormals
// table). A DenormalScope sets FTZ and DAZ in MXCSR for its lifetime and then
// restores the caller's value exactly; it is created inside the function each
// chunk of a parallel region runs, so every thread restores its own MXCSR and
// the user's code never sees the change (fastnn's pool workers start each job
// with the caller's MXCSR: parallel.cpp). Non-x86 builds: a no-op.
#pragma once

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <xmmintrin.h>
#define FASTNN_HAS_MXCSR 1
#endif

namespace fastnn {

// Whether fastnn's optimizer kernels flush denormals (default: yes).
bool flush_denormals();
void set_flush_denormals(bool on);

class DenormalScope {
 public:
  explicit DenormalScope(bool on) {
#if defined(FASTNN_HAS_MXCSR)
    if (on) {
      saved_ = _mm_getcsr();
      active_ = true;
      _mm_setcsr(saved_ | kFtz | kDaz);
    }
#endif
  }
  ~DenormalScope() {
#if defined(FASTNN_HAS_MXCSR)
    if (active_) _mm_setcsr(saved_);
#endif
  }
  DenormalScope(const DenormalScope&) = delete;
  DenormalScope& operator=(const DenormalScope&) = delete;

  static constexpr unsigned kFtz = 0x8000;  // MXCSR bit 15: flush denormal results to zero
  static constexpr unsigned kDaz = 0x0040;  // MXCSR bit 6: treat denormal inputs as zero

 private:
  unsigned saved_ = 0;
  bool active_ = false;
};

// MXCSR of the calling thread (0 where there is none), for tests.
inline unsigned current_mxcsr() {
#if defined(FASTNN_HAS_MXCSR)
  return _mm_getcsr();
#else
  return 0;
#endif
}

}  // namespace fastnn
