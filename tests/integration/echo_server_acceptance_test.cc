// The acceptance bullets of the echo server (issue 3, point 5), checked from outside against
// the built examples/echo_server and, where it costs little, examples/echo_server_lowlevel:
//   - every byte echoed in order; after a half-close the rest, then EOF;
//   - bounded memory while a client pushes 64 MiB without reading (VmRSS/VmHWM from /proc);
//   - 2,000 concurrent clients (10,000 in echo_load.sh, see docs/benchmarks.md);
//   - clients that reset do not disturb the others;
//   - out of fds (prlimit --nofile=64:64) it does not spin, and serves again once fds free up;
//   - exit status 0 within 3 s of SIGINT/SIGTERM with clients connected;
//   - the soft open-file limit is raised to the hard one and logged;
//   - --threads 4 works.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "integration/echo_load.h"
#include "integration/echo_test_support.h"
#include "integration/server_process.h"
#include "ioloop/net/socket.h"

#if !defined(ECHO_SERVER_PATH) || !defined(ECHO_SERVER_LOWLEVEL_PATH)
#error "ECHO_SERVER_PATH and ECHO_SERVER_LOWLEVEL_PATH must name the programs (see CMakeLists.txt)"
#endif

namespace ioloop::testing {
namespace {

using net::Socket;

constexpr char kPrlimit[] = "/usr/bin/prlimit";  // util-linux

std::string program_name(const std::string& path) { return path.substr(path.rfind('/') + 1); }

Socket connect_to(const net::SocketAddress& addr) {
  Socket s = connect_blocking(addr);
  EXPECT_TRUE(s.valid()) << std::strerror(errno);
  return s;
}

void send_all(int fd, const std::string& data) {
  ASSERT_TRUE(send_all_blocking(fd, data.data(), data.size())) << std::strerror(errno);
}

void set_blocking(int fd, bool blocking) {
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK);
}

// Sends from `data` (starting at *sent) on a non-blocking socket until the connection has
// taken no byte for `quiet`: the peer has stopped reading. Returns false on a send error.
bool send_until_stalled(int fd, const std::string& data, size_t* sent, absl::Duration quiet) {
  while (*sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + *sent, std::min<size_t>(data.size() - *sent, 1 << 20),
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      *sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
    // A slow server can only make this return early (a smaller stall), never fail a test.
    pollfd p = {fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(quiet))) == 0) return true;
  }
  return true;
}

class EchoAcceptanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  const std::string& program() const { return GetParam(); }

  // Starts program() (under `prefix`, e.g. prlimit, if given) on 127.0.0.1:0.
  void start(std::vector<std::string> extra = {}, std::vector<std::string> prefix = {},
             const std::string& stderr_path = "") {
    std::vector<std::string> args = {"--port=0", "--address=127.0.0.1", "--log_level=warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::string path = program();
    if (!prefix.empty()) {
      path = prefix.front();
      prefix.erase(prefix.begin());
      prefix.push_back(program());
      args.insert(args.begin(), prefix.begin(), prefix.end());
    }
    absl::StatusOr<std::unique_ptr<ServerProcess>> s =
        ServerProcess::start(path, args, absl::Seconds(20), stderr_path);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }

  int64_t server_kib(const std::string& field) {
    absl::StatusOr<int64_t> kib = proc_status_kib(server_->pid(), field);
    EXPECT_TRUE(kib.ok()) << kib.status();
    return kib.value_or(0);
  }

  std::unique_ptr<ServerProcess> server_;
};

