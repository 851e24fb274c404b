// A handler removed outside a dispatch batch (from a callback or a timer) is destroyed, with
// what it captured, before the loop waits again: an idle loop must not keep a removed
// handler's sockets and memory alive until some unrelated event wakes it.
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "io_loop_test_peer.h"
#include "ioloop/io_loop.h"
#include "ioloop/poller.h"
#include "testing/pollers.h"
#include "testing/scripted_poller.h"
#include "testing/socket_pair.h"

namespace ioloop {
namespace {

using ::ioloop::testing::AllPollers;
using ::ioloop::testing::PollerName;
using ::ioloop::testing::PollerScript;
using ::ioloop::testing::ScriptedPoller;
using ::ioloop::testing::SocketPair;

class HandlerLifetimeTest : public ::testing::TestWithParam<PollerKind> {};

// Regression: the removed entry stayed in the loop's graveyard until after the next wait, which
// blocks for ever on an idle loop.
TEST_P(HandlerLifetimeTest, AHandlerRemovedByACallbackIsDestroyedBeforeTheNextWait) {
  auto real = Poller::create(GetParam());
  ASSERT_TRUE(real.ok()) << real.status();
  auto token = std::make_shared<int>(0);
  std::vector<bool> gone;  // at each wait without a timeout: whether the token was destroyed
  auto script = std::make_shared<PollerScript>();
  std::unique_ptr<IOLoop> loop =
      IOLoopTestPeer::create(std::make_unique<ScriptedPoller>(*std::move(real), script));
  script->before_wait = [&,
                         weak = std::weak_ptr<int>(token)](std::optional<absl::Duration> timeout) {
    if (timeout) return;
    gone.push_back(weak.expired());
    loop->stop();  // the waker ends that wait at once
  };
  SocketPair sp;
  ASSERT_TRUE(loop->add_handler(
                      sp.fd[0], [t = std::move(token)](int, uint32_t) { (void)t; }, IOLoop::READ)
                  .ok());
  loop->add_callback([&] { loop->remove_handler(sp.fd[0]); });
  loop->start();
  ASSERT_FALSE(gone.empty());
  EXPECT_TRUE(gone.front());
}

// Arms a timer from its destructor, as an object a removed handler held last may do.
struct ArmsATimerWhenDestroyed {
  explicit ArmsATimerWhenDestroyed(IOLoop* l, bool* fired) : loop(l), fired(fired) {}
  ~ArmsATimerWhenDestroyed() {
    loop->call_later(absl::ZeroDuration(), [f = fired] { *f = true; });
  }
  IOLoop* loop;
  bool* fired;
};

// Regression: the removed handlers were destroyed after the wait's timeout was worked out, so a
// timer their destruction armed was slept past: an unbounded wait with that timer due.
TEST_P(HandlerLifetimeTest, ATimerArmedByARemovedHandlersDestructionBoundsTheNextWait) {
  auto real = Poller::create(GetParam());
  ASSERT_TRUE(real.ok()) << real.status();
  auto script = std::make_shared<PollerScript>();
  std::unique_ptr<IOLoop> loop =
      IOLoopTestPeer::create(std::make_unique<ScriptedPoller>(*std::move(real), script));
  bool fired = false;
  std::vector<std::optional<absl::Duration>> waits;  // each wait's timeout until the timer ran
  script->before_wait = [&](std::optional<absl::Duration> timeout) {
    waits.push_back(timeout);
    if (!timeout || fired) loop->stop();  // the waker ends an unbounded wait at once
  };
  SocketPair sp;
  auto arms = std::make_shared<ArmsATimerWhenDestroyed>(loop.get(), &fired);
  ASSERT_TRUE(loop->add_handler(
                      sp.fd[0], [a = std::move(arms)](int, uint32_t) { (void)a; }, IOLoop::READ)
                  .ok());
  loop->add_callback([&] { loop->remove_handler(sp.fd[0]); });
  loop->start();
  ASSERT_FALSE(waits.empty());
  // Bounded by the timer (its deadline, now just past), and the timer ran.
  EXPECT_TRUE(waits.front().has_value());
  EXPECT_TRUE(fired);
}

INSTANTIATE_TEST_SUITE_P(Pollers, HandlerLifetimeTest, AllPollers(), PollerName);

}  // namespace
}  // namespace ioloop
