// echo_load: N concurrent clients against a running echo server (see echo_load.h for what
// it checks). Used by tests/integration/echo_load.sh for the 10,000-connection run recorded
// in docs/benchmarks.md.
//
//   echo_load HOST PORT CLIENTS [SERVER_PID]
//
// With SERVER_PID it prints the server's VmRSS while all connections are open. Exits 0 when
// every client got both of its echoes, 1 otherwise.
#include "integration/echo_load.h"

#include <sys/types.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "integration/echo_test_support.h"
#include "ioloop/net/socket_address.h"

int main(int argc, char** argv) {
  using namespace ioloop::testing;
  uint32_t port = 0;
  int clients = 0;
  pid_t server_pid = 0;
  if (argc < 4 || !absl::SimpleAtoi(argv[2], &port) || port > 65535 ||
      !absl::SimpleAtoi(argv[3], &clients) || clients < 1 ||
      (argc > 4 && !absl::SimpleAtoi(argv[4], &server_pid))) {
    std::fprintf(stderr, "usage: %s HOST PORT CLIENTS [SERVER_PID]\n", argv[0]);
    return 2;
  }
  absl::StatusOr<ioloop::net::SocketAddress> addr =
      ioloop::net::SocketAddress::parse(argv[1], static_cast<uint16_t>(port));
  if (!addr.ok()) {
    std::fprintf(stderr, "echo_load: %s\n", addr.status().ToString().c_str());
    return 2;
  }
  const rlim_t limit = raise_own_fd_limit();
  std::printf("echo_load: open file limit %llu\n", static_cast<unsigned long long>(limit));
  EchoLoadOptions options;
  options.clients = clients;
  options.timeout = absl::Seconds(120);
  int64_t rss_before = 0;
  if (server_pid > 0) rss_before = proc_status_kib(server_pid, "VmRSS").value_or(0);
  options.on_all_open = [&] {
    std::printf("echo_load: %d connections open at once\n", clients);
    if (server_pid > 0) {
      const int64_t rss = proc_status_kib(server_pid, "VmRSS").value_or(0);
      std::printf("echo_load: server VmRSS %lld KiB (was %lld KiB before connecting)\n",
                  static_cast<long long>(rss), static_cast<long long>(rss_before));
    }
  };
  absl::StatusOr<EchoLoadResult> result = run_echo_load(*addr, options);
  if (!result.ok()) {
    std::fprintf(stderr, "echo_load: FAILED: %s\n", result.status().ToString().c_str());
    return 1;
  }
  std::printf(
      "echo_load: OK: %d clients; connect + first echo %.0f ms; second echo on all %d open "
      "connections %.0f ms\n",
      result->clients, absl::ToDoubleMilliseconds(result->connect_round), result->clients,
      absl::ToDoubleMilliseconds(result->echo_round));
  return 0;
}
