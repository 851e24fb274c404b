// HTTPClient over https against the project's HTTPServer serving TLS (TCPServerOptions::tls),
// both with contexts from the test PKI (testing/tls_certs.h), on one loop with the manual clock
// of http_client_testing.h: fetches, keep-alive reuse over TLS, the pool's limit, verification
// failures (unknown CA, wrong host) with their reasons and without a retry, https without
// HTTPClientOptions::tls, redirects between http and https, and the server's side: a plaintext
// client on the TLS port, and per-request timeouts that start only once the handshake is done.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http_client_testing.h"
#include "ioloop/net/http/http_client.h"
#include "ioloop/net/http/http_server.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/tcp_server.h"
#include "ioloop/net/tls/tls_context.h"
#include "testing/tls_certs.h"
#include "testing/tls_fixture.h"

namespace ioloop::net {
namespace {

using ::ioloop::testing::client_context;
using ::ioloop::testing::CountingFactory;
using ::ioloop::testing::server_context;
using ::ioloop::testing::test_pki;
using ::ioloop::testing::TestCert;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class HTTPClientTLSTest : public HTTPClientTest {
 protected:
  // An HTTPS server presenting `cert` (ALPN http/1.1), answering "<scheme> <target>|<Host>".
  void start_tls_server(const TestCert& cert, HTTPServerOptions options = {}) {
    if (options.tcp_options.tls == nullptr) {
      options.tcp_options.tls = server_context(cert, {"http/1.1"});
    }
    start_server(
        [](const HTTPRequest& r, HTTPResponseWriter& w) {
          auto host = r.headers().get("Host");
          w.set_body(absl::StrCat("https ", r.target(), "|", host ? *host : ""));
        },
        std::move(options));
  }
  std::string https_url(absl::string_view path = "/") const {
    return absl::StrCat("https://127.0.0.1:", server_->port(), path);
  }
  // A client trusting the test root only, offering ALPN http/1.1.
  static HTTPClientOptions tls_options() {
    HTTPClientOptions options;
    options.tls = client_context({.alpn_protocols = {"http/1.1"}});
    return options;
  }
  // A TCP socket connected (blocking, on loopback: the kernel completes it before the server
  // accepts) to the server, then made non-blocking.
  Socket connect_raw() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(server_->port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    return Socket(fd);
  }
  // Writes `request` on `stream` and reads until the server closes; the bytes, or the error.
  absl::StatusOr<std::string> exchange(const std::shared_ptr<IOStream>& stream,
                                       std::string request) {
    std::optional<absl::StatusOr<std::string>> result;
    if (!request.empty()) stream->write(std::move(request));
    stream->read_until_close([&](absl::StatusOr<std::string> r) {
      result = std::move(r);
      check();
    });
    if (!wait_for([&] { return result.has_value(); })) return absl::InternalError("no answer");
    return *std::move(result);
  }
};

TEST_F(HTTPClientTLSTest, FetchesOverHttps) {
  start_tls_server(test_pki().ecdsa_leaf);
  HTTPClient client(loop(), tls_options());
  absl::StatusOr<HTTPClientResponse> r = get(client, https_url("/hello?x=1"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  // The Host field is the URL's authority, exactly as over http.
  EXPECT_EQ(r->body, absl::StrCat("https /hello?x=1|127.0.0.1:", server_->port()));
  EXPECT_EQ(r->effective_url, https_url("/hello?x=1"));
  EXPECT_EQ(client.stats().connections_opened, 1u);
  EXPECT_EQ(server_->stats().connections, 1u);
}

TEST_F(HTTPClientTLSTest, RsaCertificateAndPostBody) {
  start_server([](const HTTPRequest& r,
                  HTTPResponseWriter& w) { w.set_body(absl::StrCat(r.method(), "|", r.body())); },
               [] {
                 HTTPServerOptions o;
                 o.tcp_options.tls = server_context(test_pki().rsa_leaf());
                 return o;
               }());
  HTTPClient client(loop(), tls_options());
  HTTPClientRequest request;
  request.method = "POST";
  request.url = https_url("/p");
  request.body = std::string(200 * 1024, 'b');  // many TLS records
  absl::StatusOr<HTTPClientResponse> r = fetch(client, std::move(request));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, absl::StrCat("POST|", std::string(200 * 1024, 'b')));
}

TEST_F(HTTPClientTLSTest, KeepAliveReusesOneTlsConnection) {
  start_tls_server(test_pki().ecdsa_leaf);
  HTTPClient client(loop(), tls_options());
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<HTTPClientResponse> r = get(client, https_url(absl::StrCat("/", i)));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->reused_connection, i > 0);
  }
  EXPECT_EQ(server_->stats().connections, 1u);
  EXPECT_EQ(server_->stats().requests, 10u);
  EXPECT_EQ(client.stats().connections_opened, 1u);
  EXPECT_EQ(client.stats().connections_reused, 9u);
}

TEST_F(HTTPClientTLSTest, ConcurrentFetchesShareThePoolLimit) {
  start_tls_server(test_pki().ecdsa_leaf);
  HTTPClientOptions options = tls_options();
  options.max_connections_per_host = 3;
  HTTPClient client(loop(), options);
  std::vector<std::optional<absl::StatusOr<HTTPClientResponse>>> results(12);
  for (size_t i = 0; i < results.size(); ++i) {
    HTTPClientRequest request;
    request.url = https_url(absl::StrCat("/", i));
    start(client, std::move(request), &results[i]);
  }
  ASSERT_TRUE(wait_for([&] {
    for (const auto& r : results) {
      if (!r.has_value()) return false;
    }
    return true;
  }));
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i]->ok()) << results[i]->status();
    EXPECT_THAT((*results[i])->body, StartsWith(absl::StrCat("https /", i, "|")));
  }
  EXPECT_EQ(server_->stats().connections, 3u);
  EXPECT_EQ(client.stats().connections_opened, 3u);
}

