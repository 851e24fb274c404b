#include "ioloop/io_loop.h"

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

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ioloop/logging.h"
#include "spdlog/sinks/base_sink.h"
#include "testing/loop_test_base.h"
#include "testing/pollers.h"
#include "testing/socket_pair.h"

namespace ioloop {
namespace {

using ::testing::HasSubstr;

using ::ioloop::testing::SocketPair;

// Counts the lines the "ioloop" logger writes while it is installed.
class CountingSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

class ScopedLogCapture {
 public:
  ScopedLogCapture() : sink_(std::make_shared<CountingSink>()) {
    logger().sinks().push_back(sink_);
  }
  ~ScopedLogCapture() {
    auto& sinks = logger().sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  std::vector<std::string> lines() { return sink_->lines(); }

 private:
  std::shared_ptr<CountingSink> sink_;
};

using ::ioloop::testing::AllPollers;
using ::ioloop::testing::PollerName;

class IOLoopTest : public testing::LoopTestBase, public ::testing::WithParamInterface<PollerKind> {
 protected:
  IOLoopTest() : LoopTestBase(GetParam()) {}

  // Runs `n` iterations of the loop (a callback that re-adds itself runs once per iteration).
  void run_iterations(int n) {
    auto step = std::make_shared<std::function<void(int)>>();
    *step = [this, step](int left) {
      if (left == 0) {
        done();
        return;
      }
      loop().add_callback([step, left] { (*step)(left - 1); });
    };
    (*step)(n);
    ASSERT_TRUE(wait());
    *step = nullptr;  // break the cycle
  }
};

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

TEST(IOLoopCurrentTest, OtherThreadsGetTheirOwnLoop) {
  IOLoop* a1 = nullptr;
  IOLoop* a2 = nullptr;
  IOLoop* b = nullptr;
  // Both threads stay alive until both looked: a thread's loop dies with the thread, and the
  // next one could be allocated at the same address.
  std::latch looked(2);
  std::thread ta([&] {
    a1 = &IOLoop::current();
    a2 = &IOLoop::current();
    looked.arrive_and_wait();
  });
  std::thread tb([&] {
    b = &IOLoop::current();
    looked.arrive_and_wait();
  });
  ta.join();
  tb.join();
  EXPECT_EQ(a1, a2);  // stable within a thread
  EXPECT_NE(a1, b);
  EXPECT_NE(a1, &IOLoop::instance());
  EXPECT_NE(b, &IOLoop::instance());
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

// ---------------------------------------------------------------------------------------------
// 2. add_handler / update_handler / remove_handler

TEST_P(IOLoopTest, CallbackRuns) {
  int runs = 0;
  loop().add_callback([&] {
    ++runs;
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(runs, 1);
}

TEST_P(IOLoopTest, ReadHandlerSeesData) {
  SocketPair sp;
  uint32_t seen = 0;
  int seen_fd = -1;
  ASSERT_TRUE(loop()
                  .add_handler(
                      sp.fd[0],
                      [&](int fd, uint32_t events) {
                        seen = events;
                        seen_fd = fd;
                        char c;
                        ASSERT_EQ(::read(fd, &c, 1), 1);
                        EXPECT_EQ(c, 'x');
                        done();
                      },
                      READ)
                  .ok());
  sp.send("x");
  ASSERT_TRUE(wait());
  EXPECT_EQ(seen, READ) << events_to_string(seen);
  EXPECT_EQ(seen_fd, sp.fd[0]);
  loop().remove_handler(sp.fd[0]);
}

TEST_P(IOLoopTest, AddHandlerErrors) {
  auto noop = [](int, uint32_t) {};
  absl::Status s = loop().add_handler(-1, noop, READ);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr("-1"));

  int closed = ::dup(0);
  ASSERT_GE(closed, 0);
  ::close(closed);
  s = loop().add_handler(closed, noop, READ);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr("not open"));

  SocketPair sp;
  s = loop().add_handler(sp.fd[0], noop, 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  s = loop().add_handler(sp.fd[0], nullptr, READ);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  s = loop().add_handler(sp.fd[0], noop, 0x100);  // not an event bit
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_FALSE(loop().has_handler(sp.fd[0]));

  ASSERT_TRUE(loop().add_handler(sp.fd[0], noop, READ).ok());
  s = loop().add_handler(sp.fd[0], noop, WRITE);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_THAT(s.message(), HasSubstr(std::to_string(sp.fd[0])));
  loop().remove_handler(sp.fd[0]);
}

TEST_P(IOLoopTest, UpdateAndRemoveUnknownFd) {
  SocketPair sp;
  absl::Status s = loop().update_handler(sp.fd[0], READ);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  s = loop().update_handler(-3, READ);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  const size_t before = loop().stats().handlers;
  loop().remove_handler(sp.fd[0]);  // documented no-op
  loop().remove_handler(-1);
  loop().remove_handler(100000);
  EXPECT_EQ(loop().stats().handlers, before);
}

TEST_P(IOLoopTest, HandlerCountTracksRegistrations) {
  SocketPair sp;
  const size_t base = loop().stats().handlers;  // the loop's own waker
  EXPECT_GE(base, 1u);
  ASSERT_TRUE(loop()
                  .add_handler(
                      sp.fd[0], [](int, uint32_t) {}, READ)
                  .ok());
  ASSERT_TRUE(loop()
                  .add_handler(
                      sp.fd[1], [](int, uint32_t) {}, READ)
                  .ok());
  EXPECT_EQ(loop().stats().handlers, base + 2);
  EXPECT_TRUE(loop().has_handler(sp.fd[0]));
  loop().remove_handler(sp.fd[0]);
  EXPECT_FALSE(loop().has_handler(sp.fd[0]));
  EXPECT_EQ(loop().stats().handlers, base + 1);
  // Re-adding after remove works.
  ASSERT_TRUE(loop()
                  .add_handler(
                      sp.fd[0], [](int, uint32_t) {}, READ)
                  .ok());
  loop().remove_handler(sp.fd[0]);
  loop().remove_handler(sp.fd[1]);
}

TEST_P(IOLoopTest, EdgeFlagOnlyOnEpoll) {
  SocketPair sp;
  absl::Status s = loop().add_handler(
      sp.fd[0], [](int, uint32_t) {}, READ | EDGE);
  if (GetParam() == PollerKind::kEpoll) {
    EXPECT_TRUE(s.ok()) << s;
    loop().remove_handler(sp.fd[0]);
  } else {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(s.message(), HasSubstr("epoll"));
    EXPECT_FALSE(loop().has_handler(sp.fd[0]));
    ASSERT_TRUE(loop()
                    .add_handler(
                        sp.fd[0], [](int, uint32_t) {}, READ)
                    .ok());
    s = loop().update_handler(sp.fd[0], READ | EDGE);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    loop().remove_handler(sp.fd[0]);
  }
}

TEST_P(IOLoopTest, LevelTriggeredRepeatsUntilDrained) {
  SocketPair sp;
  int calls = 0;
  ASSERT_TRUE(loop()
                  .add_handler(
                      sp.fd[0], [&](int, uint32_t) { ++calls; }, READ)
                  .ok());
  sp.send();
  run_iterations(5);
  // Unread data: reported on every one of the (at least 5) polls.
  EXPECT_GE(calls, 5);
  loop().remove_handler(sp.fd[0]);
}

TEST(IOLoopEpollTest, EdgeTriggeredReportsOnlyNewData) {
  IOLoop loop;
  SocketPair sp;
  int calls = 0;
  ASSERT_TRUE(loop.add_handler(
                      sp.fd[0], [&](int, uint32_t) { ++calls; }, READ | EDGE)
                  .ok());
  auto spin = [&loop](int n) {
    // n iterations, each one polling (callbacks pending: zero timeout).
    auto left = std::make_shared<int>(n);
    auto step = std::make_shared<std::function<void()>>();
    *step = [&loop, left, step] {
      if (--*left == 0) {
        loop.stop();
        return;
      }
      loop.add_callback([step] { (*step)(); });
    };
    loop.add_callback([step] { (*step)(); });
    loop.start();
    *step = nullptr;
  };
  sp.send();
  spin(10);
  EXPECT_EQ(calls, 1);  // data left unread is not reported again
  sp.send();
  spin(10);
  EXPECT_EQ(calls, 2);  // a new arrival is a new edge
  loop.remove_handler(sp.fd[0]);
}

TEST_P(IOLoopTest, WriteRegistrationAndUpdate) {
  SocketPair sp;
  uint32_t seen = 0;
  int writes = 0;
  ASSERT_TRUE(loop()
                  .add_handler(
                      sp.fd[0],
                      [&](int fd, uint32_t events) {
                        seen |= events;
                        if (events & WRITE) {
                          ++writes;
                          // Output done: drop WRITE interest, as a stream would.
                          ASSERT_TRUE(loop().update_handler(fd, READ).ok());
                        }
                        if (events & READ) done();
                      },
                      WRITE)
                  .ok());
  run_iterations(1);
  EXPECT_EQ(writes, 1);
  EXPECT_EQ(seen, WRITE) << events_to_string(seen);
  run_iterations(5);
  EXPECT_EQ(writes, 1);  // no more WRITE after the update
  sp.send();
  ASSERT_TRUE(wait());
  EXPECT_EQ(seen, READ | WRITE) << events_to_string(seen);
  EXPECT_EQ(writes, 1);
  loop().remove_handler(sp.fd[0]);
}

TEST_P(IOLoopTest, UpdateDuringBatchMasksEventsOfThatBatch) {
  // Both fds writable in one batch; whichever handler runs first drops WRITE from the
  // other, which then must not see the WRITE computed before the update.
  SocketPair a, b;
  int first = -1;
  std::vector<int> calls;
  auto handler = [&](int fd, uint32_t) {
    calls.push_back(fd);
    if (first < 0) {
      first = fd;
      const int other = fd == a.fd[0] ? b.fd[0] : a.fd[0];
      ASSERT_TRUE(loop().update_handler(other, READ).ok());
      ASSERT_TRUE(loop().update_handler(fd, READ).ok());
      loop().add_callback([this] { done(); });
    }
  };
  ASSERT_TRUE(loop().add_handler(a.fd[0], handler, WRITE).ok());
  ASSERT_TRUE(loop().add_handler(b.fd[0], handler, WRITE).ok());
  ASSERT_TRUE(wait());
  ASSERT_EQ(calls.size(), 1u) << "the updated fd still got its WRITE event";
  loop().remove_handler(a.fd[0]);
  loop().remove_handler(b.fd[0]);
}

TEST_P(IOLoopTest, ErrorReportedWithoutAsking) {
  if (GetParam() == PollerKind::kSelect) {
    GTEST_SKIP() << "select has no error set: a hang-up shows as READ (see select_poller.cc)";
  }
  SocketPair sp;
  uint32_t seen = 0;
  ASSERT_TRUE(loop()
                  .add_handler(
                      sp.fd[0],
                      [&](int fd, uint32_t events) {
                        seen = events;
                        loop().remove_handler(fd);
                        done();
                      },
                      ERROR)
                  .ok());
  ::shutdown(sp.fd[0], SHUT_RDWR);  // a full hang-up: EPOLLHUP / POLLHUP
  ASSERT_TRUE(wait());
  EXPECT_NE(seen & ERROR, 0u) << events_to_string(seen);
  EXPECT_EQ(seen & (READ | WRITE), 0u) << events_to_string(seen);
}

// ---------------------------------------------------------------------------------------------
// 4. Dispatch safety

// Fd A and fd B are both readable in one batch. Whichever handler runs first (the order in a
// batch is the backend's) removes and closes the other fd, puts a fresh readable socket on
// the very same fd number (dup2) and registers a new handler for it. The event computed for
// the old fd in that batch must reach neither the old handler nor the new one.
TEST_P(IOLoopTest, NoStaleEventAfterFdNumberReuse) {
  SocketPair a, b;
  auto fresh = std::make_unique<SocketPair>();
  int first_fd = -1;
  int victim_fd = -1;
  uint64_t batch_iteration = 0;
  int victim_old_calls = 0;
  std::vector<uint64_t> new_handler_iterations;

  auto handler = [&](int fd, uint32_t) {
    if (first_fd >= 0) {
      ++victim_old_calls;  // the old handler of the victim: must never run
      return;
    }
    first_fd = fd;
    batch_iteration = loop().stats().iterations;
    char c;
    ASSERT_EQ(::read(fd, &c, 1), 1);
    victim_fd = fd == a.fd[0] ? b.fd[0] : a.fd[0];
    loop().remove_handler(victim_fd);
    ::close(victim_fd);
    // The fresh socket takes the victim's number and is readable right away.
    ASSERT_EQ(::dup2(fresh->fd[0], victim_fd), victim_fd);
    fresh->send("n");
    ASSERT_TRUE(loop()
                    .add_handler(
                        victim_fd,
                        [&](int fd2, uint32_t events) {
                          new_handler_iterations.push_back(loop().stats().iterations);
                          EXPECT_EQ(fd2, victim_fd);
                          EXPECT_EQ(events, READ);
                          char buf[8];
                          // Only the fresh socket's byte: "n", not the old socket's "x".
                          ASSERT_EQ(::read(fd2, buf, sizeof buf), 1);
                          EXPECT_EQ(buf[0], 'n');
                          loop().remove_handler(fd2);
                          done();
                        },
                        READ)
                    .ok());
  };
  ASSERT_TRUE(loop().add_handler(a.fd[0], handler, READ).ok());
  ASSERT_TRUE(loop().add_handler(b.fd[0], handler, READ).ok());
  a.send("x");
  b.send("x");
  ASSERT_TRUE(wait());

  EXPECT_EQ(victim_old_calls, 0);
  ASSERT_EQ(new_handler_iterations.size(), 1u);
  // Delivered by a later poll, not from the batch in which it was registered.
  EXPECT_GT(new_handler_iterations[0], batch_iteration);
  loop().remove_handler(first_fd);
}

TEST_P(IOLoopTest, RemovedInBatchGetsNoFurtherEvent) {
  SocketPair a, b;
  int calls = 0;
  auto handler = [&](int fd, uint32_t) {
    ++calls;
    loop().remove_handler(a.fd[0]);
    loop().remove_handler(b.fd[0]);
    (void)fd;
    loop().add_callback([this] { done(); });
  };
  ASSERT_TRUE(loop().add_handler(a.fd[0], handler, READ).ok());
  ASSERT_TRUE(loop().add_handler(b.fd[0], handler, READ).ok());
  a.send();
  b.send();
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 1);
}

TEST_P(IOLoopTest, HandlerRemovingItselfKeepsItsCapturesAlive) {
  SocketPair sp;
  // A heap-allocated capture: if the running handler were destroyed by remove_handler(),
  // ASan would report the read after it.
  std::string payload(100, 'p');
  std::string seen;
  int calls = 0;
  ASSERT_TRUE(loop()
                  .add_handler(
                      sp.fd[0],
                      [&, payload](int fd, uint32_t) {
                        ++calls;
                        loop().remove_handler(fd);
                        seen = payload;  // still valid after removing ourselves
                        done();
                      },
                      READ)
                  .ok());
  sp.send();
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, payload);
  EXPECT_FALSE(loop().has_handler(sp.fd[0]));
}

TEST_P(IOLoopTest, HandlerReplacingItselfKeepsItsCapturesAlive) {
  SocketPair sp;
  std::string payload(100, 'q');
  std::string seen;
  int second_calls = 0;
  ASSERT_TRUE(loop()
                  .add_handler(
                      sp.fd[0],
                      [&, payload](int fd, uint32_t) {
                        loop().remove_handler(fd);
                        ASSERT_TRUE(loop()
                                        .add_handler(
                                            fd,
                                            [&](int fd2, uint32_t) {
                                              ++second_calls;
                                              char c;
                                              ASSERT_EQ(::read(fd2, &c, 1), 1);
                                              loop().remove_handler(fd2);
                                              done();
                                            },
                                            READ)
                                        .ok());
                        seen = payload;
                      },
                      READ)
                  .ok());
  sp.send();
  ASSERT_TRUE(wait());
  EXPECT_EQ(seen, payload);
  EXPECT_EQ(second_calls, 1);
}

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
  ASSERT_TRUE(loop()
                  .add_handler(
                      sp.fd[0],
                      [&](int fd, uint32_t) {
                        char c;
                        ASSERT_EQ(::read(fd, &c, 1), 1);
                        order.push_back("io");
                      },
                      READ)
                  .ok());
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

// ---------------------------------------------------------------------------------------------
// 8. Signals

TEST(IOLoopSignalTest, InvalidSignals) {
  IOLoop loop;
  for (int signo : {0, -1, SIGKILL, SIGSTOP, _NSIG, 1000}) {
    absl::Status s = loop.add_signal_handler(signo, [](int) {});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << signo << ": " << s;
  }
  EXPECT_EQ(loop.add_signal_handler(SIGUSR1, nullptr).code(), absl::StatusCode::kInvalidArgument);
  loop.remove_signal_handler(SIGUSR2);  // unknown: no-op
  loop.remove_signal_handler(-5);
}

TEST(IOLoopSignalTest, RaiseAndKillAreDeliveredOnTheLoopThread) {
  IOLoop loop;
  std::vector<int> seen;
  std::thread::id seen_thread;
  ASSERT_TRUE(loop.add_signal_handler(SIGUSR1,
                                      [&](int signo) {
                                        seen.push_back(signo);
                                        seen_thread = std::this_thread::get_id();
                                        loop.stop();
                                      })
                  .ok());
  ASSERT_EQ(::raise(SIGUSR1), 0);  // thread-directed
  loop.start();
  ASSERT_EQ(::kill(::getpid(), SIGUSR1), 0);  // process-directed
  loop.start();
  EXPECT_THAT(seen, ::testing::ElementsAre(SIGUSR1, SIGUSR1));
  EXPECT_EQ(seen_thread, std::this_thread::get_id());
  EXPECT_EQ(loop.stats().signals_dispatched, 2u);
  loop.remove_signal_handler(SIGUSR1);
}

volatile sig_atomic_t g_default_handler_runs = 0;

TEST(IOLoopSignalTest, RemoveSignalHandlerRestoresMaskAndStopsDelivery) {
  IOLoop loop;
  struct sigaction sa = {}, old = {};
  sa.sa_handler = [](int) { g_default_handler_runs = g_default_handler_runs + 1; };
  ASSERT_EQ(::sigaction(SIGUSR2, &sa, &old), 0);
  int loop_calls = 0;
  ASSERT_TRUE(loop.add_signal_handler(SIGUSR2, [&](int) { ++loop_calls; }).ok());
  sigset_t mask;
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, nullptr, &mask), 0);
  EXPECT_TRUE(sigismember(&mask, SIGUSR2));
  loop.remove_signal_handler(SIGUSR2);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, nullptr, &mask), 0);
  EXPECT_FALSE(sigismember(&mask, SIGUSR2));
  // Unblocked again: raise() runs the process handler synchronously, not the loop's.
  g_default_handler_runs = 0;
  ASSERT_EQ(::raise(SIGUSR2), 0);
  EXPECT_EQ(g_default_handler_runs, 1);
  loop.add_callback([&] { loop.add_callback([&] { loop.stop(); }); });
  loop.start();
  EXPECT_EQ(loop_calls, 0);
  ::sigaction(SIGUSR2, &old, nullptr);
}

