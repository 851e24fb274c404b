// IOStream with a transport that needs the other direction (issue 9, point 6): a read that
// gets kWantWrite must wait for WRITE readiness (not READ, which would spin on readable data)
// and a write that gets kWantRead must wait for READ readiness, even while reading is paused.
//
// Two kinds of tests:
//   - Scripted: a test transport wrapping the plain or the TLS transport answers kWantWrite
//     from read() and kWantRead from write() at chosen points, on every poller. The stream's
//     interest is checked through the transport's call counts: a wrong registration makes
//     the stream call again on every iteration.
//   - Real OpenSSL: TLS 1.3 KeyUpdate answered by a read while the stream's send buffer is
//     full (the transport holds the answer: kWantWrite), and a TLS 1.2 renegotiation under
//     way while the stream writes (SSL_write returns WANT_READ). The counting wrapper records
//     which outcome the transport actually produced, so each test proves its path was taken.
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/tls/tls_transport.h"
#include "net/io_stream_testing.h"

namespace ioloop::net {
namespace {

using stream_testing::IOStreamTest;
using stream_testing::pattern;
using stream_testing::PlainPeer;
using stream_testing::StreamCase;
using stream_testing::TLSPeer;
using stream_testing::Wire;

bool fd_ready(int fd, short events) {
  pollfd p = {fd, events, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & events) != 0;
}

// Wraps the stream's transport (null: the plain one), counts every call and the outcomes it
// returned, and optionally answers a want of the other direction. Tests only; loop thread.
class ScriptedTransport final : public Transport {
 public:
  explicit ScriptedTransport(std::unique_ptr<Transport> inner) : inner_(std::move(inner)) {}
  Transport& inner() const { return inner_ ? *inner_ : Transport::plain(); }

  // Script. read(): kWantWrite while armed and the fd is not writable; the first call that
  // finds it writable disarms and reads through (as OpenSSL does once its pending record
  // fits). write(): kWantRead while armed and `input_arrived` is false; the first call with
  // it set disarms and writes through (as OpenSSL does once the handshake message it waited
  // for came in).
  bool read_wants_write = false;
  bool write_wants_read = false;
  bool input_arrived = false;

  int reads = 0;
  int writes = 0;
  int read_wanted_write = 0;  // read() calls that returned kWantWrite (scripted or real)
  int write_wanted_read = 0;  // write() calls that returned kWantRead (scripted or real)
  int write_wanted_write = 0;
  // Runs after a read() that returned kWantWrite (the test stops its wait there).
  std::function<void()> on_read_wanted_write;

  IOResult handshake(int fd) override { return inner().handshake(fd); }

  IOResult read(int fd, Buffer& buffer, size_t limit) override {
    ++reads;
    IOResult r;
    if (read_wants_write && !fd_ready(fd, POLLOUT)) {
      r = IOResult::want_write();
    } else {
      read_wants_write = false;
      r = inner().read(fd, buffer, limit);
    }
    if (r.outcome == IOResult::kWantWrite) {
      ++read_wanted_write;
      if (on_read_wanted_write) on_read_wanted_write();
    }
    return r;
  }

  IOResult write(int fd, const struct iovec* iov, int count) override {
    ++writes;
    IOResult r;
    if (write_wants_read && !input_arrived) {
      r = IOResult::want_read();
    } else {
      write_wants_read = false;
      r = inner().write(fd, iov, count);
    }
    if (r.outcome == IOResult::kWantRead) ++write_wanted_read;
    if (r.outcome == IOResult::kWantWrite) ++write_wanted_write;
    return r;
  }

  IOResult shutdown_write(int fd) override { return inner().shutdown_write(fd); }
  bool has_buffered_input() const override { return inner().has_buffered_input(); }
  bool has_pending_output() const override { return inner().has_pending_output(); }
  IOResult flush(int fd) override { return inner().flush(fd); }
  void end_before_close(int fd) override { inner().end_before_close(fd); }
  absl::Status eof_status() const override { return inner().eof_status(); }

