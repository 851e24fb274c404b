// TLSTransport and TLS 1.3 key updates from the peer: a peer that asks for a key update
// (KeyUpdate with update_requested) while our write waits for a full socket must get its
// answer and every byte, in order. OpenSSL holds a record it could not send and, asked to
// send the KeyUpdate answer, fails the retried write ("bad length", openssl#8677); the
// transport therefore never lets OpenSSL see a short send after the handshake.
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "ioloop/net/tls/tls_transport.h"
#include "testing/tls_fixture.h"

namespace ioloop::net {
namespace {

using ::ioloop::testing::client_context;
using ::ioloop::testing::count_key_updates_sent;
using ::ioloop::testing::PairKind;
using ::ioloop::testing::random_bytes;
using ::ioloop::testing::server_context;
using ::ioloop::testing::test_pki;
using ::ioloop::testing::TLSPair;

// Reads what `t` returns without waiting; the readiness to wait for next (POLLIN, or POLLOUT
// while an answer waits for room), or 0 (and a test failure) on an end or error.
short read_available(Transport& t, int fd, Buffer& in) {
  for (;;) {
    const IOResult r = t.read(fd, in, 1 << 20);
    if (r.outcome == IOResult::kDone) {
      if (r.drained) return POLLIN;
      continue;
    }
    if (r.outcome == IOResult::kWantRead) return POLLIN;
    EXPECT_EQ(r.outcome, IOResult::kWantWrite) << r.status;
    return r.outcome == IOResult::kWantWrite ? POLLOUT : 0;
  }
}

// Writes 16 KiB blocks until the socket is full: the last outcome (kWantWrite then).
IOResult::Outcome fill(Transport& t, int fd) {
  const std::string block(16384, 'b');
  IOResult w;
  for (int i = 0; i < 1000; ++i) {
    iovec iov = {const_cast<char*>(block.data()), block.size()};
    w = t.write(fd, &iov, 1);
    if (w.outcome != IOResult::kDone) break;
  }
  EXPECT_NE(w.outcome, IOResult::kError) << w.status;
  return w.outcome;
}

class TLSKeyUpdateTest : public ::testing::TestWithParam<PairKind> {};

// The server writes 1 MiB to a client that asks for a key update each time the server's write
// waits, before it reads: the server reads the request (and the client's bytes behind it)
// mid-write and answers it, and every byte arrives both ways.
TEST_P(TLSKeyUpdateTest, ARequestWhileOurWriteWaitsIsAnsweredAndLosesNothing) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context(), "localhost", GetParam());
  p.sockets.shrink_buffers(4096);
  p.connect();
  SSL* client_ssl = p.client->native_handle();
  int answers = 0;
  count_key_updates_sent(*p.server, &answers);
  const std::string down = random_bytes(1 << 20, 11);
  std::string up_sent, up_pending;  // the client's bytes: all, and those not yet taken
  Buffer up, got;
  size_t sent = 0;
  int updates = 0;
  for (int round = 0; round < 100000 && (got.size() < down.size() || !up_pending.empty());
       ++round) {
    bool server_waits = false;
    while (sent < down.size()) {  // until the socket is full
      iovec iov = {const_cast<char*>(down.data() + sent), down.size() - sent};
      const IOResult w = p.server->write(p.sfd(), &iov, 1);
      ASSERT_NE(w.outcome, IOResult::kError) << w.status << " after " << sent << " bytes";
      if (w.outcome != IOResult::kDone) {
        ASSERT_EQ(w.outcome, IOResult::kWantWrite);
        server_waits = true;
        break;
      }
      sent += w.bytes;
    }
    if (server_waits && up_pending.empty()) {
      // Our write waits: the peer asks for new keys and sends a few bytes behind the request.
      ASSERT_EQ(SSL_key_update(client_ssl, SSL_KEY_UPDATE_REQUESTED), 1);
      up_pending = "ping " + std::to_string(updates++) + "\n";
      up_sent += up_pending;
    }
    if (!up_pending.empty()) {
      iovec iov = {up_pending.data(), up_pending.size()};
      const IOResult w = p.client->write(p.cfd(), &iov, 1);
      ASSERT_NE(w.outcome, IOResult::kError) << w.status;
      if (w.outcome == IOResult::kDone) up_pending.erase(0, w.bytes);
    }
    const short server_wait = read_available(*p.server, p.sfd(), up);
    ASSERT_NE(server_wait, 0);
    ASSERT_NE(read_available(*p.client, p.cfd(), got), 0);
    ASSERT_TRUE(ioloop::testing::wait_ready(p.cfd(), POLLIN, p.sfd(), server_wait | POLLOUT));
  }
  // The server reads the rest of what the client sent (the last requests among it).
  for (int round = 0; round < 1000 && up.size() < up_sent.size(); ++round) {
    const short server_wait = read_available(*p.server, p.sfd(), up);
    ASSERT_NE(server_wait, 0);
    ASSERT_NE(read_available(*p.client, p.cfd(), got), 0);
    ASSERT_TRUE(ioloop::testing::wait_ready(p.cfd(), POLLIN, p.sfd(), server_wait));
  }
  // A last request read after the server's last record is answered by its next write.
  const std::string end = "end";
  bool end_sent = false;
  for (int round = 0; round < 1000 && got.size() < down.size() + end.size(); ++round) {
    if (!end_sent) {  // retried with the same bytes when the socket has room
      iovec iov = {const_cast<char*>(end.data()), end.size()};
      const IOResult w = p.server->write(p.sfd(), &iov, 1);
      ASSERT_NE(w.outcome, IOResult::kError) << w.status;
      end_sent = w.outcome == IOResult::kDone && w.bytes == end.size();
    }
    ASSERT_TRUE(ioloop::testing::wait_ready(p.cfd(), POLLIN, p.sfd(), end_sent ? 0 : POLLOUT));
    ASSERT_NE(read_available(*p.client, p.cfd(), got), 0);
  }
  EXPECT_GT(updates, 10);
  // Decrypted with each new key in turn: the answers came in order with the records.
  ASSERT_EQ(got.size(), down.size() + end.size());
  EXPECT_TRUE(got.view() == down + end);
  EXPECT_EQ(up.view(), up_sent);
  EXPECT_EQ(answers, updates);
}

