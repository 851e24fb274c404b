// PeriodicCallback on a loop that runs on a ManualClock: the loop jumps the clock from one
// timeout to the next instead of sleeping, so every run happens exactly at its grid time and
// the tests assert exact times, run counts and skip counts, never wall-clock windows. A
// callback "takes time" by advancing the clock itself.
#include "ioloop/periodic_callback.h"

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/log_capture.h"
#include "testing/loop_test_base.h"

namespace ioloop {
namespace {

using ::ioloop::testing::ScopedLogCapture;
using ::testing::ElementsAre;

class PeriodicCallbackTest : public testing::LoopTestBase {
 protected:
  PeriodicCallbackTest() {
    IOLoop::Options options;
    options.clock = &clock_;
    auto loop = IOLoop::create(options);
    EXPECT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
  }
  ~PeriodicCallbackTest() override { loop_.reset(); }  // before the clock it runs on

  ManualClock clock_;
};

struct RunRecord {
  TimePoint at;         // loop.time() when the callback ran
  TimePoint scheduled;  // its grid time
  uint64_t runs;
  uint64_t skipped;
};

TEST_F(PeriodicCallbackTest, RunsExactlyOnTheGrid) {
  const absl::Duration period = absl::Milliseconds(5);
  const Clock::duration p = to_clock_duration(period);
  std::vector<RunRecord> runs;
  std::unique_ptr<PeriodicCallback> pc;
  pc = std::make_unique<PeriodicCallback>(
      loop(),
      [&] {
        runs.push_back({loop().time(), pc->scheduled_time(), pc->runs(), pc->skipped()});
        if (runs.size() == 10) done();
      },
      period);
  const TimePoint start = loop().time();
  ASSERT_TRUE(pc->start().ok());
  EXPECT_TRUE(pc->is_running());
  EXPECT_EQ(pc->scheduled_time(), start + p);
  ASSERT_TRUE(wait());
  pc->stop();
  ASSERT_EQ(runs.size(), 10u);
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunRecord& r = runs[i];
    EXPECT_EQ(r.runs, i + 1);
    EXPECT_EQ(r.skipped, 0u);
    EXPECT_EQ(r.scheduled, start + static_cast<int64_t>(i + 1) * p) << "run " << i;
    EXPECT_EQ(r.at, r.scheduled) << "run " << i;
  }
}

TEST_F(PeriodicCallbackTest, LateRunSkipsMissedTicksAndKeepsTheGrid) {
  // The first run takes 2.5 periods: the ticks at +2P and +3P are skipped (not replayed back
  // to back), and the next run is at +4P, on the original grid, not at "end of the slow run
  // + P" as a re-arm-from-now timer would do.
  const absl::Duration period = absl::Milliseconds(100);
  const Clock::duration p = to_clock_duration(period);
  std::vector<RunRecord> runs;
  std::unique_ptr<PeriodicCallback> pc;
  pc = std::make_unique<PeriodicCallback>(
      loop(),
      [&] {
        runs.push_back({loop().time(), pc->scheduled_time(), pc->runs(), pc->skipped()});
        if (runs.size() == 1) clock_.advance(period * 2.5);
        if (runs.size() == 3) done();
      },
      period);
  ASSERT_TRUE(pc->start().ok());
  const TimePoint first = pc->scheduled_time();
  ASSERT_TRUE(wait());
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].scheduled, first);
  EXPECT_EQ(runs[0].at, first);
  EXPECT_EQ(runs[0].skipped, 0u);
  EXPECT_EQ(runs[1].skipped, 2u);
  EXPECT_EQ(runs[1].scheduled, first + 3 * p);
  EXPECT_EQ(runs[1].at, first + 3 * p);
  EXPECT_EQ(runs[2].scheduled, first + 4 * p);
  EXPECT_EQ(runs[2].at, first + 4 * p);
  EXPECT_EQ(pc->skipped(), 2u);
  EXPECT_EQ(pc->runs(), 3u);
}

TEST_F(PeriodicCallbackTest, AGridPointThatIsNowIsSkippedNotRunLate) {
  // Ending exactly on a grid point: that point is not in the future, so it is skipped too.
  const absl::Duration period = absl::Milliseconds(10);
  const Clock::duration p = to_clock_duration(period);
  std::vector<RunRecord> runs;
  std::unique_ptr<PeriodicCallback> pc;
  pc = std::make_unique<PeriodicCallback>(
      loop(),
      [&] {
        runs.push_back({loop().time(), pc->scheduled_time(), pc->runs(), pc->skipped()});
        if (runs.size() == 1) clock_.advance(period * 2);
        if (runs.size() == 2) done();
      },
      period);
  ASSERT_TRUE(pc->start().ok());
  const TimePoint first = pc->scheduled_time();
  ASSERT_TRUE(wait());
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].scheduled, first + 3 * p);
  EXPECT_EQ(runs[1].skipped, 2u);
}