 private:
  std::unique_ptr<Transport> inner_;
};

class IOStreamWantTest : public IOStreamTest {
 protected:
  // As make_pair(), with the stream's transport inside a ScriptedTransport (transport_).
  // `peer_tls`: the TLS peer's options (TLS 1.2 for the renegotiation test).
  void make_scripted_pair(TLSClientOptions peer_tls = {}) {
    auto pair = Socket::pair();
    ASSERT_TRUE(pair.ok()) << pair.status();
    if (!tls()) {
      auto t = std::make_unique<ScriptedTransport>(nullptr);
      transport_ = t.get();
      peer_ = std::make_unique<PlainPeer>(std::move(pair->second));
      stream_ = IOStream::create(loop(), std::move(pair->first), {}, std::move(t));
      return;
    }
    static const auto* server_ctx = new std::shared_ptr<const TLSContext>(
        testing::server_context(testing::test_pki().ecdsa_leaf));
    auto server = (*server_ctx)->new_server_transport(pair->first.fd());
    auto client = testing::client_context(peer_tls)->new_client_transport(pair->second.fd(),
                                                                          "localhost", 443);
    ASSERT_TRUE(server.ok()) << server.status();
    ASSERT_TRUE(client.ok()) << client.status();
    stream_tls_ = server->get();
    auto t = std::make_unique<ScriptedTransport>(*std::move(server));
    transport_ = t.get();
    auto peer = std::make_unique<TLSPeer>(std::move(pair->second), *std::move(client));
    TLSPeer& tls_peer = *peer;
    peer_ = std::move(peer);
    stream_ = IOStream::create(loop(), std::move(pair->first), {}, std::move(t));
    complete_handshake(tls_peer);
  }

  TLSPeer& tls_peer() { return static_cast<TLSPeer&>(*peer_); }

  // The smallest socket buffers the kernel allows, on both ends.
  void tiny_buffers() {
    const int tiny = 1;  // rounded up to the kernel's minimum
    for (int fd : {stream_->fd(), peer_->fd()}) {
      ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &tiny, sizeof tiny), 0);
      ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny), 0);
    }
  }

  // Runs the loop until `pred` holds (checked once per iteration).
  void run_until(std::function<bool()> pred) {
    std::function<void()> check = [&] {
      if (pred()) {
        done();
      } else {
        loop().add_callback(check);
      }
    };
    loop().add_callback(check);
    ASSERT_TRUE(wait(absl::Seconds(30)));
  }

  // From now on the peer reads everything that arrives into `received` (until the test
  // removes the peer's handler).
  void drain_peer_into(std::string& received) {
    ASSERT_TRUE(loop()
                    .add_handler(
                        peer_->fd(),
                        [this, &received](int, uint32_t) {
                          while (peer_->recv_some(received, 65536) > 0) {
                          }
                        },
                        IOLoop::READ)
                    .ok());
  }

  ScriptedTransport* transport_ = nullptr;
  TLSTransport* stream_tls_ = nullptr;  // the wrapped TLS transport (TLS cases)
};

// --- Scripted: every poller, both transports ----------------------------------------------

class IOStreamScriptedWantTest : public IOStreamWantTest {};
INSTANTIATE_TEST_SUITE_P(Streams, IOStreamScriptedWantTest, stream_testing::AllCases(),
                         stream_testing::CaseName);

// A read that gets kWantWrite while the socket cannot take more (the stream's own big write
// filled it, the peer not reading): the stream must wait for WRITE only. Registering READ
// too would call read() again on every iteration, since the peer's request is readable.
// Once the peer drains, the read and the write both complete, each once, with exact bytes.
TEST_P(IOStreamScriptedWantTest, ReadWantingWriteWaitsForWritableNotReadable) {
  make_scripted_pair();
  const std::string out = pattern(0, 1 << 20);
  int flushed = 0;
  absl::Status flush_status = absl::UnknownError("not called");
  stream_->write(out, [&](absl::Status s) {
    ++flushed;
    flush_status = s;
  });
  ASSERT_TRUE(stream_->writing());
  // The stream flushes on WRITE readiness until the kernel stops reporting room (a unix
  // socket may take a partial send and still be writable).
  run_until([&] { return !fd_ready(stream_->fd(), POLLOUT); });
  ASSERT_TRUE(stream_->writing());
  transport_->read_wants_write = true;
  transport_->on_read_wanted_write = [this] { done(); };
  int read_calls = 0;
  absl::StatusOr<std::string> got;
  stream_->read_bytes(7, [&](absl::StatusOr<std::string> r) {
    ++read_calls;
    got = std::move(r);
  });
  peer_write("request");
  ASSERT_TRUE(wait());  // the first read() answered kWantWrite
  transport_->on_read_wanted_write = nullptr;
  const int reads = transport_->reads;
  const int writes = transport_->writes;
  spin(20);
  EXPECT_EQ(transport_->reads, reads) << "read() called again while the socket is unwritable";
  EXPECT_EQ(transport_->writes, writes);
  EXPECT_EQ(read_calls, 0);
  EXPECT_EQ(transport_->read_wanted_write, 1);

  // The peer drains: WRITE readiness resumes the read (first) and the write.
  std::string received;
  drain_peer_into(received);
  run_until([&] { return received.size() == out.size() && flushed == 1 && read_calls == 1; });
  loop().remove_handler(peer_->fd());
  spin(2);
  EXPECT_TRUE(received == out);
  EXPECT_EQ(flushed, 1);
  EXPECT_TRUE(flush_status.ok()) << flush_status;
  EXPECT_EQ(read_calls, 1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "request");
  EXPECT_FALSE(transport_->read_wants_write);  // the call after WRITE readiness read through
  EXPECT_FALSE(stream_->closed());
}

