// The echo server's promises (issue 3, point 5) over TLS (issue 9, point 9), checked from
// outside against the built examples/echo_server with --tls_cert/--tls_key, by a client on
// OpenSSL directly (integration/tls_echo_client.h), not on ioloop:
//   - every byte echoed in order (64 MiB compared byte for byte against the pattern);
//   - half-close: after the client's close_notify the server still echoes everything, then
//     sends its own close_notify and closes the TCP connection cleanly (EOF, not a reset);
//   - bounded memory while a client pushes 64 MiB without reading (VmRSS/VmHWM from /proc);
//   - 1,000 concurrent TLS clients, full handshakes (400 under the sanitizers; 10,000 in
//     echo_load.sh with TLS=1, see docs/benchmarks.md);
//   - --handshake_timeout closes a client that never starts its handshake; others go on;
//   - exit status 0 within 3 s of SIGTERM with TLS clients connected (idle, backed up, and
//     mid-handshake);
// and http_responder over TLS: many keep-alive requests on one connection (ALPN http/1.1),
// then exit 0 on SIGTERM with TLS clients connected; --handshake_timeout on both.
//
// Servers listen on 127.0.0.1 port 0 and are stopped by their PID; every wait is a poll()
// with a generous deadline that ends as soon as its condition holds.
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "integration/echo_load.h"
#include "integration/echo_test_support.h"
#include "integration/server_process.h"
#include "integration/tls_echo_client.h"
#include "integration/tls_echo_load.h"
#include "ioloop/net/socket.h"
#include "testing/tls_certs.h"

#if !defined(ECHO_SERVER_PATH) || !defined(HTTP_RESPONDER_PATH)
#error "ECHO_SERVER_PATH and HTTP_RESPONDER_PATH must name the programs (see CMakeLists.txt)"
#endif

namespace ioloop::testing {
namespace {

using net::Socket;

class TLSAcceptanceTest : public ::testing::Test {
 protected:
  TLSAcceptanceTest() : pki_(write_test_pki(dir_)) {
    absl::StatusOr<TLSClientContext> ctx = TLSClientContext::create(pki_.root_ca);
    EXPECT_TRUE(ctx.ok()) << ctx.status();
    if (ctx.ok()) ctx_ = *std::move(ctx);
  }

  // `path` serving TLS with the ECDSA leaf on 127.0.0.1:0.
  void start(const char* path, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--port=0", "--address=127.0.0.1", "--log_level=warn",
                                     "--tls_cert=" + pki_.ecdsa_chain,
                                     "--tls_key=" + pki_.ecdsa_key};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<std::unique_ptr<ServerProcess>> s = ServerProcess::start(path, args);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }

  // A TLS connection to the server with its handshake done.
  std::unique_ptr<TLSConnection> connect() {
    auto c = std::make_unique<TLSConnection>();
    absl::Status s = c->start(ctx_, server_->address());
    if (s.ok()) s = c->pump_until([&] { return c->handshake_done(); });
    EXPECT_TRUE(s.ok()) << s;
    return c;
  }

  // Sends `m` on `c` and expects exactly `m` back.
  void echo(TLSConnection& c, const std::string& m) {
    c.received().clear();
    c.send(m);
    absl::Status s = c.pump_until([&] { return c.received().size() >= m.size(); });
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(c.received(), m);
  }

