// IOLoop: add_callback (ordering, cross-thread wake-ups, lifetime) and timeouts, on every
// poller.
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
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io_loop_fixture.h"
#include "ioloop/io_loop.h"
#include "testing/socket_pair.h"

namespace ioloop {
namespace {

using ::ioloop::testing::AllPollers;
using ::ioloop::testing::PollerName;
using ::ioloop::testing::SocketPair;
using ::testing::HasSubstr;
using IOLoopTest = ::ioloop::testing::IOLoopParamTest;

// ---------------------------------------------------------------------------------------------
// 5. add_callback

TEST_P(IOLoopTest, CallbacksRunInOrder) {
  std::vector<int> order;
  for (int i = 0; i < 100; ++i) loop().add_callback([&order, i] { order.push_back(i); });
  loop().add_callback([this] { done(); });
  ASSERT_TRUE(wait());
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST_P(IOLoopTest, CallbackAddedDuringCallbacksRunsNextIteration) {
  uint64_t first = 0, second = 0, sibling = 0;
  loop().add_callback([&] {
    first = loop().stats().iterations;
    loop().add_callback([&] {
      second = loop().stats().iterations;
      done();
    });
  });
  loop().add_callback([&] { sibling = loop().stats().iterations; });
  ASSERT_TRUE(wait());
  EXPECT_EQ(sibling, first);     // queued before the batch started: same iteration
  EXPECT_EQ(second, first + 1);  // queued during the batch: the next one
}

TEST_P(IOLoopTest, IOIsNotStarvedByCallbacksAddingCallbacks) {
  SocketPair sp;
  std::vector<std::string> order;
  ASSERT_TRUE(sp.read_on(loop(), [&] { order.push_back("io"); }).ok());
  sp.send();
  loop().add_callback([&] {
    order.push_back("cb1");
    loop().add_callback([&] {
      order.push_back("cb2");
      done();
    });
  });
  ASSERT_TRUE(wait());
  EXPECT_THAT(order, ::testing::ElementsAre("cb1", "io", "cb2"));
  loop().remove_handler(sp.fd[0]);
}

TEST_P(IOLoopTest, CrossThreadCallbacksRunExactlyOnceInPerThreadOrder) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100000;
  std::vector<int> next(kThreads, 0);  // loop thread only
  int total = 0;
  int out_of_order = 0;
  std::vector<std::thread> threads;
  loop().add_callback([&] {
    // Start the producers once the loop runs, so they race with it.
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          loop().add_callback([&, t, i] {
            if (next[t] != i) ++out_of_order;
            next[t] = i + 1;
            if (++total == kThreads * kPerThread) done();
          });
        }
      });
    }
  });
  const bool finished = wait(absl::Seconds(60));
  for (auto& t : threads) t.join();
  ASSERT_TRUE(finished);
  EXPECT_EQ(out_of_order, 0);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kPerThread);
  // Nothing runs twice: one more iteration runs nothing further.
  run_iterations(2);
  EXPECT_EQ(total, kThreads * kPerThread);
  const IOLoop::Stats s = loop().stats();
  EXPECT_GE(s.callbacks_run, static_cast<uint64_t>(kThreads * kPerThread));
  // Coalesced: at most one eventfd write per poll, so far fewer than one per callback.
  EXPECT_LE(s.wakeups_sent, s.iterations);
  EXPECT_LT(s.wakeups_sent, static_cast<uint64_t>(kThreads * kPerThread));
}

