// Fault injection for IOStream and the reactor (issue 7, point 12), on every poller: a peer
// reset while a large write is queued, EPIPE after the peer closed (with SIGPIPE at its
// default, deadly action), and handlers that close their own fd while more events for it
// are in the same dispatch batch. The accept and EINTR faults are in fault_injection_test.cc.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ioloop/net/bind.h"
#include "ioloop/net/io_stream.h"
#include "testing/loop_test_base.h"
#include "testing/pollers.h"
#include "testing/socket_pair.h"

namespace ioloop::net {
namespace {

class StreamFaultTest : public testing::LoopTestBase,
                        public ::testing::WithParamInterface<PollerKind> {
 protected:
  StreamFaultTest() : LoopTestBase(GetParam()) {}

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

// A connected loopback TCP pair: `server` non-blocking (for an IOStream), `client` blocking.
struct TcpPair {
  Socket server;
  Socket client;
};

TcpPair tcp_pair(int buffer_bytes) {
  absl::StatusOr<std::vector<Socket>> listeners = bind_sockets(0, "127.0.0.1", AF_INET);
  EXPECT_TRUE(listeners.ok()) << listeners.status();
  if (!listeners.ok()) return {};
  const SocketAddress addr = *(*listeners)[0].local_address();
  TcpPair p;
  p.client = Socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  // Small buffers, so that a large write stays queued in the stream.
  EXPECT_TRUE(p.client.set_receive_buffer(buffer_bytes).ok());
  EXPECT_EQ(::connect(p.client.fd(), addr.get(), addr.length()), 0) << std::strerror(errno);
  p.server = Socket(::accept4((*listeners)[0].fd(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(p.server.valid()) << std::strerror(errno);
  EXPECT_TRUE(p.server.set_send_buffer(buffer_bytes).ok());
  return p;
}

// Moves the fds `from` onto the numbers `to` (free now), as a busy process reuses numbers:
// first out of the way (the kernel may already have handed out some of the targets), then
// into place.
void place_fds(std::vector<int> from, const std::vector<int>& to) {
  for (int& fd : from) {
    const int high = ::fcntl(fd, F_DUPFD_CLOEXEC, 512);
    ASSERT_GE(high, 0) << std::strerror(errno);
    ::close(fd);
    fd = high;
  }
  for (size_t i = 0; i < from.size(); ++i) {
    ASSERT_EQ(::dup3(from[i], to[i], O_CLOEXEC), to[i]) << std::strerror(errno);
    ::close(from[i]);
  }
}

// Sets a signal's action to SIG_DFL and unblocks it in this thread; restores both after.
class ScopedDefaultSignal {
 public:
  explicit ScopedDefaultSignal(int signo) : signo_(signo) {
    struct sigaction sa = {};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    EXPECT_EQ(::sigaction(signo, &sa, &old_action_), 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    EXPECT_EQ(::pthread_sigmask(SIG_UNBLOCK, &set, &old_mask_), 0);
  }
  ~ScopedDefaultSignal() {
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    ::sigaction(signo_, &old_action_, nullptr);
  }

 private:
  int signo_;
  struct sigaction old_action_;
  sigset_t old_mask_;
};

// --- Peer reset in the middle of a write ----------------------------------------------------

// 5 MiB are queued to a peer that reads nothing; the peer then closes with SO_LINGER 0, which
// sends RST. Both write callbacks get the reset status exactly once, then the close callback
// gets it once, and a second stream on the same loop goes on working.
TEST_P(StreamFaultTest, PeerResetMidWriteFailsEachQueuedWriteOnceAndNothingElse) {
  TcpPair victim = tcp_pair(4096);
  std::shared_ptr<IOStream> s = IOStream::create(loop(), std::move(victim.server));
  const int fd = s->fd();
  std::vector<absl::Status> writes, closes;
  s->set_close_callback([&](absl::Status st) {
    closes.push_back(st);
    done();
  });
  s->write(std::string(4 << 20, 'a'), [&](absl::Status st) { writes.push_back(st); });
  s->write(std::string(1 << 20, 'b'), [&](absl::Status st) { writes.push_back(st); });
  ASSERT_GT(s->write_buffer_size(), size_t{4} << 20);
  run_iterations(3);  // the stream waits for WRITE readiness that does not come
  ASSERT_TRUE(writes.empty());

  ASSERT_TRUE(victim.client.set_linger_zero().ok());
  victim.client.reset();  // RST
  ASSERT_TRUE(wait());
  run_iterations(3);  // nothing more arrives

  ASSERT_EQ(closes.size(), 1u);
  const absl::Status reset = closes[0];
  EXPECT_EQ(reset.code(), absl::StatusCode::kUnavailable) << reset;
  EXPECT_TRUE(absl::EndsWith(reset.message(), ": Connection reset by peer")) << reset;
  EXPECT_TRUE(absl::StrContains(reset.message(), absl::StrCat("fd ", fd))) << reset;
  EXPECT_EQ(writes, (std::vector<absl::Status>{reset, reset}));
  EXPECT_EQ(s->error(), reset);
  EXPECT_TRUE(s->closed());
  EXPECT_EQ(s->write_buffer_size(), 0u);

  // Unaffected: another stream on the same loop still exchanges bytes.
  absl::StatusOr<std::pair<Socket, Socket>> other = Socket::pair();
  ASSERT_TRUE(other.ok());
  std::shared_ptr<IOStream> bystander = IOStream::create(loop(), std::move(other->first));
  std::string got;
  bystander->read_bytes(4, [&](absl::StatusOr<std::string> data) {
    ASSERT_TRUE(data.ok()) << data.status();
    got = *data;
    bystander->write("pong");
    done();
  });
  ASSERT_EQ(::write(other->second.fd(), "ping", 4), 4);
  ASSERT_TRUE(wait());
  EXPECT_EQ(got, "ping");
  char buf[8];
  ASSERT_EQ(::recv(other->second.fd(), buf, sizeof buf, MSG_DONTWAIT), 4);
  EXPECT_EQ(std::string(buf, 4), "pong");
  EXPECT_EQ(closes.size(), 1u);
  EXPECT_EQ(writes.size(), 2u);
  bystander->close();
}

// --- EPIPE ----------------------------------------------------------------------------------

// The peer of an AF_UNIX stream has closed, so every send fails with EPIPE (there is no RST
// to turn it into ECONNRESET). With SIGPIPE at its default action, a send without
// MSG_NOSIGNAL would kill this process; instead each path reports the errno's status.
enum class WritePath { kDirectSend, kWritev, kQueued };

TEST_P(StreamFaultTest, WriteAfterThePeerClosedIsBrokenPipeWithoutSigpipe) {
  ScopedDefaultSignal sigpipe(SIGPIPE);
  for (WritePath path : {WritePath::kDirectSend, WritePath::kWritev, WritePath::kQueued}) {
    SCOPED_TRACE(static_cast<int>(path));
    absl::StatusOr<std::pair<Socket, Socket>> pair = Socket::pair();
    ASSERT_TRUE(pair.ok());
    std::shared_ptr<IOStream> s = IOStream::create(loop(), std::move(pair->first));
    const int fd = s->fd();
    std::vector<absl::Status> writes, closes;
    s->set_close_callback([&](absl::Status st) {
      closes.push_back(st);
      done();
    });
    auto on_flushed = [&](absl::Status st) { writes.push_back(st); };
    switch (path) {
      case WritePath::kDirectSend:
        pair->second.reset();
        s->write("after the peer closed", on_flushed);
        break;
      case WritePath::kWritev:
        pair->second.reset();
        s->writev({"after ", "the peer ", "closed"}, on_flushed);
        break;
      case WritePath::kQueued: {
        s->write(std::string(4 << 20, 'q'), on_flushed);  // most of it queued
        ASSERT_GT(s->write_buffer_size(), 0u);
        run_iterations(2);
        // The peer reads what arrived, then closes: an AF_UNIX peer closing with unread
        // data would make it a reset (ECONNRESET) instead.
        std::string buf(1 << 16, '\0');
        while (::recv(pair->second.fd(), buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
        }
        pair->second.reset();
        break;
      }
    }
    ASSERT_TRUE(wait());
    run_iterations(2);
    // EPIPE's text, and Unavailable as for a reset: the peer is gone (not absl's
    // FailedPrecondition, which blames the caller).
    const absl::Status broken_pipe = absl::UnavailableError(
        absl::ErrnoToStatus(EPIPE, absl::StrCat("IOStream: write to fd ", fd)).message());
    EXPECT_EQ(writes, std::vector<absl::Status>{broken_pipe});
    EXPECT_EQ(closes, std::vector<absl::Status>{broken_pipe});
  }
}

// --- A handler closing its own fd inside a batch --------------------------------------------

// x and y = dup(x) name one readable socket; both are registered, so one batch holds an
// event for each, plus one for an unrelated readable fd z. Whichever of x and y runs first
// removes and closes both, then puts a fresh, idle socket pair on the very same fd numbers
// and registers it. The batch's remaining event for the old registration must not reach the
// new handlers (nothing is readable on them), and z is served as usual.
TEST_P(StreamFaultTest, HandlerClosingItsOwnFdsInABatchDeliversNoStaleEvent) {
  testing::SocketPair a;
  a.send();
  const int x = a.fd[0];
  const int y = ::fcntl(x, F_DUPFD_CLOEXEC, 0);
  ASSERT_GE(y, 0);
  testing::SocketPair z;
  z.send();
  int first_runs = 0, stale_events = 0, z_runs = 0;
  testing::SocketPair* fresh = nullptr;
  std::unique_ptr<testing::SocketPair> fresh_owner;
  auto close_both = [&](int, uint32_t) {
    ++first_runs;
    loop().remove_handler(x);
    loop().remove_handler(y);
    ::close(x);
    ::close(y);
    a.fd[0] = -1;
    fresh_owner = std::make_unique<testing::SocketPair>();
    fresh = fresh_owner.get();
    place_fds({fresh->fd[0], fresh->fd[1]}, {x, y});
    fresh->fd[0] = x;
    fresh->fd[1] = y;
    for (int fd : {x, y}) {
      ASSERT_TRUE(loop()
                      .add_handler(
                          fd, [&](int, uint32_t) { ++stale_events; }, IOLoop::READ)
                      .ok());
    }
  };
  ASSERT_TRUE(loop().add_handler(x, close_both, IOLoop::READ).ok());
  ASSERT_TRUE(loop().add_handler(y, close_both, IOLoop::READ).ok());
  ASSERT_TRUE(loop()
                  .add_handler(
                      z.fd[0],
                      [&](int fd, uint32_t) {
                        ++z_runs;
                        char c;
                        (void)!::read(fd, &c, 1);
                      },
                      IOLoop::READ)
                  .ok());
  run_iterations(5);
  EXPECT_EQ(first_runs, 1);
  EXPECT_EQ(stale_events, 0);
  EXPECT_EQ(z_runs, 1);
  ASSERT_NE(fresh, nullptr);
  loop().remove_handler(x);
  loop().remove_handler(y);
  loop().remove_handler(z.fd[0]);
}

// A stream with a read outstanding and a write queued; the peer drains what it can (the
// stream becomes writable) and sends one byte (readable), so one dispatch carries READ and
// WRITE. The read callback closes the stream and reuses its fd number for a fresh socket:
// the WRITE half of the event must not run on the closed stream, the queued write completes
// once with Cancelled, the close callback once, and the new fd sees no event.
TEST_P(StreamFaultTest, StreamClosedByItsReadCallbackSkipsTheRestOfTheEvent) {
  absl::StatusOr<std::pair<Socket, Socket>> pair = Socket::pair();
  ASSERT_TRUE(pair.ok());
  const int peer = pair->second.fd();
  std::shared_ptr<IOStream> s = IOStream::create(loop(), std::move(pair->first));
  const int fd = s->fd();
  std::vector<std::string> reads;
  std::vector<absl::Status> writes, closes;
  int stale_events = 0;
  std::unique_ptr<testing::SocketPair> fresh;
  s->set_close_callback([&](absl::Status st) { closes.push_back(st); });
  s->write(std::string(1 << 20, 'w'), [&](absl::Status st) { writes.push_back(st); });
  ASSERT_GT(s->write_buffer_size(), 0u);
  s->read_bytes(1, [&](absl::StatusOr<std::string> data) {
    reads.push_back(data.ok() ? *data : data.status().ToString());
    s->close();
    fresh = std::make_unique<testing::SocketPair>();
    place_fds({fresh->fd[0]}, {fd});
    fresh->fd[0] = fd;
    ASSERT_TRUE(loop()
                    .add_handler(
                        fd, [&](int, uint32_t) { ++stale_events; }, IOLoop::READ)
                    .ok());
    done();
  });
  run_iterations(2);  // registered for READ and WRITE; neither is ready
  ASSERT_TRUE(reads.empty());

  // Make both ready before the loop looks again.
  std::string drained(1 << 16, '\0');
  size_t peer_got = 0;
  ssize_t n;
  while ((n = ::recv(peer, drained.data(), drained.size(), MSG_DONTWAIT)) > 0) peer_got += n;
  ASSERT_GT(peer_got, 0u);
  ASSERT_EQ(::send(peer, "x", 1, MSG_NOSIGNAL), 1);
  ASSERT_TRUE(wait());
  run_iterations(3);

  EXPECT_EQ(reads, std::vector<std::string>{"x"});
  EXPECT_EQ(writes, std::vector<absl::Status>{absl::CancelledError("IOStream: stream closed")});
  EXPECT_EQ(closes, std::vector<absl::Status>{absl::OkStatus()});
  EXPECT_EQ(stale_events, 0);
  // Nothing was written after the close: the peer sees EOF right after what it drained.
  char c;
  EXPECT_EQ(::recv(peer, &c, 1, MSG_DONTWAIT), 0);
  loop().remove_handler(fd);
}

INSTANTIATE_TEST_SUITE_P(Pollers, StreamFaultTest, ioloop::testing::AllPollers(),
                         ioloop::testing::PollerName);

}  // namespace
}  // namespace ioloop::net
