// File: integration/echo_load.h
// run_echo_load(): opens N concurrent connections to an echo server from one thread with
// non-blocking sockets and poll(), and checks that every client gets its own message back.
// Used by the 2,000-client integration test and by the echo_load tool (10,000 clients, see
// docs/benchmarks.md).
//
// Round 1 connects every client and sends a unique message on it, keeping at most `window`
// clients connected-but-not-yet-echoed, so the server's accept queue never overflows (an
// overflow costs a 1 s SYN retransmit, not a failure). No connection is closed until the
// end, so after round 1 all N are open at once; round 2 then sends a second unique message
// on every connection at the same time and waits for all N echoes, and `on_all_open` runs
// between the rounds (e.g. to read the server's RSS). The caller must have raised its own
// RLIMIT_NOFILE (raise_own_fd_limit()).
#ifndef IOLOOP_TESTS_INTEGRATION_ECHO_LOAD_H_
#define IOLOOP_TESTS_INTEGRATION_ECHO_LOAD_H_

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
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

struct EchoLoadOptions {
  int clients = 2000;
  size_t message_bytes = 64;  // at least 32 (a unique header plus pattern bytes)
  int window = 256;           // most clients connected and still waiting for round 1's echo
  absl::Duration timeout = absl::Seconds(60);
  std::function<void()> on_all_open;  // runs with all `clients` connections open
};

struct EchoLoadResult {
  int clients = 0;
  absl::Duration connect_round;  // round 1: connect + first echo, all clients
  absl::Duration echo_round;     // round 2: one echo on every open connection at once
};

// Client i's unique message of `round`: a readable header, then pattern bytes up to `bytes`.
inline std::string echo_load_message(int i, int round, size_t bytes) {
  std::string m = absl::StrCat("client ", i, " round ", round, " ");
  m +=
      pattern(bytes > m.size() ? bytes - m.size() : 0, static_cast<uint64_t>(i) * 1000003u + round);
  return m;
}

// One poll() of a load round over `pfds`, bounded by `deadline`: how many fds are ready (0
// after EINTR), or DeadlineExceeded saying how many of the `n` clients were `done` in `round`.
inline absl::StatusOr<int> poll_load_round(std::vector<pollfd>& pfds, absl::Time deadline,
                                           int round, int done, int n) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError(
        absl::StrCat("round ", round, ": ", done, " of ", n, " clients echoed in time"));
  }
  const int ready =
      ::poll(pfds.data(), pfds.size(), static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
  if (ready < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "poll");
  return ready < 0 ? 0 : ready;
}

inline absl::StatusOr<EchoLoadResult> run_echo_load(const net::SocketAddress& addr,
                                                    const EchoLoadOptions& options) {
  struct Client {
    int fd = -1;
    bool connected = false;
    std::string message;  // this round's
    size_t sent = 0;
    size_t received = 0;
  };
  const int n = options.clients;
  std::vector<Client> clients(n);
  std::vector<pollfd> pfds(n);
  auto close_all = [&] {
    for (Client& c : clients) {
      if (c.fd >= 0) ::close(c.fd);
    }
  };
  // Runs poll() until `done` clients have their echo in this round, starting up to `window`
  // new connections as earlier ones finish (round 1).
  auto run_round = [&](int round, int window) -> absl::Status {
    const absl::Time deadline = absl::Now() + options.timeout;
    int started = 0, done = 0, in_flight = 0;
    auto start_client = [&](int i) -> absl::Status {
      Client& c = clients[i];
      c.message = echo_load_message(i, round, options.message_bytes);
      c.sent = c.received = 0;
      if (c.fd < 0) {
        c.fd = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c.fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("socket() for client ", i));
        if (::connect(c.fd, addr.get(), addr.length()) == 0) {
          c.connected = true;
        } else if (errno != EINPROGRESS) {
          return absl::ErrnoToStatus(errno, absl::StrCat("connect() client ", i));
        }
      }
      pfds[i] = {c.fd, static_cast<short>(c.connected ? POLLIN | POLLOUT : POLLOUT), 0};
      ++in_flight;
      return absl::OkStatus();
    };
    for (pollfd& p : pfds) p = {-1, 0, 0};
    while (done < n) {
      while (started < n && in_flight < window) {
        if (absl::Status s = start_client(started++); !s.ok()) return s;
      }
      absl::StatusOr<int> ready = poll_load_round(pfds, deadline, round, done, n);
      if (!ready.ok()) return ready.status();
      for (int i = 0; i<n&& * ready> 0; ++i) {
        pollfd& p = pfds[i];
        if (p.fd < 0 || p.revents == 0) continue;
        Client& c = clients[i];
        if (!c.connected) {
          int err = 0;
          socklen_t len = sizeof err;
          ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (err != 0) return absl::ErrnoToStatus(err, absl::StrCat("connect client ", i));
          c.connected = true;
        }
        if (c.sent < c.message.size() && (p.revents & POLLOUT)) {
          ssize_t r =
              ::send(c.fd, c.message.data() + c.sent, c.message.size() - c.sent, MSG_NOSIGNAL);
          if (r < 0 && errno != EAGAIN && errno != EINTR) {
            return absl::ErrnoToStatus(errno, absl::StrCat("send client ", i));
          }
          if (r > 0) c.sent += static_cast<size_t>(r);
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
          char buf[4096];
          ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
          if (r == 0) return absl::UnavailableError(absl::StrCat("client ", i, ": early EOF"));
          if (r < 0 && errno != EAGAIN && errno != EINTR) {
            return absl::ErrnoToStatus(errno, absl::StrCat("recv client ", i));
          }
          if (r > 0) {
            if (c.received + static_cast<size_t>(r) > c.sent ||
                std::memcmp(buf, c.message.data() + c.received, static_cast<size_t>(r)) != 0) {
              return absl::DataLossError(
                  absl::StrCat("client ", i, " round ", round, ": echo differs from what it sent"));
            }
            c.received += static_cast<size_t>(r);
          }
        }
        if (c.received == c.message.size()) {
          p.fd = -1;  // this round is done for it; poll() ignores negative fds
          ++done;
          --in_flight;
        } else {
          p.events = static_cast<short>(POLLIN | (c.sent < c.message.size() ? POLLOUT : 0));
        }
      }
    }
    return absl::OkStatus();
  };

  EchoLoadResult result;
  result.clients = n;
  absl::Time t0 = absl::Now();
  if (absl::Status s = run_round(1, options.window); !s.ok()) {
    close_all();
    return s;
  }
  result.connect_round = absl::Now() - t0;
  if (options.on_all_open) options.on_all_open();
  t0 = absl::Now();
  if (absl::Status s = run_round(2, n); !s.ok()) {
    close_all();
    return s;
  }
  result.echo_round = absl::Now() - t0;
  close_all();
  return result;
}

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_INTEGRATION_ECHO_LOAD_H_
