#include "ioloop/poller.h"

#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ioloop/events.h"
#include "ioloop/io_loop.h"
#include "ioloop/time.h"
#include "testing/pollers.h"
#include "testing/socket_pair.h"

namespace ioloop {
namespace {

using ::testing::HasSubstr;

using ::ioloop::testing::AllPollers;
using ::ioloop::testing::PollerName;
using ::ioloop::testing::SocketPair;

// Makes sure fd numbers up to `n` can exist (hard limit here is 20000).
bool RaiseFdLimit(rlim_t n) {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  if (rl.rlim_cur >= n) return true;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < n) return false;
  rl.rlim_cur = n;
  return ::setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

class PollerTest : public ::testing::TestWithParam<PollerKind> {
 protected:
  void SetUp() override {
    auto p = Poller::create(GetParam());
    ASSERT_TRUE(p.ok()) << p.status();
    poller_ = *std::move(p);
  }
  std::vector<Poller::Event> poll_now() {
    std::vector<Poller::Event> out;
    absl::StatusOr<int> n = poller_->poll(absl::ZeroDuration(), &out);
    EXPECT_TRUE(n.ok()) << n.status();
    if (n.ok()) {
      EXPECT_EQ(static_cast<size_t>(*n), out.size());
    }
    return out;
  }
  std::unique_ptr<Poller> poller_;
};

TEST_P(PollerTest, Kind) { EXPECT_EQ(poller_->kind(), GetParam()); }

TEST_P(PollerTest, ZeroTimeoutReturnsAtOnceWithoutEvents) {
  SocketPair sp;
  ASSERT_TRUE(poller_->add(sp.fd[0], READ, 1).ok());
  EXPECT_TRUE(poll_now().empty());
  // Also with nothing registered at all.
  poller_->remove(sp.fd[0]);
  EXPECT_TRUE(poll_now().empty());
}

TEST_P(PollerTest, ReportsReadyFdWithItsTag) {
  SocketPair sp;
  ASSERT_TRUE(poller_->add(sp.fd[0], READ, 77).ok());
  sp.send();
  std::vector<Poller::Event> ev = poll_now();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].fd, sp.fd[0]);
  EXPECT_EQ(ev[0].events, READ) << events_to_string(ev[0].events);
  EXPECT_EQ(ev[0].tag, 77u);
  // Level-triggered: still reported while unread.
  ASSERT_EQ(poll_now().size(), 1u);
}

TEST_P(PollerTest, ModifyChangesInterestAndTag) {
  SocketPair sp;
  ASSERT_TRUE(poller_->add(sp.fd[0], READ, 1).ok());
  EXPECT_TRUE(poll_now().empty());  // writable, but only READ asked
  ASSERT_TRUE(poller_->modify(sp.fd[0], WRITE, 2).ok());
  std::vector<Poller::Event> ev = poll_now();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].events, WRITE) << events_to_string(ev[0].events);
  EXPECT_EQ(ev[0].tag, 2u);
  sp.send();
  ASSERT_TRUE(poller_->modify(sp.fd[0], READ | WRITE, 3).ok());
  ev = poll_now();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].events, READ | WRITE) << events_to_string(ev[0].events);
  EXPECT_EQ(ev[0].tag, 3u);
}

TEST_P(PollerTest, RemoveStopsReports) {
  SocketPair sp;
  ASSERT_TRUE(poller_->add(sp.fd[0], READ, 1).ok());
  sp.send();
  poller_->remove(sp.fd[0]);
  EXPECT_TRUE(poll_now().empty());
  poller_->remove(sp.fd[0]);  // unknown now: no-op
  // Re-adding works.
  ASSERT_TRUE(poller_->add(sp.fd[0], READ, 5).ok());
  ASSERT_EQ(poll_now().size(), 1u);
}

