// fastnn's thread pool (see parallel.h for the contract).
//
// One job at a time. The caller publishes it as one 64-bit word, `state_`:
// generation << 32 | nchunks << 16 | next chunk. The caller and every worker
// claim chunks by incrementing `next` with a compare-and-swap (so a claim is
// always of the current job), run them, and count them in `done_`. The caller
// then waits only until every chunk is done: all of them were claimed by then,
// by itself or by a worker that is running (or was descheduled mid-chunk). A
// worker that wakes after the caller took the last chunk finds none and goes
// back to waiting. Idle workers spin for about pool_spin_ns(), then sleep on a
// futex (a condition variable off Linux). A busy pool (another caller's job, or a chunk
// calling parallel_for) runs the new job's chunks on its caller, in order.
//
// fork(): the child has only the forking thread. A pthread_atfork handler drops
// the pool (its workers do not exist there; its memory is left as it was) and
// the child's first job starts new workers.
#include "fastnn/parallel.h"

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <thread>

#include "fastnn/optim/denormals.h"  // FASTNN_HAS_MXCSR, current_mxcsr

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#include <condition_variable>
#include <mutex>
#endif

namespace fastnn {
namespace {

inline void cpu_relax() {
#if defined(FASTNN_HAS_MXCSR)
  _mm_pause();
#endif
}

// An idle worker spins this long for the next job before sleeping; see
// docs/ARCHITECTURE.md (threads) for the measurement behind it.
std::atomic<long> g_spin_ns{1000000};

thread_local bool t_in_chunk = false;  // this thread is running a chunk (a nested call runs serially)

// Nanoseconds one idle-spin iteration (a pause and a load) takes: the least of a
// few timed batches (a batch that was descheduled only reads longer).
double ns_per_spin() {
  static const double ns = [] {
    std::atomic<std::uint32_t> word{0};
    double best = 1e6;
    for (int batch = 0; batch < 5; ++batch) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 256; ++i) {
        cpu_relax();
        (void)word.load(std::memory_order_acquire);
      }
      best = std::min(best, std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / 256);
    }
    return std::max(best, 1.0);
  }();
  return ns;
}

class Pool {
 public:
  void run(int nchunks, void (*fn)(void*, std::size_t), void* ctx);
  bool try_acquire() { return !busy_.exchange(true, std::memory_order_acquire); }

 private:
  // A worker that finds itself on the CPU its last caller ran on (the kernel puts
  // a woken thread beside its waker while the other cores are busy, e.g. with
  // another library's spinning threads) moves off it: its affinity becomes the
  // process's CPUs but that one. There it could only run when the caller does not,
  // and every job would run on one core; sleeping there keeps it there (the next
  // wake-up places it beside the caller again). With one allowed CPU it stays.
  void leave_callers_cpu();

  void add_workers(int want);
  void worker_loop(int index);
  void claim_and_run(bool is_worker);
  void run_chunk(std::size_t c, bool is_worker);
  void sleep_while(std::uint32_t seen);
  void wake_sleepers(int count);

  std::atomic<bool> busy_{false};
  std::atomic<std::uint64_t> state_{0};
  std::atomic<std::uint32_t> wake_{0};  // bumped once per job; the futex word
  std::atomic<int> sleepers_{0};
  std::atomic<std::size_t> done_{0};
  std::atomic<bool> failed_{false};
  std::atomic<int> caller_cpu_{-1};  // the CPU the last job's caller ran on
  // the current job, written by its caller before it is published in state_
  void (*fn_)(void*, std::size_t) = nullptr;
  void* ctx_ = nullptr;
  unsigned mxcsr_ = 0;
  std::exception_ptr error_;  // the first chunk exception; written before that chunk counts as done
  std::uint32_t generation_ = 0;
  int workers_ = 0;           // grown only by the holder of busy_
  bool spawn_failed_ = false;
#if !defined(__linux__)
  std::mutex m_;
  std::condition_variable cv_;
#endif
};

