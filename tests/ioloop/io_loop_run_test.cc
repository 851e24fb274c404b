// IOLoop: start/stop/run_sync, exceptions and slow callbacks. current() is in
// io_loop_current_test.cc, signals in io_loop_signal_test.cc.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io_loop_fixture.h"
#include "ioloop/io_loop.h"
#include "ioloop/loop_handle.h"
#include "ioloop/time.h"
#include "testing/log_capture.h"
#include "testing/notification.h"
#include "testing/socket_pair.h"

namespace ioloop {
namespace {

using ::ioloop::testing::AllPollers;
using ::ioloop::testing::PollerName;
using ::ioloop::testing::SocketPair;
using ::testing::HasSubstr;
using IOLoopTest = ::ioloop::testing::IOLoopParamTest;
using ::ioloop::testing::IterationChain;
using ::ioloop::testing::ScopedLogCapture;

// ---------------------------------------------------------------------------------------------
// 9. start / stop / run_sync

TEST(IOLoopRunTest, StopBeforeStartRunsOneIteration) {
  IOLoop loop;
  int runs = 0;
  loop.add_callback([&] { ++runs; });
  loop.stop();
  loop.start();
  EXPECT_EQ(loop.stats().iterations, 1u);
  EXPECT_EQ(runs, 1);
  EXPECT_FALSE(loop.running());
  // The stop request was consumed: the next start() runs until the next stop().
  loop.add_callback([&] { loop.add_callback([&] { loop.stop(); }); });
  loop.start();
  EXPECT_EQ(loop.stats().iterations, 3u);
}

// Empty functions are a caller's bug: an error or an ignored call, never a crash later.
TEST(IOLoopRunTest, EmptyCallbackAndRunSyncFunctionAreRefused) {
  auto loop = IOLoop::create();
  ASSERT_TRUE(loop.ok());
  ScopedLogCapture log;
  (*loop)->add_callback(nullptr);  // ignored (logged)
  EXPECT_FALSE((*loop)->call_later(absl::Seconds(1), nullptr).valid());
  EXPECT_FALSE((*loop)->call_at(TimePoint{}, nullptr).valid());
  EXPECT_EQ((*loop)->stats().timers_pending, 0u);
  EXPECT_EQ(log.lines(), (std::vector<std::string>{
                             "IOLoop::add_callback: empty callback ignored",
                             "IOLoop::call_later: empty callback ignored",
                             "IOLoop::call_at: empty callback ignored",
                         }));
  EXPECT_EQ((*loop)->run_sync(nullptr), absl::InvalidArgumentError("run_sync: empty function"));
  EXPECT_TRUE((*loop)
                  ->run_sync([&](IOLoop::Done done) {
                    (*loop)->add_callback(
                        [done = std::move(done)]() mutable { std::move(done)(absl::OkStatus()); });
                  })
                  .ok());
}

TEST(IOLoopRunTest, StartAndStopFromAnotherThread) {
  IOLoop loop;
  testing::Notification started;
  bool running_inside = false;
  loop.add_callback([&] {
    running_inside = loop.running();
    started.Notify();
  });
  std::thread t([&] { loop.start(); });
  started.WaitForNotification();
  // The loop now sleeps in its poller with nothing to do; stop() must wake it.
  loop.stop();
  t.join();
  EXPECT_TRUE(running_inside);
  EXPECT_FALSE(loop.running());
}

TEST(IOLoopRunTest, StopFromAnotherThreadWhileBusy) {
  IOLoop loop;
  std::atomic<bool> stop_sent{false};
  std::thread stopper;
  // A callback chain keeps the loop busy (never sleeping) until stop() lands.
  std::function<void()> spin = [&] {
    if (!stopper.joinable()) {
      stopper = std::thread([&] {
        loop.stop();
        stop_sent = true;
      });
    }
    loop.add_callback([&] { spin(); });
  };
  loop.add_callback([&] { spin(); });
  loop.start();
  stopper.join();
  EXPECT_TRUE(stop_sent);
}

TEST(IOLoopRunTest, RunSyncReturnsTheDoneStatus) {
  IOLoop loop;
  absl::Status s =
      loop.run_sync([](IOLoop::Done done) { std::move(done)(absl::NotFoundError("nope")); });
  EXPECT_EQ(s, absl::NotFoundError("nope"));
  s = loop.run_sync([](IOLoop::Done done) { std::move(done)(absl::OkStatus()); });
  EXPECT_TRUE(s.ok()) << s;
}

TEST(IOLoopRunTest, RunSyncDoneFromAnotherThread) {
  IOLoop loop;
  std::thread t;
  absl::Status s = loop.run_sync(
      [&](IOLoop::Done done) {
        t = std::thread([done = std::move(done)]() mutable {
          std::move(done)(absl::DataLossError("from thread"));
        });
      },
      absl::Seconds(30));
  t.join();
  EXPECT_EQ(s, absl::DataLossError("from thread"));
}

TEST(IOLoopRunTest, RunSyncTimesOut) {
  IOLoop loop;
  IOLoop::Done kept;
  const TimePoint start = loop.time();
  absl::Status s =
      loop.run_sync([&](IOLoop::Done done) { kept = std::move(done); }, absl::Milliseconds(5));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_GE(loop.time() - start, std::chrono::milliseconds(5));
  // A late Done is harmless and does not stop a later run.
  std::move(kept)(absl::InternalError("late"));
  s = loop.run_sync([](IOLoop::Done done) { std::move(done)(absl::OkStatus()); });
  EXPECT_TRUE(s.ok()) << s;
}

// Found by a probe: both blocked run_sync for ever (without a timeout), where the caller can
// only be told.
TEST(IOLoopRunTest, RunSyncEndsWhenFnThrowsOrDropsItsDone) {
  IOLoop loop;
  absl::Status s = loop.run_sync([](IOLoop::Done) { throw std::runtime_error("boom"); });
  EXPECT_EQ(s, absl::InternalError("exception in run_sync fn: boom"));
  EXPECT_EQ(loop.stats().exceptions, 1u);
  s = loop.run_sync([](IOLoop::Done done) {
    IOLoop::Done dropped = std::move(done);  // destroyed uncalled
  });
  EXPECT_EQ(s, absl::CancelledError("run_sync: fn's Done was destroyed without being called"));
  // Dropped later, from a timer: the same.
  s = loop.run_sync(
      [&](IOLoop::Done done) { loop.call_later(absl::ZeroDuration(), [d = std::move(done)] {}); });
  EXPECT_EQ(s, absl::CancelledError("run_sync: fn's Done was destroyed without being called"));
  s = loop.run_sync([](IOLoop::Done done) { std::move(done)(absl::OkStatus()); });
  EXPECT_TRUE(s.ok()) << s;
}

TEST(IOLoopRunSyncTest, OnARunningLoopFailsAndRunsNothing) {
  IOLoop loop;
  absl::Status status;
  bool ran = false;
  IterationChain chain{loop, 5};
  loop.add_callback([&] {
    status = loop.run_sync([&](IOLoop::Done done) {
      ran = true;
      std::move(done)(absl::OkStatus());
    });
  });
  chain.start();
  loop.start();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), HasSubstr("already running"));
  EXPECT_FALSE(ran);
  EXPECT_EQ(chain.count, 5);  // the caller's loop was not stopped by the refused run_sync
  EXPECT_EQ(loop.stats().callbacks_run, 6u);
}