  // One GET of `path` on keep-alive connection `c`: exactly one 200 response with the body
  // "Hello, world!" and no byte more.
  void get_hello(TLSConnection& c, const std::string& path) {
    c.received().clear();
    c.send(absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    std::string& got = c.received();
    size_t head_end = std::string::npos;
    size_t length = 0;
    absl::Status s = c.pump_until([&] {
      if (head_end == std::string::npos) {
        head_end = got.find("\r\n\r\n");
        if (head_end == std::string::npos) return false;
        const size_t at = got.find("\r\nContent-Length: ");
        const size_t eol = at == std::string::npos ? at : got.find("\r\n", at + 2);
        if (eol == std::string::npos || eol > head_end ||
            !absl::SimpleAtoi(got.substr(at + 18, eol - at - 18), &length)) {
          length = 0;
        }
      }
      return got.size() >= head_end + 4 + length;
    });
    ASSERT_TRUE(s.ok()) << s << "\n" << got;
    ASSERT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
    ASSERT_EQ(got.size(), head_end + 4 + length) << "bytes beyond one response: " << got;
    EXPECT_EQ(got.substr(head_end + 4), "Hello, world!");
  }

  // A plain TCP client that never sends a byte waits up to 5 s for the server to close it:
  // ten times the tests' --handshake_timeout of 500 ms (not shorter, so that their own TLS
  // client's handshake is not cut off on a loaded machine) and half the 10 s default, so a
  // server that ignored the flag fails here. Expects the close with no byte received.
  void expect_silent_client_closed(const Socket& silent) {
    timeval tv = {5, 0};
    ::setsockopt(silent.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    bool clean_eof = false;
    EXPECT_EQ(read_to_eof(silent.fd(), &clean_eof), "") << "no byte for a client that sent none";
    EXPECT_TRUE(clean_eof || errno == ECONNRESET) << std::strerror(errno);
  }

  int64_t server_kib(const std::string& field) {
    absl::StatusOr<int64_t> kib = proc_status_kib(server_->pid(), field);
    EXPECT_TRUE(kib.ok()) << kib.status();
    return kib.value_or(0);
  }

  // SIGTERM by PID: exit status 0 within `limit`.
  void expect_sigterm_exits_zero(absl::Duration limit) {
    absl::StatusOr<int> status = server_->signal_and_wait(SIGTERM, limit);
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status)) << "wait status " << *status;
    EXPECT_EQ(WEXITSTATUS(*status), 0);
  }

  TempDir dir_;
  TestPkiFiles pki_;
  TLSClientContext ctx_;
  std::unique_ptr<ServerProcess> server_;
};

// Writes on `c` (reading off) until the connection has taken no byte for `quiet`: the server
// has stopped reading from it. Returns how much of what was queued has gone out.
absl::StatusOr<size_t> push_until_stalled(TLSConnection& c, size_t queued, absl::Duration quiet) {
  while (true) {
    absl::StatusOr<short> want = c.pump(POLLOUT);
    if (!want.ok()) return want.status();
    if (c.unsent() == 0) return queued;  // all accepted: the server never pushed back
    pollfd p = {c.fd(), *want, 0};
    // A slow server can only make this return early (a smaller stall), never fail a test.
    if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(quiet))) == 0) {
      return queued - c.unsent();
    }
  }
}

// Backpressure over TLS: a client pushes 64 MiB and reads nothing. The server must stop
// reading from it (its unsent echo reached --max_pending) instead of buffering, so its RSS
// grows by well under 48 MiB (the plain test's bound: three quarters of the payload); then
// the client reads, half-closes with close_notify, and gets every byte in order, the
// server's close_notify and a clean EOF.
TEST_F(TLSAcceptanceTest, ClientPushing64MiBWithoutReadingKeepsMemoryBounded) {
  // 32 MiB under ASan and TSan, where the instrumented echo makes 64 MiB take 10 to 30 s on
  // the shared machine: still three times what the client gets out before it stalls (10 MiB
  // there too, nearly all of it in the kernel's socket buffers), so the push-back check
  // keeps its meaning.
  const size_t total = IOLOOP_SANITIZED ? size_t{32} << 20 : size_t{64} << 20;
  static const std::string payload = pattern(total);
  start(ECHO_SERVER_PATH);
  std::unique_ptr<TLSConnection> c = connect();
  echo(*c, "warm-up");
  const int64_t rss_start = server_kib("VmRSS");

  c->set_reading(false);
  c->send(payload);
  absl::StatusOr<size_t> sent = push_until_stalled(*c, total, absl::Milliseconds(500));
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_LT(*sent, total) << "the server never stopped reading";
  const int64_t rss_stalled = server_kib("VmRSS");
  std::cout << "echo_server TLS: stalled after " << *sent << " bytes; server VmRSS " << rss_start
            << " KiB at start, " << rss_stalled << " KiB while stalled (peak "
            << server_kib("VmHWM") << " KiB)\n";

  // Now read, comparing as the bytes arrive, while the rest goes out; then close_notify.
  c->set_reading(true);
  c->received().clear();
  c->shutdown_after_sending();
  size_t received = 0;
  bool intact = true;
  absl::Status s = c->pump_until(
      [&] {
        std::string& got = c->received();
        if (received + got.size() > total ||
            std::memcmp(got.data(), payload.data() + received, got.size()) != 0) {
          intact = false;
          return true;
        }
        received += got.size();
        got.clear();
        return c->close_notify_received();
      },
      absl::Seconds(60));
  ASSERT_TRUE(s.ok()) << s << " after " << received << " bytes";
  EXPECT_TRUE(intact) << "echo differs from the payload at or after byte " << received;
  EXPECT_EQ(received, total);
  EXPECT_TRUE(c->close_notify_sent());
  EXPECT_TRUE(wait_for_tcp_eof(c->fd()).ok());
  // VmHWM is sampled lazily by the kernel and may read below an RSS seen earlier.
  const int64_t peak = std::max(server_kib("VmHWM"), rss_stalled);
  std::cout << "echo_server TLS: server peak VmRSS over the whole transfer " << peak
            << " KiB (growth " << (peak - rss_start) / 1024 << " MiB)\n";
  if (!IOLOOP_UNDER_ASAN) {  // ASan's quarantine keeps freed buffers resident
    const auto bound_kib = static_cast<int64_t>(total / 1024 * 3 / 4);
    EXPECT_LT(rss_stalled - rss_start, bound_kib);
    EXPECT_LT(peak - rss_start, bound_kib) << "peak RSS growth over the whole payload";
  }
}

