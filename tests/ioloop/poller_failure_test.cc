// Poller failures (issue 7, defect 3): a failing wait must never spin the CPU. A persistent
// failure backs off (1 ms doubling to 100 ms, reset by a successful wait) and is counted in
// stats().poll_failures; a registered fd closed behind the loop's back is reported to its
// handler once as ERROR (poll: POLLNVAL; select: EBADF for the whole set) and never spun on;
// epoll_pwait2 refused by the kernel or a seccomp profile (ENOSYS, EPERM, EINVAL) makes the
// epoll backend use epoll_wait, decided once at construction by a probe.
//
// Failures are injected through a fake Poller (IOLoopTestPeer) and the back-off's sleep is
// recorded, not slept: nothing here measures wall time.
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io_loop_fixture.h"
#include "io_loop_test_peer.h"
#include "ioloop/io_loop.h"
#include "ioloop/poller.h"
#include "pollers.h"
#include "testing/log_capture.h"
#include "testing/pollers.h"
#include "testing/scripted_poller.h"
#include "testing/socket_pair.h"

namespace ioloop {
namespace {

using ::ioloop::testing::AllPollers;
using ::ioloop::testing::IterationChain;
using ::ioloop::testing::PollerName;
using ::ioloop::testing::PollerScript;
using ::ioloop::testing::ScopedLogCapture;
using ::ioloop::testing::ScriptedPoller;
using ::ioloop::testing::SocketPair;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class PollFailureTest : public ::testing::TestWithParam<PollerKind> {
 protected:
  void SetUp() override {
    auto real = Poller::create(GetParam());
    ASSERT_TRUE(real.ok()) << real.status();
    loop_ = IOLoopTestPeer::create(std::make_unique<ScriptedPoller>(*std::move(real), script_),
                                   [this](absl::Duration d) { sleeps_.push_back(d); });
  }
  // Runs exactly `n` iterations (never blocking: a callback is always pending).
  void run_iterations(int n) {
    IterationChain chain{*loop_, n};
    chain.start();
    loop_->start();
    ASSERT_EQ(chain.count, n);
  }

  std::shared_ptr<PollerScript> script_ = std::make_shared<PollerScript>();
  std::vector<absl::Duration> sleeps_;
  std::unique_ptr<IOLoop> loop_;
};

absl::Duration ms(int n) { return absl::Milliseconds(n); }

TEST_P(PollFailureTest, PersistentFailureBacksOffDoublingTo100msAndIsCounted) {
  script_->fail_waits = 10;
  run_iterations(12);
  EXPECT_EQ(script_->waits, 12);
  EXPECT_THAT(sleeps_, ElementsAre(ms(1), ms(2), ms(4), ms(8), ms(16), ms(32), ms(64), ms(100),
                                   ms(100), ms(100)));
  EXPECT_EQ(loop_->stats().poll_failures, 10u);
  EXPECT_EQ(loop_->stats().iterations, 12u);
}

TEST_P(PollFailureTest, ASuccessfulWaitResetsTheBackOff) {
  script_->fail_waits = 3;
  run_iterations(4);  // 3 failures, then a success
  script_->fail_waits = 2;
  run_iterations(2);
  EXPECT_THAT(sleeps_, ElementsAre(ms(1), ms(2), ms(4), ms(1), ms(2)));
  EXPECT_EQ(loop_->stats().poll_failures, 5u);
}

TEST_P(PollFailureTest, NoBackOffWhileWaitsSucceed) {
  run_iterations(20);
  EXPECT_TRUE(sleeps_.empty());
  EXPECT_EQ(loop_->stats().poll_failures, 0u);
}

TEST_P(PollFailureTest, FailureIsLoggedWithThePollerAndTheBackOff) {
  ScopedLogCapture log;
  script_->fail_waits = 2;
  script_->wait_status = absl::ResourceExhaustedError("epoll_wait: Cannot allocate memory");
  run_iterations(3);
  const std::string kind(poller_kind_name(GetParam()));
  EXPECT_THAT(log.lines(),
              ElementsAre("poller (" + kind +
                              ") failed: RESOURCE_EXHAUSTED: epoll_wait: Cannot allocate memory; "
                              "retrying in 1ms",
                          "poller (" + kind +
                              ") failed: RESOURCE_EXHAUSTED: epoll_wait: Cannot allocate memory; "
                              "retrying in 2ms"));
}

TEST_P(PollFailureTest, HandlersStillRunAfterTheFailuresEnd) {
  SocketPair sp;
  int reads = 0;
  ASSERT_TRUE(sp.read_on(*loop_, [&] { ++reads; }).ok());
  sp.send();
  script_->fail_waits = 3;
  run_iterations(4);
  EXPECT_EQ(reads, 1);
  loop_->remove_handler(sp.fd[0]);
}

INSTANTIATE_TEST_SUITE_P(Pollers, PollFailureTest, AllPollers(), PollerName);

// ---------------------------------------------------------------------------------------------
// A registered fd closed without remove_handler(): poll reports POLLNVAL for it on every wait,
// select fails the whole wait with EBADF. Either must reach the handler once, as ERROR.

using ClosedFdTest = ::ioloop::testing::IOLoopParamTest;

TEST_P(ClosedFdTest, ReportedOnceAsErrorAndNeverSpunOn) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  SocketPair sp;  // made before the close, so it cannot take the closed fd's number
  std::vector<uint32_t> seen;
  ASSERT_TRUE(loop()
                  .add_handler(
                      p[0], [&](int, uint32_t ev) { seen.push_back(ev); }, READ)
                  .ok());
  int other_reads = 0;
  ASSERT_TRUE(sp.read_on(loop(), [&] { ++other_reads; }).ok());
  sp.send();
  ::close(p[0]);  // the user's bug: closed while registered
  IterationChain chain{loop(), 6};
  chain.start();
  loop().start();
  ASSERT_EQ(chain.count, 6);
  if (GetParam() == PollerKind::kEpoll) {
    EXPECT_TRUE(seen.empty());  // close() took it out of the epoll set: nothing to report
  } else {
    ASSERT_EQ(seen.size(), 1u);  // once, not once per iteration
    EXPECT_EQ(seen[0], ERROR) << events_to_string(seen[0]);
  }
  EXPECT_EQ(other_reads, 1);  // the other fds are served as usual
  EXPECT_EQ(loop().stats().poll_failures, 0u);
  loop().remove_handler(p[0]);
  loop().remove_handler(sp.fd[0]);
  ::close(p[1]);
}

TEST_P(ClosedFdTest, HandlerRemovingItselfOnErrorIsTheUsualRepair) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  int errors = 0;
  ASSERT_TRUE(loop()
                  .add_handler(
                      p[0],
                      [&](int fd, uint32_t ev) {
                        if (ev & ERROR) ++errors;
                        loop().remove_handler(fd);
                      },
                      READ)
                  .ok());
  ::close(p[0]);
  IterationChain chain{loop(), 4};
  chain.start();
  loop().start();
  EXPECT_EQ(errors, GetParam() == PollerKind::kEpoll ? 0 : 1);
  // Re-registering the number (as a new fd takes it) works once the handler removed itself.
  int q[2];
  ASSERT_EQ(::pipe2(q, O_NONBLOCK | O_CLOEXEC), 0);
  if (GetParam() != PollerKind::kEpoll) {
    EXPECT_FALSE(loop().has_handler(p[0]));
  } else {
    loop().remove_handler(p[0]);
  }
  int reads = 0;
  ASSERT_TRUE(loop()
                  .add_handler(
                      q[0],
                      [&](int, uint32_t) {
                        ++reads;
                        loop().stop();
                      },
                      READ)
                  .ok());
  ASSERT_EQ(::write(q[1], "x", 1), 1);
  loop().start();
  EXPECT_EQ(reads, 1);
  loop().remove_handler(q[0]);
  ::close(q[0]);
  ::close(q[1]);
  ::close(p[1]);
}