TEST(IOLoopRunSyncTest, EndedBySomeoneElsesStopIsCancelled) {
  IOLoop loop;
  IOLoop::Done kept;
  absl::Status status = loop.run_sync([&](IOLoop::Done done) {
    kept = std::move(done);
    loop.add_callback([&] { loop.stop(); });
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_THAT(status.message(), HasSubstr("stopped"));
}

TEST(IOLoopRunSyncTest, DoneQueuedButNotRunWhenStoppedIsCancelled) {
  IOLoop loop;
  absl::Status status = loop.run_sync([&](IOLoop::Done done) {
    // Both land in the same later iteration; stop() wins because run_sync's completion is
    // itself a callback queued behind it.
    loop.stop();
    std::move(done)(absl::OkStatus());
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
}

TEST(IOLoopRunSyncTest, LateDoneNeverStopsALaterStart) {
  IOLoop loop;
  IOLoop::Done kept;
  absl::Status status = loop.run_sync([&](IOLoop::Done done) {
    kept = std::move(done);
    loop.add_callback([&] { loop.stop(); });
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  std::move(kept)(absl::OkStatus());  // after run_sync returned
  IterationChain chain{loop, 5};
  chain.start();
  loop.start();
  EXPECT_EQ(chain.count, 5);
}

TEST(IOLoopRunSyncTest, LateDoneFromAnotherThreadNeverStopsALaterStart) {
  IOLoop loop;
  IOLoop::Done kept;
  absl::Status status = loop.run_sync([&](IOLoop::Done done) {
    kept = std::move(done);
    loop.add_callback([&] { loop.stop(); });
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  std::thread t([&] { std::move(kept)(absl::OkStatus()); });
  t.join();
  IterationChain chain{loop, 5};
  chain.start();
  loop.start();
  EXPECT_EQ(chain.count, 5);
}

TEST(IOLoopRunSyncTest, LateDoneAfterTheLoopIsDestroyedTouchesNothing) {
  IOLoop::Done kept;
  {
    auto loop = std::make_unique<IOLoop>();
    absl::Status status = loop->run_sync([&](IOLoop::Done done) {
      kept = std::move(done);
      loop->add_callback([&] { loop->stop(); });
    });
    EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  }
  std::move(kept)(absl::OkStatus());  // ASan: no use of the destroyed loop
}

// stop_when_idle(): start() returns once what was queued, and what that queues in turn, has
// run (a shutdown's close callbacks reach their users a hop or two later).
TEST(IOLoopStopWhenIdleTest, ReturnsOnceTheChainOfCallbacksHasRun) {
  IOLoop loop;
  int ran = 0;
  std::function<void(int)> chain = [&](int left) {
    ++ran;
    if (left > 0) loop.add_callback([&chain, left] { chain(left - 1); });
  };
  loop.add_callback([&] { chain(9); });
  loop.stop_when_idle();
  loop.start();
  EXPECT_EQ(ran, 10);
}

TEST(IOLoopStopWhenIdleTest, DueTimersAndEventsRunTooButLaterTimersWait) {
  IOLoop loop;
  SocketPair pair;
  bool read_ready = false;
  bool due_fired = false;
  bool later_fired = false;
  ASSERT_TRUE(loop.add_handler(
                      pair.fd[0],
                      [&](int, uint32_t) {
                        read_ready = true;
                        loop.remove_handler(pair.fd[0]);
                      },
                      IOLoop::READ)
                  .ok());
  ASSERT_EQ(::write(pair.fd[1], "x", 1), 1);
  loop.call_later(absl::ZeroDuration(), [&] { due_fired = true; });
  loop.call_later(absl::Hours(1), [&] { later_fired = true; });
  loop.stop_when_idle();
  loop.start();
  EXPECT_TRUE(read_ready);
  EXPECT_TRUE(due_fired);
  EXPECT_FALSE(later_fired);
  EXPECT_EQ(loop.stats().timers_pending, 1u);
}

TEST(IOLoopStopWhenIdleTest, ACallbackThatReaddsItselfForEverEndsAfterMaxRounds) {
  IOLoop loop;
  uint64_t ran = 0;
  std::function<void()> again = [&] {
    ++ran;
    loop.add_callback([&again] { again(); });
  };
  loop.add_callback([&again] { again(); });
  loop.stop_when_idle(/*max_rounds=*/8);
  loop.start();
  EXPECT_GE(ran, 7u);
  EXPECT_LE(ran, 10u);
}

TEST(IOLoopStopWhenIdleTest, CalledFromAnotherThreadWhileRunning) {
  IOLoop loop;
  std::thread runner([&] { loop.start(); });
  std::shared_ptr<LoopHandle> handle = loop.handle();
  int ran = 0;
  ASSERT_TRUE(handle->post([&] { loop.add_callback([&] { ++ran; }); }));
  loop.stop_when_idle();
  runner.join();
  EXPECT_EQ(ran, 1);
}

TEST(IOLoopRunTest, TimeIsMonotonic) {
  static_assert(Clock::is_steady, "timers must not follow wall-clock jumps");
  IOLoop loop;
  TimePoint prev = loop.time();
  for (int i = 0; i < 1000; ++i) {
    TimePoint now = loop.time();
    EXPECT_GE(now, prev);
    prev = now;
  }
}

// ---------------------------------------------------------------------------------------------
// 10. Exceptions and slow callbacks

TEST_P(IOLoopTest, ExceptionsAreContainedAndCounted) {
  ScopedLogCapture log;
  SocketPair sp;
  std::vector<std::string> order;
  loop().add_callback([] { throw std::runtime_error("from callback"); });
  loop().add_callback([&] { order.push_back("after callback"); });
  loop().call_later(absl::ZeroDuration(), [] { throw std::runtime_error("from timer"); });
  loop().call_later(absl::ZeroDuration(), [&] { order.push_back("after timer"); });
  ASSERT_TRUE(loop()
                  .add_handler(
                      sp.fd[0],
                      [&](int fd, uint32_t) {
                        loop().remove_handler(fd);
                        loop().call_later(absl::Milliseconds(1), [&] {
                          order.push_back("after handler");
                          done();
                        });
                        throw 42;  // not a std::exception
                      },
                      READ)
                  .ok());
  sp.send();
  ASSERT_TRUE(wait());
  EXPECT_THAT(order,
              ::testing::UnorderedElementsAre("after callback", "after timer", "after handler"));
  EXPECT_EQ(loop().stats().exceptions, 3u);
  std::string all;
  for (const std::string& l : log.lines()) all += l + "\n";
  EXPECT_THAT(all, HasSubstr("from callback"));
  EXPECT_THAT(all, HasSubstr("from timer"));
  EXPECT_THAT(all, HasSubstr("non-std::exception"));
}

TEST_P(IOLoopTest, ThrowingHandlerDoesNotFloodTheLog) {
  ScopedLogCapture log;
  SocketPair sp;
  int calls = 0;
  ASSERT_TRUE(loop()
                  .add_handler(
                      sp.fd[0],
                      [&](int fd, uint32_t) {
                        // Never reads: level-triggered, so it fires on every poll.
                        if (++calls == 1000) {
                          loop().remove_handler(fd);
                          done();
                        }
                        throw std::runtime_error("boom");
                      },
                      READ)
                  .ok());
  sp.send();
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 1000);
  EXPECT_EQ(loop().stats().exceptions, 1000u);
  const std::vector<std::string> lines = log.lines();
  EXPECT_GE(lines.size(), 1u);
  EXPECT_LT(lines.size(), 100u) << "1000 exceptions must not give ~1000 log lines";
  EXPECT_THAT(lines.front(), HasSubstr("boom"));
}

// A callback's duration is read on the loop's clock (Options::clock here), so "slow" is a
// number the test sets, not a sleep: exactly the callbacks that moved the clock past the
// threshold are counted.
TEST(IOLoopSlowCallbackTest, SlowCallbackIsLoggedAndCounted) {
  ScopedLogCapture log;
  ManualClock clock;
  IOLoop::Options options;
  options.slow_callback_threshold = absl::Milliseconds(1);
  options.clock = &clock;
  IOLoop loop(options);
  loop.add_callback([&] { clock.advance(absl::Milliseconds(20)); });
  loop.add_callback([&] { clock.advance(absl::Milliseconds(1)); });  // at the threshold: not over
  loop.add_callback([&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(loop.stats().slow_callbacks, 1u);
  std::vector<std::string> slow;
  for (const std::string& l : log.lines()) {
    if (l.find("slow callback") != std::string::npos) slow.push_back(l);
  }
  ASSERT_EQ(slow.size(), 1u);
  EXPECT_THAT(slow[0], HasSubstr("blocked the loop for 20ms (threshold 1ms)"));
}

// Regression: a signal handler runs inside the loop's own handler for its signalfd, and both
// were timed: one slow signal handler counted twice and logged twice ("slow handler" too).
TEST(IOLoopSlowCallbackTest, ASlowSignalHandlerIsCountedOnce) {
  ScopedLogCapture log;
  ManualClock clock;
  IOLoop::Options options;
  options.slow_callback_threshold = absl::Milliseconds(1);
  options.clock = &clock;
  IOLoop loop(options);
  ASSERT_TRUE(loop.add_signal_handler(SIGUSR2,
                                      [&](int) {
                                        clock.advance(absl::Milliseconds(20));
                                        loop.stop();
                                      })
                  .ok());
  ASSERT_EQ(::raise(SIGUSR2), 0);
  loop.start();
  EXPECT_EQ(loop.stats().signals_dispatched, 1u);
  EXPECT_EQ(loop.stats().slow_callbacks, 1u);
  std::vector<std::string> slow;
  for (const std::string& l : log.lines()) {
    if (l.find("slow ") != std::string::npos) slow.push_back(l);
  }
  ASSERT_EQ(slow.size(), 1u);
  EXPECT_THAT(slow[0], HasSubstr("slow signal handler: blocked the loop for 20ms"));
  loop.remove_signal_handler(SIGUSR2);
}

TEST(IOLoopSlowCallbackTest, DisabledByDefault) {
  EXPECT_EQ(IOLoop::Options{}.slow_callback_threshold, absl::ZeroDuration());
  ManualClock clock;
  IOLoop::Options options;
  options.clock = &clock;
  IOLoop loop(options);
  loop.add_callback([&] { clock.advance(absl::Hours(1)); });
  loop.add_callback([&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(loop.stats().slow_callbacks, 0u);
}

INSTANTIATE_TEST_SUITE_P(Pollers, IOLoopTest, AllPollers(), PollerName);

}  // namespace
}  // namespace ioloop