// Backpressure: a client pushes 64 MiB and reads nothing. The server must stop reading from
// it (TCP flow control then stalls the client) instead of buffering, so its RSS grows by
// well under 48 MiB (the bound; the kernel's socket buffers are not in RSS); once
// the client reads, every byte arrives in order.
TEST_P(EchoAcceptanceTest, ClientPushing64MiBWithoutReadingKeepsMemoryBounded) {
  // 64 MiB under every build: the kernel's autotuned socket buffers on both sides can absorb
  // about 20 MiB, so a smaller payload (16 MiB was tried under ASan) may all be accepted with no
  // push-back from the server, and the test then fails for the wrong reason. Under ASan the
  // allocator's quarantine keeps freed buffers resident, so only the RSS bounds are skipped.
  const size_t total = size_t{64} << 20;
  static const std::string payload = pattern(total);
  start();
  Socket c = connect_to(server_->address());
  send_all(c.fd(), "warm-up");
  ASSERT_EQ(read_exactly(c.fd(), 7), "warm-up");
  const int64_t rss_start = server_kib("VmRSS");

  size_t sent = 0;
  ASSERT_TRUE(send_until_stalled(c.fd(), payload, &sent, absl::Milliseconds(500)))
      << std::strerror(errno);
  // Socket buffers on both sides hold at most a few tens of MiB: the server pushed back.
  EXPECT_LT(sent, payload.size()) << "the server never stopped reading";
  const int64_t rss_stalled = server_kib("VmRSS");
  const int64_t peak_stalled = server_kib("VmHWM");
  std::cout << program_name(program()) << ": stalled after " << sent << " bytes; server VmRSS "
            << rss_start << " KiB at start, " << rss_stalled << " KiB while stalled (peak "
            << peak_stalled << " KiB)\n";

  // Now read: a writer thread sends the rest (blocking) and half-closes, we check every byte.
  set_blocking(c.fd(), true);
  std::thread writer([&] {
    if (send_all_blocking(c.fd(), payload.data() + sent, payload.size() - sent)) {
      ::shutdown(c.fd(), SHUT_WR);
    }
  });
  std::vector<char> buf(256 * 1024);
  size_t received = 0;
  bool intact = true;
  ssize_t r;
  while ((r = ::recv(c.fd(), buf.data(), buf.size(), 0)) > 0) {
    const auto n = static_cast<size_t>(r);
    if (received + n > payload.size() ||
        std::memcmp(buf.data(), payload.data() + received, n) != 0) {
      intact = false;
      break;
    }
    received += n;
  }
  const bool clean_eof = r == 0;
  if (!intact || !clean_eof) ::shutdown(c.fd(), SHUT_RDWR);  // unblock the writer
  writer.join();
  EXPECT_TRUE(intact) << "echo differs from the payload at or after byte " << received;
  EXPECT_TRUE(clean_eof) << std::strerror(errno);
  EXPECT_EQ(received, payload.size());
  const int64_t peak = server_kib("VmHWM");
  std::cout << program_name(program()) << ": server peak VmRSS over the whole transfer " << peak
            << " KiB (growth " << (peak - rss_start) / 1024 << " MiB)\n";
  if (!IOLOOP_UNDER_ASAN) {
    EXPECT_LT(rss_stalled - rss_start, 48 * 1024);
    EXPECT_LT(peak - rss_start, 48 * 1024) << "peak RSS growth over the whole 64 MiB";
  }
}

// Half-close while the server is throttling the client: the rest of the echo, then EOF.
TEST_P(EchoAcceptanceTest, HalfCloseWhileThrottledGetsEverythingThenEof) {
  start({"--max_pending=65536"});
  Socket c = connect_to(server_->address());
  const std::string data = pattern(4 << 20, 7);
  std::thread writer([&] {
    if (send_all_blocking(c.fd(), data.data(), data.size())) ::shutdown(c.fd(), SHUT_WR);
  });
  bool clean_eof = false;
  std::string echoed = read_to_eof(c.fd(), &clean_eof);
  writer.join();
  EXPECT_TRUE(clean_eof) << std::strerror(errno);
  EXPECT_EQ(echoed.size(), data.size());
  EXPECT_TRUE(echoed == data) << "echo differs";
}