TEST_F(HTTPClientTLSTest, HttpsWithoutTlsOptionIsFailedPrecondition) {
  start_tls_server(test_pki().ecdsa_leaf);
  HTTPClient client(loop());
  absl::StatusOr<HTTPClientResponse> r = get(client, https_url());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_EQ(r.status().message(),
            absl::StrCat(https_url(),
                         " needs HTTPClientOptions.tls (a client TransportFactory, "
                         "e.g. TLSContext::client)"));
  EXPECT_EQ(client.stats().connections_opened, 0u);
  EXPECT_EQ(server_->stats().connections, 0u);
}

TEST_F(HTTPClientTLSTest, UnknownCaFailsWithTheVerifyReasonAndIsNotRetried) {
  start_tls_server(test_pki().other_leaf);  // issued by a CA the client does not trust
  HTTPClientOptions options = tls_options();
  options.max_connections_per_host = 1;  // a slot leaked by the failure would hang the second
  HTTPClient client(loop(), options);
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<HTTPClientResponse> r = get(client, https_url());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << r.status();
    EXPECT_EQ(r.status().message(),
              absl::StrCat("connect to 127.0.0.1:", server_->port(),
                           ": TLS handshake failed: certificate verify failed: unable to get "
                           "local issuer certificate (GET ",
                           https_url(), ", connecting)"));
  }
  EXPECT_EQ(client.stats().retries, 0u);
  EXPECT_EQ(client.stats().connections_opened, 0u);
  EXPECT_EQ(client.stats().open_connections, 0u);
  EXPECT_EQ(server_->stats().connections, 0u);  // the handler never saw one
  // The client's alert ("unknown ca") fails the server's side of each handshake too.
  EXPECT_TRUE(wait_for([&] { return server_->stats().handshake_failures == 2; }));
}

TEST_F(HTTPClientTLSTest, WrongHostFailsWithTheVerifyReason) {
  start_tls_server(test_pki().wrong_host);  // example.com only
  HTTPClient client(loop(), tls_options());
  // The name verified is the URL's host, not a Host field naming what the certificate says.
  HTTPClientRequest request;
  request.url = https_url();
  request.headers.add("Host", "example.com");
  absl::StatusOr<HTTPClientResponse> r = fetch(client, std::move(request));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << r.status();
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("TLS handshake failed: certificate verify failed: IP address mismatch"));
  EXPECT_EQ(client.stats().retries, 0u);
}

TEST_F(HTTPClientTLSTest, HostFieldDoesNotChangeTheVerifiedName) {
  start_tls_server(test_pki().ecdsa_leaf);  // localhost, 127.0.0.1, ::1
  HTTPClient client(loop(), tls_options());
  HTTPClientRequest request;
  request.url = https_url("/h");
  request.headers.add("Host", "example.com");
  absl::StatusOr<HTTPClientResponse> r = fetch(client, std::move(request));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "https /h|example.com");
}