// A write that gets kWantRead must wait for READ readiness, even with reading paused and a
// read outstanding; registering WRITE instead would retry it on every iteration (the socket
// is writable). Writes queued behind it (write, writev, write) go out in order once the
// awaited input arrives, each callback once; the input itself stays for the paused read.
TEST_P(IOStreamScriptedWantTest, WriteWantingReadWaitsForReadableEvenWhilePaused) {
  make_scripted_pair();
  int read_calls = 0;
  absl::StatusOr<std::string> got;
  stream_->read_bytes(4, [&](absl::StatusOr<std::string> r) {
    ++read_calls;
    got = std::move(r);
  });
  stream_->pause_reading();
  transport_->write_wants_read = true;
  std::vector<std::string> log;
  stream_->write("one ", [&](absl::Status s) { log.push_back("1:" + s.ToString()); });
  stream_->writev({"two ", "three "}, [&](absl::Status s) { log.push_back("2:" + s.ToString()); });
  stream_->write("four", [&](absl::Status s) { log.push_back("3:" + s.ToString()); });
  EXPECT_EQ(transport_->writes, 1);  // the first write's fast path; the rest queued behind it
  EXPECT_EQ(transport_->write_wanted_read, 1);
  EXPECT_EQ(stream_->write_buffer_size(), 18u);
  spin(20);
  EXPECT_EQ(transport_->writes, 1) << "write() retried without READ readiness";
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(peer_read_available(), "");

  // The input the write waits for: READ readiness retries the write, not the paused read.
  transport_->input_arrived = true;
  peer_write("wake");
  std::string received;
  drain_peer_into(received);
  run_until([&] { return received.size() == 18 && log.size() == 3; });
  EXPECT_EQ(received, "one two three four");
  EXPECT_EQ(log, (std::vector<std::string>{"1:OK", "2:OK", "3:OK"}));
  EXPECT_EQ(transport_->writes, 2);  // one retry sent all three (one record / one sendmsg)
  EXPECT_EQ(read_calls, 0);
  // Nothing is wanted now: reading is paused and the queue is empty, so the unread "wake"
  // must not wake the stream up (no read() while paused).
  const int reads = transport_->reads;
  spin(20);
  EXPECT_EQ(transport_->reads, reads);
  EXPECT_EQ(read_calls, 0);

  stream_->resume_reading();
  run_until([&] { return read_calls == 1; });
  loop().remove_handler(peer_->fd());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "wake");
  spin(2);
  EXPECT_EQ(log.size(), 3u);
  EXPECT_EQ(read_calls, 1);
}

// --- Scripted, plain only: a read wanting WRITE with nothing queued ---------------------------

class IOStreamPlainWantTest : public IOStreamWantTest {};
INSTANTIATE_TEST_SUITE_P(Streams, IOStreamPlainWantTest, stream_testing::PlainCases(),
                         stream_testing::CaseName);

