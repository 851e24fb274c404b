// File: tests/net/io_stream_tls_key_update_test.cc
// IOStream over TLS 1.3 when the peer asks for key updates while the stream's write waits for
// room: found by a probe, a client that asked for new keys every 64 KiB of a large transfer
// got its connection closed with "TLS: read: bad length" after a few megabytes (OpenSSL,
// holding a record half sent, could not answer; openssl#8677). Every poller.
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/tls/tls_transport.h"
#include "net/io_stream_testing.h"
#include "testing/plain_transport.h"

namespace ioloop::net::stream_testing {
namespace {

class IOStreamTLSKeyUpdateTest : public IOStreamTest {};

INSTANTIATE_TEST_SUITE_P(Streams, IOStreamTLSKeyUpdateTest,
                         ::testing::Values(StreamCase{PollerKind::kEpoll, Wire::kTls},
                                           StreamCase{PollerKind::kPoll, Wire::kTls},
                                           StreamCase{PollerKind::kSelect, Wire::kTls}),
                         CaseName);

// The stream writes 4 MiB to a peer that reads 64 KiB per wakeup through small socket
// buffers, so the stream's write keeps waiting mid-record; after every 64 KiB the peer asks
// twice for a key update, each time with a ping behind the request (the second request makes
// OpenSSL send the answer to the first from the stream's read). The stream reads each ping, answers
// each request, and delivers every byte in order without closing.
TEST_P(IOStreamTLSKeyUpdateTest, RequestsWhileAWriteWaitsKeepBothDirections) {
  make_pair();
  auto& peer = static_cast<TLSPeer&>(*peer_);
  ASSERT_EQ(peer.transport().protocol_version(), "TLSv1.3");
  const int small = 4096;
  for (int fd : {stream_->fd(), peer.fd()}) {
    ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  }
  constexpr int kPings = 40;
  constexpr size_t kEvery = 64 * 1024;
  const std::string out = pattern(3, 4 << 20);
  int flushed = 0;
  absl::Status flush_status = absl::UnknownError("not called");
  stream_->write(out, [&](absl::Status s) {
    ++flushed;
    flush_status = s;
  });
  std::string pings_sent, pings_got;
  absl::Status read_status = absl::UnknownError("not called");
  stream_->read_streaming([&](absl::string_view chunk) { absl::StrAppend(&pings_got, chunk); },
                          [&](absl::StatusOr<std::string> r) { read_status = r.status(); },
                          kPings * 8);
  int answers = 0;
  testing::count_key_updates_sent(dynamic_cast<TLSTransport&>(stream_->transport()), &answers);
  stream_->set_close_callback([this](const absl::Status&) { done(); });  // fails the test below
  std::string received;
  SSL* peer_ssl = peer.transport().native_handle();
  auto finished = [&] {
    return received.size() == out.size() && pings_got.size() == pings_sent.size() && flushed == 1;
  };
  ASSERT_TRUE(loop()
                  .add_handler(
                      peer.fd(),
                      [&](int, uint32_t) {
                        peer.recv_some(received, kEvery);
                        const int sent = static_cast<int>(pings_sent.size() / 8);
                        if (sent < kPings && received.size() >= (sent / 2 + 1) * kEvery) {
                          for (int i = sent; i < sent + 2; ++i) {  // two requests at once
                            ASSERT_EQ(SSL_key_update(peer_ssl, SSL_KEY_UPDATE_REQUESTED), 1);
                            const std::string ping = absl::StrFormat("ping %02d\n", i);
                            ASSERT_EQ(peer.send_some(ping.data(), ping.size()), 8);
                            pings_sent += ping;
                          }
                        }
                        if (finished()) done();
                      },
                      IOLoop::READ)
                  .ok());
  ASSERT_TRUE(wait(absl::Seconds(60)));
  loop().remove_handler(peer.fd());
  EXPECT_EQ(pings_sent.size(), kPings * 8u);
  EXPECT_EQ(pings_got, pings_sent);
  EXPECT_EQ(answers, kPings);  // each request answered (the peer would not notice otherwise)
  EXPECT_TRUE(read_status.ok()) << read_status;
  EXPECT_TRUE(received == out) << "received " << received.size() << " of " << out.size();
  EXPECT_TRUE(flush_status.ok()) << flush_status;
  EXPECT_FALSE(stream_->closed()) << stream_->error();
}

// Plain I/O, plus output it holds (as TLS holds an answer a full socket did not take) that
// flush() sends only once the test says there is room.
class HeldOutputTransport final : public testing::PlainTransport {
 public:
  std::string held;
  bool room = false;

  bool has_pending_output() const override { return !held.empty(); }
  IOResult flush(int fd) override {
    if (!room) return IOResult::want_write();
    if (::send(fd, held.data(), held.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(held.size())) {
      return IOResult::error(absl::InternalError("short send"));
    }
    held.clear();
    return IOResult::done(0);
  }
};

// shutdown_write_truncated() ends a stream with a bare FIN (no close_notify): what the
// transport still holds goes first, or the peer would read EOF before it (and the held bytes
// would then meet a closed write side).
TEST_P(IOStreamTLSKeyUpdateTest, ATruncatedEndWaitsForHeldOutput) {
  auto pair = Socket::pair();
  ASSERT_TRUE(pair.ok()) << pair.status();
  auto owned = std::make_unique<HeldOutputTransport>();
  HeldOutputTransport* transport = owned.get();
  transport->held = "held";
  Socket peer = std::move(pair->second);
  stream_ = IOStream::create(loop(), std::move(pair->first), {}, std::move(owned));
  absl::Status handshake = absl::UnknownError("not called");
  stream_->wait_for_handshake([&](absl::Status s) { handshake = s; });
  spin(2);
  ASSERT_TRUE(handshake.ok()) << handshake;
  stream_->shutdown_write_truncated();
  spin(5);
  char buf[16];
  EXPECT_EQ(::recv(peer.fd(), buf, sizeof buf, MSG_DONTWAIT), -1) << "EOF before the held bytes";
  transport->room = true;
  spin(5);
  EXPECT_EQ(::recv(peer.fd(), buf, sizeof buf, MSG_DONTWAIT), 4);
  EXPECT_EQ(std::string(buf, 4), "held");
  EXPECT_EQ(::recv(peer.fd(), buf, sizeof buf, MSG_DONTWAIT), 0);  // then the FIN
  EXPECT_FALSE(stream_->closed()) << stream_->error();
}

}  // namespace
}  // namespace ioloop::net::stream_testing
