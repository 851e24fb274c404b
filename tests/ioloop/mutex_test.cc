// Mutex's await_with_timeout(): it sleeps with the lock released until the predicate holds or
// the timeout passes, an infinite timeout included.
#include "ioloop/mutex.h"

#include <thread>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace ioloop {
namespace {

// Regression: an infinite timeout became steady_clock::now() + nanoseconds::max() inside
// libstdc++'s wait_for, which overflowed into the past: the call returned false at once, still
// holding the lock, instead of waiting. The other thread can take the lock only while the
// waiter sleeps, so the predicate holds by the time await_with_timeout() returns, without a
// clock in the test.
TEST(MutexTest, AnInfiniteTimeoutWaitsForThePredicate) {
  Mutex mu;
  bool ready = false;
  mu.lock();
  std::thread setter([&] {
    MutexLock lock(&mu);
    ready = true;
  });
  const bool held = mu.await_with_timeout([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return ready; },
                                          absl::InfiniteDuration());
  mu.unlock();
  setter.join();
  EXPECT_TRUE(held);
}

TEST(MutexTest, AFiniteTimeoutGivesUp) {
  Mutex mu;
  MutexLock lock(&mu);
  EXPECT_FALSE(mu.await_with_timeout([] { return false; }, absl::Milliseconds(1)));
}

}  // namespace
}  // namespace ioloop
