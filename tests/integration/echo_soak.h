// File: integration/echo_soak.h
// run_echo_soak(): holds N concurrent connections to an echo server for a while, each one
// exchanging messages of random length, and checks every echoed byte. Used by the echo_load
// tool's soak mode (tests/soak/run.sh, `make soak`).
//
// Traffic: each connection sends one message at a time (1..max_message_bytes bytes, drawn per
// message) and waits for its whole echo before the next. A connection's bytes are a window of
// the endless pattern stream of echo_test_support.h at an offset unique to that connection, so
// every received byte is compared with the byte sent at the same stream position (a lost,
// duplicated, reordered or foreign byte is caught at once), and a 64-bit FNV-1a checksum of
// everything sent is compared with one of everything received at the end of each message.
//
// Resets: with `reset_probability` > 0, each message is, with that probability, cut off by
// the client at a random point (part-way through sending it, or part-way through reading its
// echo): SO_LINGER 0 then close(), so the server sees a RST while it may have echo queued.
// The client reconnects at once on a fresh stream and goes on; bytes verified before a reset
// count. Any reset or EOF the client did not cause is an error.
//
// Bounds: connecting all N (at most `connect_window` pending at a time) must finish within
// `connect_timeout`; traffic runs for `duration` or until `max_messages` echoes were verified;
// then messages in flight get `drain_timeout` to finish. A connection that makes no progress
// for `stall_timeout` while it waits for its echo is an error (and is reconnected). The run
// stops early after `max_errors` errors. The caller must have raised RLIMIT_NOFILE.
#ifndef IOLOOP_TESTS_INTEGRATION_ECHO_SOAK_H_
#define IOLOOP_TESTS_INTEGRATION_ECHO_SOAK_H_

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "integration/echo_test_support.h"
#include "ioloop/net/socket_address.h"

namespace ioloop::testing {

struct EchoSoakOptions {
  int connections = 10000;
  absl::Duration duration = absl::Seconds(60);
  int64_t max_messages = 0;  // stop sending after this many verified echoes; 0: no limit
  size_t max_message_bytes = 4096;
  double reset_probability = 0;  // per message, in [0, 1]
  uint64_t seed = 1;
  int connect_window = 256;
  absl::Duration connect_timeout = absl::Seconds(120);
  absl::Duration drain_timeout = absl::Seconds(60);
  absl::Duration stall_timeout = absl::Seconds(30);
  int64_t max_errors = 100;
  std::function<void()> on_all_open;  // runs once all `connections` are open, before traffic
};

struct EchoSoakResult {
  int connections_held = 0;  // connected at the end, after the drain (== connections unless errors)
  int64_t messages = 0;      // echoes verified completely
  int64_t bytes = 0;         // echoed bytes verified (including those before a reset)
  int64_t resets = 0;        // connections the client reset on purpose (then reconnected)
  int64_t errors = 0;
  std::vector<std::string> first_errors;  // the first few, for the log
  absl::Duration connect_phase;
  absl::Duration traffic_phase;  // traffic plus drain
};

// FNV-1a, 64 bits, over `n` bytes, continuing from `h`.
inline uint64_t fnv1a64(uint64_t h, const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(p[i]);
    h *= 0x100000001B3ull;
  }
  return h;
}
inline constexpr uint64_t kFnv1a64Init = 0xCBF29CE484222325ull;