TEST_F(HTTPClientTLSTest, PlainHttpToTheTlsPortFailsAndTheServerGoesOn) {
  start_tls_server(test_pki().ecdsa_leaf);
  HTTPClient client(loop(), tls_options());
  absl::StatusOr<HTTPClientResponse> plain = get(client, url("/"));  // http:// to the TLS port
  EXPECT_FALSE(plain.ok());
  EXPECT_EQ(plain.status().code(), absl::StatusCode::kUnavailable) << plain.status();
  EXPECT_TRUE(wait_for([&] { return server_->stats().handshake_failures == 1; }));
  absl::StatusOr<HTTPClientResponse> r = get(client, https_url("/after"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->body, StartsWith("https /after|"));
}

TEST_F(HTTPClientTLSTest, PlaintextRequestGetsNoHttpResponse) {
  start_tls_server(test_pki().ecdsa_leaf);
  std::shared_ptr<IOStream> raw = IOStream::create(loop(), connect_raw());
  absl::StatusOr<std::string> got =
      exchange(raw, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  // Nothing in clear comes back: at most a TLS alert record, or just the close.
  if (got.ok()) {
    EXPECT_THAT(*got, ::testing::Not(HasSubstr("HTTP/1.1")));
  }
  EXPECT_TRUE(wait_for([&] { return server_->stats().handshake_failures == 1; }));
  EXPECT_EQ(server_->stats().connections, 0u);
  EXPECT_EQ(server_->stats().responses, 0u);
  HTTPClient client(loop(), tls_options());
  absl::StatusOr<HTTPClientResponse> r = get(client, https_url("/next"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(server_->stats().connections, 1u);
}

TEST_F(HTTPClientTLSTest, RedirectsBetweenHttpAndHttps) {
  start_tls_server(test_pki().ecdsa_leaf);
  const std::string secure = https_url("/landed");
  // A plain server on the same loop redirecting to the TLS one, and back.
  HTTPServer plain(loop(), [&](const HTTPRequest& r, HTTPResponseWriter& w) {
    if (r.path() == "/to-https") {
      w.set_status(302);
      w.set_header("Location", secure);
      return;
    }
    w.set_body(absl::StrCat("http ", r.target()));
  });
  ASSERT_TRUE(plain.listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(plain.start().ok());
  const std::string plain_base = absl::StrCat("http://127.0.0.1:", plain.port());

  HTTPClient client(loop(), tls_options());
  absl::StatusOr<HTTPClientResponse> up = get(client, plain_base + "/to-https");
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->status, 200);
  EXPECT_EQ(up->redirects, 1);
  EXPECT_EQ(up->effective_url, secure);
  EXPECT_THAT(up->body, StartsWith("https /landed|"));

  // https -> http: the TLS server's handler cannot redirect, so use a second TLS server.
  HTTPServerOptions o;
  o.tcp_options.tls = server_context(test_pki().ecdsa_leaf);
  HTTPServer back(
      loop(),
      [&](const HTTPRequest&, HTTPResponseWriter& w) {
        w.set_status(301);
        w.set_header("Location", plain_base + "/plain");
      },
      o);
  ASSERT_TRUE(back.listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(back.start().ok());
  absl::StatusOr<HTTPClientResponse> down =
      get(client, absl::StrCat("https://127.0.0.1:", back.port(), "/x"));
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_EQ(down->body, "http /plain");
  EXPECT_EQ(down->effective_url, plain_base + "/plain");

  // Without TLS options the redirect to https is refused, naming the option.
  HTTPClient plain_client(loop());
  absl::StatusOr<HTTPClientResponse> refused = get(plain_client, plain_base + "/to-https");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()),
              StartsWith(absl::StrCat("redirect from ", plain_base, "/to-https: ", secure,
                                      " needs HTTPClientOptions.tls")));
}

// A TLS server answering each request with a close-delimited response, then ending its side
// either with close_notify (a clean end: the body is complete) or with a bare FIN (truncation).
class CloseDelimitedTLSServer {
 public:
  CloseDelimitedTLSServer(IOLoop& loop, bool clean, std::function<void()> on_any)
      : server_(
            loop,
            [this, clean](std::shared_ptr<IOStream> s, const SocketAddress&) {
              streams_.push_back(s);
              s->read_until("\r\n\r\n", [s, clean, this](absl::StatusOr<std::string>) {
                s->write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart of a body",
                         [s, clean, this](absl::Status) {
                           if (clean) {
                             s->shutdown_write();  // close_notify
                           } else {
                             ::shutdown(s->fd(), SHUT_WR);  // FIN, no close_notify
                           }
                           on_any_();
                         });
              });
            },
            [] {
              TCPServerOptions o;
              o.tls = server_context(test_pki().ecdsa_leaf);
              return o;
            }()),
        on_any_(std::move(on_any)) {
    EXPECT_TRUE(server_.listen(0, "127.0.0.1").ok());
    EXPECT_TRUE(server_.start().ok());
  }
  std::string url() const { return absl::StrCat("https://127.0.0.1:", server_.port(), "/"); }

 private:
  TCPServer server_;
  std::function<void()> on_any_;
  std::vector<std::shared_ptr<IOStream>> streams_;
};

TEST_F(HTTPClientTLSTest, CloseDelimitedBodyEndsWithCloseNotify) {
  CloseDelimitedTLSServer server(loop(), /*clean=*/true, [this] { check(); });
  HTTPClient client(loop(), tls_options());
  absl::StatusOr<HTTPClientResponse> r = get(client, server.url());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "part of a body");
}

TEST_F(HTTPClientTLSTest, CloseDelimitedBodyCutByBareFinIsTruncation) {
  CloseDelimitedTLSServer server(loop(), /*clean=*/false, [this] { check(); });
  HTTPClient client(loop(), tls_options());
  absl::StatusOr<HTTPClientResponse> r = get(client, server.url());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("truncation"));
}

