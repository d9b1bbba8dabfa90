// Stress of fastnn's pool (csrc/fastnn/parallel.cpp) without Python, for ThreadSanitizer
// (tests/test_pool.py builds it with -fsanitize=thread): 4 concurrent callers, nested calls,
// a chunk's exception, thread-count changes while jobs run.
#include <atomic>
#include <cstdio>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>
#include "fastnn/parallel.h"

static void check(bool ok, const char* what) { if (!ok) { std::fprintf(stderr, "FAIL %s\n", what); std::abort(); } }

int main() {
  fastnn::set_num_threads(3);
  std::vector<std::thread> callers;
  std::atomic<long> total{0};
  for (int c = 0; c < 4; ++c) callers.emplace_back([&, c] {
    for (int it = 0; it < 1500; ++it) {
      const std::size_t n = 1000 + (it * 37 + c) % 5000;
      std::vector<int> v(n, 0);
      fastnn::parallel_for(n, 1, [&](std::size_t b, std::size_t e) { for (auto i = b; i < e; ++i) v[i] += 1; }, 8);
      for (auto x : v) check(x == 1, "parallel_for covers each index once");
      std::vector<int> w(4 * 50, 0);
      fastnn::parallel_bands(4, 4, [&](std::size_t t, std::size_t b, std::size_t e) {
        fastnn::parallel_for(50, 1, [&](std::size_t b2, std::size_t e2) { for (auto j = b2; j < e2; ++j) w[t * 50 + j] += 1; }, 1);
        check(e - b == 1, "band size");
      });
      for (auto x : w) check(x == 1, "nested");
      if (it % 100 == 0) {
        bool threw = false;
        try {
          fastnn::parallel_bands(3, 3, [&](std::size_t t, std::size_t, std::size_t) { if (t == 1) throw std::bad_alloc(); });
        } catch (const std::bad_alloc&) { threw = true; }
        check(threw, "exception reaches the caller");
      }
      if (c == 0 && it % 250 == 0) fastnn::set_num_threads(2 + (it / 250) % 3);
      total += 1;
    }
  });
  for (auto& t : callers) t.join();
  std::printf("ok %ld jobs\n", total.load());
}
