#include "ioloop/net/tcp_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <set>
#include <stdexcept>
#include <thread>

#include "gtest/gtest.h"
#include "ioloop/mutex.h"
#include "ioloop/net/tcp_client.h"
#include "testing/loop_test_base.h"
#include "testing/thread_signal_mask.h"

namespace ioloop::net {
namespace {

class TCPServerTest : public ioloop::testing::LoopTestBase {};

class TCPServerSelectTest : public ioloop::testing::LoopTestBase {
 protected:
  TCPServerSelectTest() : LoopTestBase(PollerKind::kSelect) {}
};

// A listening SO_REUSEPORT socket on 127.0.0.1 moved to an fd >= FD_SETSIZE, which the select
// poller refuses to watch: a listener that cannot be installed, for real.
constexpr int kHighFd = FD_SETSIZE + 100;

absl::StatusOr<Socket> listener_at_high_fd() {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return absl::ErrnoToStatus(errno, "getrlimit");
  if (rl.rlim_cur <= kHighFd) {
    if (rl.rlim_max <= kHighFd) return absl::FailedPreconditionError("RLIMIT_NOFILE too low");
    rl.rlim_cur = kHighFd + 1;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) return absl::ErrnoToStatus(errno, "setrlimit");
  }
  absl::StatusOr<std::vector<Socket>> sockets =
      bind_sockets(0, "127.0.0.1", AF_INET, kDefaultBacklog, /*reuse_port=*/true);
  if (!sockets.ok()) return sockets.status();
  const int fd = ::fcntl((*sockets)[0].fd(), F_DUPFD_CLOEXEC, kHighFd);
  if (fd < 0) return absl::ErrnoToStatus(errno, "F_DUPFD_CLOEXEC");
  return Socket(fd);  // the low original is closed with `sockets`
}

// A blocking connect to `port` on 127.0.0.1: 0 if accepted into a backlog, else the errno.
int connect_errno(uint16_t port) {
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SocketAddress addr = SocketAddress::ipv4_loopback(port);
  return ::connect(s.fd(), addr.get(), addr.length()) == 0 ? 0 : errno;
}

int thread_count() {
  int n = 0;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  while (struct dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n;
}

// A handler that echoes each line back.
TCPServer::StreamHandler line_echo() {
  return [](std::shared_ptr<IOStream> stream, const SocketAddress&) {
    struct Echo {
      static void next(std::shared_ptr<IOStream> s) {
        s->read_until("\n", [s](absl::StatusOr<std::string> line) {
          if (!line.ok()) return;
          s->write(*line);
          next(s);
        });
      }
    };
    Echo::next(std::move(stream));
  };
}

TEST_F(TCPServerTest, ListenOnPortZeroAndEcho) {
  TCPServer server(loop(), line_echo());
  ASSERT_TRUE(server.listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(server.start().ok());
  ASSERT_NE(server.port(), 0);
  ASSERT_EQ(server.addresses().size(), 1u);
  EXPECT_EQ(server.addresses()[0].host(), "127.0.0.1");

  TCPClient client(loop());
  std::string reply;
  client.connect("127.0.0.1", server.port(), [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
    ASSERT_TRUE(s.ok()) << s.status();
    std::shared_ptr<IOStream> stream = *s;
    stream->write("hello\nworld\n");
    stream->read_bytes(12, [&, stream](absl::StatusOr<std::string> data) {
      ASSERT_TRUE(data.ok()) << data.status();
      reply = *data;
      done();
    });
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(reply, "hello\nworld\n");
}

// A handler may destroy its server: what the handler captured lives until it returns (found
// by a probe: ~Handoff freed the running closure, a use-after-free under ASan).
TEST_F(TCPServerTest, HandlerMayDestroyItsServer) {
  std::unique_ptr<TCPServer> server;
  std::string seen;
  server =
      std::make_unique<TCPServer>(loop(), [this, &server, &seen, tag = std::string(64, 't')](
                                              std::shared_ptr<IOStream>, const SocketAddress&) {
        server.reset();
        seen = tag;  // a capture, read after the reset
        done();
      });
  ASSERT_TRUE(server->listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(server->start().ok());
  TCPClient client(loop());
  client.connect("127.0.0.1", server->port(), [](absl::StatusOr<std::shared_ptr<IOStream>>) {});
  ASSERT_TRUE(wait());
  EXPECT_EQ(server, nullptr);
  EXPECT_EQ(seen, std::string(64, 't'));
}

TEST_F(TCPServerTest, StartValidatesArguments) {
  TCPServer server(loop(), line_echo());
  EXPECT_EQ(server.start(0).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(server.start(1).ok());
  EXPECT_EQ(server.start(1).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(TCPServerTest, EmptyHandlerIsInvalidArgumentAtStart) {
  TCPServer server(loop(), nullptr);
  EXPECT_EQ(server.start(1), absl::InvalidArgumentError("TCPServer::start: empty handler"));
}

// Found by a probe: a handshake_timeout of zero or below was taken, and then every TLS
// connection was closed (DeadlineExceeded) before its handshake could finish. TCPClient's
// ConnectOptions refuse it; so does start().
TEST_F(TCPServerTest, AHandshakeTimeoutThatIsNotPositiveIsInvalidArgumentAtStart) {
  for (absl::Duration bad : {absl::ZeroDuration(), absl::Milliseconds(-5)}) {
    TCPServerOptions options;
    options.handshake_timeout = bad;
    TCPServer server(loop(), line_echo(), options);
    EXPECT_EQ(server.start(1), absl::InvalidArgumentError(absl::StrCat(
                                   "TCPServer: handshake_timeout must be positive, got ",
                                   absl::FormatDuration(bad))));
  }
}

TEST_F(TCPServerTest, ListenOnBusyPortNamesTheAddress) {
  TCPServerOptions no_reuse;
  no_reuse.reuse_port = false;
  TCPServer first(loop(), line_echo(), no_reuse);
  ASSERT_TRUE(first.listen(0, "127.0.0.1").ok());
  TCPServer second(loop(), line_echo(), no_reuse);
  absl::Status s = second.listen(first.port(), "127.0.0.1");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("127.0.0.1"), absl::string_view::npos) << s;
}

// The side effect of the default reuse_port, as tcp_server.h states it: a second server
// binds the same port; one without SO_REUSEPORT does not.
TEST_F(TCPServerTest, ReusePortLetsASecondServerShareThePort) {
  TCPServer first(loop(), line_echo());
  ASSERT_TRUE(first.listen(0, "127.0.0.1").ok());
  TCPServer second(loop(), line_echo());
  EXPECT_TRUE(second.listen(first.port(), "127.0.0.1").ok());
  TCPServerOptions no_reuse;
  no_reuse.reuse_port = false;
  TCPServer third(loop(), line_echo(), no_reuse);
  EXPECT_FALSE(third.listen(first.port(), "127.0.0.1").ok());
}

TEST_F(TCPServerTest, ThreadsNeedReusePortSockets) {
  absl::StatusOr<std::vector<Socket>> sockets = bind_sockets(0, "127.0.0.1");
  ASSERT_TRUE(sockets.ok());
  TCPServer server(loop(), line_echo());
  ASSERT_TRUE(server.add_sockets(*std::move(sockets)).ok());
  absl::Status s = server.start(2);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("SO_REUSEPORT"), absl::string_view::npos) << s;
}

TEST_F(TCPServerTest, FourThreadsSpreadConnectionsAndEachStreamStaysOnItsLoop) {
  ioloop::Mutex mu;
  std::set<std::thread::id> threads;
  int on_wrong_thread = 0;
  TCPServer server(loop(), [&](std::shared_ptr<IOStream> stream, const SocketAddress&) {
    {
      ioloop::MutexLock lock(&mu);
      threads.insert(std::this_thread::get_id());
      if (!stream->loop().in_loop_thread()) ++on_wrong_thread;
    }
    line_echo()(std::move(stream), SocketAddress());
  });
  ASSERT_TRUE(server.listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(server.start(4).ok());
  EXPECT_EQ(server.num_threads(), 4);

  constexpr int kClients = 64;
  TCPClient client(loop());
  std::vector<std::shared_ptr<IOStream>> streams;
  int answered = 0;
  for (int i = 0; i < kClients; ++i) {
    client.connect("127.0.0.1", server.port(), [&, i](absl::StatusOr<std::shared_ptr<IOStream>> s) {
      ASSERT_TRUE(s.ok()) << s.status();
      std::shared_ptr<IOStream> stream = *s;
      streams.push_back(stream);
      const std::string msg = "client " + std::to_string(i) + "\n";
      stream->write(msg);
      stream->read_until("\n", [&, msg](absl::StatusOr<std::string> line) {
        ASSERT_TRUE(line.ok()) << line.status();
        EXPECT_EQ(*line, msg);
        if (++answered == kClients) done();
      });
    });
  }
  ASSERT_TRUE(wait(absl::Seconds(30)));
  ioloop::MutexLock lock(&mu);
  // SO_REUSEPORT hashes the 4-tuple: with 64 clients every listener gets some
  // (the chance that one of four gets none is about 4e-8).
  EXPECT_EQ(threads.size(), 4u);
  EXPECT_EQ(on_wrong_thread, 0);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u) << "main loop must not accept";
}

// Worker threads block the signals the main loop's signalfd waits for, but not those the kernel
// sends to the thread that faults: blocked, a SIGSEGV in a handler killed the process without
// its crash handler (no sanitizer report, no core dump handler). Found by a probe.
TEST_F(TCPServerTest, WorkerThreadsBlockSignalsButNotTheFaultSignals) {
  ioloop::Mutex mu;
  std::vector<int> unblocked;
  TCPServer server(loop(), [&](std::shared_ptr<IOStream> stream, const SocketAddress&) {
    std::vector<int> open = ioloop::testing::open_signals();
    ioloop::MutexLock lock(&mu);
    unblocked = std::move(open);
    stream->close();
  });
  ASSERT_TRUE(server.listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(server.start(2).ok());
  TCPClient client(loop());
  std::shared_ptr<IOStream> stream;
  client.connect("127.0.0.1", server.port(), [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
    ASSERT_TRUE(s.ok()) << s.status();
    stream = *s;
    stream->set_close_callback([&](absl::Status) { done(); });  // the worker closed it
    stream->read_bytes(1, [](absl::StatusOr<std::string>) {});
  });
  ASSERT_TRUE(wait());
  ioloop::MutexLock lock(&mu);
  EXPECT_EQ(unblocked, ioloop::testing::kFaultSignals);
}

TEST_F(TCPServerTest, StopClosesListenersAndOptionallyStreams) {
  TCPServer server(loop(), line_echo());
  ASSERT_TRUE(server.listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(server.start().ok());
  const uint16_t port = server.port();
  TCPClient client(loop());
  absl::Status read_status;
  client.connect("127.0.0.1", port, [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
    ASSERT_TRUE(s.ok()) << s.status();
    std::shared_ptr<IOStream> stream = *s;
    stream->write("ping\n");
    stream->read_until("\n", [&, stream](absl::StatusOr<std::string> line) {
      ASSERT_TRUE(line.ok());
      // Now the server has a stream open: stop and close it.
      server.stop(/*close_streams=*/true);
      stream->read_until_close([&, stream](absl::StatusOr<std::string> rest) {
        ASSERT_TRUE(rest.ok()) << rest.status();
        EXPECT_EQ(*rest, "");
        done();
      });
    });
  });
  ASSERT_TRUE(wait());
  // The listener is gone: a new connection is refused.
  absl::StatusOr<std::shared_ptr<IOStream>> second;
  client.connect("127.0.0.1", port, [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
    second = std::move(s);
    done();
  });
  ASSERT_TRUE(wait());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
}

// --- Options that would turn an error path into a busy loop ------------------------------

TEST_F(TCPServerTest, StartRejectsAZeroEmfileBackoffNamingTheField) {
  TCPServerOptions options;
  options.accept_options.emfile_backoff = absl::ZeroDuration();
  TCPServer server(loop(), line_echo(), options);
  ASSERT_TRUE(server.listen(0, "127.0.0.1").ok());
  absl::Status s = server.start();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("accept_options.emfile_backoff"), absl::string_view::npos) << s;
  EXPECT_FALSE(server.started());
  // Rejected before any thread is started.
  const int threads_before = thread_count();
  EXPECT_EQ(server.start(4).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(thread_count(), threads_before);
}

TEST_F(TCPServerTest, StartRejectsZeroAcceptsPerWakeupNamingTheField) {
  TCPServerOptions options;
  options.accept_options.max_accepts_per_wakeup = 0;
  TCPServer server(loop(), line_echo(), options);
  ASSERT_TRUE(server.listen(0, "127.0.0.1").ok());
  absl::Status s = server.start(2);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("accept_options.max_accepts_per_wakeup"), absl::string_view::npos)
      << s;
  EXPECT_FALSE(server.started());
}

// --- Exceptions from the stream handler -----------------------------------------------------

// The handler starts a read (so the loop holds the stream) and throws. The exception is
// counted and logged by the loop, the stream is closed with Internal naming it, and the next
// connection is served as usual.
TEST_F(TCPServerTest, ThrowingHandlerClosesItsStreamAndTheServerKeepsAccepting) {
  int calls = 0;
  absl::Status thrown_close = absl::UnknownError("close callback did not run");
  TCPServer server(loop(), [&](std::shared_ptr<IOStream> stream, const SocketAddress& peer) {
    if (++calls == 1) {
      stream->set_close_callback([&](absl::Status why) { thrown_close = why; });
      stream->read_until("\n", [](absl::StatusOr<std::string>) {});
      throw std::runtime_error("handler boom");
    }
    line_echo()(std::move(stream), peer);
  });
  ASSERT_TRUE(server.listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(server.start().ok());

  TCPClient client(loop());
  absl::StatusOr<std::string> first_rest;
  client.connect("127.0.0.1", server.port(), [&](absl::StatusOr<std::shared_ptr<IOStream>> c) {
    ASSERT_TRUE(c.ok()) << c.status();
    std::shared_ptr<IOStream> stream = *c;
    stream->read_until_close([&, stream](absl::StatusOr<std::string> rest) {
      first_rest = std::move(rest);
      done();
    });
  });
  ASSERT_TRUE(wait());
  ASSERT_TRUE(first_rest.ok()) << first_rest.status();
  EXPECT_EQ(*first_rest, "");  // the server closed the connection: EOF

  std::string reply;
  client.connect("127.0.0.1", server.port(), [&](absl::StatusOr<std::shared_ptr<IOStream>> c) {
    ASSERT_TRUE(c.ok()) << c.status();
    std::shared_ptr<IOStream> stream = *c;
    stream->write("second\n");
    stream->read_until("\n", [&, stream](absl::StatusOr<std::string> line) {
      ASSERT_TRUE(line.ok()) << line.status();
      reply = *line;
      done();
    });
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(reply, "second\n");
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(thrown_close,
            absl::InternalError("exception in TCPServer stream handler: handler boom"));
  EXPECT_EQ(loop().stats().exceptions, 1u);
}

// With threads the handler runs on the workers: the same rule holds there. Connections are
// made one after another; the server throws on the even ones and answers "ok" on the others.
TEST_F(TCPServerTest, ThreadsThrowingHandlerClosesItsStreamAndWorkersGoOn) {
  constexpr int kClients = 8;
  std::atomic<int> calls{0};
  ioloop::Mutex mu;
  std::vector<absl::Status> closes;
  std::vector<std::string> results;
  {
    TCPServer server(loop(), [&](std::shared_ptr<IOStream> stream, const SocketAddress&) {
      if (calls.fetch_add(1) % 2 == 0) {
        stream->set_close_callback([&](absl::Status why) {
          ioloop::MutexLock lock(&mu);
          closes.push_back(why);
        });
        stream->read_until("\n", [](absl::StatusOr<std::string>) {});
        throw std::runtime_error("worker boom");
      }
      stream->write("ok\n", [stream](absl::Status) { stream->close(); });
    });
    ASSERT_TRUE(server.listen(0, "127.0.0.1").ok());
    ASSERT_TRUE(server.start(2).ok());

    TCPClient client(loop());
    std::function<void()> next = [&] {
      client.connect("127.0.0.1", server.port(), [&](absl::StatusOr<std::shared_ptr<IOStream>> c) {
        ASSERT_TRUE(c.ok()) << c.status();
        std::shared_ptr<IOStream> stream = *c;
        stream->read_until_close([&, stream](absl::StatusOr<std::string> all) {
          results.push_back(all.ok() ? *all : all.status().ToString());
          if (static_cast<int>(results.size()) == kClients) {
            done();
          } else {
            next();
          }
        });
      });
    };
    next();
    ASSERT_TRUE(wait(absl::Seconds(30)));
  }  // joins the workers: every close callback has run
  EXPECT_EQ(results, (std::vector<std::string>{"", "ok\n", "", "ok\n", "", "ok\n", "", "ok\n"}));
  ioloop::MutexLock lock(&mu);
  EXPECT_EQ(closes, std::vector<absl::Status>(
                        kClients / 2,
                        absl::InternalError("exception in TCPServer stream handler: worker boom")));
}

// --- A listener that cannot be installed is an error, not a log line ---------------------

TEST_F(TCPServerSelectTest, StartReturnsTheInstallErrorAndIsNotStarted) {
  absl::StatusOr<Socket> high = listener_at_high_fd();
  ASSERT_TRUE(high.ok()) << high.status();
  const uint16_t port = high->local_address()->port();
  std::vector<Socket> sockets;
  sockets.push_back(*std::move(high));
  TCPServer server(loop(), line_echo());
  ASSERT_TRUE(server.add_sockets(std::move(sockets)).ok());  // waits for start()
  absl::Status s = server.start();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("FD_SETSIZE"), absl::string_view::npos) << s;
  // Nothing half-started: no worker, no address, and the listener is closed.
  EXPECT_FALSE(server.started());
  EXPECT_TRUE(server.addresses().empty());
  EXPECT_EQ(::fcntl(kHighFd, F_GETFD), -1);
  EXPECT_EQ(connect_errno(port), ECONNREFUSED);
  // The server can be started again with a usable listener.
  ASSERT_TRUE(server.listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(server.start().ok());
  EXPECT_EQ(server.addresses().size(), 1u);
}

TEST_F(TCPServerSelectTest, AddSocketsAfterStartReturnsTheInstallError) {
  TCPServer server(loop(), line_echo());
  ASSERT_TRUE(server.listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(server.start().ok());
  const uint16_t good_port = server.port();

  absl::StatusOr<Socket> high = listener_at_high_fd();
  ASSERT_TRUE(high.ok()) << high.status();
  const uint16_t bad_port = high->local_address()->port();
  std::vector<Socket> sockets;
  sockets.push_back(*std::move(high));
  absl::Status s = server.add_sockets(std::move(sockets));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("FD_SETSIZE"), absl::string_view::npos) << s;
  // The failed socket is closed and forgotten; the first listener still serves.
  EXPECT_EQ(::fcntl(kHighFd, F_GETFD), -1);
  EXPECT_EQ(connect_errno(bad_port), ECONNREFUSED);
  ASSERT_EQ(server.addresses().size(), 1u);
  EXPECT_EQ(server.port(), good_port);

  TCPClient client(loop());
  std::string reply;
  client.connect("127.0.0.1", good_port, [&](absl::StatusOr<std::shared_ptr<IOStream>> c) {
    ASSERT_TRUE(c.ok()) << c.status();
    std::shared_ptr<IOStream> stream = *c;
    stream->write("still here\n");
    stream->read_until("\n", [&, stream](absl::StatusOr<std::string> line) {
      ASSERT_TRUE(line.ok()) << line.status();
      reply = *line;
      done();
    });
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(reply, "still here\n");
}

// With threads the listeners are installed on the workers. Worker 0 gets the given socket
// (fd >= FD_SETSIZE: its select loop refuses it); workers 1 and 2 get low-fd copies and
// succeed. start() must wait for all three, report worker 0's error, and stop and join the
// others so that nothing accepts.
TEST_F(TCPServerTest, ThreadsStartFailsWhenOneWorkerCannotInstallAndJoinsTheOthers) {
  absl::StatusOr<Socket> high = listener_at_high_fd();
  ASSERT_TRUE(high.ok()) << high.status();
  const uint16_t port = high->local_address()->port();
  std::vector<Socket> sockets;
  sockets.push_back(*std::move(high));
  TCPServerOptions options;
  options.worker_poller = PollerKind::kSelect;
  TCPServer server(loop(), line_echo(), options);
  ASSERT_TRUE(server.add_sockets(std::move(sockets)).ok());
  const int threads_before = thread_count();
  absl::Status s = server.start(3);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("FD_SETSIZE"), absl::string_view::npos) << s;
  EXPECT_FALSE(server.started());
  EXPECT_EQ(server.num_threads(), 0);
  EXPECT_EQ(thread_count(), threads_before);  // every worker joined
  EXPECT_TRUE(server.addresses().empty());
  // Neither the given listener nor the workers' copies accept any more.
  EXPECT_EQ(::fcntl(kHighFd, F_GETFD), -1);
  EXPECT_EQ(connect_errno(port), ECONNREFUSED);
}

TEST_F(TCPServerTest, ThreadsAddSocketsFailureLeavesEarlierListenersServing) {
  TCPServerOptions options;
  options.worker_poller = PollerKind::kSelect;
  TCPServer server(loop(), line_echo(), options);
  ASSERT_TRUE(server.listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(server.start(2).ok());
  const uint16_t good_port = server.port();

  absl::StatusOr<Socket> high = listener_at_high_fd();
  ASSERT_TRUE(high.ok()) << high.status();
  const uint16_t bad_port = high->local_address()->port();
  std::vector<Socket> sockets;
  sockets.push_back(*std::move(high));
  absl::Status s = server.add_sockets(std::move(sockets));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(::fcntl(kHighFd, F_GETFD), -1);
  // Worker 1 had installed its copy of the failed socket: it is rolled back before
  // add_sockets() returns.
  EXPECT_EQ(connect_errno(bad_port), ECONNREFUSED);
  EXPECT_EQ(server.addresses().size(), 1u);
  EXPECT_EQ(server.num_threads(), 2);

  TCPClient client(loop());
  std::string reply;
  client.connect("127.0.0.1", good_port, [&](absl::StatusOr<std::shared_ptr<IOStream>> c) {
    ASSERT_TRUE(c.ok()) << c.status();
    std::shared_ptr<IOStream> stream = *c;
    stream->write("still here\n");
    stream->read_until("\n", [&, stream](absl::StatusOr<std::string> line) {
      ASSERT_TRUE(line.ok()) << line.status();
      reply = *line;
      done();
    });
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(reply, "still here\n");
}

}  // namespace
}  // namespace ioloop::net
