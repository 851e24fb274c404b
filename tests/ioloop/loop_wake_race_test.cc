// Another thread's stop() or add_callback() that ends the loop's run must be done with the loop
// before the loop can be destroyed: a loop owned by its own thread is destroyed as soon as
// start() returns. ThreadSanitizer (the tsan preset) checks the order. The loop here never
// hears of the wake that ends its wait (the poller reports no event, so the loop does not read
// the eventfd): only the loop's mutex can order the other thread's last touch of the loop
// before the destruction.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "io_loop_test_peer.h"
#include "ioloop/io_loop.h"
#include "ioloop/poller.h"
#include "testing/notification.h"
#include "testing/pollers.h"
#include "testing/scripted_poller.h"

namespace ioloop {
namespace {

using ::ioloop::testing::AllPollers;
using ::ioloop::testing::Notification;
using ::ioloop::testing::PollerName;
using ::ioloop::testing::PollerScript;
using ::ioloop::testing::ScriptedPoller;

class LoopWakeRaceTest : public ::testing::TestWithParam<PollerKind> {
 protected:
  // Runs a loop until `end_the_run`, called on another thread while the loop sleeps, makes
  // start() return; then destroys the loop at once, on the loop's thread, as its owner would.
  // Returns how many callbacks ran.
  int run_until(const std::function<void(IOLoop&)>& end_the_run) {
    auto real = Poller::create(GetParam());
    EXPECT_TRUE(real.ok()) << real.status();
    if (!real.ok()) return -1;
    auto script = std::make_shared<PollerScript>();
    script->discard_events = true;
    std::unique_ptr<IOLoop> loop =
        IOLoopTestPeer::create(std::make_unique<ScriptedPoller>(*std::move(real), script));
    Notification sleeping;
    script->before_wait = [&sleeping](std::optional<absl::Duration> timeout) {
      if (!timeout && !sleeping.HasBeenNotified()) sleeping.Notify();
    };
    std::thread other([&sleeping, &end_the_run, raw = loop.get()] {
      sleeping.WaitForNotification();
      end_the_run(*raw);
    });
    loop->start();
    const int ran = static_cast<int>(loop->stats().callbacks_run);
    loop.reset();
    other.join();
    return ran;
  }
};

// Regression: stop() set the flag before it took the loop's mutex and wrote the eventfd after
// it let the mutex go, so the loop could return from start() and be destroyed while stop()
// was still to touch it (tsan: a race between stop()'s read of the waker and ~IOLoop).
TEST_P(LoopWakeRaceTest, AStopFromAnotherThreadIsDoneBeforeTheLoopCanGo) {
  EXPECT_EQ(run_until([](IOLoop& loop) { loop.stop(); }), 0);
}

// Regression: the same for add_callback(), whose callback stops the loop.
TEST_P(LoopWakeRaceTest, AnAddCallbackFromAnotherThreadIsDoneBeforeTheLoopCanGo) {
  EXPECT_EQ(run_until([](IOLoop& loop) { loop.add_callback([&loop] { loop.stop(); }); }), 1);
}

// Regression: a loop on a ManualClock checks readiness without sleeping, then jumps the clock to
// the next timer's deadline if nothing was ready. A callback posted during that check (another
// thread's: the loop sends itself no wake then) was not looked at, so it ran after the jump, an
// hour late in the clock's time. Posted here from the poller's hook, which is the same moment.
TEST_P(LoopWakeRaceTest, ACallbackPostedDuringAManualClocksCheckRunsBeforeTheClockJumps) {
  auto real = Poller::create(GetParam());
  ASSERT_TRUE(real.ok()) << real.status();
  ManualClock clock;
  IOLoop::Options options;
  options.clock = &clock;
  auto script = std::make_shared<PollerScript>();
  std::unique_ptr<IOLoop> loop = IOLoopTestPeer::create(
      std::make_unique<ScriptedPoller>(*std::move(real), script), nullptr, options);
  const TimePoint start = loop->time();
  std::optional<TimePoint> ran_at;
  script->before_wait = [&](std::optional<absl::Duration> timeout) {
    if (timeout != absl::ZeroDuration() || script->waits != 1) return;
    loop->add_callback([&] { ran_at = loop->time(); });
  };
  loop->call_later(absl::Hours(1), [&] { loop->stop(); });
  loop->start();
  ASSERT_TRUE(ran_at.has_value());
  EXPECT_EQ(*ran_at, start);
  EXPECT_EQ(loop->time(), start + std::chrono::hours(1));
}

INSTANTIATE_TEST_SUITE_P(Pollers, LoopWakeRaceTest, AllPollers(), PollerName);

}  // namespace
}  // namespace ioloop
