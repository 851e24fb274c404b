// File: testing/loop_test_base.h
// Tornado's AsyncTestCase for ioloop: every test gets a fresh IOLoop, and wait() runs it
// until the test calls done() or a timeout passes, which fails the test (no sleep()s).
#ifndef IOLOOP_TESTS_TESTING_LOOP_TEST_BASE_H_
#define IOLOOP_TESTS_TESTING_LOOP_TEST_BASE_H_

#include <functional>
#include <memory>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ioloop/io_loop.h"

namespace ioloop::testing {

// Parameterisable by poller: derive, and pass the kind to make_loop().
class LoopTestBase : public ::testing::Test {
 protected:
  explicit LoopTestBase(PollerKind kind = PollerKind::kEpoll) {
    IOLoop::Options options;
    options.poller = kind;
    auto loop = IOLoop::create(options);
    EXPECT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
  }

  IOLoop& loop() { return *loop_; }

  // Runs the loop until done() is called; returns false (and fails the test) on timeout.
  bool wait(absl::Duration timeout = absl::Seconds(10)) {
    done_called_ = false;
    bool timed_out = false;
    TimeoutHandle t = loop_->call_later(timeout, [this, &timed_out] {
      timed_out = true;
      loop_->stop();
    });
    if (!done_called_) loop_->start();
    loop_->remove_timeout(t);
    EXPECT_FALSE(timed_out) << "wait() timed out after " << absl::FormatDuration(timeout);
    return !timed_out;
  }
  // Runs `turns` loop iterations (each a poll that does not block: a callback is pending),
  // so that what the kernel has ready now is dispatched, without a wall-clock wait.
  void run_turns(int turns) {
    int left = turns;
    std::function<void()> step = [&] {
      if (left-- == 0) {
        done();
        return;
      }
      loop_->add_callback([&step] { step(); });
    };
    step();
    ASSERT_TRUE(wait());
  }
  // Ends the current wait(). Loop thread only (use loop().add_callback from others).
  void done() {
    done_called_ = true;
    loop_->stop();
  }

  std::unique_ptr<IOLoop> loop_;
  bool done_called_ = false;
};

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_TESTING_LOOP_TEST_BASE_H_
