// TLSTransport after the handshake, driven by hand: exact bytes both ways (1 MiB through
// tiny socket buffers, forcing partial writes and WANT_*), read limits and buffered input,
// the three ways a stream ends (close_notify, FIN without it, reset), half-close, and
// session resumption.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ioloop/net/tls/tls_transport.h"
#include "testing/tls_fixture.h"

namespace ioloop::net {
namespace {

using ::ioloop::testing::client_context;
using ::ioloop::testing::PairKind;
using ::ioloop::testing::pump;
using ::ioloop::testing::PumpStats;
using ::ioloop::testing::random_bytes;
using ::ioloop::testing::read_to_end;
using ::ioloop::testing::relay;
using ::ioloop::testing::server_context;
using ::ioloop::testing::test_pki;
using ::ioloop::testing::TLSPair;
using ::testing::HasSubstr;

// Writes all of `data` (waiting for writability as a stream would).
void write_all(Transport& t, int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    iovec iov = {const_cast<char*>(data.data() + sent), data.size() - sent};
    IOResult r = t.write(fd, &iov, 1);
    if (r.outcome == IOResult::kDone) {
      sent += r.bytes;
      continue;
    }
    ASSERT_NE(r.outcome, IOResult::kError) << r.status;
    pollfd p = {fd, ioloop::testing::events_for(r), 0};
    ASSERT_GT(::poll(&p, 1, ioloop::testing::kPollMs), 0);
  }
}

void shutdown_all(Transport& t, int fd) {
  for (;;) {
    IOResult r = t.shutdown_write(fd);
    if (r.outcome == IOResult::kDone) return;
    ASSERT_NE(r.outcome, IOResult::kError) << r.status;
    pollfd p = {fd, ioloop::testing::events_for(r), 0};
    ASSERT_GT(::poll(&p, 1, ioloop::testing::kPollMs), 0);
  }
}

class TLSDataTest : public ::testing::TestWithParam<PairKind> {};

std::string PairName(const ::testing::TestParamInfo<PairKind>& param_info) {
  return param_info.param == PairKind::kUnix ? "Unix" : "Tcp";
}

TEST_P(TLSDataTest, SmallMessagesBothWays) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context(), "localhost", GetParam());
  p.connect();
  EXPECT_EQ(pump(*p.client, p.cfd(), *p.server, p.sfd(), "hello", 4096), "hello");
  EXPECT_EQ(pump(*p.server, p.sfd(), *p.client, p.cfd(), "world!", 4096), "world!");
}

// 1 MiB each way through 4 KiB socket buffers, read in odd-sized pieces: the writer sees
// partial writes and kWant*, retries with the same bytes cut differently, and every byte
// arrives in order.
TEST_P(TLSDataTest, OneMebibyteThroughTinySocketBuffers) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context(), "localhost", GetParam());
  p.sockets.shrink_buffers(4096);
  p.connect();
  const std::string up = random_bytes(1 << 20, 1);
  const std::string down = random_bytes(1 << 20, 2);
  PumpStats st_up, st_down;
  const std::string got_up = pump(*p.client, p.cfd(), *p.server, p.sfd(), up, 1000, &st_up);
  ASSERT_EQ(got_up.size(), up.size());
  EXPECT_TRUE(got_up == up) << "bytes differ";
  const std::string got_down = pump(*p.server, p.sfd(), *p.client, p.cfd(), down, 70000, &st_down);
  ASSERT_EQ(got_down.size(), down.size());
  EXPECT_TRUE(got_down == down) << "bytes differ";
  EXPECT_GT(st_up.partial_writes + st_up.write_wants, 0u);
  EXPECT_GT(st_up.write_wants, 0u);
  EXPECT_GT(st_down.write_wants, 0u);
  EXPECT_GT(st_up.read_wants, 0u);
}

INSTANTIATE_TEST_SUITE_P(Sockets, TLSDataTest, ::testing::Values(PairKind::kUnix, PairKind::kTcp),
                         PairName);