void Pool::run(int nchunks, void (*fn)(void*, std::size_t), void* ctx) {
  add_workers(nchunks - 1);
  fn_ = fn;
  ctx_ = ctx;
  mxcsr_ = current_mxcsr();
#if defined(__linux__)
  caller_cpu_.store(sched_getcpu(), std::memory_order_relaxed);
#endif
  error_ = nullptr;
  failed_.store(false, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  // chunk 0 is the caller's before the workers see the job: with 2 threads each
  // chunk's data stays in the cache of the core that ran it last time
  state_.store(std::uint64_t(++generation_) << 32 | std::uint64_t(nchunks) << 16 | 1, std::memory_order_release);
  wake_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) wake_sleepers(nchunks - 1);
  run_chunk(0, false);
  claim_and_run(false);
  const std::size_t n = static_cast<std::size_t>(nchunks);
  for (unsigned spins = 0; done_.load(std::memory_order_acquire) < n; ++spins) {
    if (spins < 4096) cpu_relax();
    else std::this_thread::yield();  // the worker running the last chunk may be descheduled
  }
  std::exception_ptr error = failed_.load(std::memory_order_relaxed) ? error_ : nullptr;
  error_ = nullptr;
  busy_.store(false, std::memory_order_release);
  if (error) std::rethrow_exception(error);
}

void Pool::claim_and_run(bool is_worker) {
  std::uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    const std::uint64_t n = (s >> 16) & 0xffff, next = s & 0xffff;
    if (next >= n) return;
    if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    run_chunk(static_cast<std::size_t>(next), is_worker);
    s = state_.load(std::memory_order_acquire);
  }
}

void Pool::run_chunk(std::size_t c, bool is_worker) {
#if defined(FASTNN_HAS_MXCSR)
  // the caller's control bits (rounding, FTZ, DAZ, exception masks); the status flags may differ
  if (is_worker && ((_mm_getcsr() ^ mxcsr_) & ~0x3fu)) _mm_setcsr(mxcsr_);
#endif
  if (!failed_.load(std::memory_order_relaxed)) {
    t_in_chunk = true;
    try {
      fn_(ctx_, c);
    } catch (...) {
      if (!failed_.exchange(true, std::memory_order_relaxed)) error_ = std::current_exception();
    }
    t_in_chunk = false;
  }
  done_.fetch_add(1, std::memory_order_release);
}

void Pool::worker_loop(int index) {
  for (;;) {
    const std::uint32_t seen = wake_.load(std::memory_order_acquire);
    claim_and_run(true);
    // spin only if this worker is one the current thread count uses; counted in
    // iterations, not clock time, so a worker descheduled while it spins still
    // spins when it runs again instead of going straight to sleep
    const long spins = index + 1 < get_num_threads()
                           ? static_cast<long>(g_spin_ns.load(std::memory_order_relaxed) / ns_per_spin()) : 0;
    bool changed = false;
    for (long i = 0; i < spins && !changed; ++i) {
      if ((i & 255) == 0) leave_callers_cpu();
      cpu_relax();
      changed = wake_.load(std::memory_order_acquire) != seen;
    }
    if (changed) continue;
    leave_callers_cpu();  // its next wake-up then places it on another CPU
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    if (wake_.load(std::memory_order_seq_cst) == seen) sleep_while(seen);
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }
}

#if defined(__linux__)
void Pool::sleep_while(std::uint32_t seen) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&wake_), FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
}
void Pool::wake_sleepers(int count) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&wake_), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
}
#else
void Pool::sleep_while(std::uint32_t seen) {
  std::unique_lock<std::mutex> lock(m_);
  cv_.wait(lock, [&] { return wake_.load() != seen; });
}
void Pool::wake_sleepers(int) {
  { std::lock_guard<std::mutex> lock(m_); }
  cv_.notify_all();
}
#endif

#if defined(__linux__)
thread_local cpu_set_t t_allowed;      // a worker's CPUs when it started (its creator's)
thread_local bool t_allowed_known = false;