// A read that made OpenSSL answer for a full socket returns what it read and stops, and the
// records OpenSSL read ahead meanwhile are no buffered input until the answer is out: a stream
// polling has_buffered_input() would call read() again and again while the socket is full.
TEST(TLSKeyUpdateTest, RecordsBehindAHeldAnswerWaitForRoom) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context());
  p.sockets.shrink_buffers(4096);
  p.connect();
  ASSERT_EQ(fill(*p.server, p.sfd()), IOResult::kWantWrite);
  // OpenSSL answers a request when it writes next or reads the next handshake message: the
  // second request makes the server's read send the first one's answer.
  int answers = 0;
  count_key_updates_sent(*p.server, &answers);
  for (const char* record : {"first", "second", "third"}) {
    if (std::strcmp(record, "third") != 0) {
      ASSERT_EQ(SSL_key_update(p.client->native_handle(), SSL_KEY_UPDATE_REQUESTED), 1);
    }
    iovec iov = {const_cast<char*>(record), std::strlen(record)};
    const IOResult cw = p.client->write(p.cfd(), &iov, 1);
    ASSERT_EQ(cw.outcome, IOResult::kDone) << cw.status;
  }
  pollfd pfd = {p.sfd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, ioloop::testing::kPollMs), 1);
  Buffer in;
  IOResult r = p.server->read(p.sfd(), in, 1 << 20);
  ASSERT_EQ(r.outcome, IOResult::kDone) << r.status;
  EXPECT_EQ(in.retrieve_all_as_string(), "firstsecond");
  EXPECT_EQ(answers, 1);
  EXPECT_TRUE(p.server->has_pending_output());               // the answer, behind the record's tail
  ASSERT_EQ(SSL_has_pending(p.server->native_handle()), 1);  // "third", read ahead
  EXPECT_FALSE(p.server->has_buffered_input());              // waits for the answer to go
  EXPECT_EQ(p.server->read(p.sfd(), in, 1 << 20).outcome, IOResult::kWantWrite);
  EXPECT_FALSE(p.server->has_buffered_input());
  // The client reads: the socket has room, the answer goes, the read goes on.
  Buffer got;
  for (int round = 0; round < 100 && p.server->has_pending_output(); ++round) {
    ASSERT_NE(read_available(*p.client, p.cfd(), got), 0);
    r = p.server->read(p.sfd(), in, 1 << 20);
    ASSERT_NE(r.outcome, IOResult::kError) << r.status;
  }
  EXPECT_FALSE(p.server->has_pending_output());
  EXPECT_EQ(in.retrieve_all_as_string(), "third");
}

// client <-> a[0] | a[1] <-test-> b[0] | b[1] <-> server, the handshake done through the test's
// relay: after it the test decides what reaches the server's socket, and when.
class TLSKeyUpdateBoundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(ioloop::testing::handshake_through_relay(*client, a, *server, b));
  }
  ioloop::testing::StreamPair a, b;
  std::unique_ptr<TLSTransport> client =
      *client_context()->new_client_transport(a.fd[0], "localhost", 443);
  std::unique_ptr<TLSTransport> server =
      *server_context(test_pki().ecdsa_leaf)->new_server_transport(b.fd[1]);
};

