// Runs the built examples/http_responder on a free port and drives it with real clients:
// curl, Python's http.client, ApacheBench (with and without keep-alive) and 2,000 concurrent
// keep-alive connections from this process. A tool that is not installed skips its test
// (third_party/install-deps.sh installs curl, python3 and apache2-utils).
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "integration/command.h"
#include "integration/proc_stats.h"
#include "integration/server_process.h"
#include "ioloop/net/socket.h"
#include "testing/sanitizers.h"

#ifndef HTTP_RESPONDER_PATH
#error "HTTP_RESPONDER_PATH must name the http_responder binary (tests/integration/CMakeLists.txt)"
#endif

namespace ioloop::testing {
namespace {

using net::Socket;

constexpr char kBody[] = "Hello, world!";

class HTTPResponderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::start(HTTP_RESPONDER_PATH,
                                       {"--port=0", "--address=127.0.0.1", "--log_level=warn"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    url_ = absl::StrCat("http://127.0.0.1:", server_->port(), "/");
  }

  std::unique_ptr<ServerProcess> server_;
  std::string url_;
};

TEST_F(HTTPResponderTest, CurlGetsExactBodyAndHeaders) {
  if (!have("curl")) GTEST_SKIP() << "curl not installed";
  int status;
  const std::string out = run("curl -s -i --max-time 20 " + url_ + "any/path?x=1", &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("\r\nContent-Type: text/plain\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nContent-Length: 13\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nDate: "), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.find("\r\n\r\n") + 4), kBody);