TEST_P(ClosedFdTest, SeveralClosedFdsEachReportedOnce) {
  std::vector<std::pair<int, int>> pipes(3);
  std::vector<int> errors(3, 0);
  for (size_t i = 0; i < pipes.size(); ++i) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    pipes[i] = {p[0], p[1]};
    ASSERT_TRUE(loop()
                    .add_handler(
                        p[0], [&errors, i](int, uint32_t ev) { errors[i] += ev == ERROR; }, READ)
                    .ok());
  }
  for (auto& p : pipes) ::close(p.first);
  IterationChain chain{loop(), 5};
  chain.start();
  loop().start();
  const int expected = GetParam() == PollerKind::kEpoll ? 0 : 1;
  EXPECT_THAT(errors, ElementsAre(expected, expected, expected));
  EXPECT_EQ(loop().stats().poll_failures, 0u);
  for (auto& p : pipes) {
    loop().remove_handler(p.first);
    ::close(p.second);
  }
}

// The one closed fd epoll cannot forget: closed while registered, then removed, while a dup() of
// it keeps its file open. EPOLL_CTL_DEL needs the closed number (EBADF), so the kernel kept the
// registration and reported the readable file on every wait: the loop spun at 100% CPU,
// dropping each event as stale, until the dup'ed copy was closed (found by a probe of the
// pollers; a child process holding an inherited copy does the same). The loop now notices an
// event it dropped as stale in two waits running and rebuilds its poller from its handlers.
TEST_P(ClosedFdTest, ClosedBeforeItsRemovalWhileADupLivesIsNotSpunOn) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  const int dup_fd = ::fcntl(p[0], F_DUPFD_CLOEXEC, 0);
  ASSERT_GE(dup_fd, 0);
  SocketPair sp;
  int stale_reads = 0, reads = 0;
  ASSERT_TRUE(loop()
                  .add_handler(
                      p[0], [&](int, uint32_t) { ++stale_reads; }, READ)
                  .ok());
  ASSERT_TRUE(sp.read_on(loop(), [&] {
                  ++reads;
                  loop().stop();
                }).ok());
  ASSERT_EQ(::write(p[1], "x", 1), 1);  // readable for good: nothing reads it
  ::close(p[0]);                        // the user's bug: closed while registered,
  loop().remove_handler(p[0]);          // then removed
  ScopedLogCapture logs;
  // Bounds the run: the other fd becomes readable later, and its handler stops the loop.
  loop().call_later(absl::Milliseconds(20), [&] { sp.send(); });
  const uint64_t before = loop().stats().iterations;
  loop().start();
  // Two waits that report the stale file, the one that blocks until the timer, the one that
  // runs it and serves the other fd; a spinning loop runs thousands.
  EXPECT_LE(loop().stats().iterations - before, 6u);
  EXPECT_EQ(stale_reads, 0);
  EXPECT_EQ(reads, 1);
  if (GetParam() == PollerKind::kEpoll) {
    EXPECT_THAT(logs.text(), HasSubstr("still reported after remove_handler()")) << logs.text();
  }
  loop().remove_handler(sp.fd[0]);
  ::close(dup_fd);
  ::close(p[1]);
}

