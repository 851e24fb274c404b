// File: net/src/http/http_server_state.h (private)
// HTTPServerState: what an HTTPServer shares with its connections, defined here rather than in
// the public header (which only forward-declares it). It is the core's HTTPCoreState (handler,
// body factory, limits, counters: http_connection.h) plus what the stream glue alone reads:
// the whole HTTPServerOptions (timeouts, output bound) and the clock. Also the glue's entry
// point, serve_http_connection(), which tests and fuzzers call without an HTTPServer.
//
// Lifetime: the server and each connection (glue and core) hold a shared_ptr, so a connection
// that outlives its server (closing on its loop) never touches freed state.
#ifndef IOLOOP_NET_SRC_HTTP_HTTP_SERVER_STATE_H_
#define IOLOOP_NET_SRC_HTTP_HTTP_SERVER_STATE_H_

#include <cstdint>
#include <memory>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "http_connection.h"
#include "ioloop/net/http/http_server.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/time.h"

namespace ioloop::net {

// Where a connection's timeouts come from. With none installed (the default) the stream glue
// uses its loop: loop.iteration_time() and loop.call_at(). Tests and the fuzzer install a
// ManualHTTPClock (manual_http_clock.h) to drive every timeout deterministically, without
// wall-clock waits. Loop thread only.
class HTTPClock {
 public:
  using Callback = absl::AnyInvocable<void() &&>;
  virtual ~HTTPClock() = default;
  virtual TimePoint now() = 0;
  // Runs `cb` once at `deadline` or later; returns a nonzero id for cancel().
  virtual uint64_t call_at(TimePoint deadline, Callback cb) = 0;
  // Drops a pending callback unrun; a no-op for an id that ran or was cancelled.
  virtual void cancel(uint64_t id) = 0;
};

struct HTTPServerState : HTTPCoreState {
  // The options are not checked here (HTTPServer does, before serving anything).
  HTTPServerState(HTTPServer::Handler h, HTTPServerOptions o)
      : HTTPServerState(std::move(h), HTTPBodyHandlerFactory(), std::move(o)) {}
  HTTPServerState(HTTPServer::Handler h, HTTPBodyHandlerFactory f, HTTPServerOptions o)
      : HTTPCoreState(std::move(h), std::move(f),
                      RequestParser::Options{o.max_header_size, o.max_body_size, o.discard_body},
                      o.server_name),
        options(std::move(o)) {}

  const HTTPServerOptions options;
  // Null: each connection's loop. Set before the first connection is served.
  std::shared_ptr<HTTPClock> clock;
};

// The stream glue (http_connection_glue.cc), for tests and the fuzzer: serves `stream` exactly
// as HTTPServer::serve() does, with `state`'s handler, options and clock.
void serve_http_connection(const std::shared_ptr<HTTPServerState>& state,
                           const std::shared_ptr<IOStream>& stream);
// Destroys the idle connection cores this thread keeps for reuse (http_connection_glue.cc), so
// that a fuzzer's input starts with none of the previous input's: its crash then reproduces
// alone.
void discard_idle_connection_cores();
// The counters of `state` (what HTTPServer::stats() returns).
HTTPServer::Stats http_server_stats(const HTTPServerState& state);

}  // namespace ioloop::net

#endif  // IOLOOP_NET_SRC_HTTP_HTTP_SERVER_STATE_H_
