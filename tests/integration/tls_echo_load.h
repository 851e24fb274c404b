// File: integration/tls_echo_load.h
// run_tls_echo_load(): echo_load.h over TLS. N concurrent TLS connections to an echo server
// from one thread (TLSConnection, OpenSSL on non-blocking sockets, one poll()), each checked
// to get its own message back byte for byte. Used by the TLS acceptance test (1,000 clients)
// and by echo_load --tls_ca (10,000, tests/integration/echo_load.sh with TLS=1).
//
// Round 1 connects every client, completes a full handshake (verified against the CA, no
// session resumption) and sends a unique message, keeping at most `window` clients between
// connect and echo so that neither the accept queue nor the server's handshake CPU becomes a
// queue of timeouts. Nothing closes until the end, so after round 1 all N are open at once;
// `on_all_open` runs then, and round 2 sends a second unique message on every connection at
// once and waits for all N echoes. The caller must have raised RLIMIT_NOFILE.
#ifndef IOLOOP_TESTS_INTEGRATION_TLS_ECHO_LOAD_H_
#define IOLOOP_TESTS_INTEGRATION_TLS_ECHO_LOAD_H_

#include <poll.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "integration/echo_load.h"
#include "integration/echo_test_support.h"
#include "integration/tls_echo_client.h"
#include "ioloop/net/socket_address.h"

namespace ioloop::testing {

inline absl::StatusOr<EchoLoadResult> run_tls_echo_load(const net::SocketAddress& addr,
                                                        const TLSClientContext& ctx,
                                                        const EchoLoadOptions& options) {
  const int n = options.clients;
  std::vector<std::unique_ptr<TLSConnection>> clients(n);
  std::vector<std::string> messages(n);
  std::vector<pollfd> pfds(n);
  auto run_round = [&](int round, int window) -> absl::Status {
    const absl::Time deadline = absl::Now() + options.timeout;
    int started = 0, done = 0, in_flight = 0;
    // Pumps client i with `revents`; counts it done when its whole message is back.
    auto pump = [&](int i, short revents) -> absl::Status {
      TLSConnection& c = *clients[i];
      absl::StatusOr<short> want = c.pump(revents);
      if (!want.ok()) {
        return absl::Status(want.status().code(), absl::StrCat("client ", i, " round ", round, ": ",
                                                               want.status().message()));
      }
      const std::string& got = c.received();
      if (got.size() > messages[i].size() ||
          got.compare(0, got.size(), messages[i], 0, got.size()) != 0) {
        return absl::DataLossError(
            absl::StrCat("client ", i, " round ", round, ": echo differs from what it sent"));
      }
      if (got.size() == messages[i].size()) {
        pfds[i].fd = -1;  // done this round; poll() ignores negative fds
        ++done;
        --in_flight;
      } else {
        pfds[i] = {c.fd(), *want, 0};
      }
      return absl::OkStatus();
    };
    for (pollfd& p : pfds) p = {-1, 0, 0};
    while (done < n) {
      while (started < n && in_flight < window) {
        const int i = started++;
        if (!clients[i]) {
          clients[i] = std::make_unique<TLSConnection>();
          if (absl::Status s = clients[i]->start(ctx, addr); !s.ok()) {
            return absl::Status(s.code(), absl::StrCat("client ", i, ": ", s.message()));
          }
        }
        messages[i] = echo_load_message(i, round, options.message_bytes);
        clients[i]->received().clear();
        clients[i]->send(messages[i]);
        ++in_flight;
        if (absl::Status s = pump(i, 0); !s.ok()) return s;
      }
      absl::StatusOr<int> ready = poll_load_round(pfds, deadline, round, done, n);
      if (!ready.ok()) return ready.status();
      for (int i = 0; i<n&& * ready> 0; ++i) {
        if (pfds[i].fd < 0 || pfds[i].revents == 0) continue;
        if (absl::Status s = pump(i, pfds[i].revents); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  };

  EchoLoadResult result;
  result.clients = n;
  absl::Time t0 = absl::Now();
  if (absl::Status s = run_round(1, options.window); !s.ok()) return s;
  result.connect_round = absl::Now() - t0;
  if (options.on_all_open) options.on_all_open();
  t0 = absl::Now();
  if (absl::Status s = run_round(2, n); !s.ok()) return s;
  result.echo_round = absl::Now() - t0;
  return result;  // the connections close (without close_notify) as `clients` goes
}

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_INTEGRATION_TLS_ECHO_LOAD_H_