TEST_P(PollerTest, RemoveAfterCloseIsSafe) {
  auto sp = std::make_unique<SocketPair>();
  const int fd = sp->fd[0];
  ASSERT_TRUE(poller_->add(fd, READ, 1).ok());
  ::close(fd);
  sp->fd[0] = -1;
  poller_->remove(fd);
  EXPECT_TRUE(poll_now().empty());
}

TEST_P(PollerTest, Errors) {
  SocketPair sp;
  absl::Status s = poller_->add(-1, READ, 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  ASSERT_TRUE(poller_->add(sp.fd[0], READ, 1).ok());
  s = poller_->add(sp.fd[0], READ, 2);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_THAT(s.message(), HasSubstr(std::to_string(sp.fd[0])));
  s = poller_->modify(sp.fd[1], READ, 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(s.message(), HasSubstr(std::to_string(sp.fd[1])));
  poller_->remove(-1);  // no-op
  poller_->remove(sp.fd[1]);
}

TEST_P(PollerTest, EdgeOnlyOnEpoll) {
  SocketPair sp;
  absl::Status s = poller_->add(sp.fd[0], READ | EDGE, 1);
  if (GetParam() == PollerKind::kEpoll) {
    ASSERT_TRUE(s.ok()) << s;
    sp.send();
    EXPECT_EQ(poll_now().size(), 1u);
    EXPECT_TRUE(poll_now().empty());  // same data, no new edge
  } else {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(s.message(), HasSubstr("epoll"));
    ASSERT_TRUE(poller_->add(sp.fd[0], READ, 1).ok());
    s = poller_->modify(sp.fd[0], READ | EDGE, 1);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  }
}

TEST_P(PollerTest, OnlyTheReadyFdsAmongMany) {
  std::vector<std::unique_ptr<SocketPair>> pairs;
  for (int i = 0; i < 100; ++i) {
    pairs.push_back(std::make_unique<SocketPair>());
    ASSERT_TRUE(poller_->add(pairs.back()->fd[0], READ, 1000 + i).ok());
  }
  for (int i : {3, 50, 99}) pairs[i]->send();
  std::vector<Poller::Event> ev = poll_now();
  std::set<std::pair<int, uint32_t>> got;
  for (const auto& e : ev) got.insert({e.fd, e.tag});
  EXPECT_EQ(got, (std::set<std::pair<int, uint32_t>>{
                     {pairs[3]->fd[0], 1003}, {pairs[50]->fd[0], 1050}, {pairs[99]->fd[0], 1099}}));
}

TEST_P(PollerTest, ManyReadyAtOnceAreAllReported) {
  // More than epoll's initial 64-entry array: the rest show up on the next wait at latest.
  std::vector<std::unique_ptr<SocketPair>> pairs;
  std::set<int> expected;
  for (int i = 0; i < 150; ++i) {
    pairs.push_back(std::make_unique<SocketPair>());
    ASSERT_TRUE(poller_->add(pairs.back()->fd[0], READ, 1).ok());
    pairs.back()->send();
    expected.insert(pairs.back()->fd[0]);
  }
  std::set<int> got;
  for (const auto& e : poll_now()) got.insert(e.fd);
  for (const auto& e : poll_now()) got.insert(e.fd);
  EXPECT_EQ(got, expected);
}

TEST_P(PollerTest, ErrorReportedWithoutAsking) {
  if (GetParam() == PollerKind::kSelect) GTEST_SKIP() << "select has no error set";
  SocketPair sp;
  ASSERT_TRUE(poller_->add(sp.fd[0], 0, 1).ok());
  EXPECT_TRUE(poll_now().empty());
  ::shutdown(sp.fd[0], SHUT_RDWR);
  std::vector<Poller::Event> ev = poll_now();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_NE(ev[0].events & ERROR, 0u) << events_to_string(ev[0].events);
}

TEST_P(PollerTest, TimeoutWaitsAtLeastThatLong) {
  // Sub-millisecond: 200us must not be rounded down to a zero-timeout spin.
  SocketPair sp;
  ASSERT_TRUE(poller_->add(sp.fd[0], READ, 1).ok());
  for (int i = 0; i < 5; ++i) {
    std::vector<Poller::Event> out;
    const TimePoint t0 = Clock::now();
    absl::StatusOr<int> n = poller_->poll(absl::Microseconds(200), &out);
    const TimePoint t1 = Clock::now();
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, 0);
    EXPECT_GE(t1 - t0, std::chrono::microseconds(200));
  }
}

TEST_P(PollerTest, InfiniteWaitEndsOnReadiness) {
  SocketPair sp;
  ASSERT_TRUE(poller_->add(sp.fd[0], READ, 9).ok());
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    sp.send();
  });
  std::vector<Poller::Event> out;
  absl::StatusOr<int> n;
  do {
    n = poller_->poll(std::nullopt, &out);  // 0 would mean EINTR: try again
  } while (n.ok() && *n == 0);
  writer.join();
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tag, 9u);
}

