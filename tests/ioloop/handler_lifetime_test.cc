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
#include "testing/socket_pair.h"

namespace ioloop {
namespace {

using ::ioloop::testing::AllPollers;
using ::ioloop::testing::PollerName;
using ::ioloop::testing::SocketPair;

// A real poller that records, at each wait without a timeout, whether the captured token is
// gone, then stops the loop (the waker ends that wait at once).
class WatchingPoller final : public Poller {
 public:
  WatchingPoller(std::unique_ptr<Poller> real, std::weak_ptr<int> token, IOLoop** loop,
                 std::vector<bool>* gone)
      : real_(std::move(real)), token_(std::move(token)), loop_(loop), gone_(gone) {}
  PollerKind kind() const override { return real_->kind(); }
  absl::Status add(int fd, uint32_t events, uint32_t tag) override {
    return real_->add(fd, events, tag);
  }
  absl::Status modify(int fd, uint32_t events, uint32_t tag) override {
    return real_->modify(fd, events, tag);
  }
  void remove(int fd) override { real_->remove(fd); }
  absl::StatusOr<int> poll(std::optional<absl::Duration> timeout,
                           std::vector<Event>* out) override {
    if (!timeout) {
      gone_->push_back(token_.expired());
      (*loop_)->stop();
    }
    return real_->poll(timeout, out);
  }

 private:
  std::unique_ptr<Poller> real_;
  std::weak_ptr<int> token_;
  IOLoop** loop_;
  std::vector<bool>* gone_;
};

class HandlerLifetimeTest : public ::testing::TestWithParam<PollerKind> {};

// Regression: the removed entry stayed in the loop's graveyard until after the next wait, which
// blocks for ever on an idle loop.
TEST_P(HandlerLifetimeTest, AHandlerRemovedByACallbackIsDestroyedBeforeTheNextWait) {
  auto real = Poller::create(GetParam());
  ASSERT_TRUE(real.ok()) << real.status();
  auto token = std::make_shared<int>(0);
  IOLoop* raw = nullptr;
  std::vector<bool> gone;
  std::unique_ptr<IOLoop> loop = IOLoopTestPeer::create(
      std::make_unique<WatchingPoller>(*std::move(real), token, &raw, &gone));
  raw = loop.get();
  SocketPair sp;
  ASSERT_TRUE(loop->add_handler(
                      sp.fd[0], [t = std::move(token)](int, uint32_t) { (void)t; }, IOLoop::READ)
                  .ok());
  loop->add_callback([&] { loop->remove_handler(sp.fd[0]); });
  loop->start();
  ASSERT_FALSE(gone.empty());
  EXPECT_TRUE(gone.front());
}

INSTANTIATE_TEST_SUITE_P(Pollers, HandlerLifetimeTest, AllPollers(), PollerName);

}  // namespace
}  // namespace ioloop