inline absl::StatusOr<EchoSoakResult> run_echo_soak(const net::SocketAddress& addr,
                                                    const EchoSoakOptions& options) {
  constexpr uint64_t kNever = ~uint64_t{0};
  struct Conn {
    int fd = -1;
    bool connected = false;
    bool greeted = false;  // its first echo arrived: the server has surely accepted it
    uint32_t events = 0;   // registered with epoll
    uint64_t stream = 0;   // pattern offset of this connection's byte 0
    uint64_t sent = 0, received = 0;
    uint64_t message_end = kNever;  // stream position ending the message in flight
    uint64_t send_limit = kNever;   // reset once `sent` reaches this
    uint64_t recv_limit = kNever;   // reset once `received` reaches this
    uint64_t sum_sent = kFnv1a64Init, sum_received = kFnv1a64Init;
    absl::Time last_progress;
  };
  const int n = options.connections;
  if (n < 1 || options.max_message_bytes < 1 || options.reset_probability < 0 ||
      options.reset_probability > 1 || options.connect_window < 1) {
    return absl::InvalidArgumentError(
        "echo soak: connections, max_message_bytes and connect_window must be positive and "
        "reset_probability in [0, 1]");
  }
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return absl::ErrnoToStatus(errno, "epoll_create1");
  std::vector<Conn> conns(n);
  std::mt19937_64 rng(options.seed);
  uint64_t next_stream = options.seed << 48;  // each connection gets 2^32 stream bytes
  EchoSoakResult result;
  // kOpening: connections are opened and echo one message each, then are held idle until
  // all are open. kTraffic: messages back to back on every connection. kDraining: no new
  // messages; the ones in flight finish.
  enum class Phase { kOpening, kTraffic, kDraining } phase = Phase::kOpening;
  int greeted = 0;        // connections whose first echo arrived
  int connecting = 0;     // connect() in progress
  int64_t in_flight = 0;  // messages started and not finished
  // Bumped on every (re)connect of a connection and carried in its epoll events, so that an
  // event of a closed socket, still in the batch being handled, is not applied to the next.
  std::vector<uint32_t> generation(n, 0);

  auto error = [&](std::string what) {
    ++result.errors;
    if (result.first_errors.size() < 10) result.first_errors.push_back(std::move(what));
  };
  auto set_events = [&](int i, uint32_t events) {
    Conn& c = conns[i];
    if (c.events == events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = (uint64_t{generation[i]} << 32) | static_cast<uint32_t>(i);
    ::epoll_ctl(ep, c.events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd, &ev);
    c.events = events;
  };
  auto close_conn = [&](int i, bool reset) {
    Conn& c = conns[i];
    if (c.fd < 0) return;
    if (reset) {
      linger l = {1, 0};
      ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    ::close(c.fd);  // also removes it from the epoll set
    if (c.greeted) --greeted;
    if (!c.connected) --connecting;
    if (c.message_end != kNever) --in_flight;
    c = Conn{};
  };
  // Starts connection i's next message, unless it is time for it to be idle. With
  // `send_now`, the caller calls on_writable() next (saving an epoll_ctl per message).
  auto start_message = [&](int i, bool send_now = false) {
    Conn& c = conns[i];
    c.message_end = c.send_limit = c.recv_limit = kNever;
    if (phase == Phase::kDraining || (phase == Phase::kOpening && c.greeted)) {
      set_events(i, EPOLLIN);  // only an unexpected EOF or reset can come now
      return;
    }
    const uint64_t length =
        std::uniform_int_distribution<uint64_t>(1, options.max_message_bytes)(rng);
    c.message_end = c.sent + length;
    ++in_flight;
    if (phase == Phase::kTraffic && options.reset_probability > 0 &&
        std::uniform_real_distribution<double>(0, 1)(rng) < options.reset_probability) {
      // A point among the 2 * length byte events of this message: the first half while
      // sending it, the second while reading its echo.
      const uint64_t point = std::uniform_int_distribution<uint64_t>(1, 2 * length - 1)(rng);
      if (point < length) {
        c.send_limit = c.sent + point;
      } else {
        c.recv_limit = c.sent + (point - length) + 1;
      }
    }
    c.last_progress = absl::Now();
    if (!send_now) set_events(i, EPOLLIN | EPOLLOUT);
  };
  // Opens connection i (its first message starts once connected). False on a failure,
  // which is counted.
  auto connect_conn = [&](int i) {
    Conn& c = conns[i];
    c = Conn{};
    ++generation[i];
    c.last_progress = absl::Now();
    c.fd = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      error(absl::StrCat("connection ", i, ": socket(): ", std::strerror(errno)));
      return false;
    }
    c.stream = next_stream;
    next_stream += uint64_t{1} << 32;
    if (::connect(c.fd, addr.get(), addr.length()) == 0) {
      c.connected = true;
      start_message(i);
    } else if (errno == EINPROGRESS) {
      ++connecting;
      set_events(i, EPOLLOUT);
    } else {
      error(absl::StrCat("connection ", i, ": connect(): ", std::strerror(errno)));
      ::close(c.fd);
      c.fd = -1;
      return false;
    }
    return true;
  };
  // A failure the client did not cause: counted, and the connection starts over.
  auto fail_conn = [&](int i, const std::string& what) {
    error(absl::StrCat("connection ", i, ": ", what));
    close_conn(i, /*reset=*/false);
    if (phase != Phase::kDraining) connect_conn(i);
  };
  auto reset_conn = [&](int i) {
    ++result.resets;
    close_conn(i, /*reset=*/true);
    if (phase != Phase::kDraining) connect_conn(i);
  };
  // Both return false when the connection was closed (and maybe reopened).
  auto on_writable = [&](int i) {
    Conn& c = conns[i];
    if (!c.connected) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        fail_conn(i, absl::StrCat("connect: ", std::strerror(err)));
        return false;
      }
      c.connected = true;
      --connecting;
      c.last_progress = absl::Now();
      start_message(i);
    }
    if (c.message_end == kNever) return true;  // idle
    char buf[64 * 1024];
    while (c.sent < c.message_end) {
      const uint64_t until = std::min(c.message_end, c.send_limit);
      if (c.sent == until) break;
      const size_t len = static_cast<size_t>(std::min<uint64_t>(until - c.sent, sizeof buf));
      for (size_t k = 0; k < len; ++k) buf[k] = pattern_byte(c.stream + c.sent + k);
      const ssize_t r = ::send(c.fd, buf, len, MSG_NOSIGNAL);
      if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) {
          set_events(i, EPOLLIN | EPOLLOUT);
          return true;
        }
        fail_conn(i, absl::StrCat("send: ", std::strerror(errno)));
        return false;
      }
      c.sum_sent = fnv1a64(c.sum_sent, buf, static_cast<size_t>(r));
      c.sent += static_cast<uint64_t>(r);
      c.last_progress = absl::Now();
    }
    if (c.sent == c.send_limit) {
      reset_conn(i);
      return false;
    }
    if (c.sent == c.message_end) set_events(i, EPOLLIN);
    return true;
  };
  auto on_readable = [&](int i) {
    Conn& c = conns[i];
    char buf[64 * 1024];
    while (true) {
      const ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
      if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        fail_conn(i, absl::StrCat("recv: ", std::strerror(errno)));
        return;
      }
      if (r == 0) {
        fail_conn(i, "unexpected EOF");
        return;
      }
      const auto got = static_cast<uint64_t>(r);
      if (c.received + got > c.sent) {
        fail_conn(i, absl::StrCat("echo of ", c.received + got - c.sent, " bytes never sent"));
        return;
      }
      for (uint64_t k = 0; k < got; ++k) {
        if (buf[k] != pattern_byte(c.stream + c.received + k)) {
          fail_conn(i, absl::StrCat("echo differs at byte ", c.received + k));
          return;
        }
      }
      c.sum_received = fnv1a64(c.sum_received, buf, static_cast<size_t>(r));
      c.received += got;
      result.bytes += r;
      c.last_progress = absl::Now();
      if (c.received >= c.recv_limit) {
        reset_conn(i);
        return;
      }
      if (c.received == c.message_end) {
        if (c.sum_received != c.sum_sent) {
          fail_conn(i, "checksum of the echo differs from that of the bytes sent");
          return;
        }
        ++result.messages;
        --in_flight;
        c.message_end = kNever;
        if (!c.greeted) {
          c.greeted = true;
          ++greeted;
        }
        if (options.max_messages > 0 && result.messages >= options.max_messages &&
            phase == Phase::kTraffic) {
          phase = Phase::kDraining;
        }
        start_message(i, /*send_now=*/true);
        if (c.message_end != kNever) {
          on_writable(i);
          return;
        }
      }
    }
  };

  const absl::Time t_open = absl::Now();
  absl::Time t_traffic = absl::InfiniteFuture();
  absl::Time deadline = t_open + options.connect_timeout;  // of the current phase
  absl::Time next_stall_check = t_open + absl::Seconds(1);
  std::vector<epoll_event> events(1024);
  int started = 0;
  bool drain_started = false;
  while (result.errors < options.max_errors) {
    const absl::Time now = absl::Now();
    if (phase == Phase::kOpening) {
      while (started < n && started - greeted < options.connect_window) {
        connect_conn(started++);
      }
      if (greeted == n) {
        result.connect_phase = now - t_open;
        if (options.on_all_open) options.on_all_open();
        phase = Phase::kTraffic;
        t_traffic = absl::Now();
        deadline = t_traffic + options.duration;
        for (int i = 0; i < n; ++i) start_message(i);
        continue;
      }
      if (now >= deadline) {
        error(absl::StrCat("only ", greeted, " of ", n, " connections open and echoed after ",
                           absl::FormatDuration(options.connect_timeout)));
        break;
      }
    } else if (phase == Phase::kTraffic && now >= deadline) {
      phase = Phase::kDraining;
    }
    if (phase == Phase::kDraining) {
      if (!drain_started) {
        drain_started = true;
        deadline = now + options.drain_timeout;
        // The messages in flight finish without their planned resets.
        for (Conn& c : conns) c.send_limit = c.recv_limit = kNever;
      }
      if (in_flight == 0 && connecting == 0) break;
      if (now >= deadline) {
        error(absl::StrCat(in_flight, " messages unanswered after the drain timeout"));
        break;
      }
    }
    if (now >= next_stall_check) {
      next_stall_check = now + absl::Seconds(1);
      for (int i = 0; i < n; ++i) {
        const Conn& c = conns[i];
        if (c.fd >= 0 && (c.message_end != kNever || !c.connected) &&
            now - c.last_progress > options.stall_timeout) {
          fail_conn(i, absl::StrCat("no progress for ", absl::FormatDuration(options.stall_timeout),
                                    " (", c.connected ? "sent " : "connecting; sent ", c.sent,
                                    ", echoed ", c.received, ")"));
        }
      }
    }
    const int ready = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 200);
    if (ready < 0 && errno != EINTR) {
      error(absl::StrCat("epoll_wait: ", std::strerror(errno)));
      break;
    }
    for (int k = 0; k < ready; ++k) {
      const int i = static_cast<int>(events[k].data.u64 & 0xFFFFFFFFu);
      if (conns[i].fd < 0 || generation[i] != events[k].data.u64 >> 32) continue;
      const uint32_t ev = events[k].events;
      if (!conns[i].connected || (ev & EPOLLOUT)) {
        if (!on_writable(i)) continue;
      }
      if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(i);
    }
  }
  for (const Conn& c : conns) result.connections_held += c.connected ? 1 : 0;
  if (t_traffic != absl::InfiniteFuture()) result.traffic_phase = absl::Now() - t_traffic;
  for (int i = 0; i < n; ++i) close_conn(i, /*reset=*/false);
  ::close(ep);
  return result;
}

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_INTEGRATION_ECHO_SOAK_H_