TEST_F(HTTPClientTLSTest, ServerTimeoutsStartAfterTheHandshake) {
  // A client that connects and then takes far longer than idle_timeout and header_timeout
  // before its handshake: only handshake_timeout applies until the handshake is done, so its
  // request is still answered. (The manual clock jumps; nothing waits on the wall clock.)
  auto factory = std::make_shared<CountingFactory>(server_context(test_pki().ecdsa_leaf));
  HTTPServerOptions options;
  options.idle_timeout = absl::Seconds(1);
  options.header_timeout = absl::Seconds(1);
  options.tcp_options.tls = factory;
  options.tcp_options.handshake_timeout = absl::Hours(1);
  start_tls_server(test_pki().ecdsa_leaf, options);
  Socket socket = connect_raw();
  ASSERT_TRUE(wait_for([&] { return factory->accepted.load() == 1; }));
  bool waited = false;
  loop().call_later(absl::Seconds(30), [&] {
    waited = true;
    check();
  });
  ASSERT_TRUE(wait_for([&] { return waited; }));

  absl::StatusOr<std::unique_ptr<Transport>> transport =
      client_context()->client_transport(socket.fd(), "127.0.0.1", server_->port());
  ASSERT_TRUE(transport.ok()) << transport.status();
  std::shared_ptr<IOStream> stream =
      IOStream::create(loop(), std::move(socket), {}, *std::move(transport));
  absl::StatusOr<std::string> got =
      exchange(stream, "GET /late HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(*got, HasSubstr("https /late|h"));
  EXPECT_EQ(server_->stats().idle_timeouts, 0u);
  EXPECT_EQ(server_->stats().header_timeouts, 0u);
}

TEST_F(HTTPClientTLSTest, IdleTimeoutStillAppliesAfterTheHandshake) {
  // The counterpart: once the handshake is done, a connection that sends nothing is closed
  // by idle_timeout, without a response.
  HTTPServerOptions options;
  options.idle_timeout = absl::Seconds(1);
  start_tls_server(test_pki().ecdsa_leaf, options);
  Socket socket = connect_raw();
  absl::StatusOr<std::unique_ptr<Transport>> transport =
      client_context()->client_transport(socket.fd(), "127.0.0.1", server_->port());
  ASSERT_TRUE(transport.ok()) << transport.status();
  std::shared_ptr<IOStream> stream =
      IOStream::create(loop(), std::move(socket), {}, *std::move(transport));
  absl::StatusOr<std::string> got = exchange(stream, "");
  ASSERT_TRUE(got.ok()) << got.status();  // a clean TLS close (close_notify)
  EXPECT_EQ(*got, "");
  EXPECT_EQ(server_->stats().idle_timeouts, 1u);
  EXPECT_EQ(server_->stats().connections, 1u);
}

}  // namespace
}  // namespace ioloop::net