// The read alone asks for WRITE (no write queued): the stream registers WRITE instead of
// READ for it. The socket is filled from outside the stream (raw bytes: plain only, a TLS
// peer would take them for a broken record), so only the peer's drain can wake it up.
TEST_P(IOStreamPlainWantTest, ReadWantingWriteWithNothingQueuedRegistersWriteOnly) {
  make_scripted_pair();
  const std::string filler(4096, 'f');
  size_t filled = 0;
  for (;;) {
    const ssize_t n = ::send(stream_->fd(), filler.data(), filler.size(), MSG_DONTWAIT);
    if (n <= 0) break;
    filled += static_cast<size_t>(n);
  }
  ASSERT_GT(filled, 0u);
  ASSERT_FALSE(fd_ready(stream_->fd(), POLLOUT));
  transport_->read_wants_write = true;
  transport_->on_read_wanted_write = [this] { done(); };
  int read_calls = 0;
  absl::StatusOr<std::string> got;
  stream_->read_bytes(5, [&](absl::StatusOr<std::string> r) {
    ++read_calls;
    got = std::move(r);
  });
  peer_write("hello");
  ASSERT_TRUE(wait());
  transport_->on_read_wanted_write = nullptr;
  EXPECT_EQ(transport_->reads, 1);
  spin(20);
  EXPECT_EQ(transport_->reads, 1) << "read() called again while the socket is unwritable";
  EXPECT_EQ(read_calls, 0);
  EXPECT_FALSE(stream_->writing());

  std::string drained = peer_read_available();
  EXPECT_EQ(drained.size(), filled);
  run_until([&] { return read_calls == 1; });
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "hello");
  EXPECT_EQ(transport_->reads, 2);
  EXPECT_EQ(transport_->writes, 0);
}

// --- Real OpenSSL: every poller, TLS ----------------------------------------------------------

class IOStreamOpenSSLWantTest : public IOStreamWantTest {
 protected:
  SSL* peer_ssl() { return tls_peer().transport().native_handle(); }
};
INSTANTIATE_TEST_SUITE_P(Streams, IOStreamOpenSSLWantTest,
                         ::testing::Values(StreamCase{PollerKind::kEpoll, Wire::kTls},
                                           StreamCase{PollerKind::kPoll, Wire::kTls},
                                           StreamCase{PollerKind::kSelect, Wire::kTls}),
                         stream_testing::CaseName);

// WANT_WRITE during a read: the peer asks for a TLS 1.3 key update before every record and
// does not read. Each KeyUpdate(update_requested) makes the stream's read answer the one
// before with a KeyUpdate of its own, until the tiny send buffer is full, the transport holds
// an answer and read() returns kWantWrite. The stream must then wait for WRITE only (no read()
// calls while the peer's records sit readable), once the peer drains, deliver every byte in
// order, and then wait for nothing.
TEST_P(IOStreamOpenSSLWantTest, ReadAnsweringKeyUpdateWaitsForRoomThenDeliversEveryByte) {
  make_scripted_pair();
  ASSERT_EQ(stream_tls_->protocol_version(), "TLSv1.3");
  // The peer asks before each of its 263 records and gets nothing but the answers: over the
  // bound on key updates without data between them (TLSTransport::read()), not this test's
  // subject. Its own message callback in place of the transport's turns that off.
  SSL_set_msg_callback(peer_ssl(), nullptr);
  tiny_buffers();
  const size_t total = 256 << 10;
  const std::string in = pattern(99, total);
  std::string got;
  int done_calls = 0;
  absl::Status done_status = absl::UnknownError("not called");
  stream_->read_streaming([&](absl::string_view chunk) { absl::StrAppend(&got, chunk); },
                          [&](absl::StatusOr<std::string> r) {
                            ++done_calls;
                            done_status = r.status();
                          },
                          total);
  size_t sent = 0;
  bool retry = false;  // the last send blocked: the next must offer the same bytes
  bool draining = false;
  int key_updates = 0;
  std::string peer_got;
  auto on_peer = [&](int fd, uint32_t events) {
    if (draining && (events & IOLoop::READ)) {
      while (peer_->recv_some(peer_got, 65536) > 0) {
      }
    }
    if ((events & IOLoop::WRITE) && sent < total) {
      if (!retry) {
        ASSERT_EQ(SSL_key_update(peer_ssl(), SSL_KEY_UPDATE_REQUESTED), 1);
        ++key_updates;
      }
      const ssize_t n = peer_->send_some(in.data() + sent, std::min<size_t>(1000, total - sent));
      retry = n < 0;
      if (n > 0) sent += static_cast<size_t>(n);
      if (sent == total) {
        ASSERT_TRUE(loop().update_handler(fd, draining ? IOLoop::READ : 0).ok());
      }
    }
  };
  transport_->on_read_wanted_write = [this] { done(); };
  ASSERT_TRUE(loop().add_handler(peer_->fd(), on_peer, IOLoop::WRITE).ok());
  ASSERT_TRUE(wait(absl::Seconds(30)));  // OpenSSL's SSL_read returned WANT_WRITE
  transport_->on_read_wanted_write = nullptr;
  EXPECT_EQ(transport_->read_wanted_write, 1);
  EXPECT_FALSE(fd_ready(stream_->fd(), POLLOUT));
  EXPECT_LT(got.size(), total);
  const int reads = transport_->reads;
  spin(20);
  EXPECT_EQ(transport_->reads, reads) << "read() called again while the socket is unwritable";
  EXPECT_TRUE(fd_ready(stream_->fd(), POLLIN));  // the peer's records wait, readable

  // The peer reads (only the stream's KeyUpdates and tickets: no application data).
  draining = true;
  ASSERT_TRUE(
      loop()
          .update_handler(peer_->fd(), sent < total ? IOLoop::READ | IOLoop::WRITE : IOLoop::READ)
          .ok());
  run_until([&] { return done_calls == 1; });
  loop().remove_handler(peer_->fd());
  spin(2);
  EXPECT_EQ(done_calls, 1);
  EXPECT_TRUE(done_status.ok()) << done_status;
  EXPECT_TRUE(got == in) << "got " << got.size() << " of " << total << " bytes";
  EXPECT_EQ(peer_got, "");
  EXPECT_GT(key_updates, 1);
  EXPECT_EQ(transport_->writes, 0);
  EXPECT_FALSE(stream_->closed());
  // Every answer is out: the stream waits for nothing (a WRITE interest left behind would
  // dispatch on every iteration).
  const uint64_t dispatched = loop().stats().events_dispatched;
  spin(20);
  EXPECT_EQ(loop().stats().events_dispatched, dispatched);
}

