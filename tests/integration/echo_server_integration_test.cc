// Runs the built examples/echo_server (TCPServer + IOStream) and
// examples/echo_server_lowlevel (add_handler + add_accept_handler) on a free port and checks
// them from the outside, as a user with nc would: both must pass the same suite, on every
// readiness backend. The acceptance bullets live in echo_server_acceptance_test.cc.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "integration/command.h"
#include "integration/echo_test_support.h"
#include "integration/server_process.h"
#include "ioloop/net/socket.h"

#if !defined(ECHO_SERVER_PATH) || !defined(ECHO_SERVER_LOWLEVEL_PATH)
#error "ECHO_SERVER_PATH and ECHO_SERVER_LOWLEVEL_PATH must name the programs (see CMakeLists.txt)"
#endif

namespace ioloop::testing {
namespace {

using net::Socket;

Socket connect_to(const net::SocketAddress& addr) {
  Socket s = connect_blocking(addr);
  EXPECT_TRUE(s.valid()) << std::strerror(errno);
  return s;
}

void send_all(int fd, const std::string& data) {
  ASSERT_TRUE(send_all_blocking(fd, data.data(), data.size())) << std::strerror(errno);
}

// (program path, poller)
using EchoParam = std::tuple<std::string, std::string>;

// Every behaviour, on each readiness backend.
class EchoServerTest : public ::testing::TestWithParam<EchoParam> {
 protected:
  const std::string& program() const { return std::get<0>(GetParam()); }
  const std::string& poller() const { return std::get<1>(GetParam()); }

  void SetUp() override { start({}); }

  void start(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--port=0", "--address=127.0.0.1", "--log_level=warn",
                                     "--poller=" + poller()};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<std::unique_ptr<ServerProcess>> s = ServerProcess::start(program(), args);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }

  void expect_clean_exit(int signo) {
    absl::StatusOr<int> status = server_->signal_and_wait(signo);
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status)) << "wait status " << *status;
    EXPECT_EQ(WEXITSTATUS(*status), 0);
  }

  std::unique_ptr<ServerProcess> server_;
};

TEST_P(EchoServerTest, AnnouncesTheKernelChosenPort) {
  EXPECT_EQ(server_->address().host(), "127.0.0.1");
  EXPECT_NE(server_->port(), 0);
  EXPECT_EQ(server_->stdout_text(), "listening on " + server_->address().to_string() + "\n");
}

TEST_P(EchoServerTest, EchoesExactBytes) {
  Socket c = connect_to(server_->address());
  const std::string first("hi\0there\xff\r\n", 12);
  send_all(c.fd(), first);
  EXPECT_EQ(read_exactly(c.fd(), first.size()), first);
  const std::string second = "second message on the same connection";
  send_all(c.fd(), second);
  EXPECT_EQ(read_exactly(c.fd(), second.size()), second);
}

TEST_P(EchoServerTest, ServesSeveralClientsIndependently) {
  std::vector<Socket> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(connect_to(server_->address()));
  for (int i = 4; i >= 0; --i) send_all(clients[i].fd(), "client " + std::to_string(i));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(read_exactly(clients[i].fd(), 8), "client " + std::to_string(i));
  }
  // One client resetting its connection affects nobody else.
  ASSERT_TRUE(clients[2].set_linger_zero().ok());
  send_all(clients[2].fd(), "unread");
  clients[2].reset();  // RST
  send_all(clients[3].fd(), "still here");
  EXPECT_EQ(read_exactly(clients[3].fd(), 10), "still here");
}

TEST_P(EchoServerTest, OneMebibyteComesBackIntact) {
  Socket c = connect_to(server_->address());
  const std::string payload = pattern(1 << 20);
  // Write from another thread: the server stops reading while its output is backed up, so a
  // client that only writes, then only reads, could stall.
  std::thread writer([&] {
    send_all(c.fd(), payload);
    ::shutdown(c.fd(), SHUT_WR);
  });
  bool clean_eof = false;
  std::string echoed = read_to_eof(c.fd(), &clean_eof);
  writer.join();
  EXPECT_TRUE(clean_eof);
  ASSERT_EQ(echoed.size(), payload.size());
  EXPECT_TRUE(echoed == payload) << "payload corrupted";
}

TEST_P(EchoServerTest, HalfCloseGetsEverythingThenEof) {
  Socket c = connect_to(server_->address());
  const std::string data = pattern(200 * 1000);
  send_all(c.fd(), data);
  ASSERT_EQ(::shutdown(c.fd(), SHUT_WR), 0);  // "no more from me", but keep reading
  bool clean_eof = false;
  std::string echoed = read_to_eof(c.fd(), &clean_eof);
  EXPECT_TRUE(clean_eof) << std::strerror(errno);
  EXPECT_EQ(echoed.size(), data.size());
  EXPECT_TRUE(echoed == data);
}