TEST(TLSTransportDataTest, SmallBuffersGatheredIntoOneWrite) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context());
  p.connect();
  std::string parts[64];
  iovec iov[64];
  std::string all;
  for (int i = 0; i < 64; ++i) {
    parts[i] = std::string(10, static_cast<char>('a' + i % 26));
    iov[i] = {parts[i].data(), parts[i].size()};
    all += parts[i];
  }
  IOResult r = p.client->write(p.cfd(), iov, 64);
  ASSERT_EQ(r.outcome, IOResult::kDone);
  EXPECT_EQ(r.bytes, 640u);
  // One record of 640 bytes: the server gets it all in one read call.
  Buffer in;
  pollfd pfd = {p.sfd(), POLLIN, 0};
  ASSERT_GT(::poll(&pfd, 1, ioloop::testing::kPollMs), 0);
  IOResult rd = p.server->read(p.sfd(), in, 1 << 20);
  ASSERT_EQ(rd.outcome, IOResult::kDone);
  EXPECT_EQ(in.view(), all);
  EXPECT_TRUE(rd.drained);
  EXPECT_FALSE(p.server->has_buffered_input());
  EXPECT_EQ(p.server->read(p.sfd(), in, 1 << 20).outcome, IOResult::kWantRead);
}

TEST(TLSTransportDataTest, ReadLimitLeavesBufferedInput) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context());
  p.connect();
  const std::string data = random_bytes(10000, 3);
  write_all(*p.client, p.cfd(), data);
  pollfd pfd = {p.sfd(), POLLIN, 0};
  ASSERT_GT(::poll(&pfd, 1, ioloop::testing::kPollMs), 0);
  Buffer in;
  IOResult r = p.server->read(p.sfd(), in, 100);
  ASSERT_EQ(r.outcome, IOResult::kDone);
  EXPECT_EQ(r.bytes, 100u);
  EXPECT_FALSE(r.drained);
  EXPECT_TRUE(p.server->has_buffered_input());
  // The rest comes without waiting for the fd.
  while (p.server->has_buffered_input()) {
    r = p.server->read(p.sfd(), in, 100);
    ASSERT_EQ(r.outcome, IOResult::kDone);
  }
  EXPECT_EQ(in.view(), data);
}

// The client's first bytes often travel with its Finished: after the server's handshake
// completes they are already inside OpenSSL, and has_buffered_input() says so.
TEST(TLSTransportDataTest, DataArrivingWithTheHandshakeIsBuffered) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context());
  ASSERT_EQ(p.client->handshake(p.cfd()).outcome, IOResult::kWantRead);  // ClientHello
  ASSERT_EQ(p.server->handshake(p.sfd()).outcome, IOResult::kWantRead);  // ServerHello..Fin
  ASSERT_EQ(p.client->handshake(p.cfd()).outcome, IOResult::kDone);      // Finished
  write_all(*p.client, p.cfd(), "early bytes");
  ASSERT_EQ(p.server->handshake(p.sfd()).outcome, IOResult::kDone);
  EXPECT_TRUE(p.server->has_buffered_input());
  Buffer in;
  IOResult r = p.server->read(p.sfd(), in, 4096);
  ASSERT_EQ(r.outcome, IOResult::kDone);
  EXPECT_EQ(in.view(), "early bytes");
  // A small message costs the buffer only its size, not a record's worth.
  EXPECT_LT(in.capacity(), 1024u);
}

TEST(TLSTransportDataTest, CloseNotifyIsCleanEofAndHalfCloseWorks) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context());
  p.connect();
  write_all(*p.client, p.cfd(), "request");
  shutdown_all(*p.client, p.cfd());
  std::string got;
  IOResult end = read_to_end(*p.server, p.sfd(), &got);
  EXPECT_EQ(got, "request");
  ASSERT_EQ(end.outcome, IOResult::kEof);
  EXPECT_TRUE(p.server->eof_status().ok()) << p.server->eof_status();
  // The end is sticky.
  Buffer more;
  EXPECT_EQ(p.server->read(p.sfd(), more, 10).outcome, IOResult::kEof);

  // After the peer's close_notify the server still writes, then closes its side.
  write_all(*p.server, p.sfd(), "response after the client's close_notify");
  shutdown_all(*p.server, p.sfd());
  got.clear();
  end = read_to_end(*p.client, p.cfd(), &got);
  EXPECT_EQ(got, "response after the client's close_notify");
  ASSERT_EQ(end.outcome, IOResult::kEof);
  EXPECT_TRUE(p.client->eof_status().ok());
  // Once sent, close_notify is not sent again.
  EXPECT_EQ(p.client->shutdown_write(p.cfd()).outcome, IOResult::kDone);
}

