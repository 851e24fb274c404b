// File: testing/tls_drive.h
// Drives transports by hand, without IOStream or a loop: socket pairs (AF_UNIX or loopback
// TCP, non-blocking), a handshake loop and a byte pump that poll() the two fds and call the
// transports as a stream would (registering exactly the interest each IOResult asks for).
// poll() waits at most kPollMs per round; a round with nothing ready fails the test (it means
// the two sides deadlocked), so no test depends on timing.
#ifndef IOLOOP_TESTS_TESTING_TLS_DRIVE_H_
#define IOLOOP_TESTS_TESTING_TLS_DRIVE_H_

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ioloop/net/buffer.h"
#include "ioloop/net/transport.h"

namespace ioloop::testing {

inline constexpr int kPollMs = 20000;

enum class PairKind { kUnix, kTcp };
inline void PrintTo(PairKind kind, std::ostream* os) {
  *os << (kind == PairKind::kUnix ? "unix" : "tcp");
}

// fd[0]: the client end, fd[1]: the server end. Closed on destruction unless set to -1.
struct StreamPair {
  int fd[2] = {-1, -1};
  explicit StreamPair(PairKind kind = PairKind::kUnix) : kind_(kind) {
    if (kind == PairKind::kUnix) {
      EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd), 0);
      return;
    }
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(::listen(listener, 1), 0);
    EXPECT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    fd[0] = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(::connect(fd[0], reinterpret_cast<sockaddr*>(&addr), len), 0);
    fd[1] = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    EXPECT_GE(fd[1], 0);
    ::close(listener);
    const int one = 1;
    for (int f : fd) ::setsockopt(f, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::fcntl(fd[0], F_SETFL, ::fcntl(fd[0], F_GETFL, 0) | O_NONBLOCK);
  }
  ~StreamPair() {
    for (int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
  StreamPair(const StreamPair&) = delete;
  StreamPair& operator=(const StreamPair&) = delete;

  // Small kernel buffers, so big transfers hit partial writes and WANT_*: `bytes` for the
  // send buffers (and unix sockets' receive side). A TCP receive buffer is set to 128 KiB
  // instead: a receive window below loopback's MSS (64 KiB) makes the sender wait for the
  // 200 ms persist timer on every window (1 MiB took a minute), and a fixed size turns
  // autotuning off, so the buffers in the path stay far below a test's megabyte.
  void shrink_buffers(int bytes = 4096) {
    const int tcp_rcvbuf = 128 * 1024;
    for (int f : fd) {
      ::setsockopt(f, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
      ::setsockopt(f, SOL_SOCKET, SO_RCVBUF, kind_ == PairKind::kUnix ? &bytes : &tcp_rcvbuf,
                   sizeof(int));
    }
  }

 private:
  PairKind kind_;
};

// `n` bytes from a generator seeded with `seed`: the same bytes for the same seed.
inline std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

inline short events_for(const net::IOResult& r) {
  return r.outcome == net::IOResult::kWantWrite ? POLLOUT : POLLIN;
}

// Polls the fds whose events are non-zero; fails the test on a round with nothing ready.
inline bool wait_ready(int fd0, short ev0, int fd1, short ev1) {
  pollfd p[2] = {{fd0, ev0, 0}, {fd1, ev1, 0}};
  const int n = ::poll(p, 2, kPollMs);
  EXPECT_GT(n, 0) << "deadlock: neither side can make progress";
  return n > 0;
}

// Moves up to `max` bytes from one fd to another (non-blocking both); returns how many.
inline size_t relay(int from, int to, size_t max = SIZE_MAX) {
  size_t moved = 0;
  char buf[4096];
  while (moved < max) {
    const ssize_t n = ::read(from, buf, std::min(sizeof(buf), max - moved));
    if (n <= 0) break;
    EXPECT_EQ(::write(to, buf, static_cast<size_t>(n)), n);
    moved += static_cast<size_t>(n);
  }
  return moved;
}

// client <-> a.fd[0] | a.fd[1] <-relay-> b.fd[0] | b.fd[1] <-> server: runs both handshakes
// with the test carrying every byte between the pairs, so that afterwards it decides what
// reaches the other side and when. Fails the test unless both complete.
inline void handshake_through_relay(net::Transport& client, StreamPair& a, net::Transport& server,
                                    StreamPair& b) {
  net::IOResult c = net::IOResult::want_write(), s = net::IOResult::want_write();
  for (int round = 0; round < 100; ++round) {
    if (c.outcome != net::IOResult::kDone) c = client.handshake(a.fd[0]);
    relay(a.fd[1], b.fd[0]);
    if (s.outcome != net::IOResult::kDone) s = server.handshake(b.fd[1]);
    relay(b.fd[0], a.fd[1]);
    if (c.outcome == net::IOResult::kDone && s.outcome == net::IOResult::kDone) break;
    ASSERT_NE(c.outcome, net::IOResult::kError) << c.status;
    ASSERT_NE(s.outcome, net::IOResult::kError) << s.status;
  }
  ASSERT_EQ(c.outcome, net::IOResult::kDone);
  ASSERT_EQ(s.outcome, net::IOResult::kDone);
}

struct HandshakeResults {
  net::IOResult client;
  net::IOResult server;
  int want_writes = 0;  // kWantWrite results seen on either side
};

// Runs both handshakes to kDone or kError. A side that fails shuts its socket down (as its
// stream would close), so the other side sees the end instead of waiting forever.
inline HandshakeResults drive_handshake(net::Transport& client, int cfd, net::Transport& server,
                                        int sfd) {
  HandshakeResults r{net::IOResult::want_write(), net::IOResult::want_write()};
  auto finished = [](const net::IOResult& x) {
    return x.outcome == net::IOResult::kDone || x.outcome == net::IOResult::kError;
  };
  for (int round = 0; round < 100000; ++round) {
    if (!finished(r.client)) {
      r.client = client.handshake(cfd);
      if (r.client.outcome == net::IOResult::kWantWrite) ++r.want_writes;
      if (r.client.outcome == net::IOResult::kError) ::shutdown(cfd, SHUT_RDWR);
    }
    if (!finished(r.server)) {
      r.server = server.handshake(sfd);
      if (r.server.outcome == net::IOResult::kWantWrite) ++r.want_writes;
      if (r.server.outcome == net::IOResult::kError) ::shutdown(sfd, SHUT_RDWR);
    }
    if (finished(r.client) && finished(r.server)) {
      // As a stream does at the end of its dispatch: what a finished handshake held back (a
      // TLS 1.3 server's session tickets) goes out. It is a few hundred bytes: it fits.
      EXPECT_EQ(client.flush(cfd).outcome, net::IOResult::kDone);
      EXPECT_EQ(server.flush(sfd).outcome, net::IOResult::kDone);
      return r;
    }
    if (!wait_ready(cfd, finished(r.client) ? 0 : events_for(r.client), sfd,
                    finished(r.server) ? 0 : events_for(r.server))) {
      break;
    }
  }
  ADD_FAILURE() << "handshake did not finish";
  return r;
}

// Statistics of one pump() run.
struct PumpStats {
  size_t write_calls = 0;
  size_t partial_writes = 0;  // kDone with fewer bytes than offered
  size_t write_wants = 0;     // kWantRead/kWantWrite from write()
  size_t read_wants = 0;      // kWantRead/kWantWrite from read()
  size_t reads_done = 0;
};

// Sends `data` from `writer` to `reader` and returns what arrived (stops at data.size()
// bytes, an end or an error; `end` receives the reader's last non-kDone result). The writer
// offers the rest as up to 64 iovecs cut at varying sizes (1 B to 40 KiB), so small buffers
// are gathered and big ones passed whole; after a kWant* it offers the same bytes first, cut
// differently, as the Transport contract allows.
inline std::string pump(net::Transport& writer, int wfd, net::Transport& reader, int rfd,
                        const std::string& data, size_t read_limit, PumpStats* stats = nullptr,
                        net::IOResult* end = nullptr) {
  static constexpr size_t kCuts[] = {1, 7, 100, 5000, 16384, 40000, 3, 17000, 1024};
  PumpStats local;
  PumpStats& st = stats != nullptr ? *stats : local;
  net::Buffer in;
  size_t sent = 0;
  net::IOResult wr = net::IOResult::done(0);
  net::IOResult rd = net::IOResult::done(0);
  size_t cut = 0;
  for (int round = 0; round < 10000000; ++round) {
    bool progressed = false;
    // Write until the writer is blocked (or done), then read: with the kernel buffers
    // smaller than the data, every transfer of enough bytes meets kWantWrite.
    while (sent < data.size()) {
      iovec iov[64];
      int count = 0;
      for (size_t off = sent; off < data.size() && count < 64; ++count) {
        const size_t n = std::min(kCuts[(cut + count) % std::size(kCuts)], data.size() - off);
        iov[count] = {const_cast<char*>(data.data() + off), n};
        off += n;
      }
      ++cut;
      size_t offered = 0;
      for (int i = 0; i < count; ++i) offered += iov[i].iov_len;
      ++st.write_calls;
      wr = writer.write(wfd, iov, count);
      if (wr.outcome == net::IOResult::kDone) {
        if (wr.bytes < offered) ++st.partial_writes;
        sent += wr.bytes;
        progressed = progressed || wr.bytes > 0;
        continue;
      }
      if (wr.outcome == net::IOResult::kError) {
        ADD_FAILURE() << "write: " << wr.status;
        if (end != nullptr) *end = wr;
        return in.retrieve_all_as_string();
      }
      ++st.write_wants;
      break;
    }
    // Read until the reader wants the socket (as a stream does), or stop at an end.
    for (;;) {
      rd = reader.read(rfd, in, read_limit);
      if (rd.outcome != net::IOResult::kDone) break;
      ++st.reads_done;
      progressed = progressed || rd.bytes > 0;
      if (rd.drained && !reader.has_buffered_input()) {
        rd = net::IOResult::want_read();
        break;
      }
    }
    if (rd.outcome == net::IOResult::kEof || rd.outcome == net::IOResult::kError) break;
    ++st.read_wants;
    if (in.size() >= data.size()) break;
    if (progressed) continue;
    const short wev = sent < data.size() ? events_for(wr) : 0;
    if (!wait_ready(wfd, wev, rfd, events_for(rd))) break;
  }
  if (end != nullptr) *end = rd;
  return in.retrieve_all_as_string();
}

// Reads until a non-kDone result other than kWant* (kEof or kError), waiting with poll.
inline net::IOResult read_to_end(net::Transport& reader, int rfd, std::string* got) {
  net::Buffer in;
  for (int round = 0; round < 1000000; ++round) {
    const net::IOResult r = reader.read(rfd, in, 64 * 1024);
    if (r.outcome == net::IOResult::kDone) continue;
    if (r.outcome == net::IOResult::kEof || r.outcome == net::IOResult::kError) {
      if (got != nullptr) *got += in.retrieve_all_as_string();
      return r;
    }
    pollfd p = {rfd, events_for(r), 0};
    if (::poll(&p, 1, kPollMs) <= 0) break;
  }
  ADD_FAILURE() << "read_to_end: no end";
  return net::IOResult::error(absl::DeadlineExceededError("no end"));
}

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_TESTING_TLS_DRIVE_H_
