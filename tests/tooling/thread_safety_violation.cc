// The negative proof of the clang thread-safety check (ctest thread_safety_check, see
// check_thread_safety.sh): compiled once as is, which must succeed, and once with
// -DIOLOOP_VIOLATE, which reads a member guarded by a Mutex without holding it and must fail
// with -Werror=thread-safety, the flags the library is built with under clang.
#include "ioloop/mutex.h"

namespace {

class Counter {
 public:
  void add() {
    ioloop::MutexLock lock(&mu_);
    ++value_;
  }
  int read() {
#ifdef IOLOOP_VIOLATE
    return value_;  // no lock held: -Wthread-safety-analysis
#else
    ioloop::MutexLock lock(&mu_);
    return value_;
#endif
  }

 private:
  ioloop::Mutex mu_;
  int value_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

int main() {
  Counter counter;
  counter.add();
  return counter.read() == 1 ? 0 : 1;
}