// The peer asks for a key update while the stream's own write is blocked halfway through a
// record (the transport holds the rest of the record for the full socket). The stream's
// read must still take the peer's data, its KeyUpdate must not cut into the pending record,
// and once the peer drains, every byte of the write arrives in order.
TEST_P(IOStreamOpenSSLWantTest, KeyUpdateWhileAWriteIsBlockedMidRecordKeepsBothDirections) {
  make_scripted_pair();
  tiny_buffers();
  const std::string out = pattern(5, 1 << 20);
  int flushed = 0;
  absl::Status flush_status = absl::UnknownError("not called");
  stream_->write(out, [&](absl::Status s) {
    ++flushed;
    flush_status = s;
  });
  run_until(
      [&] { return transport_->write_wanted_write > 0 && !fd_ready(stream_->fd(), POLLOUT); });
  int read_calls = 0;
  absl::StatusOr<std::string> got;
  stream_->read_bytes(4, [&](absl::StatusOr<std::string> r) {
    ++read_calls;
    got = std::move(r);
  });
  ASSERT_EQ(SSL_key_update(peer_ssl(), SSL_KEY_UPDATE_REQUESTED), 1);
  peer_write("ping");
  run_until([&] { return read_calls == 1 || stream_->closed(); });
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "ping");
  EXPECT_EQ(flushed, 0);
  std::string received;
  drain_peer_into(received);
  run_until([&] { return flushed == 1 && received.size() >= out.size(); });
  // The peer's request answered: after the new keys, the peer reads what follows.
  stream_->write("after");
  run_until([&] { return received.size() == out.size() + 5; });
  loop().remove_handler(peer_->fd());
  EXPECT_TRUE(flush_status.ok()) << flush_status;
  EXPECT_TRUE(received == out + "after") << received.size();
  EXPECT_FALSE(stream_->closed()) << stream_->error();
}