// Data and close_notify in the socket together: one read() takes both records, returns the
// data and holds the end for the next call. The fd will not become readable for that end
// (the peer sent nothing more), so has_buffered_input() must report it until read() hands it
// out (regression: a paused stream waited for readiness and never saw the close_notify).
TEST(TLSTransportDataTest, EndHeldBehindDataIsBufferedInput) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context());
  p.connect();
  write_all(*p.client, p.cfd(), "request");
  shutdown_all(*p.client, p.cfd());
  pollfd pfd = {p.sfd(), POLLIN, 0};
  ASSERT_GT(::poll(&pfd, 1, ioloop::testing::kPollMs), 0);
  Buffer in;
  IOResult r = p.server->read(p.sfd(), in, 1 << 20);
  ASSERT_EQ(r.outcome, IOResult::kDone);
  EXPECT_EQ(in.view(), "request");
  int unread = -1;
  ASSERT_EQ(::ioctl(p.sfd(), FIONREAD, &unread), 0);
  EXPECT_EQ(unread, 0) << "the close_notify record is still in the kernel: not this case";
  EXPECT_TRUE(p.server->has_buffered_input());
  EXPECT_EQ(p.server->read(p.sfd(), in, 1 << 20).outcome, IOResult::kEof);
  EXPECT_TRUE(p.server->eof_status().ok()) << p.server->eof_status();
  EXPECT_FALSE(p.server->has_buffered_input()) << "the end has been handed out";
}

TEST(TLSTransportDataTest, FinWithoutCloseNotifyIsTruncation) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context());
  p.connect();
  write_all(*p.client, p.cfd(), "partial");
  ASSERT_EQ(::shutdown(p.cfd(), SHUT_WR), 0);
  std::string got;
  IOResult end = read_to_end(*p.server, p.sfd(), &got);
  EXPECT_EQ(got, "partial");
  ASSERT_EQ(end.outcome, IOResult::kEof) << end.status;
  EXPECT_EQ(p.server->eof_status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(p.server->eof_status().message(),
            "TLS: peer closed the connection without close_notify (truncation)");
  // Nothing can be sent after a truncation; shutdown_write does not try.
  EXPECT_EQ(p.server->shutdown_write(p.sfd()).outcome, IOResult::kDone);
}

TEST(TLSTransportDataTest, ResetIsAnErrorWithTheErrnoText) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context(), "localhost", PairKind::kTcp);
  p.connect();
  const linger lin = {1, 0};  // close() sends RST
  ASSERT_EQ(::setsockopt(p.cfd(), SOL_SOCKET, SO_LINGER, &lin, sizeof(lin)), 0);
  ::close(p.sockets.fd[0]);
  p.sockets.fd[0] = -1;
  IOResult end = read_to_end(*p.server, p.sfd(), nullptr);
  ASSERT_EQ(end.outcome, IOResult::kError);
  EXPECT_EQ(end.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(end.status.message(), HasSubstr("Connection reset by peer"));
}

// Exchanges a message so the client has read the server's TLS 1.3 session tickets.
void exchange(TLSPair& p) {
  ASSERT_EQ(pump(*p.client, p.cfd(), *p.server, p.sfd(), "ping", 4096), "ping");
  ASSERT_EQ(pump(*p.server, p.sfd(), *p.client, p.cfd(), "pong", 4096), "pong");
}

TEST(TLSTransportDataTest, SessionResumption) {
  for (TLSVersion v : {TLSVersion::kTLS1_3, TLSVersion::kTLS1_2}) {
    SCOPED_TRACE(v == TLSVersion::kTLS1_3 ? "TLS 1.3" : "TLS 1.2");
    auto server = server_context(test_pki().ecdsa_leaf);
    auto client = client_context({.max_version = v});
    {
      TLSPair first(server, client, "localhost", PairKind::kUnix, 8443);
      first.connect();
      EXPECT_FALSE(first.client->session_resumed());
      exchange(first);
    }
    EXPECT_EQ(client->cached_client_sessions(), 1u);
    TLSPair second(server, client, "localhost", PairKind::kUnix, 8443);
    SSL_SESSION* offered = SSL_get_session(second.client->native_handle());
    ASSERT_NE(offered, nullptr);
    EXPECT_EQ(SSL_SESSION_is_resumable(offered), 1);
    second.connect();
    EXPECT_TRUE(second.client->session_resumed());
    EXPECT_TRUE(second.server->session_resumed());
    exchange(second);
    // Another port is another peer: no session offered.
    TLSPair other(server, client, "localhost", PairKind::kUnix, 9443);
    other.connect();
    EXPECT_FALSE(other.client->session_resumed());
  }
}

