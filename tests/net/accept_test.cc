#include "ioloop/net/accept.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "io_loop_test_peer.h"
#include "ioloop/logging.h"
#include "ioloop/net/bind.h"
#include "ioloop/poller.h"
#include "testing/loop_test_base.h"
#include "testing/pollers.h"
#include "testing/sanitizers.h"

namespace ioloop::net {
namespace {

Socket listen_v4(int backlog = kDefaultBacklog) {
  absl::StatusOr<std::vector<Socket>> s = bind_sockets(0, "127.0.0.1", AF_INET, backlog);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move((*s)[0]) : Socket();
}

SocketAddress address_of(const Socket& listener) { return *listener.local_address(); }

// A blocking connect: when it returns, the connection waits in the listener's accept queue.
Socket connect_blocking(const SocketAddress& addr) {
  Socket s(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(s.valid()) << std::strerror(errno);
  EXPECT_EQ(::connect(s.fd(), addr.get(), addr.length()), 0) << std::strerror(errno);
  return s;
}

class AcceptTest : public testing::LoopTestBase, public ::testing::WithParamInterface<PollerKind> {
 protected:
  AcceptTest() : LoopTestBase(GetParam()) {}

  // Runs `n` loop iterations (each callback queues the next one), then returns.
  void run_iterations(int n) {
    int left = n;
    std::function<void()> step = [&] {
      if (--left <= 0) {
        done();
      } else {
        loop().add_callback([&] { step(); });
      }
    };
    loop().add_callback([&] { step(); });
    ASSERT_TRUE(wait());
  }
};

TEST_P(AcceptTest, AcceptsSeveralAndReportsPeers) {
  Socket listener = listen_v4();
  std::vector<Socket> conns;
  std::vector<std::string> peers;
  absl::StatusOr<std::unique_ptr<Acceptor>> acceptor =
      add_accept_handler(loop(), listener.fd(), [&](Socket conn, SocketAddress peer) {
        conns.push_back(std::move(conn));
        peers.push_back(peer.to_string());
        if (conns.size() == 5) done();
      });
  ASSERT_TRUE(acceptor.ok()) << acceptor.status();

  std::vector<Socket> clients;
  std::vector<std::string> expected;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(connect_blocking(address_of(listener)));
    expected.push_back(clients.back().local_address()->to_string());
  }
  ASSERT_TRUE(wait());
  EXPECT_EQ(peers, expected);  // the accept queue is FIFO
  for (const Socket& c : conns) {
    EXPECT_NE(::fcntl(c.fd(), F_GETFL) & O_NONBLOCK, 0);
    EXPECT_NE(::fcntl(c.fd(), F_GETFD) & FD_CLOEXEC, 0);
  }
  // The accepted socket really is the client's peer: bytes flow.
  ASSERT_EQ(::send(clients[2].fd(), "ping", 4, 0), 4);
  char buf[8];
  ASSERT_EQ(::recv(conns[2].fd(), buf, sizeof buf, MSG_WAITALL | MSG_DONTWAIT), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  EXPECT_EQ((*acceptor)->stats().accepted, 5u);
  EXPECT_EQ((*acceptor)->stats().emfile_events, 0u);
}

TEST_P(AcceptTest, BatchPerWakeupIsBoundedSoOtherFdsRun) {
  Socket listener = listen_v4();
  std::vector<Socket> clients;
  for (int i = 0; i < 10; ++i) clients.push_back(connect_blocking(address_of(listener)));

  // A second fd that is readable all along: it must get turns between the batches.
  absl::StatusOr<std::pair<Socket, Socket>> pair = Socket::pair();
  ASSERT_TRUE(pair.ok());
  ASSERT_EQ(::write(pair->second.fd(), "x", 1), 1);
  int other_runs = 0;
  ASSERT_TRUE(loop()
                  .add_handler(
                      pair->first.fd(), [&](int, uint32_t) { ++other_runs; }, READ)
                  .ok());

  AcceptOptions options;
  options.max_accepts_per_wakeup = 3;
  std::map<uint64_t, int> per_wakeup;  // wake-up number -> connections accepted in it
  std::vector<Socket> conns;
  int other_runs_at_end = 0;
  std::unique_ptr<Acceptor> acceptor;
  absl::StatusOr<std::unique_ptr<Acceptor>> created = add_accept_handler(
      loop(), listener.fd(),
      [&](Socket conn, SocketAddress) {
        ++per_wakeup[acceptor->stats().wakeups];
        conns.push_back(std::move(conn));
        if (conns.size() == 10) {
          other_runs_at_end = other_runs;
          done();
        }
      },
      options);
  ASSERT_TRUE(created.ok()) << created.status();
  acceptor = *std::move(created);
  ASSERT_TRUE(wait());
  EXPECT_EQ(per_wakeup, (std::map<uint64_t, int>{{1, 3}, {2, 3}, {3, 3}, {4, 1}}));
  EXPECT_EQ(acceptor->stats().wakeups, 4u);
  EXPECT_GE(other_runs_at_end, 3);  // ran in the iterations between the batches
  loop().remove_handler(pair->first.fd());
}

TEST_P(AcceptTest, StopLeavesTheListenerToItsOwner) {
  Socket listener = listen_v4();
  std::vector<Socket> conns;
  std::unique_ptr<Acceptor> acceptor;
  absl::StatusOr<std::unique_ptr<Acceptor>> created =
      add_accept_handler(loop(), listener.fd(), [&](Socket conn, SocketAddress) {
        conns.push_back(std::move(conn));
        acceptor->stop();
        done();
      });
  ASSERT_TRUE(created.ok());
  acceptor = *std::move(created);
  Socket c1 = connect_blocking(address_of(listener));
  Socket c2 = connect_blocking(address_of(listener));
  ASSERT_TRUE(wait());
  EXPECT_EQ(conns.size(), 1u);  // stop() inside the callback ends the batch
  EXPECT_FALSE(acceptor->accepting());
  EXPECT_FALSE(loop().has_handler(listener.fd()));
  run_iterations(5);
  EXPECT_EQ(acceptor->stats().accepted, 1u);
  acceptor->stop();  // idempotent
  acceptor.reset();
  // The fd is still open and listening: a new acceptor picks up the client still queued.
  ASSERT_NE(::fcntl(listener.fd(), F_GETFD), -1);
  absl::StatusOr<std::unique_ptr<Acceptor>> again =
      add_accept_handler(loop(), listener.fd(), [&](Socket conn, SocketAddress peer) {
        EXPECT_EQ(peer.to_string(), c2.local_address()->to_string());
        conns.push_back(std::move(conn));
        done();
      });
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(wait());
  EXPECT_EQ(conns.size(), 2u);
}

TEST_P(AcceptTest, CallbackMayDestroyTheAcceptor) {
  Socket listener = listen_v4();
  std::unique_ptr<Acceptor> acceptor;
  int calls = 0;
  absl::StatusOr<std::unique_ptr<Acceptor>> created =
      add_accept_handler(loop(), listener.fd(), [&](Socket, SocketAddress) {
        ++calls;
        acceptor.reset();  // destroys the object whose method is running
        done();
      });
  ASSERT_TRUE(created.ok());
  acceptor = *std::move(created);
  std::vector<Socket> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(connect_blocking(address_of(listener)));
  ASSERT_TRUE(wait());
  run_iterations(3);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(loop().has_handler(listener.fd()));
}

TEST_P(AcceptTest, AlreadyRegisteredListenerIsRefusedAndLeftAlone) {
  Socket listener = listen_v4();
  ASSERT_TRUE(loop()
                  .add_handler(
                      listener.fd(), [](int, uint32_t) {}, READ)
                  .ok());
  absl::StatusOr<std::unique_ptr<Acceptor>> a =
      add_accept_handler(loop(), listener.fd(), [](Socket, SocketAddress) {});
  EXPECT_EQ(a.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(loop().has_handler(listener.fd()));  // the failed acceptor removed nothing
  loop().remove_handler(listener.fd());
}

TEST_P(AcceptTest, BadArgumentsAreInvalidArgument) {
  Socket listener = listen_v4();
  AcceptOptions options;
  options.max_accepts_per_wakeup = 0;
  EXPECT_EQ(add_accept_handler(
                loop(), listener.fd(), [](Socket, SocketAddress) {}, options)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(add_accept_handler(loop(), listener.fd(), nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(add_accept_handler(loop(), -1, [](Socket, SocketAddress) {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A zero back-off would re-enable the listener at once while accept() still fails: the
// spin the back-off exists to prevent.
TEST_P(AcceptTest, NonPositiveEmfileBackoffIsInvalidArgumentNamingTheField) {
  Socket listener = listen_v4();
  for (absl::Duration backoff : {absl::ZeroDuration(), absl::Milliseconds(-5)}) {
    AcceptOptions options;
    options.emfile_backoff = backoff;
    absl::StatusOr<std::unique_ptr<Acceptor>> a = add_accept_handler(
        loop(), listener.fd(), [](Socket, SocketAddress) {}, options);
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << a.status();
    EXPECT_NE(a.status().message().find("emfile_backoff"), absl::string_view::npos) << a.status();
    EXPECT_FALSE(loop().has_handler(listener.fd()));
  }
}

// --- Exceptions from on_connection ---------------------------------------------------------

// The callback throws for the first two connections. Each exception is logged and counted by
// the loop, the connection it was given is closed (its client sees EOF: no fd leaks), and
// accepting goes on within the same wake-up.
TEST_P(AcceptTest, ThrowingCallbackIsCountedClosesItsConnectionAndAcceptingGoesOn) {
  Socket listener = listen_v4();
  std::vector<Socket> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(connect_blocking(address_of(listener)));
  int calls = 0;
  std::vector<Socket> conns;
  absl::StatusOr<std::unique_ptr<Acceptor>> acceptor =
      add_accept_handler(loop(), listener.fd(), [&](Socket conn, SocketAddress) {
        if (++calls <= 2) throw std::runtime_error("accept boom");
        conns.push_back(std::move(conn));
        done();
      });
  ASSERT_TRUE(acceptor.ok()) << acceptor.status();
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(conns.size(), 1u);
  EXPECT_EQ(loop().stats().exceptions, 2u);
  EXPECT_EQ((*acceptor)->stats().accepted, 3u);
  EXPECT_EQ((*acceptor)->stats().wakeups, 1u);  // the exceptions did not end the batch
  EXPECT_TRUE((*acceptor)->accepting());
  // The connections handed to the throwing calls were closed: their clients read EOF.
  char c;
  EXPECT_EQ(::recv(clients[0].fd(), &c, 1, MSG_DONTWAIT), 0) << std::strerror(errno);
  EXPECT_EQ(::recv(clients[1].fd(), &c, 1, MSG_DONTWAIT), 0) << std::strerror(errno);
  // The third is open.
  EXPECT_EQ(::recv(clients[2].fd(), &c, 1, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);

  // And later connections are accepted as usual.
  clients.push_back(connect_blocking(address_of(listener)));
  ASSERT_TRUE(wait());
  EXPECT_EQ(conns.size(), 2u);
}

// A callback that destroys its Acceptor and then throws: the exception is handled, nothing
// of the destroyed Acceptor is touched (ASan would see it).
TEST_P(AcceptTest, CallbackMayDestroyTheAcceptorAndThrow) {
  Socket listener = listen_v4();
  std::unique_ptr<Acceptor> acceptor;
  int calls = 0;
  absl::StatusOr<std::unique_ptr<Acceptor>> created =
      add_accept_handler(loop(), listener.fd(), [&](Socket, SocketAddress) {
        ++calls;
        acceptor.reset();
        loop().add_callback([this] { done(); });
        throw std::runtime_error("destroyed and threw");
      });
  ASSERT_TRUE(created.ok());
  acceptor = *std::move(created);
  std::vector<Socket> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(connect_blocking(address_of(listener)));
  ASSERT_TRUE(wait());
  run_iterations(3);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(loop().stats().exceptions, 1u);
  EXPECT_FALSE(loop().has_handler(listener.fd()));
}

// --- Out of file descriptors -------------------------------------------------------------
//
// Runs in a forked child, because it lowers RLIMIT_NOFILE and fills the fd table. Returns ""
// if every check held, else what failed. The child's loop measures itself with stats():
// a listener that spun on EMFILE would show thousands of iterations and listener wake-ups
// per timer tick; a paused one shows each wake-up paid for by one back-off timer.
#define CHILD_CHECK(cond, ...)                                                             \
  do {                                                                                     \
    if (!(cond))                                                                           \
      return absl::StrCat("line ", __LINE__, ": ", #cond __VA_OPT__(, " ", ) __VA_ARGS__); \
  } while (0)

// Runs `loop` until pred() or 10 s (a failure, not a threshold: the events are awaited).
bool run_until(IOLoop& loop, const std::function<bool()>& pred) {
  bool timed_out = false;
  TimeoutHandle guard = loop.call_later(absl::Seconds(10), [&] {
    timed_out = true;
    loop.stop();
  });
  TimeoutHandle next_check;
  std::function<void()> check = [&] {
    if (pred()) {
      loop.stop();
    } else {
      next_check = loop.call_later(absl::Milliseconds(1), [&] { check(); });
    }
  };
  loop.add_callback([&] { check(); });
  loop.start();
  loop.remove_timeout(guard);
  loop.remove_timeout(next_check);
  return !timed_out;
}

// Opens /dev/null until the fd table is full (EMFILE).
std::string fill_fd_table(std::vector<Socket>& fillers) {
  while (true) {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      CHILD_CHECK(errno == EMFILE, std::strerror(errno));
      return "";
    }
    fillers.emplace_back(fd);
  }
}

// Runs scenario() in a forked child (it changes RLIMIT_NOFILE and fills the fd table) and
// fails the test with what it returned if that is not "".
void run_in_child(const std::function<std::string()>& scenario) {
  int report[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(report[0]);
    std::string result = scenario();
    if (!result.empty()) (void)!::write(report[1], result.data(), result.size());
    ::_exit(result.empty() ? 0 : 1);
  }
  ::close(report[1]);
  std::string failure;
  char buf[512];
  ssize_t n;
  while ((n = ::read(report[0], buf, sizeof buf)) > 0) failure.append(buf, n);
  ::close(report[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died: status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << failure;
  EXPECT_EQ(failure, "");
}

std::string emfile_scenario(PollerKind kind) {
  IOLoop::Options loop_options;
  loop_options.poller = kind;
  absl::StatusOr<std::unique_ptr<IOLoop>> created_loop = IOLoop::create(loop_options);
  CHILD_CHECK(created_loop.ok());
  IOLoop& loop = **created_loop;
  absl::StatusOr<std::vector<Socket>> listeners = bind_sockets(0, "127.0.0.1", AF_INET, 128);
  CHILD_CHECK(listeners.ok(), listeners.status().ToString());
  const Socket& listener = (*listeners)[0];
  const SocketAddress addr = *listener.local_address();

  AcceptOptions options;
  options.emfile_backoff = absl::Milliseconds(5);
  options.max_accepts_per_wakeup = 16;
  std::vector<Socket> accepted;
  std::vector<std::string> accepted_peers;
  absl::StatusOr<std::unique_ptr<Acceptor>> created = add_accept_handler(
      loop, listener.fd(),
      [&](Socket conn, SocketAddress peer) {
        accepted.push_back(std::move(conn));
        accepted_peers.push_back(peer.to_string());
      },
      options);
  CHILD_CHECK(created.ok(), created.status().ToString());
  Acceptor& acceptor = **created;

  logger().debug("emfile scenario: listening on {}", addr.to_string());  // creates the logger
#if IOLOOP_TESTING_ASAN
  // Our sanitizer build pairs ASan with UBSan, whose first check of a virtual call (fmt's
  // buffers, when formatting the warning) reads the vtable through a pipe: impossible with
  // the fd table full, so it reports a bogus error. Skip the formatting there.
  logger().set_level(spdlog::level::off);
#endif

  struct rlimit rl;
  CHILD_CHECK(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
  rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 128);
  CHILD_CHECK(::setrlimit(RLIMIT_NOFILE, &rl) == 0, std::strerror(errno));

  // Clients keep their fds open until the end: a freed fd would let accept() succeed.
  std::vector<Socket> clients;
  int clients_closed = 0;
  auto add_client = [&]() -> bool {
    clients.push_back(connect_blocking(addr));
    const int fd = clients.back().fd();
    if (fd < 0) return false;
    return loop
        .add_handler(
            fd,
            [&loop, &clients_closed](int cfd, uint32_t) {
              char c;
              ssize_t n = ::recv(cfd, &c, 1, 0);
              if (n == 0 || (n < 0 && errno == ECONNRESET)) {
                ++clients_closed;
                loop.remove_handler(cfd);
              }
            },
            READ)
        .ok();
  };
  for (int i = 0; i < 3; ++i) CHILD_CHECK(add_client());

  std::vector<Socket> fillers;
  if (std::string failed = fill_fd_table(fillers); !failed.empty()) return failed;
  CHILD_CHECK(fillers.size() > 40, fillers.size());
  auto run_until = [&](const std::function<bool()>& pred) { return net::run_until(loop, pred); };

  // Phase 1: the three waiting clients are accepted into the spare slot and closed.
  CHILD_CHECK(run_until([&] { return clients_closed == 3; }), "clients_closed=", clients_closed);
  CHILD_CHECK(accepted.empty(), accepted.size());
  CHILD_CHECK(acceptor.stats().emfile_events >= 1);
  CHILD_CHECK(acceptor.stats().rejected == 3, acceptor.stats().rejected);
  CHILD_CHECK(acceptor.stats().paused >= 1);

  // Phase 2: 30 timer ticks while a new client connects on every tick (each takes a
  // filler's fd, so the table stays full). Measure the loop with its own counters.
  const IOLoop::Stats before = loop.stats();
  const Acceptor::Stats acc_before = acceptor.stats();
  const int closed_before = clients_closed;
  constexpr int kTicks = 30;
  int ticks = 0;
  bool add_failed = false;
  std::function<void()> tick = [&] {
    ++ticks;
    fillers.pop_back();  // frees exactly the fd the next socket() takes
    if (!add_client()) add_failed = true;
    if (ticks < kTicks) loop.call_later(absl::Milliseconds(1), [&] { tick(); });
  };
  loop.call_later(absl::Milliseconds(1), [&] { tick(); });
  CHILD_CHECK(run_until([&] { return ticks == kTicks && clients_closed == 3 + kTicks; }),
              "ticks=", ticks, " clients_closed=", clients_closed);
  CHILD_CHECK(!add_failed);
  const IOLoop::Stats after = loop.stats();
  const Acceptor::Stats acc_after = acceptor.stats();
  const uint64_t iterations = after.iterations - before.iterations;
  const uint64_t events = after.events_dispatched - before.events_dispatched;
  const uint64_t timers = after.timers_fired - before.timers_fired;
  const uint64_t callbacks = after.callbacks_run - before.callbacks_run;
  const uint64_t resumes = acc_after.resumed - acc_before.resumed;
  const uint64_t wakeups = acc_after.wakeups - acc_before.wakeups;
  const std::string numbers =
      absl::StrCat("iterations=", iterations, " events=", events, " timers=", timers,
                   " callbacks=", callbacks, " listener_wakeups=", wakeups, " resumes=", resumes,
                   " clients_closed=", clients_closed - closed_before);
  CHILD_CHECK(accepted.empty(), numbers);
  CHILD_CHECK(acc_after.rejected == 3 + kTicks, numbers);
  // Every listener wake-up follows a back-off timer: the listener is off between them.
  CHILD_CHECK(wakeups <= resumes + 1, numbers);
  CHILD_CHECK(resumes >= 1 && resumes <= timers, numbers);
  // The only events are those wake-ups and one EOF per client.
  CHILD_CHECK(events <= wakeups + (clients_closed - closed_before), numbers);
  // No empty iterations to speak of: each one ran a timer, a callback or an event.
  CHILD_CHECK(iterations <= 2 * (timers + callbacks + events) + 10, numbers);

  // Phase 3: free some fds; accepting resumes by itself and the client gets through.
  fillers.resize(fillers.size() - 10);
  Socket late = connect_blocking(addr);
  const std::string late_name = late.local_address()->to_string();
  CHILD_CHECK(run_until([&] { return accepted.size() == 1; }), numbers);
  CHILD_CHECK(accepted_peers[0] == late_name, accepted_peers[0], " vs ", late_name);
  CHILD_CHECK(acceptor.stats().accepted == 1);
  CHILD_CHECK(acceptor.accepting() && !acceptor.paused());
  return "";
}

TEST_P(AcceptTest, EmfileClosesWaitingClientsPausesAndResumes) {
  run_in_child([kind = GetParam()] { return emfile_scenario(kind); });
}

// The spare slot lost: with several loops in one process (HTTPServer's threads), another
// thread can take the fd number the spare freed before this thread's accept() does, and the
// spare cannot be reopened then. Made deterministic here: the spare's fd number is above a
// lowered RLIMIT_NOFILE, so closing it frees no slot accept() may use. That client waits (no
// slot at all); but once fds are free again the acceptor must get its spare back, so that the
// next exhaustion closes waiting clients again instead of leaving them hanging.
std::string lost_spare_scenario(PollerKind kind) {
  IOLoop::Options loop_options;
  loop_options.poller = kind;
  absl::StatusOr<std::unique_ptr<IOLoop>> created_loop = IOLoop::create(loop_options);
  CHILD_CHECK(created_loop.ok());
  IOLoop& loop = **created_loop;
  absl::StatusOr<std::vector<Socket>> listeners = bind_sockets(0, "127.0.0.1", AF_INET, 128);
  CHILD_CHECK(listeners.ok(), listeners.status().ToString());
  const SocketAddress addr = *(*listeners)[0].local_address();
  logger().debug("lost spare scenario: listening on {}", addr.to_string());  // the logger
#if IOLOOP_TESTING_ASAN
  logger().set_level(spdlog::level::off);  // see emfile_scenario
#endif

  constexpr rlim_t kLimit = 128;
  std::vector<Socket> placeholders;  // push the spare's fd number above kLimit
  while (placeholders.empty() || placeholders.back().fd() < static_cast<int>(kLimit) + 8) {
    placeholders.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    CHILD_CHECK(placeholders.back().valid(), std::strerror(errno));
  }
  AcceptOptions options;
  options.emfile_backoff = absl::Milliseconds(5);
  std::vector<Socket> accepted;
  absl::StatusOr<std::unique_ptr<Acceptor>> created = add_accept_handler(
      loop, (*listeners)[0].fd(),
      [&](Socket conn, SocketAddress) { accepted.push_back(std::move(conn)); }, options);
  CHILD_CHECK(created.ok(), created.status().ToString());
  Acceptor& acceptor = **created;
  placeholders.clear();
  struct rlimit rl;
  CHILD_CHECK(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
  rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, kLimit);
  CHILD_CHECK(::setrlimit(RLIMIT_NOFILE, &rl) == 0, std::strerror(errno));

  // Phase 1: the first exhaustion loses the spare; its client waits until fds are free.
  Socket first = connect_blocking(addr);
  CHILD_CHECK(first.valid());
  std::vector<Socket> fillers;
  if (std::string failed = fill_fd_table(fillers); !failed.empty()) return failed;
  CHILD_CHECK(run_until(loop, [&] { return acceptor.stats().emfile_events >= 1; }));
  CHILD_CHECK(acceptor.stats().rejected == 0, acceptor.stats().rejected);
  fillers.resize(fillers.size() - 10);
  CHILD_CHECK(run_until(loop, [&] { return accepted.size() == 1; }), "first never accepted");

  // Phase 2: exhausted again. The client is closed (EOF), not left waiting.
  if (std::string failed = fill_fd_table(fillers); !failed.empty()) return failed;
  fillers.pop_back();  // the slot the next client's socket takes
  Socket second = connect_blocking(addr);
  CHILD_CHECK(second.valid());
  CHILD_CHECK(run_until(loop, [&] { return acceptor.stats().rejected == 1; }),
              "the second client was not closed: emfile_events=", acceptor.stats().emfile_events);
  char c;
  CHILD_CHECK(::recv(second.fd(), &c, 1, 0) == 0, "no EOF: ", std::strerror(errno));
  CHILD_CHECK(accepted.size() == 1, accepted.size());
  return "";
}

TEST_P(AcceptTest, SpareLostToAnotherThreadIsReopenedOnceFdsAreFree) {
  run_in_child([kind = GetParam()] { return lost_spare_scenario(kind); });
}

// A poller whose add() fails while `fail_adds` > 0 (epoll_ctl's ENOSPC at
// fs.epoll.max_user_watches, ENOMEM).
class AddFailingPoller final : public Poller {
 public:
  AddFailingPoller(std::unique_ptr<Poller> real, int* fail_adds)
      : real_(std::move(real)), fail_adds_(fail_adds) {}
  PollerKind kind() const override { return real_->kind(); }
  absl::Status add(int fd, uint32_t events, uint32_t tag) override {
    if (*fail_adds_ > 0) {
      --*fail_adds_;
      return absl::ResourceExhaustedError("injected: epoll_ctl(ADD): No space left on device");
    }
    return real_->add(fd, events, tag);
  }
  absl::Status modify(int fd, uint32_t events, uint32_t tag) override {
    return real_->modify(fd, events, tag);
  }
  void remove(int fd) override { real_->remove(fd); }
  absl::StatusOr<int> poll(std::optional<absl::Duration> timeout,
                           std::vector<Event>* out) override {
    return real_->poll(timeout, out);
  }

 private:
  std::unique_ptr<Poller> real_;
  int* fail_adds_;
};

// After a back-off the listener is registered again; a failure there is retried after
// another back-off, not taken as the end of accepting. (A listener shut down for reading
// reports HUP and accept() fails EINVAL: an error that pauses it at every wake-up.)
TEST(AcceptResumeTest, FailedReEnableIsRetriedAfterAnotherBackoff) {
  int fail_adds = 0;
  auto real = Poller::create(PollerKind::kEpoll);
  ASSERT_TRUE(real.ok()) << real.status();
  std::unique_ptr<IOLoop> loop =
      IOLoopTestPeer::create(std::make_unique<AddFailingPoller>(*std::move(real), &fail_adds));
  Socket listener = listen_v4();
  AcceptOptions options;
  options.emfile_backoff = absl::Milliseconds(1);
  absl::StatusOr<std::unique_ptr<Acceptor>> acceptor = add_accept_handler(
      *loop, listener.fd(), [](Socket, SocketAddress) {}, options);
  ASSERT_TRUE(acceptor.ok()) << acceptor.status();
  ASSERT_EQ(::shutdown(listener.fd(), SHUT_RD), 0);
  ASSERT_TRUE(run_until(*loop, [&] { return (*acceptor)->stats().paused == 1; }));
  fail_adds = 2;  // the next two re-enables fail
  // Two failed re-enables, then one that works: the listener wakes (and fails) again.
  ASSERT_TRUE(run_until(*loop, [&] { return (*acceptor)->stats().other_errors >= 2; }))
      << "resumed=" << (*acceptor)->stats().resumed;
  EXPECT_TRUE((*acceptor)->accepting());
  EXPECT_EQ(fail_adds, 0);
  EXPECT_GE((*acceptor)->stats().resumed, 3u);
  // A pause per error and one per failed re-enable.
  EXPECT_EQ((*acceptor)->stats().paused, (*acceptor)->stats().other_errors + 2);
  (*acceptor)->stop();
}

INSTANTIATE_TEST_SUITE_P(Pollers, AcceptTest, ioloop::testing::AllPollers(),
                         ioloop::testing::PollerName);

}  // namespace
}  // namespace ioloop::net