  // Any method; HEAD gets no body; HTTP/1.0 gets an HTTP/1.0 status line.
  EXPECT_EQ(run("curl -s --max-time 20 -X POST --data abc " + url_, &status), kBody);
  const std::string head = run("curl -s -I --max-time 20 " + url_, &status);
  EXPECT_EQ(status, 0);
  EXPECT_NE(head.find("Content-Length: 13\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.find(kBody), std::string::npos) << head;
  const std::string old = run("curl -s -i -0 --max-time 20 " + url_, &status);
  EXPECT_EQ(old.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << old;
  EXPECT_NE(old.find("Connection: close\r\n"), std::string::npos) << old;
}

TEST_F(HTTPResponderTest, PythonHttpClientKeepsOneConnectionForThreeRequests) {
  if (!have("python3")) GTEST_SKIP() << "python3 not installed";
  const std::string script = absl::StrCat(
      "import http.client\n"
      "c = http.client.HTTPConnection('127.0.0.1', ",
      server_->port(),
      ", timeout=20)\n"
      "socks = set()\n"
      "for path in ('/a', '/b', '/c'):\n"
      "    c.request('GET', path)\n"
      "    r = c.getresponse()\n"
      "    assert r.status == 200, r.status\n"
      "    assert r.getheader('Content-Type') == 'text/plain'\n"
      "    assert r.read() == b'Hello, world!'\n"
      "    socks.add(id(c.sock))\n"
      "assert len(socks) == 1, 'reconnected'\n"
      "print('ok')\n");
  int status;
  const std::string out = run_python(script, &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "ok\n");
}

// "Failed requests: N" from ab's report; -1 when absent.
int failed_requests(const std::string& report) {
  const size_t p = report.find("Failed requests:");
  if (p == std::string::npos) return -1;
  return std::atoi(report.c_str() + p + std::strlen("Failed requests:"));
}

TEST_F(HTTPResponderTest, ApacheBenchHasNoFailedRequests) {
  if (!have("ab")) GTEST_SKIP() << "ab (apache2-utils) not installed";
  int status;
  const std::string report = run("ab -n 2000 -c 20 " + url_ + " 2>&1", &status);
  ASSERT_EQ(status, 0) << report;
  EXPECT_NE(report.find("Complete requests:      2000"), std::string::npos) << report;
  EXPECT_EQ(failed_requests(report), 0) << report;
  EXPECT_NE(report.find("Document Length:        13 bytes"), std::string::npos) << report;
}

TEST_F(HTTPResponderTest, ApacheBenchKeepAliveHasNoFailedRequests) {
  if (!have("ab")) GTEST_SKIP() << "ab (apache2-utils) not installed";
  int status;
  const std::string report = run("ab -k -n 2000 -c 20 " + url_ + " 2>&1", &status);
  ASSERT_EQ(status, 0) << report;
  EXPECT_EQ(failed_requests(report), 0) << report;
  // ab -k only reuses a connection whose HTTP/1.0 response says "Connection: keep-alive".
  EXPECT_NE(report.find("Keep-Alive requests:    2000"), std::string::npos) << report;
}

// 2,000 connections open at once, each answered twice (so each stayed alive).
TEST_F(HTTPResponderTest, TwoThousandConcurrentKeepAliveConnections) {
  constexpr int kConnections = 2000;
  rlimit rl;
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_max < kConnections + 100) GTEST_SKIP() << "open file limit too low";
  if (rl.rlim_cur < kConnections + 100) {
    rl.rlim_cur = rl.rlim_max;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &rl), 0);
  }
  const std::string request = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  std::vector<Socket> sockets;
  for (int i = 0; i < kConnections; ++i) {
    Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(s.valid()) << std::strerror(errno);
    // Blocking connect: loopback completes it from the listen backlog, before accept().
    ASSERT_EQ(::connect(s.fd(), server_->address().get(), server_->address().length()), 0)
        << "connection " << i << ": " << std::strerror(errno);
    ASSERT_EQ(::fcntl(s.fd(), F_SETFL, O_NONBLOCK), 0);
    sockets.push_back(std::move(s));
  }
  for (int round = 0; round < 2; ++round) {
    for (Socket& s : sockets) {
      ASSERT_EQ(::send(s.fd(), request.data(), request.size(), MSG_NOSIGNAL),
                static_cast<ssize_t>(request.size()));
    }
    std::vector<std::string> got(kConnections);
    std::vector<pollfd> fds(kConnections);
    int complete = 0;
    while (complete < kConnections) {
      for (int i = 0; i < kConnections; ++i) {
        const bool done =
            got[i].size() >= std::strlen(kBody) &&
            got[i].compare(got[i].size() - std::strlen(kBody), std::string::npos, kBody) == 0;
        fds[i] = {done ? -1 : sockets[i].fd(), POLLIN, 0};
      }
      const int ready = ::poll(fds.data(), fds.size(), 20000);
      ASSERT_GT(ready, 0) << "no progress for 20 s; " << complete << " answered";
      for (int i = 0; i < kConnections; ++i) {
        if (fds[i].revents == 0) continue;
        char buf[1024];
        const ssize_t n = ::recv(sockets[i].fd(), buf, sizeof buf, 0);
        ASSERT_GT(n, 0) << "connection " << i << " closed or failed: " << std::strerror(errno);
        got[i].append(buf, static_cast<size_t>(n));
        if (got[i].size() >= std::strlen(kBody) &&
            got[i].compare(got[i].size() - std::strlen(kBody), std::string::npos, kBody) == 0) {
          ++complete;
        }
      }
    }
    for (int i = 0; i < kConnections; ++i) {
      ASSERT_EQ(got[i].rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got[i];
      ASSERT_EQ(got[i].find("Connection: close"), std::string::npos) << got[i];
    }
  }
}

// One GET on a fresh connection, answered: the server's loop went round at least once since
// the call. False if it was not answered.
bool round_trip(const ServerProcess& server) {
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid() || ::connect(s.fd(), server.address().get(), server.address().length()) != 0) {
    return false;
  }
  const std::string request = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  if (::send(s.fd(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return false;
  }
  std::string got;
  char buf[1024];
  ssize_t n;
  while ((n = ::recv(s.fd(), buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(n));
  return got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0;
}

// A client that pipelines requests and never reads the responses costs the server what it
// queues for that client: HTTPServerOptions::max_pending_output (64 KiB by default) plus one
// response, about 60 KiB here. With the old default (1 MiB) each held 1,047 KiB, so 20,000
// such connections took 20 GiB; nginx answers one request at a time and holds a few KiB.
TEST_F(HTTPResponderTest, ClientsThatPipelineAndNeverReadHoldLittleMemory) {
  if (IOLOOP_TESTING_ASAN || IOLOOP_TESTING_TSAN) GTEST_SKIP() << "RSS under a sanitizer";
  constexpr int kClients = 100;
  std::string burst;
  for (int i = 0; i < 65536; ++i) burst += "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  absl::StatusOr<int64_t> before = proc_status_kib(server_->pid(), "VmRSS");
  ASSERT_TRUE(before.ok()) << before.status();
  std::vector<Socket> clients;
  for (int i = 0; i < kClients; ++i) {
    Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(s.valid()) << std::strerror(errno);
    const int rcvbuf = 4096;  // before connect, so that the window stays small
    ASSERT_EQ(::setsockopt(s.fd(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    ASSERT_EQ(::connect(s.fd(), server_->address().get(), server_->address().length()), 0);
    ASSERT_EQ(::fcntl(s.fd(), F_SETFL, O_NONBLOCK), 0);
    size_t sent = 0;  // what the kernel takes now; the server stops reading at its bound
    while (sent < burst.size()) {
      const ssize_t n = ::send(s.fd(), burst.data() + sent, burst.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    ASSERT_GT(sent, 0u);
    clients.push_back(std::move(s));
  }
  // The server reads, answers up to its bound and stops; RSS settles once a few loop rounds
  // in a row change nothing.
  int64_t rss = 0;
  for (int round = 0, same = 0; round < 1000 && same < 5; ++round) {
    ASSERT_TRUE(round_trip(*server_));
    const int64_t now = proc_status_kib(server_->pid(), "VmRSS").value_or(-1);
    same = now == rss ? same + 1 : 0;
    rss = now;
  }
  const int64_t per_client = (rss - *before) / kClients;
  EXPECT_LT(per_client, 160) << "KiB per client that never reads (" << *before << " -> " << rss
                             << " KiB)";
}

TEST_F(HTTPResponderTest, SigtermExitsZero) {
  absl::StatusOr<int> status = server_->signal_and_wait(SIGTERM);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 0);
}

TEST_F(HTTPResponderTest, SigintExitsZeroWithOpenConnections) {
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(s.fd(), server_->address().get(), server_->address().length()), 0);
  absl::StatusOr<int> status = server_->signal_and_wait(SIGINT);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 0);
}

TEST(HTTPResponderThreadsTest, FourThreadsServeCurl) {
  if (!have("curl")) GTEST_SKIP() << "curl not installed";
  auto server = ServerProcess::start(
      HTTP_RESPONDER_PATH, {"--port=0", "--address=127.0.0.1", "--threads=4", "--log_level=warn"});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string url = absl::StrCat("http://127.0.0.1:", (*server)->port(), "/");
  int status;
  for (int i = 0; i < 8; ++i) EXPECT_EQ(run("curl -s --max-time 20 " + url, &status), kBody);
  absl::StatusOr<int> exit = (*server)->signal_and_wait(SIGTERM);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(WEXITSTATUS(*exit), 0);
}

// Found by a probe: a body trickled a byte every few seconds held its connection for ever
// (the idle timeout restarts at each byte, the header timeout ends with the head). Under
// --min_body_rate (500 bytes/s over 10 s by default, as http_proxy's) it gets a 408 once the
// rate window has passed; this client sends a byte a second and waits up to 30 s for it.
TEST_F(HTTPResponderTest, ABodyTrickledSlowerThanTheMinimumRateGetsA408) {
  const std::string script = absl::StrCat(
      "import socket, time\n"
      "s = socket.create_connection(('127.0.0.1', ",
      server_->port(),
      "), timeout=30)\n"
      "s.sendall(b'POST / HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 100000\\r\\n\\r\\n')\n"
      "s.setblocking(False)\n"
      "data = b''\n"
      "for _ in range(30):\n"
      "    try:\n"
      "        s.send(b'x')\n"
      "    except OSError:\n"
      "        pass\n"
      "    time.sleep(1)\n"
      "    try:\n"
      "        data += s.recv(4096)\n"
      "    except BlockingIOError:\n"
      "        continue\n"
      "    except OSError:\n"
      "        break\n"
      "    if b'\\r\\n\\r\\n' in data:\n"
      "        break\n"
      "print(data.split(b'\\r\\n')[0].decode())\n");
  int status;
  const std::string out = run_python(script, &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(out, "HTTP/1.1 408 Request Timeout\n");
}

// A bad flag exits 2 with the reason before anything is bound or announced: a negative
// --idle_timeout or --header_timeout printed "listening on", then exited 1 (silently with
// --log_level=off), to a script that had just read the port (found by a probe of the flags).
TEST(HTTPResponderFlagsTest, ANegativeTimeoutExitsTwoBeforeListening) {
  for (const char* flag : {"--idle_timeout=-1s", "--header_timeout=-1ms"}) {
    int status = 0;
    const std::string out = run(
        absl::StrCat(HTTP_RESPONDER_PATH, " --port=0 --log_level=off ", flag, " 2>&1"), &status);
    ASSERT_TRUE(WIFEXITED(status)) << flag;
    EXPECT_EQ(WEXITSTATUS(status), 2) << flag;
    const std::string name = std::string(flag).substr(0, std::string(flag).find('='));
    EXPECT_EQ(out, absl::StrCat("http_responder: ", name, " must not be negative\n"));
  }
}

TEST(HTTPResponderFlagsTest, ANegativeMinimumBodyRateExitsTwo) {
  int status = 0;
  const std::string out =
      run(absl::StrCat(HTTP_RESPONDER_PATH, " --port=0 --log_level=off --min_body_rate=-1 2>&1"),
          &status);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_EQ(out,
            "http_responder: --threads must be >= 1, --port in 0..65535 and --min_body_rate >= "
            "0\n");
}

// Found by a check of the docs against the programs: raw_epoll_responder exited 1 without a
// word for a port out of range and for a failed bind, where its comment (and every other
// example) says a bad flag exits 2 with the reason.
TEST(RawEpollResponderTest, APortOutOfRangeExitsTwoAndAFailedBindSaysWhy) {
  int status = 0;
  std::string out = run(absl::StrCat(RAW_EPOLL_RESPONDER_PATH, " --port=70000 2>&1"), &status);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_EQ(out, "raw_epoll_responder: --port must be 0..65535\n");

  // A port taken by a listener without SO_REUSEPORT: the bind fails, and the log says so.
  Socket taken(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(taken.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(taken.fd(), 1), 0);
  ASSERT_EQ(::getsockname(taken.fd(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  out = run(absl::StrCat(RAW_EPOLL_RESPONDER_PATH,
                         " --address=127.0.0.1 --port=", ntohs(addr.sin_port), " 2>&1"),
            &status);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_NE(out.find("Address already in use"), std::string::npos) << out;
}

}  // namespace
}  // namespace ioloop::testing