// 2,000 clients open at once, each echoed twice (see echo_load.h).
TEST_P(EchoAcceptanceTest, TwoThousandConcurrentClients) {
  constexpr int kClients = 2000;
  if (raise_own_fd_limit() < kClients + 100) {
    GTEST_SKIP() << "the hard open-file limit is below " << kClients + 100;
  }
  start();
  EchoLoadOptions options;
  options.clients = kClients;
  int64_t rss_all_open = 0;
  options.on_all_open = [&] { rss_all_open = server_kib("VmRSS"); };
  absl::StatusOr<EchoLoadResult> result = run_echo_load(server_->address(), options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->clients, kClients);
  std::cout << program_name(program()) << ": " << kClients << " clients: connect + echo "
            << absl::FormatDuration(result->connect_round) << ", echo on all open "
            << absl::FormatDuration(result->echo_round) << ", server VmRSS with all open "
            << rss_all_open << " KiB\n";
}

// Some clients reset their connections (SO_LINGER 0: RST), one of them while the server has
// echo queued for it; the others are served throughout and afterwards.
TEST_P(EchoAcceptanceTest, ResettingClientsDoNotDisturbOthers) {
  start({"--max_pending=65536"});
  std::vector<Socket> good, bad;
  for (int i = 0; i < 10; ++i) good.push_back(connect_to(server_->address()));
  for (int i = 0; i < 6; ++i) bad.push_back(connect_to(server_->address()));
  auto check_good = [&](int round) {
    for (size_t i = 0; i < good.size(); ++i) {
      const std::string m = absl::StrCat("good ", i, " round ", round);
      send_all(good[i].fd(), m);
      EXPECT_EQ(read_exactly(good[i].fd(), m.size()), m);
    }
  };
  check_good(0);
  // bad[0]: unread echo backed up in the server (it stops reading, then gets RST).
  size_t sent = 0;
  const std::string flood = pattern(8 << 20, 3);
  ASSERT_TRUE(send_until_stalled(bad[0].fd(), flood, &sent, absl::Milliseconds(300)));
  for (size_t i = 0; i < bad.size(); ++i) {
    if (i % 2 == 1) send_all(bad[i].fd(), "bytes the client will never read");
    ASSERT_TRUE(bad[i].set_linger_zero().ok());
    bad[i].reset();  // RST
    check_good(static_cast<int>(i) + 1);
  }
  check_good(100);
  Socket late = connect_to(server_->address());
  send_all(late.fd(), "late");
  EXPECT_EQ(read_exactly(late.fd(), 4), "late");
}