TEST_P(IOLoopTest, NoWakeupWhileTheLoopIsNotPolling) {
  // The loop thread is busy in a callback while another thread adds 1000 callbacks: it is
  // not sleeping, so not one eventfd write is needed.
  uint64_t wakeups_before = 0;
  int ran = 0;
  loop().add_callback([&] {
    wakeups_before = loop().stats().wakeups_sent;
    std::thread t([&] {
      for (int i = 0; i < 1000; ++i) {
        loop().add_callback([&] {
          if (++ran == 1000) done();
        });
      }
    });
    t.join();
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(ran, 1000);
  EXPECT_EQ(loop().stats().wakeups_sent, wakeups_before);
  EXPECT_EQ(wakeups_before, 0u);
}

TEST_P(IOLoopTest, CrossThreadCallbackWakesASleepingLoop) {
  // No timers and no I/O: without a wake-up the loop would sleep until wait()'s timeout.
  std::thread t;
  loop().add_callback(
      [&] { t = std::thread([this] { loop().add_callback([this] { done(); }); }); });
  const bool ok = wait();
  t.join();
  EXPECT_TRUE(ok);
}

TEST_P(IOLoopTest, CallbackCapturesDestroyedAfterRunning) {
  auto token = std::make_shared<int>(1);
  std::weak_ptr<int> weak = token;
  loop().add_callback([token = std::move(token)] {});
  loop().add_callback([&] {
    EXPECT_TRUE(weak.expired());  // freed when it ran, not with the next batch
    done();
  });
  ASSERT_TRUE(wait());
}

TEST(IOLoopLifetimeTest, PendingCallbacksAndTimersDestroyedWithLoop) {
  auto token = std::make_shared<int>(1);
  std::weak_ptr<int> weak = token;
  {
    IOLoop loop;
    loop.add_callback([t = token] {});
    loop.call_later(absl::Hours(1), [t = token] {});
    token.reset();
    EXPECT_FALSE(weak.expired());
  }
  EXPECT_TRUE(weak.expired());
}

// A callable whose destructor registers the next one (alternately a callback and a timer),
// `left` more times: teardown code that schedules cleanup from a destructor.
struct Regenerating {
  IOLoop* loop;
  int left;
  int* destroyed;
  Regenerating(IOLoop* l, int n, int* d) : loop(l), left(n), destroyed(d) {}
  Regenerating(Regenerating&& o) noexcept
      : loop(o.loop), left(std::exchange(o.left, -1)), destroyed(o.destroyed) {}
  Regenerating& operator=(Regenerating&&) = delete;
  ~Regenerating() {
    if (left < 0) return;  // moved from
    ++*destroyed;
    if (left == 0) return;
    if (left % 2 == 0) {
      loop->add_callback(Regenerating(loop, left - 1, destroyed));
    } else {
      loop->call_later(absl::Hours(1), Regenerating(loop, left - 1, destroyed));
    }
  }
  void operator()() {}
};

// Found by a threading probe: ~IOLoop tore down in four rounds, so the fifth registration from
// a destructor went into a member being destroyed (a use-after-free under ASan).
TEST(IOLoopLifetimeTest, CallablesRegisteredByDestructorsDuringTeardownAreAllDestroyed) {
  int destroyed = 0;
  {
    IOLoop loop;
    loop.add_callback(Regenerating(&loop, 12, &destroyed));
  }
  EXPECT_EQ(destroyed, 13);
}

// ---------------------------------------------------------------------------------------------
// 6. Timers

TEST_P(IOLoopTest, TimerNeverEarly) {
  const TimePoint start = loop().time();
  TimePoint fired;
  loop().call_later(absl::Milliseconds(3), [&] {
    fired = loop().time();
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_GE(fired - start, std::chrono::milliseconds(3));
}

TEST_P(IOLoopTest, ManyTimersNeverEarly) {
  // Sub-millisecond and odd delays: any rounding down in the poller would show here.
  std::vector<std::pair<TimePoint, TimePoint>> fired;  // (deadline, fired)
  constexpr int kTimers = 40;
  for (int i = 0; i < kTimers; ++i) {
    const TimePoint deadline = loop().time() + std::chrono::microseconds(137 * i + 50);
    loop().call_at(deadline, [&, deadline] {
      fired.emplace_back(deadline, loop().time());
      if (fired.size() == kTimers) done();
    });
  }
  ASSERT_TRUE(wait());
  for (auto [deadline, at] : fired) EXPECT_GE(at, deadline);
}

TEST_P(IOLoopTest, TimersRunInDeadlineThenInsertionOrder) {
  std::vector<char> order;
  const TimePoint t0 = loop().time() + std::chrono::milliseconds(2);
  loop().call_at(t0 + std::chrono::milliseconds(1), [&] { order.push_back('a'); });
  loop().call_at(t0, [&] { order.push_back('b'); });
  loop().call_at(t0, [&] { order.push_back('c'); });
  loop().call_at(t0 + std::chrono::milliseconds(1), [&] { order.push_back('d'); });
  loop().call_at(t0 - std::chrono::milliseconds(1), [&] { order.push_back('e'); });
  loop().call_at(t0 + std::chrono::milliseconds(2), [&] { done(); });
  ASSERT_TRUE(wait());
  EXPECT_THAT(order, ::testing::ElementsAre('e', 'b', 'c', 'a', 'd'));
}

TEST_P(IOLoopTest, SameDeadlineTimersRunInInsertionOrderWithinOneBatch) {
  std::vector<int> order;
  const TimePoint past = loop().time() - std::chrono::seconds(1);
  for (int i = 0; i < 50; ++i) loop().call_at(past, [&, i] { order.push_back(i); });
  loop().add_callback([this] { loop().add_callback([this] { done(); }); });
  ASSERT_TRUE(wait());
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
}

TEST_P(IOLoopTest, RemovedTimerNeverRunsAndFreesItsCallbackAtOnce) {
  auto token = std::make_shared<int>(1);
  std::weak_ptr<int> weak = token;
  bool ran = false;
  TimeoutHandle h =
      loop().call_later(absl::Milliseconds(1), [&ran, t = std::move(token)] { ran = true; });
  EXPECT_TRUE(h.valid());
  EXPECT_EQ(loop().stats().timers_pending, 1u);
  loop().remove_timeout(h);
  EXPECT_TRUE(weak.expired());  // destroyed by remove_timeout itself
  EXPECT_EQ(loop().stats().timers_pending, 0u);
  loop().call_later(absl::Milliseconds(5), [this] { done(); });
  ASSERT_TRUE(wait());
  EXPECT_FALSE(ran);
}

TEST_P(IOLoopTest, TimerCancelledByAnEarlierTimerOfTheSameBatchNeverRuns) {
  // Both are due in the same poll; the first cancels the second, which must not run.
  const TimePoint deadline = loop().time() + std::chrono::milliseconds(1);
  bool second_ran = false;
  TimeoutHandle second;
  loop().call_at(deadline, [&] { loop().remove_timeout(second); });
  second = loop().call_at(deadline, [&] { second_ran = true; });
  loop().call_at(deadline + std::chrono::milliseconds(2), [this] { done(); });
  ASSERT_TRUE(wait());
  EXPECT_FALSE(second_ran);
  EXPECT_EQ(loop().stats().timers_fired, 2u);
}

TEST_P(IOLoopTest, RemoveTimeoutAfterFireIsNoOp) {
  int runs = 0;
  TimeoutHandle h = loop().call_later(absl::ZeroDuration(), [&] { ++runs; });
  TimeoutHandle later;
  loop().call_later(absl::Milliseconds(1), [&] {
    loop().remove_timeout(h);  // already ran
    later = loop().call_later(absl::Milliseconds(1), [&] {
      ++runs;
      done();
    });
    loop().remove_timeout(h);  // must not cancel `later`, even if it reused the slot
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(runs, 2);
  loop().remove_timeout(TimeoutHandle());  // invalid handle: no-op
  loop().remove_timeout(h);
}

TEST_P(IOLoopTest, TimerRemovingItselfIsNoOp) {
  TimeoutHandle self;
  int runs = 0;
  self = loop().call_later(absl::ZeroDuration(), [&] {
    ++runs;
    loop().remove_timeout(self);
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(runs, 1);
}

// The timer store is the same for every poller: one loop is enough (and keeps ASan fast).
TEST(IOLoopTimerStoreTest, MillionAddCancelCyclesKeepTimerStoreSmall) {
  IOLoop loop_object;
  auto loop = [&loop_object]() -> IOLoop& { return loop_object; };
  for (int i = 0; i < 1000000; ++i) {
    TimeoutHandle h = loop().call_later(absl::Seconds(60), [] {});
    loop().remove_timeout(h);
  }
  IOLoop::Stats s = loop().stats();
  EXPECT_EQ(s.timers_pending, 0u);
  EXPECT_LT(s.timer_store_size, 2048u);

  // Interleaved with a standing population of live timers: bounded by that population.
  std::vector<TimeoutHandle> live;
  for (int i = 0; i < 100; ++i) live.push_back(loop().call_later(absl::Seconds(60), [] {}));
  for (int i = 0; i < 200000; ++i) {
    TimeoutHandle h = loop().call_later(absl::Milliseconds(i % 1000), [] {});
    loop().remove_timeout(h);
  }
  s = loop().stats();
  EXPECT_EQ(s.timers_pending, 100u);
  EXPECT_LT(s.timer_store_size, 2048u);
  for (TimeoutHandle h : live) loop().remove_timeout(h);
}

TEST_P(IOLoopTest, TimerPollDoesNotWakeBeforeDeadline) {
  // The wait for a 1.5 ms timer must not return before the deadline: a poller that rounded
  // the timeout down (epoll_wait's milliseconds) would wake early, find nothing due and need
  // another iteration. So the timer fires in the iteration right after the one that slept.
  uint64_t fired_iteration = 0;
  uint64_t armed_iteration = 0;
  loop().add_callback([&] {
    armed_iteration = loop().stats().iterations;
    loop().call_later(absl::Microseconds(1500), [&] {
      fired_iteration = loop().stats().iterations;
      done();
    });
  });
  ASSERT_TRUE(wait());
  // armed + 1 normally; armed itself if this thread was preempted for 1.5 ms after arming.
  EXPECT_LE(fired_iteration, armed_iteration + 1);
}

INSTANTIATE_TEST_SUITE_P(Pollers, IOLoopTest, AllPollers(), PollerName);

// iteration_time() is the loop's last clock read: time() outside start(); within a callback
// fixed however long it runs; later in the next iteration; in a timer, at or past its deadline
// (the read the timer was found due by, so a deadline moved to it is due, never re-armed).
TEST(IOLoopIterationTimeTest, IsTheLoopsLastClockRead) {
  IOLoop loop;
  const TimePoint before = loop.time();
  const TimePoint outside = loop.iteration_time();
  EXPECT_GE(outside, before);
  EXPECT_LE(outside, loop.time());

  TimePoint first{}, first_later{}, second{}, deadline{}, in_timer{}, in_handler{};
  SocketPair sp;
  ASSERT_TRUE(sp.read_on(loop, [&] {
                  in_handler = loop.iteration_time();
                  loop.stop();
                }).ok());
  loop.add_callback([&] {
    first = loop.iteration_time();
    while (loop.time() <= first) {
    }  // the clock moves on; the iteration's time stays
    first_later = loop.iteration_time();
    loop.add_callback([&] {
      second = loop.iteration_time();
      deadline = loop.time() + std::chrono::milliseconds(1);
      loop.call_at(deadline, [&] {
        in_timer = loop.iteration_time();
        sp.send();
      });
    });
  });
  loop.start();
  EXPECT_EQ(first_later, first);
  EXPECT_GT(second, first);
  EXPECT_GE(in_timer, deadline);
  EXPECT_GE(in_handler, in_timer);  // the wait that found the byte ended after the timer ran
  EXPECT_LE(in_handler, loop.time());
  loop.remove_handler(sp.fd[0]);
}

// ---------------------------------------------------------------------------------------------
// Timers on a ManualClock (IOLoopOptions::clock)

class ManualClockLoopTest : public ::testing::TestWithParam<PollerKind> {
 protected:
  ManualClockLoopTest() {
    IOLoop::Options options;
    options.poller = GetParam();
    options.clock = &clock_;
    auto loop = IOLoop::create(options);
    EXPECT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
  }
  ManualClock clock_;
  std::unique_ptr<IOLoop> loop_;
};

TEST_P(ManualClockLoopTest, TimersFireAtTheirDeadlinesWithoutWaiting) {
  const TimePoint start = loop_->time();
  EXPECT_EQ(start, clock_.now());
  std::vector<TimePoint> at;
  loop_->call_later(absl::Hours(1), [&] { at.push_back(loop_->time()); });
  loop_->call_later(absl::Milliseconds(3), [&] { at.push_back(loop_->time()); });
  loop_->call_later(absl::Hours(2), [&] {
    at.push_back(loop_->time());
    loop_->stop();
  });
  loop_->start();
  EXPECT_THAT(at,
              ::testing::ElementsAre(start + std::chrono::milliseconds(3),
                                     start + std::chrono::hours(1), start + std::chrono::hours(2)));
  // Each iteration runs the timers due and jumps the clock to the next one: no sleeping.
  EXPECT_EQ(loop_->stats().iterations, 4u);
  EXPECT_EQ(loop_->time(), start + std::chrono::hours(2));
}

TEST_P(ManualClockLoopTest, ReadyFdsAreServedBeforeTheClockJumps) {
  SocketPair sp;
  const TimePoint start = loop_->time();
  TimePoint read_at{};
  bool timer_ran = false;
  ASSERT_TRUE(sp.read_on(*loop_, [&] {
                  read_at = loop_->time();
                  EXPECT_FALSE(timer_ran);
                }).ok());
  loop_->call_later(absl::Seconds(30), [&] {
    timer_ran = true;
    loop_->stop();
  });
  sp.send();
  loop_->start();
  EXPECT_EQ(read_at, start);  // served at once, the clock not moved for it
  EXPECT_TRUE(timer_ran);
  EXPECT_EQ(loop_->time(), start + std::chrono::seconds(30));
  loop_->remove_handler(sp.fd[0]);
}

// iteration_time() is the injected clock's now(), even as it moves within a callback.
TEST_P(ManualClockLoopTest, IterationTimeIsTheClocksTime) {
  EXPECT_EQ(loop_->iteration_time(), clock_.now());
  std::vector<TimePoint> seen;
  loop_->add_callback([&] {
    seen.push_back(loop_->iteration_time());
    clock_.advance(absl::Seconds(5));
    seen.push_back(loop_->iteration_time());
    loop_->stop();
  });
  const TimePoint start = clock_.now();
  loop_->start();
  EXPECT_THAT(seen, ::testing::ElementsAre(start, start + std::chrono::seconds(5)));
}

// Regression: the loop jumped the clock by the wait's length, a duration that
// to_clock_duration() turns into 146 years from 100 years on, so a timer 120 years away ran
// 26 years late (and a test thread's own advance during the wait was added to the jump). It
// now jumps to the next deadline itself.
TEST_P(ManualClockLoopTest, AFarTimerRunsAtItsDeadline) {
  const TimePoint deadline = clock_.now() + std::chrono::hours(24 * 365 * 120);
  TimePoint ran_at{};
  loop_->call_at(deadline, [&] {
    ran_at = loop_->time();
    loop_->stop();
  });
  loop_->start();
  EXPECT_EQ(ran_at, deadline);
}

INSTANTIATE_TEST_SUITE_P(Pollers, ManualClockLoopTest, AllPollers(), PollerName);

}  // namespace
}  // namespace ioloop
