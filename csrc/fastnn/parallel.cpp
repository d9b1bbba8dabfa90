#include "fastnn/parallel.h"

#include <cstdlib>

namespace fastnn {
namespace {

int initial_threads() {
  if (const char* env = std::getenv("FASTNN_NUM_THREADS")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 4096) return static_cast<int>(v);
  }
  const int n = omp_get_max_threads();
  return n < 1 ? 1 : n;
}

int g_threads = initial_threads();

}  // namespace

int get_num_threads() { return g_threads; }
void set_num_threads(int n) { g_threads = n < 1 ? 1 : n; }

}  // namespace fastnn