TEST(IOLoopSignalTest, SignalHandlerMayRemoveItself) {
  IOLoop loop;
  std::string payload(100, 's');
  std::string seen;
  ASSERT_TRUE(
      loop.add_signal_handler(SIGUSR1,
                              [&, payload](int signo) {
                                loop.remove_signal_handler(signo);
                                seen = payload;  // the running handler must survive its removal
                                loop.stop();
                              })
          .ok());
  ASSERT_EQ(::raise(SIGUSR1), 0);
  loop.start();
  EXPECT_EQ(seen, payload);
}

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

TEST(IOLoopRunTest, StartAndStopFromAnotherThread) {
  IOLoop loop;
  absl::Notification started;
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

TEST(IOLoopSlowCallbackTest, SlowCallbackIsLoggedAndCounted) {
  ScopedLogCapture log;
  IOLoop::Options options;
  options.slow_callback_threshold = absl::Milliseconds(1);
  IOLoop loop(options);
  loop.add_callback([] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); });
  loop.add_callback([&] { loop.stop(); });
  loop.start();
  EXPECT_GE(loop.stats().slow_callbacks, 1u);
  bool logged = false;
  for (const std::string& l : log.lines()) logged |= l.find("slow callback") != std::string::npos;
  EXPECT_TRUE(logged);
}