// Out of fds: with a limit of 64 the server holds about 55 clients; the other clients of 200
// wait in the accept queue or are refused. The acceptor must back off rather than retry
// accept() in a loop, and serve new clients once others leave.
TEST_P(EchoAcceptanceTest, OutOfFdsDoesNotSpinAndRecovers) {
  if (::access(kPrlimit, X_OK) != 0) GTEST_SKIP() << kPrlimit << " (util-linux) not found";
  if (IOLOOP_UNDER_ASAN) {
    // UBSan's vptr check probes memory through a pipe(); in a process with no fd left that
    // fails and UBSan reports a bogus "invalid vptr" (seen in fmt's buffer) and aborts.
    GTEST_SKIP() << "the sanitizer runtime itself needs free fds";
  }
  start({}, {kPrlimit, "--nofile=64:64"});
  constexpr int kClients = 200;
  std::vector<Socket> clients;
  std::vector<pollfd> pfds;
  for (int i = 0; i < kClients; ++i) {
    // The kernel completes the handshake (backlog 1024) whether or not the server accepts.
    clients.push_back(connect_to(server_->address()));
    ASSERT_TRUE(clients.back().valid());
    send_all(clients.back().fd(), absl::StrCat("ping ", i, "\n"));
    pfds.push_back({clients.back().fd(), POLLIN, 0});
  }
  // state: 0 waiting, 1 echoed (served), 2 EOF (refused with the spare-fd trick)
  std::vector<int> state(kClients, 0);
  int refusals = 0;
  // Watches the clients for `d`. With `retry`, a refused client connects again at once, as
  // a persistent client would, so the server keeps facing a queue of clients it cannot
  // accept: the situation in which a naive acceptor spins.
  auto poll_clients = [&](absl::Duration d, bool retry) {
    const absl::Time end = absl::Now() + d;
    for (absl::Duration left; (left = end - absl::Now()) > absl::ZeroDuration();) {
      const int timeout = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
      if (::poll(pfds.data(), pfds.size(), timeout) <= 0) continue;
      for (int i = 0; i < kClients; ++i) {
        if (pfds[i].fd < 0 || pfds[i].revents == 0) continue;
        char buf[64];
        ssize_t n = ::recv(pfds[i].fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) state[i] = 1;
        if (n > 0 || (n < 0 && errno == EAGAIN)) continue;
        pfds[i].fd = -1;  // EOF or error: stop watching
        if (state[i] == 1) continue;
        state[i] = 2;
        ++refusals;
        if (!retry) continue;
        clients[i] = connect_to(server_->address());
        if (!clients[i].valid()) return;
        send_all(clients[i].fd(), absl::StrCat("ping ", i, "\n"));
        pfds[i].fd = clients[i].fd();
        state[i] = 0;
      }
    }
  };
  poll_clients(absl::Milliseconds(300), true);  // let the server fill up its fd table
  // Saturated: measure the server's CPU time over about a second of wall time. The bound is
  // the acceptance criterion (under 30% of one core); a server that retries accept()
  // on EMFILE spins at ~100%, and the backing-off one stays near 0%, so the margin is wide
  // even on a loaded machine (and CPU time, unlike wall time, does not grow with load).
  const int64_t ticks0 = proc_cpu_ticks(server_->pid()).value_or(-1);
  const int refusals0 = refusals;
  const absl::Time t0 = absl::Now();
  poll_clients(absl::Seconds(1), true);
  const int64_t ticks1 = proc_cpu_ticks(server_->pid()).value_or(-1);
  const double wall = absl::ToDoubleSeconds(absl::Now() - t0);
  ASSERT_GE(ticks0, 0);
  ASSERT_GE(ticks1, 0);
  const double cpu = static_cast<double>(ticks1 - ticks0) / ::sysconf(_SC_CLK_TCK) / wall;
  poll_clients(absl::Milliseconds(300), false);  // let the last retries be refused or served
  const int served = static_cast<int>(std::count(state.begin(), state.end(), 1));
  const int waiting = static_cast<int>(std::count(state.begin(), state.end(), 0));
  std::cout << program_name(program()) << " under --nofile=64: " << served << " of " << kClients
            << " clients served, " << refusals - refusals0
            << " connections refused during the 1 s window; server CPU " << cpu * 100
            << "% of one core while saturated\n";
  EXPECT_GT(served, 0);
  EXPECT_LT(served, kClients) << "not saturated: the fd limit did not apply";
  EXPECT_GT(refusals - refusals0 + waiting, 0) << "nobody was kept waiting: not saturated";
  // Under the sanitizers each refused connection costs several times the CPU (914 refusals a
  // second at 30.9% of a core failed a TSan run of 2026-12-06), while a spin still shows ~100%:
  // there the bound is doubled.
  EXPECT_LT(cpu, IOLOOP_SANITIZED ? 0.60 : 0.30);

  // Clients leave: every one not being served, and ten served ones. A new client is served.
  int closed_served = 0;
  for (int i = 0; i < kClients; ++i) {
    if (state[i] != 1 || closed_served++ < 10) clients[i].reset();
  }
  Socket fresh = connect_to(server_->address());  // 20 s receive timeout
  send_all(fresh.fd(), "after the crowd");
  EXPECT_EQ(read_exactly(fresh.fd(), 15), "after the crowd");
  // And the clients that stayed are still served.
  for (int i = 0; i < kClients; ++i) {
    if (!clients[i].valid()) continue;
    send_all(clients[i].fd(), "still");
    EXPECT_EQ(read_exactly(clients[i].fd(), 5), "still") << "client " << i;
  }
}