// A peer that sends nothing but key-update requests and reads nothing, while the server's
// socket is full: the answers the server keeps for it are bounded. One read would take every
// request the socket holds (OpenSSL answers each at once); past 32 requests in a row without
// data that connection ends with ResourceExhausted (before the bound on kept output, 64 KiB,
// which ended it before that limit), its answers not growing. The test gathers the client's
// requests and hands them to the server's socket in one write, and relays nothing back, so
// the server's socket stays full.
TEST_F(TLSKeyUpdateBoundTest, APeerThatOnlyAsksWhileReadingNothingIsCutOff) {
  const int small = 4096, big = 1 << 20;
  ASSERT_EQ(::setsockopt(b.fd[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  ASSERT_EQ(::setsockopt(b.fd[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)), 0);
  ASSERT_EQ(fill(*server, b.fd[1]), IOResult::kWantWrite);  // nobody reads b[0]
  // 3,000 requests (27 bytes each) would need 81 KB of answers.
  SSL* client_ssl = client->native_handle();
  std::string requests;
  char buf[4096];
  for (int i = 0; i < 3000; ++i) {
    ASSERT_EQ(SSL_key_update(client_ssl, SSL_KEY_UPDATE_REQUESTED), 1);
    ASSERT_EQ(SSL_do_handshake(client_ssl), 1);  // sends the request
    ssize_t n;
    while ((n = ::read(a.fd[1], buf, sizeof(buf))) > 0)
      requests.append(buf, static_cast<size_t>(n));
  }
  ASSERT_FALSE(client->has_pending_output());
  ASSERT_EQ(requests.size(), 3000u * 27);
  ASSERT_EQ(::write(b.fd[0], requests.data(), requests.size()),
            static_cast<ssize_t>(requests.size()));
  Buffer in;
  const IOResult r = server->read(b.fd[1], in, 1 << 20);
  ASSERT_EQ(r.outcome, IOResult::kError);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kResourceExhausted) << r.status;
  EXPECT_EQ(r.status.message(),
            "TLS: read: the peer sent over 32 post-handshake messages (key updates, session "
            "tickets) without application data between them");
  EXPECT_EQ(in.size(), 0u);
}

// Sends `updates` key updates (none asking for an answer) and then `data` from the client,
// and hands all of it to the server's socket in one write: the server's next read meets them
// together.
void send_updates_then_data(TLSTransport& client, ioloop::testing::StreamPair& a,
                            ioloop::testing::StreamPair& b, int updates, const std::string& data) {
  SSL* client_ssl = client.native_handle();
  for (int i = 0; i < updates; ++i) {
    ASSERT_EQ(SSL_key_update(client_ssl, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
    ASSERT_EQ(SSL_do_handshake(client_ssl), 1);  // sends it
  }
  iovec iov = {const_cast<char*>(data.data()), data.size()};
  ASSERT_EQ(client.write(a.fd[0], &iov, 1).outcome, IOResult::kDone);
  std::string wire;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(a.fd[1], buf, sizeof(buf))) > 0) wire.append(buf, static_cast<size_t>(n));
  ASSERT_EQ(::write(b.fd[0], wire.data(), wire.size()), static_cast<ssize_t>(wire.size()));
}

// OpenSSL handles every record without data inside one SSL_read call, reading on while the
// socket has more: a peer sending key updates without end (27 bytes each, tens of
// microseconds of CPU each here) held the loop's thread as long as it went on. Regression:
// 100,000 of them kept one read() for 2.5 s. Past 32 in a row without application data
// (BoringSSL's limit), the connection ends.
TEST_F(TLSKeyUpdateBoundTest, KeyUpdatesWithoutDataBetweenThemEndTheConnection) {
  ASSERT_NO_FATAL_FAILURE(send_updates_then_data(*client, a, b, 100, "late"));
  Buffer in;
  const IOResult r = server->read(b.fd[1], in, 1 << 20);
  ASSERT_EQ(r.outcome, IOResult::kError);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kResourceExhausted) << r.status;
  EXPECT_EQ(r.status.message(),
            "TLS: read: the peer sent over 32 post-handshake messages (key updates, session "
            "tickets) without application data between them");
  EXPECT_EQ(in.size(), 0u);
}

// Up to 32 in a row, between pieces of data, go on for ever.
TEST_F(TLSKeyUpdateBoundTest, KeyUpdatesBetweenPiecesOfDataAreServed) {
  std::string sent;
  Buffer in;
  for (int round = 0; round < 20; ++round) {
    const std::string piece = "piece " + std::to_string(round) + ";";
    sent += piece;
    ASSERT_NO_FATAL_FAILURE(send_updates_then_data(*client, a, b, 32, piece));
    const IOResult r = server->read(b.fd[1], in, 1 << 20);
    ASSERT_EQ(r.outcome, IOResult::kDone) << r.status;
  }
  EXPECT_EQ(in.retrieve_all_as_string(), sent);
}

INSTANTIATE_TEST_SUITE_P(Sockets, TLSKeyUpdateTest,
                         ::testing::Values(PairKind::kUnix, PairKind::kTcp),
                         [](const ::testing::TestParamInfo<PairKind>& param_info) {
                           return param_info.param == PairKind::kUnix ? "Unix" : "Tcp";
                         });

}  // namespace
}  // namespace ioloop::net
