#include "ioloop/periodic_callback.h"

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "testing/loop_test_base.h"

namespace ioloop {
namespace {

class PeriodicCallbackTest : public testing::LoopTestBase {};

struct RunRecord {
  TimePoint at;         // loop.time() when the callback ran
  TimePoint scheduled;  // its grid time
  uint64_t runs;
  uint64_t skipped;
};

TEST_F(PeriodicCallbackTest, RunsRepeatedlyOnTheGridAndNeverEarly) {
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
  const TimePoint before = loop().time();
  ASSERT_TRUE(pc->start().ok());
  EXPECT_TRUE(pc->is_running());
  const TimePoint first = pc->scheduled_time();
  EXPECT_GE(first, before + p);
  ASSERT_TRUE(wait());
  pc->stop();
  ASSERT_EQ(runs.size(), 10u);
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunRecord& r = runs[i];
    EXPECT_EQ(r.runs, i + 1);
    // Exactly on the grid, whatever the lateness of earlier runs (skipped ones included).
    EXPECT_EQ(r.scheduled, first + static_cast<int64_t>(i + r.skipped) * p) << "run " << i;
    EXPECT_GE(r.at, r.scheduled) << "run " << i << " early";
  }
  EXPECT_EQ(pc->runs(), 10u);
}

TEST_F(PeriodicCallbackTest, LateRunSkipsMissedTicksAndKeepsTheGrid) {
  // The first run blocks the loop for 2.5 periods: the ticks at +2P and +3P are skipped (not
  // replayed back to back), and the next run is at +4P, on the original grid, not at
  // "end of the slow run + P" as a re-arm-from-now timer would do.
  const absl::Duration period = absl::Milliseconds(100);
  const Clock::duration p = to_clock_duration(period);
  std::vector<RunRecord> runs;
  std::unique_ptr<PeriodicCallback> pc;
  TimePoint first;
  pc = std::make_unique<PeriodicCallback>(
      loop(),
      [&] {
        runs.push_back({loop().time(), pc->scheduled_time(), pc->runs(), pc->skipped()});
        if (runs.size() == 1) std::this_thread::sleep_until(first + p * 5 / 2);
        if (runs.size() == 3) done();
      },
      period);
  ASSERT_TRUE(pc->start().ok());
  first = pc->scheduled_time();
  ASSERT_TRUE(wait());
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].scheduled, first);
  EXPECT_EQ(runs[0].skipped, 0u);
  EXPECT_EQ(runs[1].skipped, 2u);
  EXPECT_EQ(runs[1].scheduled, first + 3 * p);
  EXPECT_EQ(runs[2].scheduled, first + 4 * p);
  EXPECT_EQ(pc->skipped(), 2u);
  EXPECT_EQ(pc->runs(), 3u);
  for (const RunRecord& r : runs) EXPECT_GE(r.at, r.scheduled);
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
  loop().call_later(absl::Milliseconds(10), [this] { done(); });
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 0);  // stopped before its first run

  ASSERT_TRUE(pc.start().ok());  // runs again after a restart
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 2);
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
  loop().call_later(absl::Milliseconds(30), [this] { done(); });
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 2);
  EXPECT_FALSE(pc->is_running());
  EXPECT_EQ(loop().stats().timers_pending, 0u);
}

TEST_F(PeriodicCallbackTest, RestartFromInsideCallback) {
  int calls = 0;
  std::unique_ptr<PeriodicCallback> pc;
  TimePoint restarted_at;
  pc = std::make_unique<PeriodicCallback>(
      loop(),
      [&] {
        if (++calls == 1) {
          pc->stop();
          restarted_at = loop().time();
          ASSERT_TRUE(pc->start().ok());
        } else {
          EXPECT_GE(loop().time(), restarted_at + std::chrono::milliseconds(2));
          pc->stop();
          done();
        }
      },
      absl::Milliseconds(2));
  ASSERT_TRUE(pc->start().ok());
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 2);
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

TEST_F(PeriodicCallbackTest, ExceptionKeepsItRunning) {
  std::unique_ptr<PeriodicCallback> pc;
  pc = std::make_unique<PeriodicCallback>(
      loop(),
      [&] {
        if (pc->runs() == 3) done();
        throw std::runtime_error("periodic failure");
      },
      absl::Milliseconds(1));
  ASSERT_TRUE(pc->start().ok());
  ASSERT_TRUE(wait());
  EXPECT_EQ(pc->runs(), 3u);
  EXPECT_TRUE(pc->is_running());
  EXPECT_EQ(loop().stats().exceptions, 3u);
}

}  // namespace
}  // namespace ioloop
