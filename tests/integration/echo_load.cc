// echo_load: N concurrent clients against a running echo server. Two modes:
//
//   echo_load HOST PORT CLIENTS [SERVER_PID]
//       Every client connects and is echoed, then all CLIENTS connections, open at once, are
//       echoed again (echo_load.h). Used by tests/integration/echo_load.sh for the
//       10,000-connection run recorded in docs/benchmarks.md.
//
//   echo_load HOST PORT CLIENTS [SERVER_PID] --tls_ca=CA.pem
//       The same over TLS (tls_echo_load.h): every client makes a full handshake, verifying
//       the server as "localhost" against CA.pem, before its first echo. echo_load.sh with
//       TLS=1 uses it.
//
//   echo_load HOST PORT CLIENTS [SERVER_PID] --seconds=S [--messages=M] [--max_message=BYTES]
//             [--reset_percent=P] [--seed=N] [--stall_seconds=T]
//       Soak (echo_soak.h): CLIENTS connections held open, messages of 1..BYTES (4096) bytes
//       back to back on each for S seconds (or until M echoes), every byte and a checksum per
//       message verified; with P > 0, P percent of the messages end in a client reset
//       (SO_LINGER 0) part-way through, followed by a reconnect. Used by tests/soak/run.sh.
//
// With SERVER_PID it prints the server's VmRSS while all connections are open. The last line
// is a summary; in soak mode it reads
//   echo_load: RESULT connections=N held=N messages=M bytes=B resets=R errors=E connect_ms=..
//   traffic_ms=..
// Exits 0 when everything was echoed exactly (soak: no error and all CLIENTS held to the
// end), 1 otherwise, 2 on a usage error.
#include "integration/echo_load.h"

#include <sys/types.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "integration/echo_soak.h"
#include "integration/echo_test_support.h"
#include "integration/tls_echo_load.h"
#include "ioloop/net/socket_address.h"

namespace {

using namespace ioloop::testing;

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s HOST PORT CLIENTS [SERVER_PID] [--seconds=S] [--messages=M] "
               "[--max_message=BYTES] [--reset_percent=P] [--seed=N] [--stall_seconds=T] "
               "[--tls_ca=CA.pem]\n",
               argv0);
  return 2;
}

void print_server_rss(pid_t server_pid, int64_t rss_before, int clients) {
  std::printf("echo_load: %d connections open at once\n", clients);
  if (server_pid > 0) {
    const int64_t rss = proc_status_kib(server_pid, "VmRSS").value_or(0);
    std::printf("echo_load: server VmRSS %lld KiB (was %lld KiB before connecting)\n",
                static_cast<long long>(rss), static_cast<long long>(rss_before));
  }
  std::fflush(stdout);
}