// A period the clock cannot keep is refused; on a ManualClock jumped to the end of its range
// the runs stop there instead of repeating at one instant.
TEST_F(PeriodicCallbackTest, PeriodsBeyondTheClocksRangeAreRefusedOrStop) {
  PeriodicCallback infinite(
      loop(), [] {}, absl::InfiniteDuration());
  EXPECT_EQ(infinite.start().code(), absl::StatusCode::kInvalidArgument);
  int runs = 0;
  PeriodicCallback long_one(
      loop(), [&] { ++runs; }, absl::Hours(24 * 365 * 99));
  ASSERT_TRUE(long_one.start().ok());
  clock_.advance(absl::InfiniteDuration());
  clock_.advance(absl::InfiniteDuration());  // the end of the clock's range
  for (int i = 0; i < 10; ++i) {
    loop().add_callback([] {});
    loop().stop();
    loop().start();
  }
  EXPECT_EQ(runs, 1);
  EXPECT_FALSE(long_one.is_running());
}

TEST_F(PeriodicCallbackTest, StopAndRestart) {
  int calls = 0;
  PeriodicCallback pc(
      loop(),
      [&] {
        if (++calls == 2) done();
      },
      absl::Milliseconds(2));
  EXPECT_FALSE(pc.is_running());
  pc.stop();  // not running: no-op
  ASSERT_TRUE(pc.start().ok());
  const TimePoint scheduled = pc.scheduled_time();
  ASSERT_TRUE(pc.start().ok());  // already running: no-op
  EXPECT_EQ(pc.scheduled_time(), scheduled);
  pc.stop();
  EXPECT_FALSE(pc.is_running());
  EXPECT_EQ(loop().stats().timers_pending, 0u);
  loop().call_later(absl::Milliseconds(10), [this] { done(); });  // five periods, no run
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 0);

  const TimePoint restart = loop().time();
  ASSERT_TRUE(pc.start().ok());  // runs again after a restart, on a grid from the restart
  EXPECT_EQ(pc.scheduled_time(), restart + std::chrono::milliseconds(2));
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(loop().time(), restart + std::chrono::milliseconds(4));
  EXPECT_TRUE(pc.is_running());
}

TEST_F(PeriodicCallbackTest, StopFromInsideCallback) {
  int calls = 0;
  std::unique_ptr<PeriodicCallback> pc;
  pc = std::make_unique<PeriodicCallback>(
      loop(),
      [&] {
        if (++calls == 2) pc->stop();
      },
      absl::Milliseconds(1));
  ASSERT_TRUE(pc->start().ok());
  loop().call_later(absl::Milliseconds(30), [this] { done(); });  // 28 periods after the stop
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 2);
  EXPECT_FALSE(pc->is_running());
  EXPECT_EQ(loop().stats().timers_pending, 0u);
  EXPECT_EQ(loop().stats().timers_fired, 3u);  // two runs and the test's timer
}

TEST_F(PeriodicCallbackTest, RestartFromInsideCallback) {
  int calls = 0;
  std::unique_ptr<PeriodicCallback> pc;
  TimePoint restarted_at;
  TimePoint second_run;
  pc = std::make_unique<PeriodicCallback>(
      loop(),
      [&] {
        if (++calls == 1) {
          clock_.advance(absl::Microseconds(500));  // restart off the old grid
          pc->stop();
          restarted_at = loop().time();
          ASSERT_TRUE(pc->start().ok());
        } else {
          second_run = loop().time();
          pc->stop();
          done();
        }
      },
      absl::Milliseconds(2));
  ASSERT_TRUE(pc->start().ok());
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(second_run, restarted_at + std::chrono::milliseconds(2));  // the new grid
  EXPECT_EQ(loop().stats().timers_pending, 0u);  // no duplicate schedule from the restart
}

TEST_F(PeriodicCallbackTest, DestroyFromInsideCallback) {
  int calls = 0;
  std::string payload(100, 'd');  // heap-allocated capture: ASan sees any use after free
  std::string seen;
  std::unique_ptr<PeriodicCallback> pc;
  pc = std::make_unique<PeriodicCallback>(
      loop(),
      [&, payload] {
        ++calls;
        pc.reset();
        seen = payload;  // the running callable must outlive its owner
      },
      absl::Milliseconds(1));
  ASSERT_TRUE(pc->start().ok());
  loop().call_later(absl::Milliseconds(20), [this] { done(); });
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(pc, nullptr);
  EXPECT_EQ(seen, payload);
  EXPECT_EQ(loop().stats().timers_pending, 0u);
}