// Half-close while the server throttles the client (--max_pending=64 KiB): the client writes
// 4 MiB, then close_notify, reading all along; it gets the whole echo, then the server's
// close_notify, then EOF. The client's own data after its close_notify is none, so the
// server's close must be a FIN, not a reset.
TEST_F(TLSAcceptanceTest, HalfCloseWhileThrottledGetsEverythingThenCloseNotifyThenEof) {
  start(ECHO_SERVER_PATH, {"--max_pending=65536"});
  const std::string data = pattern(4 << 20, 7);
  std::unique_ptr<TLSConnection> c = connect();
  c->send(data);
  c->shutdown_after_sending();
  absl::Status s = c->pump_until([&] { return c->close_notify_received(); });
  ASSERT_TRUE(s.ok()) << s << " after " << c->received().size() << " bytes";
  EXPECT_TRUE(c->close_notify_sent());
  EXPECT_EQ(c->received().size(), data.size());
  EXPECT_TRUE(c->received() == data) << "echo differs";
  absl::Status eof = wait_for_tcp_eof(c->fd());
  EXPECT_TRUE(eof.ok()) << eof;
  // The server goes on.
  std::unique_ptr<TLSConnection> next = connect();
  echo(*next, "after the half-close");
}

// Half-close the other way: the server ends first (SIGTERM stops it). Every connected TLS
// client gets the server's close_notify, not a bare FIN that would read as truncation.
TEST_F(TLSAcceptanceTest, ServerCloseSendsCloseNotifyToEveryClient) {
  start(ECHO_SERVER_PATH);
  std::vector<std::unique_ptr<TLSConnection>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(connect());
    echo(*clients.back(), absl::StrCat("client ", i));
  }
  expect_sigterm_exits_zero(absl::Seconds(20));
  for (size_t i = 0; i < clients.size(); ++i) {
    TLSConnection& c = *clients[i];
    absl::Status s = c.pump_until([&] { return c.close_notify_received(); });
    EXPECT_TRUE(s.ok()) << "client " << i << ": " << s;
    EXPECT_TRUE(wait_for_tcp_eof(c.fd()).ok()) << "client " << i;
  }
}

// 1,000 TLS clients open at once, each with a full handshake and echoed twice (see
// tls_echo_load.h); 10,000 run outside make test in echo_load.sh. Under ASan and TSan 400:
// the handshakes of the instrumented server and client cost about 10 ms each there, and
// make test runs this suite in both on a 2-core machine.
TEST_F(TLSAcceptanceTest, OneThousandConcurrentTlsClients) {
  constexpr int kClients = IOLOOP_SANITIZED ? 400 : 1000;
  if (raise_own_fd_limit() < kClients + 100) {
    GTEST_SKIP() << "the hard open-file limit is below " << kClients + 100;
  }
  start(ECHO_SERVER_PATH);
  EchoLoadOptions options;
  options.clients = kClients;
  options.window = 64;
  int64_t rss_all_open = 0;
  options.on_all_open = [&] { rss_all_open = server_kib("VmRSS"); };
  absl::StatusOr<EchoLoadResult> result = run_tls_echo_load(server_->address(), ctx_, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->clients, kClients);
  std::cout << "echo_server TLS: " << kClients << " clients: connect + handshake + echo "
            << absl::FormatDuration(result->connect_round) << ", echo on all open "
            << absl::FormatDuration(result->echo_round) << ", server VmRSS with all open "
            << rss_all_open << " KiB\n";
}

