// File: net/io_stream_testing.h
// The IOStream test fixture shared by io_stream_{read,write,close}_test.cc, parameterised over
// (poller x transport): the stream under test runs over the plain socket or over a server-side
// TLSTransport, and the test talks to it through a TestPeer on the other end of a socketpair,
// driven synchronously from the test (plain: the raw fd; TLS: a client TLSTransport on it).
// The TLS handshake completes in make_pair(), so every test starts from an established stream
// and means the same on both transports.
#ifndef IOLOOP_TESTS_NET_IO_STREAM_TESTING_H_
#define IOLOOP_TESTS_NET_IO_STREAM_TESTING_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/tls/tls_transport.h"
#include "testing/loop_test_base.h"
#include "testing/tls_fixture.h"

namespace ioloop::net::stream_testing {

// Deterministic, position-dependent bytes, so a reordering or a lost chunk is visible: byte
// p is (p * 131 + (p >> 12) * 7) mod 256. That repeats every kPatternPeriod bytes (131 * 2^20
// and 7 * 2^8 are multiples of 256), so the bytes are copied from one precomputed period.
inline constexpr size_t kPatternPeriod = size_t{1} << 20;

// The pattern from `offset` on, at most `n` bytes and at most one period (a view of a block
// that lives as long as the program).
inline absl::string_view pattern_view(size_t offset, size_t n) {
  static const std::string* const kTwoPeriods = [] {
    auto* s = new std::string(2 * kPatternPeriod, '\0');
    for (size_t p = 0; p < s->size(); ++p) {
      (*s)[p] = static_cast<char>((p * 131 + (p >> 12) * 7) & 0xff);
    }
    return s;
  }();
  return absl::string_view(*kTwoPeriods)
      .substr(offset % kPatternPeriod, std::min(n, kPatternPeriod));
}

inline std::string pattern(size_t offset, size_t n) {
  std::string s;
  s.reserve(n);
  while (s.size() < n) {
    const absl::string_view piece = pattern_view(offset + s.size(), n - s.size());
    s.append(piece.data(), piece.size());
  }
  return s;
}

// Bytes waiting in the kernel to be read from `fd`.
inline int unread(int fd) {
  int n = 0;
  ::ioctl(fd, FIONREAD, &n);
  return n;
}

// What a blocking socket delivers until its end: the bytes, and the errno of the read that
// ended it (0 for EOF; ECONNRESET for a reset).
struct ReadEnd {
  std::string bytes;
  int error = 0;
};
inline ReadEnd read_until_end(int fd) {
  ReadEnd end;
  char buf[256];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) end.bytes.append(buf, static_cast<size_t>(n));
  end.error = n < 0 ? errno : 0;
  return end;
}

