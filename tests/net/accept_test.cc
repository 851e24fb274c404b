#include "ioloop/net/accept.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ioloop/logging.h"
#include "ioloop/net/bind.h"
#include "net/accept_testing.h"
#include "testing/loop_test_base.h"
#include "testing/pollers.h"

namespace ioloop::net {
namespace {

using accept_testing::address_of;
using accept_testing::connect_blocking;
using accept_testing::listen_v4;

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
INSTANTIATE_TEST_SUITE_P(Pollers, AcceptTest, ioloop::testing::AllPollers(),
                         ioloop::testing::PollerName);

}  // namespace
}  // namespace ioloop::net
