// The socket calls a TLS 1.3 server connection makes (issue 9: server CPU per full handshake).
// This binary is linked with -Wl,--wrap=recv,--wrap=send,--wrap=sendmsg (tests/CMakeLists.txt),
// so every recv and send of the transports' socket BIO goes through the counters below, per
// fd. The pair is an AF_UNIX socketpair: a send is in the peer's queue when it returns, so
// what each recv finds does not depend on timing.
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <map>
#include <string>

#include "gtest/gtest.h"
#include "ioloop/net/tls/tls_transport.h"
#include "testing/tls_fixture.h"

namespace {

struct FdCalls {
  int recvs = 0;
  int empty_recvs = 0;  // recv that found nothing (EAGAIN)
  int sends = 0;        // send and sendmsg
  int last_send_flags = 0;
  int last_send_iovecs = 0;
};
std::map<int, FdCalls>* calls = new std::map<int, FdCalls>();  // the test's thread only

}  // namespace

extern "C" {
ssize_t __real_recv(int fd, void* buf, size_t n, int flags);
ssize_t __real_send(int fd, const void* buf, size_t n, int flags);
ssize_t __real_sendmsg(int fd, const struct msghdr* msg, int flags);

ssize_t __wrap_recv(int fd, void* buf, size_t n, int flags) {
  const ssize_t r = __real_recv(fd, buf, n, flags);
  const int saved = errno;
  FdCalls& c = (*calls)[fd];
  ++c.recvs;
  if (r < 0 && (saved == EAGAIN || saved == EWOULDBLOCK)) ++c.empty_recvs;
  errno = saved;
  return r;
}

ssize_t __wrap_send(int fd, const void* buf, size_t n, int flags) {
  const ssize_t r = __real_send(fd, buf, n, flags);
  const int saved = errno;
  FdCalls& c = (*calls)[fd];
  ++c.sends;
  c.last_send_flags = flags;
  c.last_send_iovecs = 1;
  errno = saved;
  return r;
}

ssize_t __wrap_sendmsg(int fd, const struct msghdr* msg, int flags) {
  const ssize_t r = __real_sendmsg(fd, msg, flags);
  const int saved = errno;
  FdCalls& c = (*calls)[fd];
  ++c.sends;
  c.last_send_flags = flags;
  c.last_send_iovecs = static_cast<int>(msg->msg_iovlen);
  errno = saved;
  return r;
}
}  // extern "C"