// WANT_READ during a write. TLS 1.3 has no handshake after the handshake that a write could
// wait for, and the library's contexts refuse TLS 1.2 renegotiation; this test re-enables it
// on one TLS 1.2 connection (both ends) only to drive OpenSSL's real path: the peer starts a
// renegotiation, the stream's read answers its ClientHello, and a write issued while the
// server waits for the client's next flight gets SSL_write's WANT_READ. With reading paused
// the stream must wait for READ readiness for that write (WRITE would spin: the socket is
// writable), finish the renegotiation from the write, and deliver the bytes once.
TEST_P(IOStreamOpenSSLWantTest, WriteDuringRenegotiationWaitsForThePeersFlight) {
  TLSClientOptions tls12;
  tls12.max_version = TLSVersion::kTLS1_2;
  make_scripted_pair(tls12);
  ASSERT_EQ(stream_tls_->protocol_version(), "TLSv1.2");
  SSL* server = stream_tls_->native_handle();
  SSL_clear_options(server, SSL_OP_NO_RENEGOTIATION);
  SSL_set_options(server, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
  SSL_clear_options(peer_ssl(), SSL_OP_NO_RENEGOTIATION);
  ASSERT_FALSE(fd_ready(peer_->fd(), POLLIN));

  int read_calls = 0;
  absl::StatusOr<std::string> got;
  stream_->read_bytes(4, [&](absl::StatusOr<std::string> r) {
    ++read_calls;
    got = std::move(r);
  });
  ASSERT_EQ(SSL_renegotiate(peer_ssl()), 1);
  int ret = SSL_do_handshake(peer_ssl());  // sends the ClientHello
  ASSERT_EQ(ret, -1);
  ASSERT_EQ(SSL_get_error(peer_ssl(), ret), SSL_ERROR_WANT_READ);
  // The stream's read takes the ClientHello and answers with the server's flight.
  run_until([&] { return fd_ready(peer_->fd(), POLLIN); });
  EXPECT_EQ(read_calls, 0);
  EXPECT_EQ(transport_->writes, 0);

  stream_->pause_reading();
  int flushed = 0;
  absl::Status flush_status = absl::UnknownError("not called");
  stream_->write("written mid-renegotiation", [&](absl::Status s) {
    ++flushed;
    flush_status = s;
  });
  EXPECT_EQ(transport_->writes, 1);
  EXPECT_EQ(transport_->write_wanted_read, 1);  // OpenSSL's own SSL_ERROR_WANT_READ
  EXPECT_EQ(stream_->write_buffer_size(), 25u);
  spin(20);
  EXPECT_EQ(transport_->writes, 1) << "write() retried without READ readiness";
  EXPECT_EQ(flushed, 0);

  // The peer goes on with its handshake (its flight makes the stream readable), then reads.
  bool renegotiated = false;
  std::string received;
  ASSERT_TRUE(loop()
                  .add_handler(
                      peer_->fd(),
                      [&](int fd, uint32_t) {
                        if (!renegotiated) {
                          const int r = SSL_do_handshake(peer_ssl());
                          if (r != 1) {
                            const int e = SSL_get_error(peer_ssl(), r);
                            ASSERT_TRUE(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                                << "peer renegotiation failed: " << e;
                            ASSERT_TRUE(loop()
                                            .update_handler(fd, e == SSL_ERROR_WANT_WRITE
                                                                    ? IOLoop::WRITE
                                                                    : IOLoop::READ)
                                            .ok());
                            return;
                          }
                          renegotiated = true;
                          ASSERT_TRUE(loop().update_handler(fd, IOLoop::READ).ok());
                        }
                        while (peer_->recv_some(received, 65536) > 0) {
                        }
                      },
                      IOLoop::WRITE)
                  .ok());
  run_until([&] { return flushed == 1 && received.size() == 25; });
  EXPECT_TRUE(renegotiated);
  EXPECT_EQ(SSL_num_renegotiations(peer_ssl()), 1);
  EXPECT_TRUE(flush_status.ok()) << flush_status;
  EXPECT_EQ(received, "written mid-renegotiation");
  EXPECT_EQ(transport_->write_wanted_read, 1);
  EXPECT_EQ(read_calls, 0);

  stream_->resume_reading();
  peer_write("pong");
  run_until([&] { return read_calls == 1; });
  loop().remove_handler(peer_->fd());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "pong");
  spin(2);
  EXPECT_EQ(flushed, 1);
  EXPECT_EQ(read_calls, 1);
  EXPECT_FALSE(stream_->closed()) << stream_->error();
}

}  // namespace
}  // namespace ioloop::net