TEST(IOLoopSlowCallbackTest, DisabledByDefault) {
  IOLoop loop;
  loop.add_callback([] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); });
  loop.add_callback([&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(loop.stats().slow_callbacks, 0u);
}

// ---------------------------------------------------------------------------------------------
// 11. stats()

TEST_P(IOLoopTest, StatsCountWhatRan) {
  const IOLoop::Stats before = loop().stats();
  EXPECT_EQ(before.iterations, 0u);
  EXPECT_EQ(before.events_dispatched, 0u);
  EXPECT_EQ(before.callbacks_run, 0u);
  EXPECT_EQ(before.timers_fired, 0u);
  EXPECT_EQ(before.exceptions, 0u);

  SocketPair sp;
  ASSERT_TRUE(loop()
                  .add_handler(
                      sp.fd[0],
                      [&](int fd, uint32_t) {
                        char c;
                        ASSERT_EQ(::read(fd, &c, 1), 1);
                      },
                      READ)
                  .ok());
  for (int i = 0; i < 3; ++i) loop().add_callback([] {});
  loop().call_later(absl::Milliseconds(1), [] {});
  // A blocking wait: nothing happens for 2 ms.
  loop().call_later(absl::Milliseconds(3), [&] { sp.send(); });
  loop().call_later(absl::Milliseconds(6), [this] { done(); });
  ASSERT_TRUE(wait());
  const IOLoop::Stats s = loop().stats();
  EXPECT_GE(s.iterations, 3u);
  EXPECT_EQ(s.callbacks_run, 3u);
  EXPECT_EQ(s.timers_fired, 3u);
  EXPECT_EQ(s.events_dispatched, 1u);
  EXPECT_EQ(s.exceptions, 0u);
  EXPECT_GT(s.time_blocked, absl::ZeroDuration());
  EXPECT_GT(s.time_busy, absl::ZeroDuration());
  EXPECT_EQ(s.timers_pending, 0u);
  loop().remove_handler(sp.fd[0]);
}

INSTANTIATE_TEST_SUITE_P(Pollers, IOLoopTest, AllPollers(), PollerName);

}  // namespace
}  // namespace ioloop