// Counts the TLS 1.3 NewSessionTicket messages a client receives (OpenSSL's message callback
// sees the handshake messages decrypted).
void count_tickets(int write_p, int /*version*/, int content_type, const void* buf, size_t len,
                   SSL* /*ssl*/, void* arg) {
  const auto* bytes = static_cast<const unsigned char*>(buf);
  if (write_p == 0 && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
      bytes[0] == SSL3_MT_NEWSESSION_TICKET) {
    ++*static_cast<int*>(arg);
  }
}

int tickets_after_full_handshake(const std::shared_ptr<const TLSContext>& server) {
  TLSPair p(server, client_context());
  int tickets = 0;
  SSL_set_msg_callback(p.client->native_handle(), &count_tickets);
  SSL_set_msg_callback_arg(p.client->native_handle(), &tickets);
  p.connect();
  exchange(p);
  EXPECT_FALSE(p.client->session_resumed());
  return tickets;
}

TEST(TLSTransportDataTest, OneTLS13TicketPerFullHandshakeByDefault) {
  EXPECT_EQ(tickets_after_full_handshake(server_context(test_pki().ecdsa_leaf)), 1);
  const auto& leaf = test_pki().ecdsa_leaf;
  auto three = ioloop::testing::must(TLSContext::server(
      {.cert_chain_pem = leaf.chain_pem, .private_key_pem = leaf.key_pem, .tls13_tickets = 3}));
  EXPECT_EQ(tickets_after_full_handshake(three), 3);
  auto off = ioloop::testing::must(TLSContext::server({.cert_chain_pem = leaf.chain_pem,
                                                       .private_key_pem = leaf.key_pem,
                                                       .session_resumption = false}));
  EXPECT_EQ(tickets_after_full_handshake(off), 0);
}

TEST(TLSTransportDataTest, ResumptionOffMeansFullHandshakes) {
  auto server =
      ioloop::testing::must(TLSContext::server({.cert_chain_pem = test_pki().ecdsa_leaf.chain_pem,
                                                .private_key_pem = test_pki().ecdsa_leaf.key_pem,
                                                .session_resumption = false}));
  auto client = client_context();
  {
    TLSPair first(server, client);
    first.connect();
    exchange(first);
  }
  EXPECT_EQ(client->cached_client_sessions(), 0u);
  TLSPair second(server, client);
  second.connect();
  EXPECT_FALSE(second.client->session_resumed());
}

}  // namespace
}  // namespace ioloop::net

namespace ioloop::net {
namespace {

// Renegotiation is refused: a TLS 1.2 client that asks for it (the options never allow it, so
// the test clears the flag underneath) fails, and the server never renegotiates.
TEST(TLSTransportDataTest, RenegotiationIsRefused) {
  auto client = client_context({.max_version = TLSVersion::kTLS1_2});
  SSL_CTX_clear_options(client->native_handle(), SSL_OP_NO_RENEGOTIATION);
  TLSPair p(server_context(test_pki().ecdsa_leaf), client);
  p.connect();
  SSL* raw = p.client->native_handle();
  ASSERT_EQ(SSL_renegotiate(raw), 1);
  // The client's ClientHello goes out; the server reads it while reading application data.
  int ret = SSL_do_handshake(raw);
  ASSERT_LE(ret, 0);
  ASSERT_EQ(SSL_get_error(raw, ret), SSL_ERROR_WANT_READ);
  Buffer in;
  IOResult server_read = IOResult::want_read();
  IOResult client_end = IOResult::want_read();
  for (int round = 0; round < 100; ++round) {
    if (server_read.outcome != IOResult::kError && server_read.outcome != IOResult::kEof) {
      server_read = p.server->read(p.sfd(), in, 4096);
    }
    ret = SSL_do_handshake(raw);
    if (ret <= 0 && SSL_get_error(raw, ret) != SSL_ERROR_WANT_READ) break;
    ASSERT_NE(ret, 1) << "renegotiation succeeded";
    pollfd pfd[2] = {{p.cfd(), POLLIN, 0}, {p.sfd(), POLLIN, 0}};
    ASSERT_GT(::poll(pfd, 2, ioloop::testing::kPollMs), 0);
  }
  EXPECT_EQ(in.size(), 0u);  // no application data came out of the attempt
  // The client gave up; the server sees the client's alert (or its end) next.
  const IOResult end = read_to_end(*p.server, p.sfd(), nullptr);
  // The server answered the ClientHello with a no_renegotiation warning; the client aborted
  // with a handshake_failure alert, which ends the server's connection.
  ASSERT_EQ(end.outcome, IOResult::kError);
  EXPECT_EQ(end.status.message(), "TLS: read: sslv3 alert handshake failure");
  ERR_clear_error();
}

}  // namespace
}  // namespace ioloop::net

