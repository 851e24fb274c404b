// File: tests/net/io_stream_tls_abort_test.cc
// IOStream over TLS when the peer aborts the handshake with a reset: the error the stream
// reports is the one that says why (the peer's alert, if it sent one before the reset), never
// one of the stream's own making (its flight failing to go out to a peer already gone).
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/tls/tls_context.h"
#include "net/io_stream_testing.h"

namespace ioloop::net::stream_testing {
namespace {

class IOStreamTLSAbortTest : public IOStreamTest {
 protected:
  // Makes stream_ on `socket` with `transport` and starts its handshake; its outcome goes to
  // handshake_, and ends wait().
  void start_handshake(Socket socket, std::unique_ptr<Transport> transport) {
    stream_ = IOStream::create(loop(), std::move(socket), {}, std::move(transport));
    stream_->wait_for_handshake([this](absl::Status s) {
      handshake_ = std::move(s);
      done();
    });
  }

  absl::Status handshake_ = absl::UnknownError("not called");
};

INSTANTIATE_TEST_SUITE_P(Streams, IOStreamTLSAbortTest,
                         ::testing::Values(StreamCase{PollerKind::kEpoll, Wire::kTls}), CaseName);

// Found by a black-box probe: a server that refuses the handshake with an alert and then resets
// the connection (it closed with the ClientHello unread) left only "Connection reset by peer"
// in the client's error, though the alert, which says why, was waiting in the socket. The
// stream now lets the handshake read what is there before it reports the reset.
TEST_P(IOStreamTLSAbortTest, AnAlertThatCameWithAResetIsTheHandshakeError) {
  auto pair = Socket::pair();
  ASSERT_TRUE(pair.ok());
  auto client = testing::client_context()->new_client_transport(pair->first.fd(), "localhost", 443);
  ASSERT_TRUE(client.ok());
  Socket peer = std::move(pair->second);
  start_handshake(std::move(pair->first), *std::move(client));
  pollfd hello{peer.fd(), POLLIN, 0};
  while (::poll(&hello, 1, 0) == 0) spin(1);  // the ClientHello is out, unread
  // A fatal handshake_failure alert record (TLS 1.2 framing, as servers send it), then a close
  // with the ClientHello unread: the stream sees the alert and the reset together.
  const char alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
  ASSERT_EQ(::send(peer.fd(), alert, sizeof alert, MSG_NOSIGNAL),
            static_cast<ssize_t>(sizeof alert));
  peer = Socket();
  ASSERT_TRUE(wait());
  EXPECT_EQ(handshake_.code(), absl::StatusCode::kUnavailable) << handshake_;
  EXPECT_NE(handshake_.message().find("alert handshake failure"), absl::string_view::npos)
      << handshake_;
}

// A client's first flight, as a scanner sends it: a client transport's output over a
// socketpair.
std::string client_hello() {
  auto pair = Socket::pair();
  EXPECT_TRUE(pair.ok());
  if (!pair.ok()) return "";
  auto client = testing::client_context()->new_client_transport(pair->first.fd(), "localhost", 443);
  EXPECT_TRUE(client.ok());
  if (!client.ok()) return "";
  EXPECT_EQ((*client)->handshake(pair->first.fd()).outcome, IOResult::kWantRead);
  char buf[4096];
  const ssize_t n = ::recv(pair->second.fd(), buf, sizeof buf, MSG_DONTWAIT);
  EXPECT_GT(n, 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// Found by a review of the fix above: a ClientHello followed by a reset (scanners do that) had
// the server run its handshake on the ClientHello, fail to send its flight to the peer that was
// gone, and report "TLS: send: Broken pipe". Only the peer's alert replaces the reset.
TEST_P(IOStreamTLSAbortTest, AClientHelloThenAResetIsTheReset) {
  auto [server_socket, peer] = tcp_pair();
  auto server = testing::server_context(testing::test_pki().ecdsa_leaf)
                    ->new_server_transport(server_socket.fd());
  ASSERT_TRUE(server.ok());
  start_handshake(std::move(server_socket), *std::move(server));
  spin(2);  // the server waits for the ClientHello
  const std::string hello = client_hello();
  ASSERT_FALSE(hello.empty());
  ASSERT_EQ(::send(peer.fd(), hello.data(), hello.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(hello.size()));
  const linger reset{1, 0};  // close() sends RST
  ASSERT_EQ(::setsockopt(peer.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
  peer = Socket();
  ASSERT_TRUE(wait());
  EXPECT_EQ(handshake_.code(), absl::StatusCode::kUnavailable) << handshake_;
  EXPECT_TRUE(absl::StrContains(handshake_.message(), "Connection reset by peer")) << handshake_;
}

// Found by a probe of the TLS layer: a server that shuts its side down, then closes with the
// ClientHello unread (a FIN, then a reset), before the client looked. Linux reports a reset in
// CLOSE_WAIT as EPIPE, which absl's errno mapping calls FailedPrecondition: the handshake
// failed "FailedPrecondition: Broken pipe", a code that blames the caller. A peer gone is
// Unavailable, whichever errno says so.
TEST_P(IOStreamTLSAbortTest, AFinThenAResetBeforeTheServersFlightIsUnavailable) {
  auto [mine, peer] = tcp_pair();  // `mine` is the non-blocking end: the TLS client here
  auto client = testing::client_context()->new_client_transport(mine.fd(), "localhost", 443);
  ASSERT_TRUE(client.ok());
  start_handshake(std::move(mine), *std::move(client));
  pollfd hello{peer.fd(), POLLIN, 0};
  while (::poll(&hello, 1, 0) == 0) spin(1);  // the ClientHello is out, unread
  ASSERT_EQ(::shutdown(peer.fd(), SHUT_WR), 0);
  peer = Socket();  // the ClientHello unread: a reset, in the client's CLOSE_WAIT
  ASSERT_TRUE(wait());
  EXPECT_EQ(handshake_.code(), absl::StatusCode::kUnavailable) << handshake_;
}

}  // namespace
}  // namespace ioloop::net::stream_testing
