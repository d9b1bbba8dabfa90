#include "fastnn/parallel.h"

#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>

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
std::atomic<bool> g_team_started{false};  // an OpenMP team of > 1 thread ran in this process
std::atomic<bool> g_forked{false};        // this process was forked after that

// fork() copies libgomp's idle thread pool as data but not its threads; the
// child's next team would wait for them forever. So a child forked after a team
// ran stays single-threaded (only async-signal-safe stores here).
void after_fork_in_child() {
  if (g_team_started.load(std::memory_order_relaxed)) {
    g_forked.store(true, std::memory_order_relaxed);
    g_threads = 1;
  }
}

[[maybe_unused]] const bool g_atfork_registered = pthread_atfork(nullptr, nullptr, &after_fork_in_child) == 0;

}  // namespace

int get_num_threads() { return g_threads; }

void set_num_threads(int n) {
  if (n > 1 && g_forked.load(std::memory_order_relaxed))
    throw std::runtime_error(
        "fastnn: this process was forked after fastnn had started OpenMP threads; libgomp cannot start "
        "threads in such a child (it would hang), so fastnn runs single-threaded here. Start worker "
        "processes with multiprocessing's 'spawn' or 'forkserver' method to use threads in them.");
  g_threads = n < 1 ? 1 : n;
}

bool forked_after_threads() { return g_forked.load(std::memory_order_relaxed); }

void note_team_start() {
  if (!g_team_started.load(std::memory_order_relaxed)) g_team_started.store(true, std::memory_order_relaxed);
}

}  // namespace fastnn
