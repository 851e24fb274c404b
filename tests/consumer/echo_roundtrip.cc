// echo_roundtrip: an echo server on an ephemeral port and one client round trip against it,
// in one process on one loop. Prints "echo: <line>" and exits 0 only if the line came back
// byte for byte. Built against an installed ioloop (tests/consumer/CMakeLists.txt).
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/tcp_client.h"
#include "ioloop/net/tcp_server.h"

int main() {
  using ioloop::net::IOStream;
  ioloop::IOLoop loop;
  // The echo server: every chunk read goes straight back.
  ioloop::net::TCPServer server(
      loop, [](std::shared_ptr<IOStream> stream, const ioloop::net::SocketAddress&) {
        IOStream* s = stream.get();  // the loop owns the open stream
        s->read_streaming([s](absl::string_view chunk) { s->write_copy(chunk); },
                          [](absl::StatusOr<std::string>) {});
      });
  if (!server.listen(0, "127.0.0.1").ok() || !server.start().ok()) return 2;

  const std::string sent = "hello, ioloop\n";
  std::string echoed;
  ioloop::net::TCPClient client(loop);
  std::shared_ptr<IOStream> conn;
  client.connect("127.0.0.1", server.port(), [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
    if (!s.ok()) return loop.stop();
    conn = *std::move(s);
    conn->write(sent);
    conn->read_until("\n", [&](absl::StatusOr<std::string> line) {
      if (line.ok()) echoed = *std::move(line);
      loop.stop();
    });
  });
  // Only so that a broken build fails instead of hanging; the check is on the bytes.
  loop.call_later(absl::Seconds(30), [&] { loop.stop(); });
  loop.start();
  std::printf("echo: %s", echoed.c_str());
  return echoed == sent ? 0 : 1;
}
