// IOLoop: instance(), current() and make_current(), across threads and loop lifetimes.
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
#include "testing/log_capture.h"
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
// 1. instance() and current()

TEST(IOLoopCurrentTest, InstanceIsASingleton) {
  EXPECT_EQ(&IOLoop::instance(), &IOLoop::instance());
}

TEST(IOLoopCurrentTest, MainThreadCurrentIsInstanceUntilMadeCurrent) {
  EXPECT_EQ(&IOLoop::current(), &IOLoop::instance());
  {
    IOLoop mine;
    mine.make_current();
    EXPECT_EQ(&IOLoop::current(), &mine);
  }
  // Destroying the current loop un-registers it.
  EXPECT_EQ(&IOLoop::current(), &IOLoop::instance());
}

// A thread other than main has no fallback: a loop created there on first use would be a
// loop nobody runs (callbacks posted to it would never run). It dies, naming the fix.
TEST(IOLoopCurrentDeathTest, OtherThreadWithoutACurrentLoopDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        std::thread t([] { IOLoop::current(); });
        t.join();
      },
      "IOLoop::current\\(\\) on a thread with no current loop.*make_current\\(\\)");
}

TEST(IOLoopCurrentTest, OtherThreadsSeeTheLoopTheyMadeCurrentOrRun) {
  IOLoop* made = nullptr;
  IOLoop* running = nullptr;
  IOLoop a;
  IOLoop b;
  std::thread ta([&] {
    a.make_current();
    made = &IOLoop::current();
  });
  ta.join();
  std::thread tb([&] {
    b.add_callback([&] {
      running = &IOLoop::current();
      b.stop();
    });
    b.start();
  });
  tb.join();
  EXPECT_EQ(made, &a);
  EXPECT_EQ(running, &b);
}

// A thread made a loop current; the loop is destroyed by another thread. The first thread
// must not keep a dangling pointer: on main it falls back to instance() again.
TEST(IOLoopCurrentTest, LoopDestroyedByAnotherThreadIsNoLongerCurrent) {
  auto loop = std::make_unique<IOLoop>();
  loop->make_current();
  std::thread t([&] { loop.reset(); });
  t.join();
  EXPECT_EQ(&IOLoop::current(), &IOLoop::instance());
}

// The same on a thread without a fallback: a clean death naming make_current(), not a
// use of the destroyed loop.
TEST(IOLoopCurrentDeathTest, OtherThreadsCurrentLoopDestroyedElsewhereDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto loop = std::make_unique<IOLoop>();
        std::latch made(1);
        std::latch destroyed(1);
        std::thread t([&] {
          loop->make_current();
          made.count_down();
          destroyed.wait();
          IOLoop::current().stats();  // must not touch the destroyed loop
        });
        made.wait();
        loop.reset();
        destroyed.count_down();
        t.join();
      },
      "make_current");
}

// A loop that is destroyed while another thread's start() saved it as "previous" current.
TEST(IOLoopCurrentTest, PreviousLoopDestroyedDuringStartIsNotRestored) {
  auto previous = std::make_unique<IOLoop>();
  previous->make_current();
  IOLoop loop;
  loop.add_callback([&] {
    previous.reset();
    loop.stop();
  });
  loop.start();
  EXPECT_EQ(&IOLoop::current(), &IOLoop::instance());
}

TEST(IOLoopCurrentTest, ThreadMayMakeItsOwnLoopCurrent) {
  IOLoop* seen = nullptr;
  IOLoop* owned = nullptr;
  std::thread t([&] {
    IOLoop mine;
    owned = &mine;
    mine.make_current();
    seen = &IOLoop::current();
  });
  t.join();
  EXPECT_EQ(seen, owned);
}

TEST(IOLoopCurrentTest, CurrentInsideStartIsTheRunningLoop) {
  IOLoop other;
  other.make_current();
  IOLoop loop;
  IOLoop* inside = nullptr;
  bool in_thread = false;
  loop.add_callback([&] {
    inside = &IOLoop::current();
    in_thread = loop.in_loop_thread();
    loop.stop();
  });
  EXPECT_FALSE(loop.in_loop_thread());
  loop.start();
  EXPECT_EQ(inside, &loop);
  EXPECT_TRUE(in_thread);
  EXPECT_FALSE(loop.in_loop_thread());
  EXPECT_EQ(&IOLoop::current(), &other);  // restored after start() returns
}

TEST(IOLoopCurrentTest, CreateReportsPollerKind) {
  for (PollerKind kind : {PollerKind::kEpoll, PollerKind::kPoll, PollerKind::kSelect}) {
    IOLoop::Options options;
    options.poller = kind;
    auto loop = IOLoop::create(options);
    ASSERT_TRUE(loop.ok()) << loop.status();
    EXPECT_EQ((*loop)->poller_kind(), kind);
  }
  EXPECT_EQ(IOLoop().poller_kind(), PollerKind::kEpoll);  // the default
}

}  // namespace
}  // namespace ioloop