namespace ioloop::net {
namespace {

// client <-> a[0] | a[1] <-relay-> b[0] | b[1] <-> server: the test decides which bytes the
// server's socket gets, to leave half a record inside OpenSSL.
TEST(TLSTransportDataTest, PartialRecordIsNotBufferedInput) {
  ioloop::testing::StreamPair a, b;
  auto server_ctx = server_context(test_pki().ecdsa_leaf);
  auto client_ctx = client_context();
  auto client = *client_ctx->new_client_transport(a.fd[0], "localhost", 443);
  auto server = *server_ctx->new_server_transport(b.fd[1]);
  ASSERT_NO_FATAL_FAILURE(ioloop::testing::handshake_through_relay(*client, a, *server, b));
  Buffer in;
  EXPECT_EQ(server->read(b.fd[1], in, 1 << 20).outcome, IOResult::kWantRead);

  const std::string data = random_bytes(10000, 4);  // one record
  write_all(*client, a.fd[0], data);
  ASSERT_EQ(relay(a.fd[1], b.fd[0], 3000), 3000u);
  IOResult r = server->read(b.fd[1], in, 1 << 20);
  EXPECT_EQ(r.outcome, IOResult::kWantRead);
  EXPECT_EQ(in.size(), 0u);
  // Half a record sits in OpenSSL, but read() cannot finish it without the socket: a stream
  // polling has_buffered_input() must wait for readability instead of spinning.
  EXPECT_FALSE(server->has_buffered_input());
  relay(a.fd[1], b.fd[0]);
  r = server->read(b.fd[1], in, 1 << 20);
  ASSERT_EQ(r.outcome, IOResult::kDone);
  EXPECT_TRUE(r.drained);
  EXPECT_TRUE(in.view() == data);
}

// A handshake through the smallest socket buffers still completes: kWantWrite inside
// handshake() is honoured. The server's flight is made bigger than the buffer by sending its
// intermediate twenty times over (verification ignores the extra copies).
TEST(TLSTransportDataTest, HandshakeThroughTinyBuffers) {
  const auto& pki = test_pki();
  std::string big_chain = pki.rsa_leaf().chain_pem;
  for (int i = 0; i < 20; ++i) big_chain += pki.intermediate_pem;
  auto server = ioloop::testing::must(TLSContext::server({.cert_chain_pem = big_chain,
                                                          .private_key_pem = pki.rsa_leaf().key_pem,
                                                          .verify_client = true,
                                                          .client_ca_pem = pki.root_ca_pem}));
  auto client = client_context(
      {.cert_chain_pem = pki.client.chain_pem, .private_key_pem = pki.client.key_pem});
  TLSPair p(server, client);
  p.sockets.shrink_buffers(1);  // the kernel's minimum
  ioloop::testing::HandshakeResults r = p.handshake();
  ASSERT_EQ(r.client.outcome, IOResult::kDone) << r.client.status;
  ASSERT_EQ(r.server.outcome, IOResult::kDone) << r.server.status;
  EXPECT_GT(r.want_writes, 0);
  EXPECT_THAT(p.server->peer_subject(), HasSubstr("CN=ioloop test client"));
  const std::string data = random_bytes(100000, 5);
  EXPECT_TRUE(pump(*p.client, p.cfd(), *p.server, p.sfd(), data, 777) == data);
}

}  // namespace
}  // namespace ioloop::net

