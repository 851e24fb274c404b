// Fault injection at the loop level (issue 7, point 12), on every poller, deterministic:
// stop() from a timer, a handler, another thread and a signal handler; a timer re-arming
// itself at zero delay must not starve I/O; 100,000 callbacks queued from other threads while
// the loop is busy all run exactly once, in order. Progress is counted (iterations, runs),
// never timed; wait()'s 10 s guard only turns a hang into a failure.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "io_loop_fixture.h"
#include "ioloop/io_loop.h"
#include "testing/pollers.h"
#include "testing/socket_pair.h"

namespace ioloop {
namespace {

using ::ioloop::testing::AllPollers;
using ::ioloop::testing::PollerName;
using ::ioloop::testing::SocketPair;

using LoopFaultTest = ::ioloop::testing::IOLoopParamTest;

// --- stop() from everywhere -----------------------------------------------------------------

TEST_P(LoopFaultTest, StopFromATimerEndsThisIteration) {
  int later = 0;
  loop().call_later(absl::ZeroDuration(), [&] {
    loop().stop();
    loop().add_callback([&] { ++later; });  // the next iteration: after start() returned
  });
  loop().start();
  EXPECT_EQ(later, 0);
  EXPECT_EQ(loop().stats().timers_fired, 1u);
  EXPECT_FALSE(loop().running());
  // The stop was consumed: the next start() runs the queued callback and goes on.
  loop().add_callback([&] { loop().add_callback([&] { loop().stop(); }); });
  loop().start();
  EXPECT_EQ(later, 1);
}

TEST_P(LoopFaultTest, StopFromAHandler) {
  SocketPair sp;
  int reads = 0;
  ASSERT_TRUE(sp.read_on(loop(), [&] {
                  ++reads;
                  loop().stop();
                }).ok());
  sp.send();
  loop().start();  // blocks in the wait until the byte is there; no timer, no callback
  EXPECT_EQ(reads, 1);
  EXPECT_EQ(loop().stats().iterations, 1u);
  // A second byte: the stop was consumed, the handler stops the loop again.
  sp.send();
  loop().start();
  EXPECT_EQ(reads, 2);
  loop().remove_handler(sp.fd[0]);
}

TEST_P(LoopFaultTest, StopFromAnotherThreadWakesABlockedWait) {
  std::latch running(1);
  loop().add_callback([&] { running.count_down(); });
  std::thread stopper([&] {
    running.wait();
    loop().stop();  // the loop is in (or about to enter) an endless wait: nothing else to do
  });
  loop().start();
  stopper.join();
  EXPECT_FALSE(loop().running());
  EXPECT_LE(loop().stats().iterations, 3u);  // woken, not polling its way out
}

TEST_P(LoopFaultTest, StopFromASignalHandler) {
  int signals = 0;
  ASSERT_TRUE(loop()
                  .add_signal_handler(SIGUSR1,
                                      [&](int signo) {
                                        EXPECT_EQ(signo, SIGUSR1);
                                        ++signals;
                                        loop().stop();
                                      })
                  .ok());
  // Thread-directed, raised on the loop thread from a callback.
  loop().add_callback([] { ASSERT_EQ(::raise(SIGUSR1), 0); });
  loop().start();
  EXPECT_EQ(signals, 1);
  // Process-directed, from another thread (started after add_signal_handler, so it inherits
  // the blocked mask and the signal can only reach the loop's signalfd) while the loop waits.
  std::latch running(1);
  loop().add_callback([&] { running.count_down(); });
  std::thread killer([&] {
    running.wait();
    ASSERT_EQ(::kill(::getpid(), SIGUSR1), 0);
  });
  loop().start();
  killer.join();
  EXPECT_EQ(signals, 2);
  EXPECT_EQ(loop().stats().signals_dispatched, 2u);
  loop().remove_signal_handler(SIGUSR1);
}

// --- Starvation ---------------------------------------------------------------------------

// A zero-delay timer that re-arms itself is due again at once, but a timer added by a timer
// runs no earlier than the next iteration, and each iteration still waits (without blocking)
// and dispatches I/O: the handler is served in consecutive iterations.
TEST_P(LoopFaultTest, ZeroDelayTimerRearmingItselfDoesNotStarveIO) {
  SocketPair sp;
  uint64_t timer_runs = 0;
  std::vector<uint64_t> read_iterations;
  std::function<void()> rearm = [&] {
    ++timer_runs;
    loop().call_later(absl::ZeroDuration(), [&] { rearm(); });
  };
  ASSERT_TRUE(sp.read_on(loop(), [&] {
                  read_iterations.push_back(loop().stats().iterations);
                  if (read_iterations.size() < 5) {
                    sp.send();
                  } else {
                    loop().stop();
                  }
                }).ok());
  loop().call_later(absl::ZeroDuration(), [&] { rearm(); });
  sp.send();
  loop().start();
  ASSERT_EQ(read_iterations.size(), 5u);
  for (size_t i = 1; i < read_iterations.size(); ++i) {
    EXPECT_EQ(read_iterations[i], read_iterations[i - 1] + 1) << "read " << i;
  }
  // The timer ran in every iteration meanwhile, once each.
  EXPECT_EQ(timer_runs, loop().stats().iterations);
  loop().remove_handler(sp.fd[0]);
}

TEST_P(LoopFaultTest, ZeroDelayTimerAndSelfReaddingCallbackTogetherDoNotStarveIO) {
  SocketPair sp;
  bool spinning = true;
  std::function<void()> timer = [&] {
    if (spinning) loop().call_later(absl::ZeroDuration(), [&] { timer(); });
  };
  std::function<void()> callback = [&] {
    if (spinning) loop().add_callback([&] { callback(); });
  };
  int reads = 0;
  ASSERT_TRUE(sp.read_on(loop(), [&] {
                  if (++reads == 3) {
                    spinning = false;
                    loop().stop();
                  } else {
                    sp.send();
                  }
                }).ok());
  timer();
  callback();
  sp.send();
  loop().start();
  EXPECT_EQ(reads, 3);
  EXPECT_LE(loop().stats().iterations, 4u);
  loop().remove_handler(sp.fd[0]);
}

// --- Callback floods -------------------------------------------------------------------------

TEST_P(LoopFaultTest, HundredThousandCallbacksFromAnotherThreadWhileBusyRunOnceInOrder) {
  constexpr int kCallbacks = 100000;
  std::vector<int> seen;
  seen.reserve(kCallbacks);
  // Busy: a zero-delay timer re-arms itself every iteration, so the loop never sleeps.
  bool busy = true;
  uint64_t busy_runs = 0;
  std::function<void()> spin = [&] {
    ++busy_runs;
    if (busy) loop().call_later(absl::ZeroDuration(), [&] { spin(); });
  };
  loop().call_later(absl::ZeroDuration(), [&] { spin(); });
  std::thread producer([&] {
    for (int i = 0; i < kCallbacks; ++i) {
      loop().add_callback([&, i] {
        seen.push_back(i);
        if (seen.size() == kCallbacks) {
          busy = false;
          done();
        }
      });
    }
  });
  ASSERT_TRUE(wait());
  producer.join();
  ASSERT_EQ(seen.size(), static_cast<size_t>(kCallbacks));
  int out_of_order = 0;
  for (int i = 0; i < kCallbacks; ++i) out_of_order += seen[i] != i;
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(loop().stats().callbacks_run, static_cast<uint64_t>(kCallbacks));
  EXPECT_GT(busy_runs, 0u);
}

TEST_P(LoopFaultTest, CallbacksFromFourThreadsRunOnceInPerThreadOrder) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25000;
  std::vector<std::vector<int>> seen(kThreads);
  int total = 0;
  std::latch go(kThreads + 1);
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      go.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        loop().add_callback([&, t, i] {
          seen[t].push_back(i);
          if (++total == kThreads * kPerThread) done();
        });
      }
    });
  }
  loop().add_callback([&] { go.count_down(); });  // start producing once the loop runs
  ASSERT_TRUE(wait());
  for (std::thread& p : producers) p.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), static_cast<size_t>(kPerThread)) << "thread " << t;
    int out_of_order = 0;
    for (int i = 0; i < kPerThread; ++i) out_of_order += seen[t][i] != i;
    EXPECT_EQ(out_of_order, 0) << "thread " << t;
  }
  // Wake-ups are coalesced: at most one eventfd write per wait, far fewer than callbacks.
  EXPECT_LT(loop().stats().wakeups_sent, static_cast<uint64_t>(kThreads * kPerThread) / 10);
}

INSTANTIATE_TEST_SUITE_P(Pollers, LoopFaultTest, AllPollers(), PollerName);

}  // namespace
}  // namespace ioloop