TEST_P(PollerTest, FdAboveFdSetSize) {
  ASSERT_TRUE(RaiseFdLimit(2048));
  SocketPair sp;
  constexpr int kHigh = 1100;
  static_assert(kHigh >= FD_SETSIZE);
  ASSERT_EQ(::dup2(sp.fd[0], kHigh), kHigh);
  absl::Status s = poller_->add(kHigh, READ, 4);
  if (GetParam() == PollerKind::kSelect) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(s.message(), HasSubstr("FD_SETSIZE"));
    EXPECT_THAT(s.message(), HasSubstr("1100"));
    s = poller_->modify(kHigh, READ, 4);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    poller_->remove(kHigh);  // no-op, no out-of-bounds access
    EXPECT_TRUE(poll_now().empty());
  } else {
    ASSERT_TRUE(s.ok()) << s;
    sp.send();
    std::vector<Poller::Event> ev = poll_now();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].fd, kHigh);
    EXPECT_EQ(ev[0].tag, 4u);
    poller_->remove(kHigh);
  }
  ::close(kHigh);
}

TEST_P(PollerTest, IOLoopRefusesFdAboveFdSetSizeOnSelectOnly) {
  ASSERT_TRUE(RaiseFdLimit(2048));
  IOLoop::Options options;
  options.poller = GetParam();
  auto loop = IOLoop::create(options);
  ASSERT_TRUE(loop.ok()) << loop.status();
  SocketPair sp;
  constexpr int kHigh = 1100;
  ASSERT_EQ(::dup2(sp.fd[0], kHigh), kHigh);
  absl::Status s = (*loop)->add_handler(
      kHigh, [](int, uint32_t) {}, READ);
  if (GetParam() == PollerKind::kSelect) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(s.message(), HasSubstr("FD_SETSIZE"));
    EXPECT_FALSE((*loop)->has_handler(kHigh));
  } else {
    EXPECT_TRUE(s.ok()) << s;
    (*loop)->remove_handler(kHigh);
  }
  ::close(kHigh);
}

INSTANTIATE_TEST_SUITE_P(Pollers, PollerTest, AllPollers(), PollerName);

TEST(ParsePollerKindTest, KnownNames) {
  for (PollerKind kind : {PollerKind::kEpoll, PollerKind::kPoll, PollerKind::kSelect}) {
    absl::StatusOr<PollerKind> parsed = parse_poller_kind(poller_kind_name(kind));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_EQ(poller_kind_name(PollerKind::kEpoll), "epoll");
  EXPECT_EQ(poller_kind_name(PollerKind::kPoll), "poll");
  EXPECT_EQ(poller_kind_name(PollerKind::kSelect), "select");
}

TEST(ParsePollerKindTest, UnknownNames) {
  for (const char* bad : {"", "kqueue", "EPOLL", "epoll ", "io_uring"}) {
    absl::StatusOr<PollerKind> parsed = parse_poller_kind(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(), HasSubstr(std::string("'") + bad + "'"));
    EXPECT_THAT(parsed.status().message(), HasSubstr("epoll, poll or select"));
  }
}

}  // namespace
}  // namespace ioloop
