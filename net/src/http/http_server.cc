// File: net/src/http/http_server.cc
// HTTPServer: option checks, TCPServer wiring and stats. The per-connection stream glue is in
// http_connection_glue.cc, the I/O-free core in http_connection.cc.
#include "ioloop/net/http/http_server.h"

#include <algorithm>
#include <atomic>
#include <initializer_list>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "http/http_ascii.h"
#include "http_server_state.h"
#include "ioloop/logging.h"

namespace ioloop::net {
namespace {

absl::Status check_options(const HTTPServerOptions& o, bool has_handler) {
  if (!has_handler) return absl::InvalidArgumentError("HTTPServer: empty handler");
  if (!internal::is_field_value(o.server_name)) {
    return absl::InvalidArgumentError(
        "HTTPServerOptions.server_name must be a field value: no CR, LF, NUL or other control "
        "byte (it is sent as the Server field)");
  }
  for (const auto& [d, field] : {std::pair{o.idle_timeout, "idle_timeout"},
                                 {o.header_timeout, "header_timeout"},
                                 {o.linger_timeout, "linger_timeout"},
                                 {o.request_timeout, "request_timeout"},
                                 {o.response_timeout, "response_timeout"}}) {
    if (d < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat("HTTPServerOptions.", field,
                                                     " must not be negative (got ",
                                                     absl::FormatDuration(d), ")"));
    }
  }
  if (o.max_pending_output == 0) {
    return absl::InvalidArgumentError(
        "HTTPServerOptions.max_pending_output must be > 0 (0 would hold every response back)");
  }
  if (o.max_header_size == 0) {
    return absl::InvalidArgumentError(
        "HTTPServerOptions.max_header_size must be > 0 (0 would reject every request)");
  }
  if (o.min_body_rate > 0 && (o.body_rate_window < absl::Milliseconds(1) ||
                              o.body_rate_window == absl::InfiniteDuration())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HTTPServerOptions.body_rate_window must be finite and at least 1ms when min_body_rate "
        "is set, got ",
        absl::FormatDuration(o.body_rate_window)));
  }
  return absl::OkStatus();
}

}  // namespace

// The core names the handler's type without including this server (http_connection.h).
static_assert(std::is_same_v<HTTPServer::Handler, HTTPRequestHandler>);

HTTPServer::HTTPServer(IOLoop& loop, Handler handler, HTTPServerOptions options)
    : options_status_(check_options(options, handler != nullptr)),
      loop_(loop),
      state_(std::make_shared<HTTPServerState>(std::move(handler), options)),
      tcp_server_(
          loop,
          [state = state_](std::shared_ptr<IOStream> stream, const SocketAddress&) {
            serve_http_connection(state, stream);
          },
          options.tcp_options) {}

HTTPServer::HTTPServer(IOLoop& loop, Handler handler, HTTPBodyHandlerFactory on_headers,
                       HTTPServerOptions options)
    : options_status_(check_options(options, handler != nullptr)),
      loop_(loop),
      state_(std::make_shared<HTTPServerState>(std::move(handler), std::move(on_headers), options)),
      tcp_server_(
          loop,
          [state = state_](std::shared_ptr<IOStream> stream, const SocketAddress&) {
            serve_http_connection(state, stream);
          },
          options.tcp_options) {}

HTTPServer::~HTTPServer() { close_served(); }

absl::Status HTTPServer::listen(uint16_t port, absl::string_view address) {
  if (!options_status_.ok()) return options_status_;
  return tcp_server_.listen(port, address);
}

absl::Status HTTPServer::add_sockets(std::vector<Socket> sockets) {
  if (!options_status_.ok()) return options_status_;
  return tcp_server_.add_sockets(std::move(sockets));
}

absl::Status HTTPServer::start(int num_threads) {
  if (!options_status_.ok()) return options_status_;
  return tcp_server_.start(num_threads);
}

void HTTPServer::stop(bool close_connections) {
  tcp_server_.stop(close_connections);
  if (close_connections) close_served();
}

void HTTPServer::close_served() {
  std::vector<std::weak_ptr<IOStream>> served;
  served.swap(served_);
  served_after_prune_ = 0;
  for (const std::weak_ptr<IOStream>& weak : served) {
    if (std::shared_ptr<IOStream> stream = weak.lock()) stream->close();
  }
}

uint16_t HTTPServer::port() const { return tcp_server_.port(); }

std::vector<SocketAddress> HTTPServer::addresses() const { return tcp_server_.addresses(); }

absl::Status HTTPServer::serve(std::shared_ptr<IOStream> stream) {
  if (stream == nullptr) return absl::InvalidArgumentError("HTTPServer::serve: null stream");
  if (&stream->loop() != &loop_) {  // not closed: it is another thread's to touch
    return absl::InvalidArgumentError(
        "HTTPServer::serve: the stream belongs to another loop than the server's");
  }
  if (!options_status_.ok()) {
    stream->close(options_status_);
    return options_status_;
  }
  // Forget closed streams now and then, so the list tracks only the open ones.
  if (served_.size() >= 2 * served_after_prune_ + 64) {
    std::erase_if(served_, [](const std::weak_ptr<IOStream>& s) { return s.expired(); });
    served_after_prune_ = served_.size();
  }
  served_.push_back(stream);
  serve_http_connection(state_, stream);
  return absl::OkStatus();
}

HTTPServer::Stats HTTPServer::stats() const {
  Stats out = http_server_stats(*state_);
  out.handshake_failures = tcp_server_.handshake_failures();
  return out;
}

HTTPServer::Stats http_server_stats(const HTTPServerState& s) {
  HTTPServer::Stats out;
  out.connections = s.connections.load(std::memory_order_relaxed);
  out.requests = s.requests.load(std::memory_order_relaxed);
  out.responses = s.responses.load(std::memory_order_relaxed);
  out.writes = s.writes.load(std::memory_order_relaxed);
  out.protocol_errors = s.protocol_errors.load(std::memory_order_relaxed);
  out.handler_exceptions = s.handler_exceptions.load(std::memory_order_relaxed);
  out.idle_timeouts = s.idle_timeouts.load(std::memory_order_relaxed);
  out.header_timeouts = s.header_timeouts.load(std::memory_order_relaxed);
  out.body_rate_timeouts = s.body_rate_timeouts.load(std::memory_order_relaxed);
  out.request_timeouts = s.request_timeouts.load(std::memory_order_relaxed);
  out.output_stalls = s.output_stalls.load(std::memory_order_relaxed);
  out.max_output_queued = s.max_output_queued.load(std::memory_order_relaxed);
  out.deferred_responses = s.deferred_responses.load(std::memory_order_relaxed);
  out.response_timeouts = s.response_timeouts.load(std::memory_order_relaxed);
  out.stream_errors = s.stream_errors.load(std::memory_order_relaxed);
  out.streamed_requests = s.streamed_requests.load(std::memory_order_relaxed);
  out.body_pauses = s.body_pauses.load(std::memory_order_relaxed);
  return out;
}

}  // namespace ioloop::net
