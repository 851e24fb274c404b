// http_roundtrip: an HTTP server on an ephemeral port and one HTTPClient fetch against it, in
// one process on one loop. Prints "http: <status> <body>" and exits 0 only on status 200 with
// the exact body. It also builds a TLS client context, so that the program links ioloop::tls
// and OpenSSL as a user's HTTPS client would (the fetch itself is plain HTTP: no certificate
// is needed). Built against an installed ioloop (tests/consumer/CMakeLists.txt).
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/http/http_client.h"
#include "ioloop/net/http/http_request.h"
#include "ioloop/net/http/http_response.h"
#include "ioloop/net/http/http_server.h"
#include "ioloop/net/tls/tls_context.h"

int main() {
  using ioloop::net::HTTPClient;
  using ioloop::net::HTTPClientRequest;
  using ioloop::net::HTTPClientResponse;
  using ioloop::net::HTTPRequest;
  using ioloop::net::HTTPResponseWriter;
  using ioloop::net::HTTPServer;
  using ioloop::net::TLSContext;
  ioloop::IOLoop loop;
  HTTPServer server(loop, [](const HTTPRequest& request, HTTPResponseWriter& response) {
    response.set_header("Content-Type", "text/plain");
    response.set_body("hello from " + std::string(request.path()) + "\n");
  });
  if (!server.listen(0, "127.0.0.1").ok() || !server.start().ok()) return 2;

  absl::StatusOr<std::shared_ptr<const TLSContext>> tls =
      TLSContext::client({.alpn_protocols = {"http/1.1"}});
  if (!tls.ok()) return 3;
  HTTPClient client(loop, {.tls = *tls});
  HTTPClientRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/consumer";
  std::string got = "no response\n";
  bool ok = false;
  client.fetch(std::move(request), [&](absl::StatusOr<HTTPClientResponse> r) {
    if (r.ok()) {
      got = std::to_string(r->status) + " " + r->body;
      ok = r->status == 200 && r->body == "hello from /consumer\n";
    }
    loop.stop();
  });
  // Only so that a broken build fails instead of hanging; the check is on the bytes.
  loop.call_later(absl::Seconds(30), [&] { loop.stop(); });
  loop.start();
  std::printf("http: %s", got.c_str());
  return ok ? 0 : 1;
}