int run_soak(const ioloop::net::SocketAddress& addr, EchoSoakOptions options, pid_t server_pid,
             int64_t rss_before) {
  options.on_all_open = [&] { print_server_rss(server_pid, rss_before, options.connections); };
  absl::StatusOr<EchoSoakResult> result = run_echo_soak(addr, options);
  if (!result.ok()) {
    std::fprintf(stderr, "echo_load: FAILED: %s\n", result.status().ToString().c_str());
    return 1;
  }
  for (const std::string& e : result->first_errors)
    std::printf("echo_load: error: %s\n", e.c_str());
  const bool ok = result->errors == 0 && result->connections_held == options.connections;
  std::printf(
      "echo_load: %s: %d connections held, %lld messages (%lld bytes) echoed and verified, %lld "
      "client resets, %lld errors\n",
      ok ? "OK" : "FAILED", result->connections_held, static_cast<long long>(result->messages),
      static_cast<long long>(result->bytes), static_cast<long long>(result->resets),
      static_cast<long long>(result->errors));
  std::printf(
      "echo_load: RESULT connections=%d held=%d messages=%lld bytes=%lld resets=%lld errors=%lld "
      "connect_ms=%.0f traffic_ms=%.0f\n",
      options.connections, result->connections_held, static_cast<long long>(result->messages),
      static_cast<long long>(result->bytes), static_cast<long long>(result->resets),
      static_cast<long long>(result->errors), absl::ToDoubleMilliseconds(result->connect_phase),
      absl::ToDoubleMilliseconds(result->traffic_phase));
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<const char*> positional;
  EchoSoakOptions soak;
  bool soak_mode = false;
  std::string tls_ca;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (!absl::StartsWith(arg, "--")) {
      positional.push_back(argv[i]);
      continue;
    }
    std::pair<std::string, std::string> kv = absl::StrSplit(arg.substr(2), absl::MaxSplits('=', 1));
    const std::string& key = kv.first;
    const std::string& value = kv.second;
    double d = 0;
    int64_t v = 0;
    uint64_t u = 0;
    if (key == "seconds" && absl::SimpleAtod(value, &d) && d > 0) {
      soak.duration = absl::Seconds(d);
      soak_mode = true;
    } else if (key == "messages" && absl::SimpleAtoi(value, &v) && v > 0) {
      soak.max_messages = v;
      soak_mode = true;
    } else if (key == "max_message" && absl::SimpleAtoi(value, &v) && v > 0) {
      soak.max_message_bytes = static_cast<size_t>(v);
    } else if (key == "reset_percent" && absl::SimpleAtod(value, &d) && d >= 0 && d <= 100) {
      soak.reset_probability = d / 100;
    } else if (key == "seed" && absl::SimpleAtoi(value, &u) && u > 0 && u < (uint64_t{1} << 16)) {
      soak.seed = u;
    } else if (key == "tls_ca" && !value.empty()) {
      tls_ca = value;
    } else if (key == "stall_seconds" && absl::SimpleAtod(value, &d) && d > 0) {
      soak.stall_timeout = absl::Seconds(d);
    } else {
      std::fprintf(stderr, "echo_load: bad option %s\n", arg.c_str());
      return usage(argv[0]);
    }
  }
  uint32_t port = 0;
  int clients = 0;
  pid_t server_pid = 0;
  if (positional.size() < 3 || positional.size() > 4 || !absl::SimpleAtoi(positional[1], &port) ||
      port > 65535 || !absl::SimpleAtoi(positional[2], &clients) || clients < 1 ||
      (positional.size() > 3 && !absl::SimpleAtoi(positional[3], &server_pid))) {
    return usage(argv[0]);
  }
  absl::StatusOr<ioloop::net::SocketAddress> addr =
      ioloop::net::SocketAddress::parse(positional[0], static_cast<uint16_t>(port));
  if (!addr.ok()) {
    std::fprintf(stderr, "echo_load: %s\n", addr.status().ToString().c_str());
    return 2;
  }
  const rlim_t limit = raise_own_fd_limit();
  std::printf("echo_load: open file limit %llu\n", static_cast<unsigned long long>(limit));
  int64_t rss_before = 0;
  if (server_pid > 0) rss_before = proc_status_kib(server_pid, "VmRSS").value_or(0);
  if (soak_mode && !tls_ca.empty()) {
    std::fprintf(stderr, "echo_load: --tls_ca is for the load mode, not the soak\n");
    return usage(argv[0]);
  }
  if (soak_mode) {
    soak.connections = clients;
    return run_soak(*addr, soak, server_pid, rss_before);
  }

  EchoLoadOptions options;
  options.clients = clients;
  options.timeout = absl::Seconds(120);
  options.on_all_open = [&] { print_server_rss(server_pid, rss_before, clients); };
  absl::StatusOr<EchoLoadResult> result;
  if (tls_ca.empty()) {
    result = run_echo_load(*addr, options);
  } else {
    absl::StatusOr<TLSClientContext> ctx = TLSClientContext::create(tls_ca);
    if (!ctx.ok()) {
      std::fprintf(stderr, "echo_load: %s\n", ctx.status().ToString().c_str());
      return 2;
    }
    result = run_tls_echo_load(*addr, *ctx, options);
  }
  if (!result.ok()) {
    std::fprintf(stderr, "echo_load: FAILED: %s\n", result.status().ToString().c_str());
    return 1;
  }
  std::printf(
      "echo_load: OK: %d %sclients; connect + first echo %.0f ms; second echo on all %d open "
      "connections %.0f ms\n",
      result->clients, tls_ca.empty() ? "" : "TLS ",
      absl::ToDoubleMilliseconds(result->connect_round), result->clients,
      absl::ToDoubleMilliseconds(result->echo_round));
  return 0;
}