namespace ioloop::net {
namespace {

using ::ioloop::testing::client_context;
using ::ioloop::testing::kPollMs;
using ::ioloop::testing::read_to_end;
using ::ioloop::testing::server_context;
using ::ioloop::testing::test_pki;
using ::ioloop::testing::TLSPair;

void wait_readable(int fd) {
  pollfd p = {fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, kPollMs), 1);
}

int unread(int fd) {
  int n = -1;
  EXPECT_EQ(::ioctl(fd, FIONREAD, &n), 0);
  return n;
}

void send_all(TLSTransport& t, int fd, const std::string& data) {
  iovec iov = {const_cast<char*>(data.data()), data.size()};
  const IOResult r = t.write(fd, &iov, 1);
  ASSERT_EQ(r.outcome, IOResult::kDone) << r.status;
  ASSERT_EQ(r.bytes, data.size());
}

// One connection as http_responder serves `Connection: close` over TLS 1.3: the server makes
// two recvs, none of which finds nothing, and three sends: its flight; its session ticket
// with the response; close_notify with MSG_MORE, so the FIN of the close rides with it.
TEST(TLSTransportSyscallTest, FullHandshakeRequestAndCloseTakeTwoRecvsAndThreeSends) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context());
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

  ASSERT_EQ(p.client->handshake(p.cfd()).outcome, IOResult::kWantRead);  // ClientHello
  wait_readable(p.sfd());
  // ServerHello..Finished in one send; OpenSSL's attempt to read the client's answer finds
  // the socket already drained by this call, so it makes no recv.
  ASSERT_EQ(p.server->handshake(p.sfd()).outcome, IOResult::kWantRead);
  EXPECT_EQ((*calls)[p.sfd()].recvs, 1);
  EXPECT_EQ((*calls)[p.sfd()].sends, 1);
  EXPECT_FALSE(p.server->has_pending_output());
  wait_readable(p.cfd());
  ASSERT_EQ(p.client->handshake(p.cfd()).outcome, IOResult::kDone);  // Finished
  send_all(*p.client, p.cfd(), request);

  // The Finished and the request in one recv; the ticket waits for the response.
  ASSERT_EQ(p.server->handshake(p.sfd()).outcome, IOResult::kDone);
  EXPECT_TRUE(p.server->has_pending_output());
  EXPECT_EQ(unread(p.cfd()), 0) << "the session ticket left on its own";
  ASSERT_TRUE(p.server->has_buffered_input());
  Buffer in;
  const IOResult r = p.server->read(p.sfd(), in, 1 << 20);
  ASSERT_EQ(r.outcome, IOResult::kDone);
  EXPECT_EQ(in.view(), request);
  EXPECT_TRUE(r.drained);
  EXPECT_EQ((*calls)[p.sfd()].recvs, 2);
  EXPECT_EQ((*calls)[p.sfd()].sends, 1);

  send_all(*p.server, p.sfd(), response);
  EXPECT_FALSE(p.server->has_pending_output());
  EXPECT_EQ((*calls)[p.sfd()].sends, 2);
  EXPECT_EQ((*calls)[p.sfd()].last_send_iovecs, 2) << "ticket and response in one sendmsg";
  p.server->end_before_close(p.sfd());
  EXPECT_EQ((*calls)[p.sfd()].sends, 3);
  EXPECT_NE((*calls)[p.sfd()].last_send_flags & MSG_MORE, 0);
  EXPECT_EQ((*calls)[p.sfd()].empty_recvs, 0);
  ::shutdown(p.sfd(), SHUT_WR);

  // The client gets the response, a clean end and a session it can resume.
  std::string got;
  const IOResult end = read_to_end(*p.client, p.cfd(), &got);
  EXPECT_EQ(got, response);
  EXPECT_EQ(end.outcome, IOResult::kEof);
  EXPECT_TRUE(p.client->eof_status().ok()) << p.client->eof_status();
  EXPECT_EQ(SSL_SESSION_is_resumable(SSL_get0_session(p.client->native_handle())), 1);
}

// A server that writes nothing after the handshake sends the ticket with flush() (a stream
// does at the end of its dispatch), and close_notify goes behind a ticket still held.
TEST(TLSTransportSyscallTest, HeldTicketLeavesWithFlushOrAheadOfCloseNotify) {
  for (const bool flush_first : {true, false}) {
    SCOPED_TRACE(flush_first ? "flush" : "close");
    TLSPair p(server_context(test_pki().ecdsa_leaf), client_context());
    ASSERT_EQ(p.client->handshake(p.cfd()).outcome, IOResult::kWantRead);
    wait_readable(p.sfd());
    ASSERT_EQ(p.server->handshake(p.sfd()).outcome, IOResult::kWantRead);
    wait_readable(p.cfd());
    ASSERT_EQ(p.client->handshake(p.cfd()).outcome, IOResult::kDone);
    wait_readable(p.sfd());
    ASSERT_EQ(p.server->handshake(p.sfd()).outcome, IOResult::kDone);
    ASSERT_TRUE(p.server->has_pending_output());
    if (flush_first) {
      EXPECT_EQ(p.server->flush(p.sfd()).outcome, IOResult::kDone);
      EXPECT_FALSE(p.server->has_pending_output());
      EXPECT_GT(unread(p.cfd()), 0);
      Buffer in;
      EXPECT_EQ(p.client->read(p.cfd(), in, 4096).outcome, IOResult::kWantRead);
      EXPECT_EQ(SSL_SESSION_is_resumable(SSL_get0_session(p.client->native_handle())), 1);
    }
    p.server->end_before_close(p.sfd());
    EXPECT_FALSE(p.server->has_pending_output());
    ::shutdown(p.sfd(), SHUT_WR);
    std::string got;
    EXPECT_EQ(read_to_end(*p.client, p.cfd(), &got).outcome, IOResult::kEof);
    EXPECT_EQ(got, "");
    EXPECT_EQ(SSL_SESSION_is_resumable(SSL_get0_session(p.client->native_handle())), 1);
  }
}

}  // namespace
}  // namespace ioloop::net