TEST_F(PeriodicCallbackTest, DestructionCancels) {
  int calls = 0;
  {
    PeriodicCallback pc(
        loop(), [&] { ++calls; }, absl::Milliseconds(1));
    ASSERT_TRUE(pc.start().ok());
  }
  EXPECT_EQ(loop().stats().timers_pending, 0u);
  loop().call_later(absl::Milliseconds(5), [this] { done(); });
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 0);
}

TEST_F(PeriodicCallbackTest, InvalidPeriodOrCallback) {
  for (absl::Duration period : {absl::ZeroDuration(), absl::Milliseconds(-5)}) {
    PeriodicCallback pc(
        loop(), [] {}, period);
    absl::Status s = pc.start();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_FALSE(pc.is_running());
  }
  PeriodicCallback empty(loop(), nullptr, absl::Milliseconds(1));
  EXPECT_EQ(empty.start().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(empty.is_running());
  EXPECT_EQ(loop().stats().timers_pending, 0u);
}

// Found by a review: a period under the clock's tick (1 ns) passed the check, became 0 on the
// clock, and the first reschedule divided by it: the process died of SIGFPE. It is refused, and
// the shortest period there is, one tick, keeps its grid.
TEST_F(PeriodicCallbackTest, APeriodUnderOneNanosecondIsRefusedAndOneNanosecondRuns) {
  PeriodicCallback too_short(
      loop(), [] {}, absl::Nanoseconds(1) / 4);
  absl::Status s = too_short.start();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(s.message(),
            "PeriodicCallback: period must be from 1ns to under 100 years, got 0.25ns");
  EXPECT_FALSE(too_short.is_running());

  std::vector<TimePoint> at;
  PeriodicCallback tick(
      loop(),
      [&] {
        at.push_back(loop().time());
        if (at.size() == 3) done();
      },
      absl::Nanoseconds(1));
  const TimePoint start = loop().time();
  ASSERT_TRUE(tick.start().ok());
  ASSERT_TRUE(wait());
  tick.stop();
  const Clock::duration ns(1);
  EXPECT_THAT(at, ElementsAre(start + ns, start + 2 * ns, start + 3 * ns));
}

// Tornado's PeriodicCallback logs an exception and keeps running: so does this one, on its
// grid, with the exception logged as the periodic callback's and counted by the loop.
TEST_F(PeriodicCallbackTest, ExceptionIsLoggedCountedAndTheScheduleKept) {
  ScopedLogCapture log;
  const absl::Duration period = absl::Milliseconds(1);
  std::vector<TimePoint> at;
  std::unique_ptr<PeriodicCallback> pc;
  pc = std::make_unique<PeriodicCallback>(
      loop(),
      [&] {
        at.push_back(loop().time());
        if (pc->runs() == 3) done();
        throw std::runtime_error("periodic failure " + std::to_string(pc->runs()));
      },
      period);
  ASSERT_TRUE(pc->start().ok());
  const TimePoint first = pc->scheduled_time();
  ASSERT_TRUE(wait());
  const Clock::duration p = to_clock_duration(period);
  EXPECT_THAT(at, ElementsAre(first, first + p, first + 2 * p));
  EXPECT_EQ(pc->runs(), 3u);
  EXPECT_EQ(pc->skipped(), 0u);
  EXPECT_TRUE(pc->is_running());
  EXPECT_EQ(pc->scheduled_time(), first + 3 * p);
  EXPECT_EQ(loop().stats().exceptions, 3u);
  EXPECT_THAT(log.lines(), ElementsAre("exception escaped periodic callback: periodic failure 1",
                                       "exception escaped periodic callback: periodic failure 2",
                                       "exception escaped periodic callback: periodic failure 3"));
}

TEST_F(PeriodicCallbackTest, ExceptionAfterStopOrDestroyInsideTheCallbackIsStillContained) {
  std::unique_ptr<PeriodicCallback> pc;
  int calls = 0;
  pc = std::make_unique<PeriodicCallback>(
      loop(),
      [&] {
        ++calls;
        pc.reset();
        throw std::runtime_error("after destroying itself");
      },
      absl::Milliseconds(1));
  ASSERT_TRUE(pc->start().ok());
  loop().call_later(absl::Milliseconds(10), [this] { done(); });
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(loop().stats().exceptions, 1u);
  EXPECT_EQ(loop().stats().timers_pending, 0u);
}

}  // namespace
}  // namespace ioloop
