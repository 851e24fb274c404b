// IOLoop: fd handlers, dispatch safety and stats() on every poller. Callbacks and timers are
// in io_loop_callback_test.cc; current(), signals, start/stop/run_sync and exceptions in
// io_loop_run_test.cc.
#include "ioloop/io_loop.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/select.h>
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
#include "testing/socket_pair.h"

namespace ioloop {
namespace {

using ::ioloop::testing::AllPollers;
using ::ioloop::testing::PollerName;
using ::ioloop::testing::SocketPair;
using ::testing::HasSubstr;
using IOLoopTest = ::ioloop::testing::IOLoopParamTest;

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

// create() promises the loop's own failures as a Status. On select, the waker's eventfd lands
// past FD_SETSIZE when every lower fd is in use (a server holding 1,024 connections starting
// a select worker loop): the constructor aborted the process instead. Found by a probe of the
// pollers.
TEST(IOLoopCreateTest, ASelectLoopWhoseWakerIsPastFdSetsizeIsAnError) {
  struct rlimit old;
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  struct rlimit raised = old;
  raised.rlim_cur = std::max<rlim_t>(old.rlim_cur, FD_SETSIZE + 64);
  if (old.rlim_max != RLIM_INFINITY && old.rlim_max < raised.rlim_cur) {
    GTEST_SKIP() << "RLIMIT_NOFILE's hard limit is under FD_SETSIZE + 64";
  }
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &raised), 0);
  std::vector<int> fillers;  // every fd below FD_SETSIZE in use
  struct Restore {           // whatever the test's outcome: the fds and the limit come back
    std::vector<int>& fds;
    struct rlimit limit;
    ~Restore() {
      for (int fd : fds) ::close(fd);
      fds.clear();
      ::setrlimit(RLIMIT_NOFILE, &limit);
    }
  } restore{fillers, old};
  for (;;) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    if (fd >= FD_SETSIZE) {
      ::close(fd);
      break;
    }
    fillers.push_back(fd);
  }
  IOLoopOptions options;
  options.poller = PollerKind::kSelect;
  absl::StatusOr<std::unique_ptr<IOLoop>> loop = IOLoop::create(options);
  for (int fd : fillers) ::close(fd);
  fillers.clear();
  ASSERT_FALSE(loop.ok());
  EXPECT_EQ(loop.status().code(), absl::StatusCode::kInvalidArgument) << loop.status();
  EXPECT_THAT(loop.status().message(), HasSubstr("FD_SETSIZE"));
  EXPECT_TRUE(IOLoop::create(options).ok());  // the fds are back: the next one works
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

// Found by a probe: a removed handler's captures are destroyed at the end of the batch, and a
// capture whose destructor removes other handlers (as a stream's destructor removes its fd)
// added to the list being cleared: a use-after-free (ASan), or a corrupt list.
TEST_P(IOLoopTest, ARemovedHandlersDestructorMayRemoveOtherHandlers) {
  constexpr int kOthers = 8;
  SocketPair trigger;
  std::vector<std::unique_ptr<SocketPair>> others;
  std::vector<std::weak_ptr<int>> captures;  // each other handler's
  for (int i = 0; i < kOthers; ++i) {
    others.push_back(std::make_unique<SocketPair>());
    auto capture = std::make_shared<int>(i);
    captures.push_back(capture);
    ASSERT_TRUE(loop()
                    .add_handler(
                        others.back()->fd[0], [capture](int, uint32_t) {}, READ)
                    .ok());
  }
  struct RemovesOthers {
    RemovesOthers(IOLoop& l, const std::vector<std::unique_ptr<SocketPair>>& o)
        : loop(l), others(o) {}
    IOLoop& loop;
    const std::vector<std::unique_ptr<SocketPair>>& others;
    ~RemovesOthers() {
      for (const auto& sp : others) loop.remove_handler(sp->fd[0]);
    }
  };
  auto removes = std::make_shared<RemovesOthers>(loop(), others);
  ASSERT_TRUE(loop()
                  .add_handler(
                      trigger.fd[0],
                      [&, removes](int fd, uint32_t) {
                        loop().remove_handler(fd);
                        loop().add_callback([&] { done(); });
                      },
                      READ)
                  .ok());
  removes.reset();  // the handler holds the only reference
  trigger.send();
  ASSERT_TRUE(wait());
  for (const auto& sp : others) EXPECT_FALSE(loop().has_handler(sp->fd[0]));
  // Removed in the batch's cleanup: their captures go at the end of a later batch at most.
  loop().add_callback([&] { done(); });
  ASSERT_TRUE(wait());
  for (const std::weak_ptr<int>& capture : captures) EXPECT_TRUE(capture.expired());
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
  ASSERT_TRUE(sp.read_on(loop(), [&] {
                  loop().call_later(absl::Milliseconds(5), [this] { done(); });
                }).ok());
  for (int i = 0; i < 3; ++i) loop().add_callback([] {});
  // A chain, not a schedule of fixed times (which a slow machine, e.g. under TSan, may find all
  // due in one iteration): each step is armed by the one before, so the first timer, the
  // second, and the last (armed by the READ the second caused) run in three iterations at
  // least, and the loop blocks waiting for each.
  loop().call_later(absl::Milliseconds(5),
                    [&] { loop().call_later(absl::Milliseconds(5), [&] { sp.send(); }); });
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