// --handshake_timeout, on each example: a client that connects and never sends its
// ClientHello is closed (EOF, no byte) once the timeout passes, while a TLS client is served
// before and after (an echo, or a GET).
TEST_F(TLSAcceptanceTest, HandshakeTimeoutClosesASilentClientOnly) {
  for (const char* path : {ECHO_SERVER_PATH, HTTP_RESPONDER_PATH}) {
    SCOPED_TRACE(path);
    const bool http = std::string(path) == HTTP_RESPONDER_PATH;
    auto serve = [&](TLSConnection& c, const std::string& what) {
      if (http) {
        get_hello(c, "/" + what);
      } else {
        echo(c, what);
      }
    };
    start(path, {"--handshake_timeout=500ms"});
    Socket silent = connect_blocking(server_->address());
    ASSERT_TRUE(silent.valid()) << std::strerror(errno);
    std::unique_ptr<TLSConnection> c = connect();
    serve(*c, "before");
    expect_silent_client_closed(silent);
    serve(*c, "after");
    expect_sigterm_exits_zero(absl::Seconds(20));
  }
}

// SIGTERM with TLS clients connected: 50 idle after an echo, one whose echo is backed up in
// the server (it pushes without reading), one connected but mid-handshake (never sent its
// ClientHello): exit status 0 within 3 s (the plain test's bound; the server needs ms).
TEST_F(TLSAcceptanceTest, SigtermWithTlsClientsConnectedExitsZeroWithin3s) {
  start(ECHO_SERVER_PATH, {"--max_pending=65536"});
  std::vector<std::unique_ptr<TLSConnection>> clients;
  for (int i = 0; i < 50; ++i) {
    clients.push_back(connect());
    echo(*clients.back(), "hello");
  }
  std::unique_ptr<TLSConnection> stuck = connect();
  stuck->set_reading(false);
  const size_t flood = size_t{8} << 20;
  stuck->send(pattern(flood, 11));
  absl::StatusOr<size_t> sent = push_until_stalled(*stuck, flood, absl::Milliseconds(300));
  ASSERT_TRUE(sent.ok()) << sent.status();
  Socket mid_handshake = connect_blocking(server_->address());
  ASSERT_TRUE(mid_handshake.valid());
  expect_sigterm_exits_zero(absl::Seconds(3));
}

// http_responder over TLS: ALPN http/1.1 is selected, 100 requests on one keep-alive TLS
// connection each get exactly the 200 "Hello, world!" response, and SIGTERM with TLS clients
// connected (this one idle between requests, one mid-handshake) exits 0.
TEST_F(TLSAcceptanceTest, HttpResponderKeepAliveOverTlsThenSigtermExitsZero) {
  absl::StatusOr<TLSClientContext> h1 = TLSClientContext::create(pki_.root_ca, "http/1.1");
  ASSERT_TRUE(h1.ok()) << h1.status();
  start(HTTP_RESPONDER_PATH);
  auto c = std::make_unique<TLSConnection>();
  ASSERT_TRUE(c->start(*h1, server_->address()).ok());
  ASSERT_TRUE(c->pump_until([&] { return c->handshake_done(); }).ok());
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(c->ssl(), &alpn, &alpn_len);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(alpn), alpn_len), "http/1.1");
  EXPECT_EQ(std::string(SSL_get_version(c->ssl())), "TLSv1.3");
  for (int i = 0; i < 100; ++i) {
    SCOPED_TRACE(absl::StrCat("request ", i));
    get_hello(*c, absl::StrCat("/r", i));
    EXPECT_FALSE(c->close_notify_received());
  }
  Socket mid_handshake = connect_blocking(server_->address());
  ASSERT_TRUE(mid_handshake.valid());
  expect_sigterm_exits_zero(absl::Seconds(3));
}

}  // namespace
}  // namespace ioloop::testing
