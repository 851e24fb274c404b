// Runs the built examples/http_proxy in front of upstreams that fail (refused, silent, a head
// then silence, a pool held busy) and checks what the client gets: 502, 503 or 504, the client
// connection still usable, the reason in the proxy's log; and flags that cannot work (exit 2).
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "integration/command.h"
#include "integration/proxy_testing.h"
#include "integration/server_process.h"
#include "ioloop/net/socket.h"
#include "ioloop/net/socket_address.h"

namespace ioloop::testing {
namespace {

// A TCP socket bound to a free loopback port (not listening): held by the test, so no other
// test's server can take the port meanwhile (ctest -j).
absl::StatusOr<net::Socket> bound_loopback_socket() {
  absl::StatusOr<net::Socket> s = net::Socket::create(AF_INET, SOCK_STREAM);
  if (!s.ok()) return s.status();
  absl::StatusOr<net::SocketAddress> any = net::SocketAddress::parse("127.0.0.1", 0);
  if (!any.ok()) return any.status();
  if (::bind(s->fd(), any->get(), any->length()) != 0) return absl::ErrnoToStatus(errno, "bind");
  return s;
}

// Two GETs on one connection to the proxy with Python's http.client, printing each status and
// Connection field: the second proves the connection survived the first.
std::string two_gets_on_one_connection(uint16_t port, int* status) {
  const std::string script = absl::StrCat(
      "import http.client\n"
      "c = http.client.HTTPConnection('127.0.0.1', ",
      port,
      ", timeout=20)\n"
      "for i in range(2):\n"
      "    c.request('GET', '/x')\n"
      "    r = c.getresponse()\n"
      "    r.read()\n"
      "    print(r.status, r.getheader('Connection'))\n");
  return run_python(script, status);
}

// Two GETs on one connection, then one with curl: each gets the proxy's own `code` answer (the
// reason phrase as its body), and the connection stays usable after the first.
void expect_answers(uint16_t port, int code, absl::string_view reason) {
  int status;
  const std::string out = two_gets_on_one_connection(port, &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(out, absl::StrCat(code, " None\n", code, " None\n"));
  const std::string head =
      run(absl::StrCat("curl -sS -i --max-time 20 http://127.0.0.1:", port, "/y"), &status);
  EXPECT_EQ(status, 0);
  EXPECT_TRUE(absl::StartsWith(head, absl::StrCat("HTTP/1.1 ", code, " ", reason, "\r\n"))) << head;
  EXPECT_TRUE(absl::EndsWith(
      head, absl::StrCat("\r\nContent-Length: ", reason.size() + 1, "\r\n\r\n", reason, "\n")))
      << head;
}

// RFC 9110 §15.2: the upstream's 1xx reach the client before the final response, hop-by-hop

// A refused upstream: 502, and the client's connection goes on. The 502 says only that: the
// reason, which names the upstream's address, goes to the proxy's log as a warning (nginx logs
// it at error level and sends a generic page).
TEST(ProxyErrorsTest, RefusedUpstreamIs502AndTheConnectionStaysUsable) {
  if (!have("python3") || !have("curl")) GTEST_SKIP() << "python3 or curl not installed";
  // Bound for the whole test and never listening: connecting to it is refused.
  absl::StatusOr<net::Socket> bound = bound_loopback_socket();
  ASSERT_TRUE(bound.ok()) << bound.status();
  auto local = bound->local_address();
  ASSERT_TRUE(local.ok());
  const std::string log = absl::StrCat(::testing::TempDir(), "/proxy_refused_", ::getpid(), ".log");
  auto proxy = start_proxy(local->port(), {}, log);
  ASSERT_NE(proxy, nullptr);
  expect_answers(proxy->port(), 502, "Bad Gateway");
  const std::string text = read_file(log);
  EXPECT_TRUE(absl::StrContains(
      text, absl::StrCat("[warning] upstream http://127.0.0.1:", local->port(), "/: 502 to")))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "Connection refused")) << text;
  ::unlink(log.c_str());
}

TEST(ProxyErrorsTest, SilentUpstreamIs504AfterTheUpstreamTimeout) {
  if (!have("python3") || !have("curl")) GTEST_SKIP() << "python3 or curl not installed";
  // An upstream that accepts (the kernel does, from the backlog) and never answers.
  absl::StatusOr<net::Socket> silent = bound_loopback_socket();
  ASSERT_TRUE(silent.ok()) << silent.status();
  ASSERT_EQ(::listen(silent->fd(), 16), 0);
  auto local = silent->local_address();
  ASSERT_TRUE(local.ok());
  auto proxy = start_proxy(local->port(), {"--upstream_timeout=300ms"});
  ASSERT_NE(proxy, nullptr);
  expect_answers(proxy->port(), 504, "Gateway Timeout");
}

// An upstream the test drives by hand: a blocking listening socket on a free loopback port
// (accept_request() waits for the proxy's connection).
absl::StatusOr<net::Socket> listening_upstream() {
  absl::StatusOr<net::Socket> s = bound_loopback_socket();
  if (!s.ok()) return s;
  if (::listen(s->fd(), 16) != 0 || ::fcntl(s->fd(), F_SETFL, 0) != 0) {
    return absl::ErrnoToStatus(errno, "listen");
  }
  return s;
}

// The next connection the proxy makes to `listener` (a blocking socket), once the head of a
// request arrived on it (then in *head).
net::Socket accept_request(int listener, std::string* head) {
  net::Socket up(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(up.valid());
  char buf[4096];
  while (up.valid() && !absl::StrContains(*head, "\r\n\r\n")) {
    const ssize_t n = ::recv(up.fd(), buf, sizeof buf, 0);
    if (n <= 0) break;
    head->append(buf, static_cast<size_t>(n));
  }
  EXPECT_TRUE(absl::StrContains(*head, "\r\n\r\n")) << *head;
  return up;
}

// curl's `-i` output for a GET through a proxy (--upstream_timeout=2s: long enough for this
// thread to accept and answer on a loaded machine) to an upstream that answers the request with
// `answer` and then stays silent: what the client got when the proxy gave up.
std::string answer_then_silence(const std::string& answer) {
  absl::StatusOr<net::Socket> upstream = listening_upstream();
  EXPECT_TRUE(upstream.ok()) << upstream.status();
  if (!upstream.ok()) return "";
  auto local = upstream->local_address();
  auto proxy = start_proxy(local.ok() ? local->port() : 1, {"--upstream_timeout=2s"});
  EXPECT_NE(proxy, nullptr);
  if (proxy == nullptr) return "";
  std::string out;
  int status = -1;
  std::thread client([&] {
    out = run(absl::StrCat("curl -sS -i --max-time 20 http://127.0.0.1:", proxy->port(), "/x"),
              &status);
  });
  std::string request;
  net::Socket up = accept_request(upstream->fd(), &request);
  EXPECT_EQ(::send(up.fd(), answer.data(), answer.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(answer.size()));
  client.join();
  EXPECT_EQ(status, 0);
  return out;
}

// An upstream that sends a response head and then nothing: the proxy had no byte of it sent to
// the client yet, so the client gets a 502 (504 is for no response at all) on a connection
// that stays usable.
TEST(ProxyErrorsTest, HeadThenSilenceBeforeAnyBodyByteIs502) {
  if (!have("curl")) GTEST_SKIP() << "curl not installed";
  const std::string out = answer_then_silence("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(out, "HTTP/1.1 502 Bad Gateway\r\n")) << out;
  EXPECT_TRUE(absl::EndsWith(out, "\r\nContent-Length: 12\r\n\r\nBad Gateway\n")) << out;
}

// Found by a review: only the final head counted as the upstream's answer, so an interim
// response (forwarded to the client) and then silence got a 504, "no response". It is a 502, as
// a final head and then silence is; the interim also started --upstream_timeout again (the
// client's response_timeout test shows that on a manual clock).
TEST(ProxyErrorsTest, InterimResponseThenSilenceIs502) {
  if (!have("curl")) GTEST_SKIP() << "curl not installed";
  const std::string out = answer_then_silence("HTTP/1.1 102 Processing\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(out, "HTTP/1.1 102 Processing\r\nVia: 1.1 ioloop\r\n\r\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "\r\n\r\nHTTP/1.1 502 Bad Gateway\r\n")) << out;
}

// Requests that find every upstream connection busy wait in the pool's queue for
// --queue_timeout, then get a 503 (the upstream never sees them) on a connection that stays
// usable; the request holding the connection is not disturbed.
TEST(ProxyErrorsTest, BusyPoolIs503AfterTheQueueTimeout) {
  if (!have("python3") || !have("curl")) GTEST_SKIP() << "python3 or curl not installed";
  absl::StatusOr<net::Socket> upstream = listening_upstream();
  ASSERT_TRUE(upstream.ok()) << upstream.status();
  auto local = upstream->local_address();
  ASSERT_TRUE(local.ok());
  const std::string log = absl::StrCat(::testing::TempDir(), "/proxy_queue_", ::getpid(), ".log");
  auto proxy =
      start_proxy(local->port(), {"--max_upstream_connections=1", "--queue_timeout=300ms"}, log);
  ASSERT_NE(proxy, nullptr);

  // The first request takes the one upstream connection, which the test holds unanswered.
  net::Socket held(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  absl::StatusOr<net::SocketAddress> addr = net::SocketAddress::parse("127.0.0.1", proxy->port());
  ASSERT_TRUE(addr.ok());
  ASSERT_EQ(::connect(held.fd(), addr->get(), addr->length()), 0);
  const std::string first = "GET /held HTTP/1.1\r\nHost: h\r\n\r\n";
  ASSERT_EQ(::send(held.fd(), first.data(), first.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(first.size()));
  std::string request;
  net::Socket up = accept_request(upstream->fd(), &request);
  ASSERT_TRUE(up.valid());
  char buf[4096];
  EXPECT_TRUE(absl::StartsWith(request, "GET /held HTTP/1.1\r\n")) << request;

  expect_answers(proxy->port(), 503, "Service Unavailable");
  const std::string text = read_file(log);
  EXPECT_TRUE(absl::StrContains(
      text, absl::StrCat("503 to the client: DEADLINE_EXCEEDED: queue_timeout (300ms) expired: "
                         "no free connection to 127.0.0.1:",
                         local->port(), " (max_connections_per_host 1) (GET http://127.0.0.1:",
                         local->port(), "/x, queued for a connection)")))
      << text;

  // The held request is answered as usual; the queued ones never reached the upstream.
  const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  ASSERT_EQ(::send(up.fd(), answer.data(), answer.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(answer.size()));
  std::string reply;
  while (!absl::EndsWith(reply, "\r\n\r\nok")) {
    const ssize_t n = ::recv(held.fd(), buf, sizeof buf, 0);
    ASSERT_GT(n, 0) << reply;
    reply.append(buf, static_cast<size_t>(n));
  }
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_EQ(::recv(up.fd(), buf, sizeof buf, MSG_DONTWAIT), -1);  // nothing more was sent
  EXPECT_EQ(errno, EAGAIN);
  ASSERT_EQ(::fcntl(upstream->fd(), F_SETFL, O_NONBLOCK), 0);
  EXPECT_EQ(::accept4(upstream->fd(), nullptr, nullptr, SOCK_CLOEXEC), -1);
  EXPECT_EQ(errno, EAGAIN);  // nor on another connection
  ::unlink(log.c_str());
}

TEST(ProxyFlagsTest, FlagsThatCannotWorkExitTwoWithTheReason) {
  struct Case {
    const char* flags;
    const char* says;
  };
  for (const Case& c : {
           Case{"--upstream=ftp://127.0.0.1:1",
                "http_proxy: --upstream must be http(s)://HOST:PORT"},
           Case{"--upstream=http://127.0.0.1:1 --queue_timeout=-1s",
                "http_proxy: --queue_timeout must not be negative\n"},
           Case{"--upstream=http://127.0.0.1:1 --connect_timeout=-5ms",
                "http_proxy: --connect_timeout must not be negative\n"},
           Case{"--upstream=http://127.0.0.1:1 --idle_timeout=-1s",
                "http_proxy: --idle_timeout must not be negative\n"},
           // Found by a review: values absl's parser cannot read made it exit 1 with its own
           // "ERROR: ..." line.
           Case{"--upstream=http://127.0.0.1:1 --upstream_timeout=5",
                "http_proxy: Illegal value '5' specified for flag 'upstream_timeout'"},
           Case{"--upstream=http://127.0.0.1:1 --threads=two",
                "http_proxy: Illegal value 'two' specified for flag 'threads'"},
       }) {
    int status;
    const std::string out =
        run(absl::StrCat(HTTP_PROXY_PATH, " --port=0 ", c.flags, " 2>&1"), &status);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << c.flags << ": " << status;
    EXPECT_TRUE(absl::StartsWith(out, c.says)) << c.flags << ": " << out;
  }
}

}  // namespace
}  // namespace ioloop::testing
