// Regression test (found by the HTTPS work, issue 9): the TLS transport raised SIGPIPE.
//
// The plain transport sends with MSG_NOSIGNAL, so a write to a peer that has gone away is an
// EPIPE status and never a signal (IOStreamTest.WriteToClosedPeerNeverRaisesSigpipe). The TLS
// transport hands the fd to OpenSSL (SSL_set_fd), whose socket BIO writes with write(2): a
// handshake or record written after the peer closed raises SIGPIPE, whose default action kills
// the whole process. A program that uses HTTPClient over https, or a TLS TCPServer, without
// ignoring SIGPIPE itself can be killed by any peer that disconnects at the wrong moment
// (seen first as a test binary dying with status 141 when a server closed a connection whose
// client had not started its handshake yet).
//
// Fixed by tls_internal::new_socket_bio() (OpenSSL's socket BIO with send(MSG_NOSIGNAL)); it
// failed before with the child "Terminated by signal 13". It runs the scenario in a child
// process (a death test), so a regression fails cleanly instead of killing the test binary.
#include <signal.h>

#include <cstdlib>
#include <memory>
#include <utility>

#include "gtest/gtest.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/socket.h"
#include "ioloop/net/tls/tls_context.h"
#include "testing/tls_fixture.h"

namespace ioloop::net {
namespace {

using ::ioloop::testing::client_context;

// Exits 0 when the handshake failed with a status (what the plain transport's contract
// promises), 1 if it somehow succeeded; SIGPIPE kills it before either.
[[noreturn]] void handshake_with_a_closed_peer() {
  ::signal(SIGPIPE, SIG_DFL);  // as in a program that did not ignore it
  IOLoop loop;
  absl::StatusOr<std::pair<Socket, Socket>> sockets = Socket::pair();
  if (!sockets.ok()) std::exit(3);
  sockets->second.reset();  // the peer is gone before our ClientHello
  std::shared_ptr<const TLSContext> ctx = client_context();
  absl::StatusOr<std::unique_ptr<Transport>> transport =
      ctx->client_transport(sockets->first.fd(), "localhost", 443);
  if (!transport.ok()) std::exit(4);
  std::shared_ptr<IOStream> stream =
      IOStream::create(loop, std::move(sockets->first), {}, *std::move(transport));
  absl::Status result = absl::OkStatus();
  stream->wait_for_handshake([&](absl::Status s) {
    result = std::move(s);
    loop.stop();
  });
  loop.start();
  std::exit(result.ok() ? 1 : 0);
}

TEST(TLSTransportSigpipeTest, HandshakeToAClosedPeerIsAStatusNotSigpipe) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(handshake_with_a_closed_peer(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace ioloop::net