// The soft open-file limit goes up to the hard one, and the start-up log says so.
TEST_P(EchoAcceptanceTest, RaisesAndLogsOpenFileLimit) {
  if (::access(kPrlimit, X_OK) != 0) GTEST_SKIP() << kPrlimit << " (util-linux) not found";
  const std::string log = absl::StrCat(::testing::TempDir(), "/echo_limit_", ::getpid(), "_",
                                       program_name(program()), ".log");
  start({"--log_level=info"}, {kPrlimit, "--nofile=256:1024"}, log);
  // The line is written before "listening on", which start() has seen.
  const std::string text = read_file(log);
  ::unlink(log.c_str());
  EXPECT_NE(text.find("open file limit: 1024 (was 256, hard limit 1024)"), std::string::npos)
      << text;
  // And it really holds more than 256 clients.
  std::vector<Socket> clients;
  for (int i = 0; i < 300; ++i) clients.push_back(connect_to(server_->address()));
  for (int i = 0; i < 300; ++i) send_all(clients[i].fd(), "x");
  for (int i = 0; i < 300; ++i) ASSERT_EQ(read_exactly(clients[i].fd(), 1), "x") << i;
}

// SIGINT and SIGTERM with clients connected, one of them with echo backed up in the server:
// exit status 0 within 3 s (the bound; the server needs milliseconds).
TEST_P(EchoAcceptanceTest, SignalsWithClientsConnectedExitZeroWithin3s) {
  for (int signo : {SIGINT, SIGTERM}) {
    SCOPED_TRACE(::strsignal(signo));
    start({"--max_pending=65536"});
    std::vector<Socket> clients;
    for (int i = 0; i < 50; ++i) {
      clients.push_back(connect_to(server_->address()));
      send_all(clients.back().fd(), "hello");
      ASSERT_EQ(read_exactly(clients.back().fd(), 5), "hello");
    }
    Socket stuck = connect_to(server_->address());
    size_t sent = 0;
    const std::string flood = pattern(8 << 20, 11);
    ASSERT_TRUE(send_until_stalled(stuck.fd(), flood, &sent, absl::Milliseconds(300)));
    absl::StatusOr<int> status = server_->signal_and_wait(signo, absl::Seconds(3));
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status)) << "wait status " << *status;
    EXPECT_EQ(WEXITSTATUS(*status), 0);
    server_.reset();
  }
}

INSTANTIATE_TEST_SUITE_P(Servers, EchoAcceptanceTest,
                         ::testing::Values(ECHO_SERVER_PATH, ECHO_SERVER_LOWLEVEL_PATH),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return program_name(param_info.param);
                         });

// --threads 4: four loops with SO_REUSEPORT listeners; one "listening on" line; clients on
// all of them echoed.
TEST(EchoServerThreadsTest, FourThreadsServeManyClients) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::start(
      ECHO_SERVER_PATH, {"--port=0", "--address=127.0.0.1", "--log_level=warn", "--threads=4"});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->stdout_text(), "listening on " + (*server)->address().to_string() + "\n");
  EchoLoadOptions options;
  options.clients = 200;
  absl::StatusOr<EchoLoadResult> result = run_echo_load((*server)->address(), options);
  ASSERT_TRUE(result.ok()) << result.status();
  // The workers are threads of the server: /proc/<pid>/task lists main + 4.
  int threads = 0;
  std::ifstream status(absl::StrCat("/proc/", (*server)->pid(), "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Threads:", 0) == 0) threads = std::stoi(line.substr(8));
  }
  EXPECT_GE(threads, 5);
  absl::StatusOr<int> exit = (*server)->signal_and_wait(SIGTERM, absl::Seconds(3));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << *exit;
}

}  // namespace
}  // namespace ioloop::testing
