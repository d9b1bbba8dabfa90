#include "fastnn/parallel.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace fastnn {
namespace {

int initial_threads() {
  if (const char* env = std::getenv("FASTNN_NUM_THREADS")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= max_threads()) return static_cast<int>(v);
  }
  const int n = std::min(omp_get_max_threads(), max_threads());
  return n < 1 ? 1 : n;
}

int g_threads = initial_threads();
std::atomic<bool> g_team_started{false};  // an OpenMP team of > 1 thread ran in this process
std::atomic<bool> g_forked{false};        // this process was forked after that

// fork() copies libgomp's idle thread pool as data but not its threads; the
// child's next team would wait for them forever. The pool may hold threads that
// fastnn never started: another library in the process (PyTorch, scikit-learn)
// using the same libgomp.so.1 leaves its team's threads in the same pool, and
// libgomp offers no way to ask. So every forked child starts single-threaded:
//  * after fastnn's own team ran in the parent, it stays so (set_num_threads(n > 1)
//    raises: the pool certainly holds threads that are gone);
//  * otherwise set_num_threads(n) in the child re-enables threads: the caller
//    states that no OpenMP team ran in the parent (documented in RELIABILITY.md).
// Only async-signal-safe stores here.
void after_fork_in_child() {
  if (g_team_started.load(std::memory_order_relaxed)) g_forked.store(true, std::memory_order_relaxed);
  g_threads = 1;
}

[[maybe_unused]] const bool g_atfork_registered = pthread_atfork(nullptr, nullptr, &after_fork_in_child) == 0;

}  // namespace

int max_threads() {
  const int limit = omp_get_thread_limit();
  return limit >= 1 && limit < kMaxThreads ? limit : kMaxThreads;
}

int get_num_threads() { return g_threads; }

void set_num_threads(int n) {
  if (n > 1 && g_forked.load(std::memory_order_relaxed))
    throw std::runtime_error(
        "fastnn: this process was forked from a process that had started threads (fastnn's OpenMP team, or "
        "another library's, e.g. PyTorch's); libgomp cannot start threads in such a child (it would hang), so "
        "fastnn runs single-threaded here. Start worker "
        "processes with multiprocessing's 'spawn' or 'forkserver' method to use threads in them.");
  g_threads = std::clamp(n, 1, max_threads());
}

bool forked_after_threads() { return g_forked.load(std::memory_order_relaxed); }

void note_team_start() {
  if (!g_team_started.load(std::memory_order_relaxed)) g_team_started.store(true, std::memory_order_relaxed);
}

}  // namespace fastnn