// A connected loopback TCP pair (for RST and TCP options; socketpairs cannot reset).
inline std::pair<Socket, Socket> tcp_pair() {
  Socket listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::bind(listener.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::listen(listener.fd(), 1), 0);
  EXPECT_EQ(::getsockname(listener.fd(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  Socket client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(client.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  Socket server(::accept4(listener.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  EXPECT_TRUE(server.valid());
  return {std::move(server), std::move(client)};
}

enum class Wire { kPlain, kTls };

struct StreamCase {
  PollerKind poller;
  Wire wire;
};

inline std::string CaseName(const ::testing::TestParamInfo<StreamCase>& info) {
  return absl::StrCat(poller_kind_name(info.param.poller),
                      info.param.wire == Wire::kTls ? "_tls" : "_plain");
}

inline auto AllCases() {
  return ::testing::Values(
      StreamCase{PollerKind::kEpoll, Wire::kPlain}, StreamCase{PollerKind::kPoll, Wire::kPlain},
      StreamCase{PollerKind::kSelect, Wire::kPlain}, StreamCase{PollerKind::kEpoll, Wire::kTls},
      StreamCase{PollerKind::kPoll, Wire::kTls}, StreamCase{PollerKind::kSelect, Wire::kTls});
}

inline auto PlainCases() {
  return ::testing::Values(StreamCase{PollerKind::kEpoll, Wire::kPlain},
                           StreamCase{PollerKind::kPoll, Wire::kPlain},
                           StreamCase{PollerKind::kSelect, Wire::kPlain});
}

// The far end of the stream under test, driven from the test. Non-blocking.
class TestPeer {
 public:
  explicit TestPeer(Socket socket) : socket_(std::move(socket)) {}
  virtual ~TestPeer() = default;
  Socket& socket() { return socket_; }
  int fd() const { return socket_.fd(); }

  // Hands at most `n` bytes of `data` to the socket: the count accepted, or -1 if it would
  // block. After -1, the next call must offer the same bytes first (the Transport rule).
  virtual ssize_t send_some(const char* data, size_t n) = 0;
  // Appends what can be read now to `out`: > 0 bytes, 0 at the stream's end (FIN or
  // close_notify), -1 if nothing is there (or an error, which also fails the test).
  virtual ssize_t recv_some(std::string& out, size_t limit) = 0;
  // Ends the peer's write side: FIN, or TLS close_notify (no FIN: the socket stays open).
  virtual void shutdown_write() = 0;
  // The bytes `n` plaintext bytes sent in one write take on the wire.
  virtual size_t wire_size(size_t n) const = 0;
  // recv_some() has more to return without the fd becoming readable.
  virtual bool has_pending() const { return false; }
  // Closes the socket (a TLS peer sends its close_notify first, as a well-behaved one does).
  virtual void close() { socket_.reset(); }

 protected:
  Socket socket_;
};

class PlainPeer final : public TestPeer {
 public:
  using TestPeer::TestPeer;
  ssize_t send_some(const char* data, size_t n) override {
    ssize_t r = ::send(fd(), data, n, MSG_NOSIGNAL);
    return r < 0 && errno == EAGAIN ? -1 : r;
  }
  ssize_t recv_some(std::string& out, size_t limit) override {
    std::string buf(limit, '\0');
    ssize_t n = ::recv(fd(), buf.data(), limit, MSG_DONTWAIT);
    if (n > 0) out.append(buf.data(), static_cast<size_t>(n));
    return n;
  }
  void shutdown_write() override { ::shutdown(fd(), SHUT_WR); }
  size_t wire_size(size_t n) const override { return n; }
};

// A TLS client on the peer fd. Blocking steps (a close_notify that does not fit) poll().
class TLSPeer final : public TestPeer {
 public:
  TLSPeer(Socket socket, std::unique_ptr<TLSTransport> transport)
      : TestPeer(std::move(socket)), tls_(std::move(transport)) {}
  TLSTransport& transport() { return *tls_; }

  ssize_t send_some(const char* data, size_t n) override {
    iovec iov = {const_cast<char*>(data), n};
    IOResult r = tls_->write(fd(), &iov, 1);
    if (r.outcome == IOResult::kDone) return static_cast<ssize_t>(r.bytes);
    if (r.outcome == IOResult::kError) {
      ADD_FAILURE() << "peer write: " << r.status;
      return -1;
    }
    return -1;
  }
  // Reads on until OpenSSL wants the socket (past `limit`): plaintext it already holds and an
  // end that follows the bytes announce no readiness. An end found after bytes is returned
  // by the next call (has_pending() says so).
  ssize_t recv_some(std::string& out, size_t limit) override {
    if (end_pending_) return 0;
    Buffer in;
    IOResult r = tls_->read(fd(), in, limit);
    while (r.outcome == IOResult::kDone) r = tls_->read(fd(), in, limit);
    if (r.outcome == IOResult::kError) ADD_FAILURE() << "peer read: " << r.status;
    if (!in.empty()) {
      end_pending_ = r.outcome == IOResult::kEof;
      const size_t n = in.size();
      out += in.retrieve_all_as_string();
      return static_cast<ssize_t>(n);
    }
    return r.outcome == IOResult::kEof ? 0 : -1;
  }
  bool has_pending() const override { return end_pending_; }
  void shutdown_write() override {
    for (;;) {
      IOResult r = tls_->shutdown_write(fd());
      if (r.outcome == IOResult::kDone) return;
      if (r.outcome == IOResult::kError) {
        ADD_FAILURE() << "peer shutdown_write: " << r.status;
        return;
      }
      pollfd p = {fd(), testing::events_for(r), 0};
      if (::poll(&p, 1, testing::kPollMs) <= 0) {
        ADD_FAILURE() << "peer close_notify does not fit";
        return;
      }
    }
  }
  // TLS 1.3 with an AEAD: a 5-byte record header, the inner content type and a 16-byte tag.
  size_t wire_size(size_t n) const override { return n + 22; }
  // First takes in what the stream sent (its session tickets at least): a unix socket closed
  // with unread bytes resets its peer, which a plain peer that read everything never does.
  // A close_notify the stream can no longer receive (it closed first) is not an error here.
  void close() override {
    if (fd() >= 0) {
      Buffer ignored;
      while (tls_->read(fd(), ignored, 65536).outcome == IOResult::kDone) ignored.retrieve_all();
      tls_->shutdown_write(fd());
    }
    socket_.reset();
  }

 private:
  std::unique_ptr<TLSTransport> tls_;
  bool end_pending_ = false;
};

class IOStreamTest : public testing::LoopTestBase,
                     public ::testing::WithParamInterface<StreamCase> {
 protected:
  IOStreamTest() : LoopTestBase(GetParam().poller) {}

  bool tls() const { return GetParam().wire == Wire::kTls; }

  // Reads from the peer end (64 KiB per event) until `total` bytes arrived or the wait (60 s)
  // ends, then stops watching it; returns what arrived. Defined after PeerReader.
  std::string receive(size_t total);
  // The same until the peer end reads its EOF (a TLS peer: close_notify or a FIN; its
  // transport's eof_status() tells which); returns what arrived before it.
  std::string receive_to_end();

  // stream_ over one end of a socketpair (a loopback TCP pair with `over_tcp`: for resets);
  // peer_ drives the other end. Over TLS the stream is the server (as TCPServer makes it) and
  // the handshake has completed on return.
  void make_pair(IOStreamOptions options = {}, bool over_tcp = false) {
    absl::StatusOr<std::pair<Socket, Socket>> pair =
        over_tcp ? absl::StatusOr<std::pair<Socket, Socket>>(tcp_pair()) : Socket::pair();
    ASSERT_TRUE(pair.ok()) << pair.status();
    if (over_tcp) {  // tcp_pair()'s connecting end blocks; the peer never waits
      const int flags = ::fcntl(pair->second.fd(), F_GETFL);
      ASSERT_EQ(::fcntl(pair->second.fd(), F_SETFL, flags | O_NONBLOCK), 0);
    }
    if (!tls()) {
      peer_ = std::make_unique<PlainPeer>(std::move(pair->second));
      stream_ = IOStream::create(loop(), std::move(pair->first), options);
      return;
    }
    static const auto* server_ctx = new std::shared_ptr<const TLSContext>(
        testing::server_context(testing::test_pki().ecdsa_leaf));
    static const auto* client_ctx =
        new std::shared_ptr<const TLSContext>(testing::client_context());
    const int stream_fd = pair->first.fd();
    auto server = (*server_ctx)->new_server_transport(stream_fd);
    auto client = (*client_ctx)->new_client_transport(pair->second.fd(), "localhost", 443);
    ASSERT_TRUE(server.ok()) << server.status();
    ASSERT_TRUE(client.ok()) << client.status();
    auto peer = std::make_unique<TLSPeer>(std::move(pair->second), *std::move(client));
    TLSPeer& tls_peer = *peer;
    peer_ = std::move(peer);
    stream_ = IOStream::create(loop(), std::move(pair->first), options, *std::move(server));
    complete_handshake(tls_peer);
  }

  // Runs the stream's handshake (through the loop) and the peer's (from a loop handler on
  // the peer fd, registered for what each step asks) until both finished.
  void complete_handshake(TLSPeer& peer) {
    bool stream_done = false;
    bool peer_done = false;
    stream_->wait_for_handshake([&](absl::Status s) {
      ASSERT_TRUE(s.ok()) << s;
      stream_done = true;
      if (peer_done) done();
    });
    auto step = [&] {
      IOResult r = peer.transport().handshake(peer.fd());
      if (r.outcome == IOResult::kDone) {
        peer_done = true;
        loop().remove_handler(peer.fd());
        if (stream_done) done();
        return;
      }
      ASSERT_NE(r.outcome, IOResult::kError) << r.status;
      ASSERT_TRUE(loop()
                      .update_handler(peer.fd(), r.outcome == IOResult::kWantWrite ? IOLoop::WRITE
                                                                                   : IOLoop::READ)
                      .ok());
    };
    ASSERT_TRUE(loop()
                    .add_handler(
                        peer.fd(), [&](int, uint32_t) { step(); }, IOLoop::WRITE)
                    .ok());
    ASSERT_TRUE(wait());
    ASSERT_TRUE(peer.transport().handshake_done());
  }

  // Sends all of `s` from the peer. Plain: the kernel takes it at once (a test's small
  // messages). TLS: a write that would block runs the loop until the stream made room.
  void peer_write(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = peer_->send_some(s.data() + off, s.size() - off);
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      ASSERT_TRUE(tls()) << "peer write blocked (errno " << errno << ")";
      spin(1);
    }
  }

  // What a peer sent before it reset the connection is read, not dropped with the connection:
  // an HTTP server's early error response (a 413 sent at once, then a close with the upload
  // unread, which resets) must reach the client still uploading (RFC 9112 sections 9.5, 9.6).
  // Both the answer and the reset are in the kernel before the loop runs, so one event reports
  // them together (EPOLLIN | EPOLLERR); `write_first` finds the reset in a write instead. Over
  // a loopback TCP pair (make_pair(options, over_tcp)), either wire.
  void expect_bytes_before_a_reset_are_read(bool write_first) {
    make_pair({}, /*over_tcp=*/true);
    std::string got;
    absl::Status read_status, close_status;
    stream_->set_close_callback([&](absl::Status s) {
      close_status = s;
      done();
    });
    stream_->read_streaming(
        [&](absl::string_view chunk) { got.append(chunk.data(), chunk.size()); },
        [&](absl::StatusOr<std::string> r) { read_status = r.status(); });
    const std::string answer = "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n";
    peer_write(answer);
    const linger zero = {1, 0};
    ASSERT_EQ(::setsockopt(peer_->fd(), SOL_SOCKET, SO_LINGER, &zero, sizeof zero), 0);
    peer_.reset();  // RST
    absl::Status write_status;
    if (write_first) {
      stream_->write("more of the upload", [&](absl::Status s) { write_status = s; });
    }
    ASSERT_TRUE(wait());
    EXPECT_EQ(got, answer);
    EXPECT_FALSE(read_status.ok());  // the stream did not end cleanly: the reset is reported
    EXPECT_NE(absl::AsciiStrToLower(close_status.message()).find("reset"), absl::string_view::npos)
        << close_status;
    if (write_first) {
      EXPECT_FALSE(write_status.ok());
    }
  }

  // Sends `msg` from the peer in two writes split at `split`, the second once the stream has
  // read the first; then, with `end`, ends the peer's write side.
  void peer_write_split(const std::string& msg, size_t split, bool end = false) {
    peer_write(msg.substr(0, split));
    when_drained([this, msg, split, end] {
      peer_write(msg.substr(split));
      if (end) peer_->shutdown_write();
    });
  }

  // Reads `count` messages ending in `delimiter` from `stream`, one after another (each read
  // started from the previous one's callback), into `got`; done() after the last.
  void read_messages(IOStream& stream, std::string delimiter, size_t count,
                     std::vector<std::string>& got) {
    stream.read_until(delimiter,
                      [this, &stream, delimiter, count, &got](absl::StatusOr<std::string> r) {
                        ASSERT_TRUE(r.ok()) << r.status();
                        got.push_back(*std::move(r));
                        if (got.size() == count) {
                          done();
                        } else {
                          read_messages(stream, delimiter, count, got);
                        }
                      });
  }

  // Sets the stream's close callback: it records the close status in `closed` and ends the
  // wait().
  void done_on_close(absl::Status& closed) {
    stream_->set_close_callback([this, &closed](absl::Status s) {
      closed = s;
      done();
    });
  }

  // Reads everything the peer has right now (non-blocking).
  std::string peer_read_available() {
    std::string out;
    while (peer_->recv_some(out, 65536) > 0) {
    }
    return out;
  }

  // Runs `fn` on a later iteration once the stream has read everything the peer sent.
  void when_drained(std::function<void()> fn) {
    loop().add_callback([this, fn = std::move(fn)]() mutable {
      if (stream_->closed() || unread(stream_->fd()) == 0) {
        fn();
      } else {
        when_drained(std::move(fn));
      }
    });
  }

  // Runs the loop for `n` iterations.
  void spin(int n) {
    std::function<void(int)> step = [&](int left) {
      if (left == 0) {
        done();
        return;
      }
      loop().add_callback([&step, left] { step(left - 1); });
    };
    step(n);
    ASSERT_TRUE(wait());
  }

  std::unique_ptr<TestPeer> peer_;
  std::shared_ptr<IOStream> stream_;
};

// Tests about TCP or the kernel socket itself (RST, TCP_NODELAY, writev's partial sendmsg
// over TCP): the TLS transport has its own tests for the same paths (io_stream_tls_test.cc,
// tls/tls_transport_data_test.cc), and a TLS peer cannot send an RST mid-record.
class IOStreamPlainTest : public IOStreamTest {};

// Reads everything the peer end receives, through a loop handler, at most `per_event`
// bytes per event (plaintext: a TLS peer decrypts, reading on while OpenSSL holds more).
struct PeerReader {
  IOLoop& loop;
  TestPeer& peer;
  size_t per_event;
  std::string received = {};
  bool eof = false;
  std::function<void()> on_data = nullptr;
  void start() {
    ASSERT_TRUE(loop.add_handler(
                        peer.fd(),
                        [this](int, uint32_t) {
                          ssize_t n;
                          do {
                            n = peer.recv_some(received, per_event);
                          } while (n > 0 && peer.has_pending());
                          if (n == 0) {
                            eof = true;
                            loop.remove_handler(peer.fd());
                          }
                          if (on_data) on_data();
                        },
                        IOLoop::READ)
                    .ok());
  }
};

inline std::string IOStreamTest::receive(size_t total) {
  PeerReader reader{loop(), *peer_, 65536};
  reader.on_data = [&] {
    if (reader.received.size() == total) done();
  };
  reader.start();
  EXPECT_TRUE(wait(absl::Seconds(60)));
  loop().remove_handler(peer_->fd());
  return std::move(reader.received);
}

inline std::string IOStreamTest::receive_to_end() {
  PeerReader reader{loop(), *peer_, 65536};
  reader.on_data = [&] {
    if (reader.eof) done();  // the reader stopped watching the peer
  };
  reader.start();
  EXPECT_TRUE(wait(absl::Seconds(60)));
  if (!reader.eof) loop().remove_handler(peer_->fd());
  return std::move(reader.received);
}

}  // namespace ioloop::net::stream_testing

#endif  // IOLOOP_TESTS_NET_IO_STREAM_TESTING_H_