namespace ioloop::net {
namespace {

// Breaking the retry rule is reported, not silently corrupting the stream: after kWantWrite,
// offering fewer bytes than the record OpenSSL began, or shutting down, is Internal.
TEST(TLSTransportDataTest, RetryRuleViolationsAreInternalErrors) {
  for (bool shutdown_instead : {false, true}) {
    TLSPair p(server_context(test_pki().ecdsa_leaf), client_context());
    p.sockets.shrink_buffers(4096);
    p.connect();
    const std::string block(16384, 'z');
    iovec iov = {const_cast<char*>(block.data()), block.size()};
    IOResult r;
    for (int i = 0; i < 1000; ++i) {
      r = p.client->write(p.cfd(), &iov, 1);
      if (r.outcome != IOResult::kDone) break;
    }
    ASSERT_EQ(r.outcome, IOResult::kWantWrite);
    if (shutdown_instead) {
      r = p.client->shutdown_write(p.cfd());
    } else {
      iov.iov_len = 100;
      r = p.client->write(p.cfd(), &iov, 1);
    }
    ASSERT_EQ(r.outcome, IOResult::kError);
    EXPECT_EQ(r.status.code(), absl::StatusCode::kInternal) << r.status;
  }
}

}  // namespace
}  // namespace ioloop::net

namespace ioloop::net {
namespace {

// One server and one client context shared by connections on four threads: the contexts
// need no outside locking, and the client's session cache (written from each thread's reads)
// ends up with the one peer's latest session.
TEST(TLSTransportDataTest, ContextsSharedByConnectionsOnManyThreads) {
  auto server = server_context(test_pki().ecdsa_leaf);
  auto client = client_context();
  std::atomic<int> resumed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        TLSPair p(server, client);
        p.connect();
        const std::string msg = "thread " + std::to_string(t) + " connection " + std::to_string(i);
        EXPECT_EQ(pump(*p.client, p.cfd(), *p.server, p.sfd(), msg, 4096), msg);
        EXPECT_EQ(pump(*p.server, p.sfd(), *p.client, p.cfd(), msg, 4096), msg);
        if (p.client->session_resumed()) ++resumed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(client->cached_client_sessions(), 1u);
  EXPECT_GT(resumed.load(), 0);
}

}  // namespace
}  // namespace ioloop::net

namespace ioloop::net {
namespace {

// Both sides send at once through tiny buffers, each writing until blocked and reading until
// starved every round (as two streams on a loop would): neither direction starves the other
// and every byte arrives.
TEST(TLSTransportDataTest, FullDuplexThroughTinyBuffers) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context());
  p.sockets.shrink_buffers(4096);
  p.connect();
  struct Side {
    Transport* t;
    int fd;
    std::string out;
    size_t sent = 0;
    Buffer in{};
    IOResult wr = IOResult::done(0);
    IOResult rd = IOResult::done(0);
  };
  Side sides[2] = {{p.client.get(), p.cfd(), random_bytes(300000, 6)},
                   {p.server.get(), p.sfd(), random_bytes(300000, 7)}};
  for (int round = 0; round < 100000; ++round) {
    for (Side& s : sides) {
      while (s.sent < s.out.size()) {
        iovec iov = {s.out.data() + s.sent, std::min<size_t>(s.out.size() - s.sent, 50000)};
        s.wr = s.t->write(s.fd, &iov, 1);
        ASSERT_NE(s.wr.outcome, IOResult::kError) << s.wr.status;
        if (s.wr.outcome != IOResult::kDone) break;
        s.sent += s.wr.bytes;
      }
      do {
        s.rd = s.t->read(s.fd, s.in, 8192);
        ASSERT_NE(s.rd.outcome, IOResult::kError) << s.rd.status;
        ASSERT_NE(s.rd.outcome, IOResult::kEof);
      } while (s.rd.outcome == IOResult::kDone && (!s.rd.drained || s.t->has_buffered_input()));
    }
    if (sides[0].in.size() == sides[1].out.size() && sides[1].in.size() == sides[0].out.size()) {
      break;
    }
    auto events = [](const Side& s) {
      short ev = POLLIN;
      if (s.sent < s.out.size()) ev |= ioloop::testing::events_for(s.wr);
      if (s.rd.outcome == IOResult::kWantWrite) ev |= POLLOUT;
      return ev;
    };
    ASSERT_TRUE(
        ioloop::testing::wait_ready(sides[0].fd, events(sides[0]), sides[1].fd, events(sides[1])));
  }
  EXPECT_TRUE(sides[0].in.view() == sides[1].out);
  EXPECT_TRUE(sides[1].in.view() == sides[0].out);
}

}  // namespace
}  // namespace ioloop::net