TEST_P(EchoServerTest, ClientThatDoesNotReadIsThrottled) {
  // This is the server's own logic, and slow-ish (zero-window probes): one backend will do.
  if (poller() != "epoll") GTEST_SKIP() << "covered by the epoll variant";
  server_.reset();
  start({"--max_pending=65536"});
  Socket c = connect_to(server_->address());
  const int small = 64 * 1024;  // fixed client buffers: no autotuning on our side
  ASSERT_TRUE(c.set_send_buffer(small).ok());
  ASSERT_TRUE(c.set_receive_buffer(small).ok());
  // Send without reading until the connection stops taking data. An unthrottled server
  // would read (and buffer) without limit, and we would hit kCap.
  constexpr size_t kCap = 256u << 20;
  const std::string chunk = pattern(64 * 1024);
  std::string sent;  // what the connection accepted, in order
  while (sent.size() < kCap) {
    ssize_t n = ::send(c.fd(), chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent.append(chunk, 0, static_cast<size_t>(n));
      continue;
    }
    ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
    // No room: wait for some. Half a second without any means the server stopped reading.
    // (A slow server can only end this loop early, never fail the test.)
    pollfd p = {c.fd(), POLLOUT, 0};
    if (::poll(&p, 1, 500) == 0) break;
  }
  // Bounded by the kernel's socket buffers plus --max_pending, far below the cap.
  EXPECT_LT(sent.size(), kCap);
  std::cout << "server stopped taking data after " << sent.size() << " bytes\n";
  // Reading resumes the flow: every byte comes back, in order.
  ASSERT_EQ(::shutdown(c.fd(), SHUT_WR), 0);
  bool clean_eof = false;
  std::string echoed = read_to_eof(c.fd(), &clean_eof);
  EXPECT_TRUE(clean_eof);
  ASSERT_EQ(echoed.size(), sent.size());
  EXPECT_TRUE(echoed == sent) << "echo differs from what was sent";
}

TEST_P(EchoServerTest, SigtermExitsZero) {
  Socket idle = connect_to(server_->address());  // an open connection does not block exit
  send_all(idle.fd(), "x");
  EXPECT_EQ(read_exactly(idle.fd(), 1), "x");
  expect_clean_exit(SIGTERM);
  bool clean_eof = false;
  read_to_eof(idle.fd(), &clean_eof);
  EXPECT_TRUE(clean_eof);  // the server closed it on the way out
}

TEST_P(EchoServerTest, SigintExitsZero) { expect_clean_exit(SIGINT); }

INSTANTIATE_TEST_SUITE_P(Servers, EchoServerTest,
                         ::testing::Combine(::testing::Values(ECHO_SERVER_PATH,
                                                              ECHO_SERVER_LOWLEVEL_PATH),
                                            ::testing::Values("epoll", "poll", "select")),
                         [](const ::testing::TestParamInfo<EchoParam>& param_info) {
                           const std::string& path = std::get<0>(param_info.param);
                           const std::string name =
                               path.substr(path.rfind('/') + 1);  // echo_server[_lowlevel]
                           return name + "_" + std::get<1>(param_info.param);
                         });

// select() cannot watch fd 1024 and above: each connection that gets such an fd is refused
// with a warning, at most 5 a second (a LogRateLimiter), not one per connection: a client
// that reconnects in a loop must not flood the log.
TEST(EchoServerLowlevelTest, RefusalsPastFdSetSizeAreLoggedRateLimited) {
  ASSERT_GE(raise_own_fd_limit(), 1300u) << "needs an fd limit of 1300";
  const std::string log = ::testing::TempDir() + "/echo_lowlevel_select.log";
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::start(
      ECHO_SERVER_LOWLEVEL_PATH, {"--port=0", "--address=127.0.0.1", "--poller=select"},
      absl::Seconds(20), log);
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<Socket> held;  // the server's fds up to FD_SETSIZE
  for (int i = 0; i < 1030; ++i) held.push_back(connect_to((*server)->address()));
  constexpr int kRefused = 200;
  const absl::Time start = absl::Now();
  for (int i = 0; i < kRefused; ++i) {
    Socket s = connect_to((*server)->address());
    bool clean = false;
    read_to_eof(s.fd(), &clean);  // refused: closed by the server
  }
  const absl::Duration took = absl::Now() - start;
  held.clear();
  ASSERT_TRUE((*server)->signal_and_wait(SIGTERM).ok());
  const std::string text = read_file(log);
  int warnings = 0;
  for (size_t pos = 0; (pos = text.find("cannot watch", pos)) != std::string::npos; ++pos) {
    ++warnings;
  }
  EXPECT_GE(warnings, 1) << text;
  // 5 per started second, plus the window already open: bounded by the time the refusals took.
  const int allowed = 5 * static_cast<int>(absl::ToInt64Seconds(took) + 2);
  EXPECT_LE(warnings, allowed) << "in " << took << ": " << text.substr(0, 2000);
  EXPECT_LT(allowed, kRefused) << "the refusals took too long to tell: " << took;
}

TEST(EchoServerFlagsTest, BadPollerExitsWithUsageError) {
  for (const char* program : {ECHO_SERVER_PATH, ECHO_SERVER_LOWLEVEL_PATH}) {
    absl::StatusOr<std::unique_ptr<ServerProcess>> s =
        ServerProcess::start(program, {"--port=0", "--poller=kqueue"});
    ASSERT_FALSE(s.ok()) << program;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable) << s.status();
  }
}

// A bad flag exits 2 with the reason, before anything is bound. echo_server_lowlevel left the
// port to bind_sockets(): exit 1, after a log line, or silently with --log_level=off (found by
// a probe of the examples' flags).
TEST(EchoServerFlagsTest, APortOutOfRangeExitsTwoWithTheReason) {
  for (const char* program : {ECHO_SERVER_PATH, ECHO_SERVER_LOWLEVEL_PATH}) {
    const std::string name = std::string(program).substr(std::string(program).rfind('/') + 1);
    for (const char* port : {"70000", "65536", "-1"}) {
      int status = 0;
      const std::string out =
          run(absl::StrCat(program, " --log_level=off --port=", port, " 2>&1"), &status);
      ASSERT_TRUE(WIFEXITED(status)) << name;
      EXPECT_EQ(WEXITSTATUS(status), 2) << name << " --port=" << port;
      EXPECT_EQ(out, absl::StrCat(name, ": --port must be 0..65535\n")) << port;
    }
  }
}

}  // namespace
}  // namespace ioloop::testing