void Pool::leave_callers_cpu() {
  const int cpu = caller_cpu_.load(std::memory_order_relaxed);
  if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getcpu() != cpu) return;
  if (!t_allowed_known) {
    if (sched_getaffinity(0, sizeof(t_allowed), &t_allowed) != 0) return;
    t_allowed_known = true;
  }
  cpu_set_t set = t_allowed;
  CPU_CLR(cpu, &set);
  if (CPU_COUNT(&set) == 0) return;
  sched_setaffinity(0, sizeof(set), &set);  // a refusal leaves the worker where it is
}
#else
void Pool::leave_callers_cpu() {}
#endif

void Pool::add_workers(int want) {
  for (; workers_ < want && !spawn_failed_; ++workers_) {
    try {
      std::thread([this, i = workers_] { worker_loop(i); }).detach();
    } catch (...) {  // std::system_error (a thread limit) or std::bad_alloc
      spawn_failed_ = true;  // the caller runs the chunks no worker takes
    }
  }
}

std::atomic<Pool*> g_pool{nullptr};

Pool* the_pool() {
  Pool* p = g_pool.load(std::memory_order_acquire);
  if (p) return p;
  Pool* fresh = new Pool;  // never deleted: detached workers use it until the process ends
  if (g_pool.compare_exchange_strong(p, fresh, std::memory_order_acq_rel)) return fresh;
  delete fresh;
  return p;
}

// A positive integer from the environment (leading/trailing blanks allowed; for
// OMP_NUM_THREADS the first entry of its comma list), or 0.
long env_count(const char* name, bool first_of_list) {
  const char* env = std::getenv(name);
  if (!env) return 0;
  char* end = nullptr;
  const long v = std::strtol(env, &end, 10);
  if (end == env) return 0;
  while (*end == ' ' || *end == '\t') ++end;
  if (*end != '\0' && !(first_of_list && *end == ',')) return 0;
  return v >= 1 ? v : 0;
}

int initial_threads() {
  const long fastnn = env_count("FASTNN_NUM_THREADS", false);
  if (fastnn >= 1 && fastnn <= max_threads()) return static_cast<int>(fastnn);
  long n = env_count("OMP_NUM_THREADS", true);
  if (n < 1) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
#endif
    if (n < 1) n = static_cast<long>(std::thread::hardware_concurrency());
  }
  return static_cast<int>(std::clamp<long>(n, 1, max_threads()));
}

std::atomic<int> g_threads{initial_threads()};  // read by workers while another thread may set it

void after_fork_in_child() { g_pool.store(nullptr, std::memory_order_relaxed); }

[[maybe_unused]] const bool g_atfork_registered = pthread_atfork(nullptr, nullptr, &after_fork_in_child) == 0;

}  // namespace

int max_threads() {
  static const int limit = [] {
    const long v = env_count("OMP_THREAD_LIMIT", false);
    return v >= 1 && v < kMaxThreads ? static_cast<int>(v) : kMaxThreads;
  }();
  return limit;
}

int get_num_threads() { return g_threads.load(std::memory_order_relaxed); }

void set_num_threads(int n) { g_threads.store(std::clamp(n, 1, max_threads()), std::memory_order_relaxed); }

void run_chunks(int nchunks, void (*chunk)(void*, std::size_t), void* ctx) {
  const std::size_t n = static_cast<std::size_t>(std::clamp(nchunks, 1, kMaxThreads));
  Pool* pool = nchunks > 1 && !t_in_chunk ? the_pool() : nullptr;
  if (pool && pool->try_acquire()) {
    pool->run(static_cast<int>(n), chunk, ctx);
    return;
  }
  for (std::size_t c = 0; c < n; ++c) chunk(ctx, c);  // the same chunks, in order, on this thread
}

long pool_spin_ns() { return g_spin_ns.load(std::memory_order_relaxed); }
void set_pool_spin_ns(long ns) { g_spin_ns.store(std::max(ns, 0L), std::memory_order_relaxed); }

}  // namespace fastnn