INSTANTIATE_TEST_SUITE_P(Pollers, ClosedFdTest, AllPollers(), PollerName);

// ---------------------------------------------------------------------------------------------
// epoll_pwait2 refused: a seccomp filter in a child process makes the syscall fail with `err`
// (as container profiles do for syscalls they do not know). The loop must still block in its
// wait: one wait until the timer, not thousands of failing ones.

bool DenySyscall(long nr, int err) {
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1),
      BPF_STMT(BPF_RET | BPF_K,
               SECCOMP_RET_ERRNO | (static_cast<uint32_t>(err) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0;
}

[[noreturn]] void RunLoopWithPwait2Denied(int err) {
  if (!DenySyscall(SYS_epoll_pwait2, err)) {
    std::fprintf(stderr, "cannot install the seccomp filter: errno %d\n", errno);
    std::_Exit(2);
  }
  IOLoop loop;  // probes epoll_pwait2 here
  loop.call_later(absl::Milliseconds(20), [&] { loop.stop(); });
  loop.start();
  const IOLoop::Stats s = loop.stats();
  std::fprintf(stderr, "iterations=%llu poll_failures=%llu\n",
               static_cast<unsigned long long>(s.iterations),
               static_cast<unsigned long long>(s.poll_failures));
  // Iteration 1 blocks until the timer is due, iteration 2 runs it; a third is allowed for a
  // wait that ends early. A loop whose wait fails runs thousands.
  std::_Exit(s.iterations <= 3 && s.poll_failures == 0 ? 0 : 1);
}

class Pwait2DeniedTest : public ::testing::TestWithParam<int> {};

TEST_P(Pwait2DeniedTest, EpollFallsBackToEpollWaitAndBlocks) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(RunLoopWithPwait2Denied(GetParam()), ::testing::ExitedWithCode(0), "");
}

std::string ErrnoName(const ::testing::TestParamInfo<int>& param) {
  switch (param.param) {
    case ENOSYS:
      return "ENOSYS";
    case EPERM:
      return "EPERM";
    default:
      return "EINVAL";
  }
}

INSTANTIATE_TEST_SUITE_P(Errnos, Pwait2DeniedTest, ::testing::Values(ENOSYS, EPERM, EINVAL),
                         ErrnoName);

TEST(EpollProbeTest, DecisionFromTheProbesErrno) {
  EXPECT_EQ(epoll_wait_after_probe(0), EpollWait::kPwait2);
  for (int err : {ENOSYS, EPERM, EINVAL, ENOMEM, EFAULT}) {
    EXPECT_EQ(epoll_wait_after_probe(err), EpollWait::kWait) << "errno " << err;
  }
  EXPECT_EQ(epoll_wait_after_probe(EINTR), std::nullopt);  // probe again
}

// The fallback path itself: millisecond waits rounded up, so a sub-millisecond timer is never
// run early and never turns into a run of zero-timeout waits.
TEST(EpollProbeTest, EpollWaitFallbackServesTimersAndFds) {
  auto poller = make_epoll_poller(EpollWait::kWait);
  ASSERT_TRUE(poller.ok()) << poller.status();
  std::unique_ptr<IOLoop> loop = IOLoopTestPeer::create(*std::move(poller));
  const TimePoint deadline = loop->time() + std::chrono::microseconds(300);
  TimePoint ran{};
  loop->call_at(deadline, [&] {
    ran = loop->time();
    loop->stop();
  });
  loop->start();
  EXPECT_GE(ran, deadline);
  EXPECT_LE(loop->stats().iterations, 3u);

  SocketPair sp;
  int reads = 0;
  ASSERT_TRUE(sp.read_on(*loop, [&] {
                  ++reads;
                  loop->stop();
                }).ok());
  sp.send();
  loop->start();
  EXPECT_EQ(reads, 1);
  loop->remove_handler(sp.fd[0]);
}

}  // namespace
}  // namespace ioloop
