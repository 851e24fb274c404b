// File: net/src/http/http_server.cc
// The stream glue of HTTPServer: one HTTPConnection per IOStream, feeding what arrives to
// HTTPConnectionCore, writing what it produces with one call, and running the timeouts.
#include "ioloop/net/http/http_server.h"

#include <algorithm>
#include <utility>

#include "http_connection.h"
#include "ioloop/logging.h"

namespace ioloop::net {
namespace {

// A deadline far enough away to mean "never".
constexpr TimePoint kNever = TimePoint::max();

TimePoint after(TimePoint now, absl::Duration d) {
  if (d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) return kNever;
  return now + to_clock_duration(d);
}

// Ownership: the stream's callbacks hold the only strong references to the connection, so the
// connection never outlives its stream and may keep a plain pointer to it. The timer holds a
// weak reference.
class HTTPConnection : public std::enable_shared_from_this<HTTPConnection> {
 public:
  HTTPConnection(std::shared_ptr<HTTPServer::Shared> shared, IOStream* stream)
      : options_(shared->options),
        shared_(std::move(shared)),
        stream_(stream),
        loop_(stream->loop()),
        clock_(shared_->clock.get()),
        core_(shared_) {}

  void start() {
    std::shared_ptr<HTTPConnection> self = shared_from_this();
    stream_->set_close_callback([self](absl::Status) { self->on_closed(); });
    if (options_.max_pending_output > 0) {
      stream_->set_write_watermarks(options_.max_pending_output, options_.max_pending_output / 4);
      stream_->set_high_watermark_callback([self] { self->stream_->pause_reading(); });
      stream_->set_low_watermark_callback([self] {
        if (!self->closing_) self->stream_->resume_reading();
      });
    }
    stream_->read_streaming([self](std::string chunk) { self->on_chunk(chunk); },
                            // EOF or error: the stream closes itself once output is flushed.
                            [](absl::StatusOr<std::string>) {});
    arm(after(now(), options_.idle_timeout), Timeout::kIdle);
  }

 private:
  enum class Timeout { kIdle, kHeader, kLinger };

  void on_chunk(const std::string& chunk) {
    if (closing_) return;  // lingering close: discard
    const RequestParser::State before = core_.parser_state();
    const size_t completed = core_.on_data(chunk, out_);
    flush();
    if (out_.close) return begin_close();
    const TimePoint t = now();
    switch (core_.parser_state()) {
      case RequestParser::State::kHeaders:
        // The header timeout counts from the first byte of the header section.
        if (before != RequestParser::State::kHeaders || completed > 0) {
          arm(after(t, options_.header_timeout), Timeout::kHeader);
        }
        break;
      default:  // kIdle, or a body arriving
        arm(after(t, options_.idle_timeout), Timeout::kIdle);
        break;
    }
  }

  void flush() {
    if (out_.empty()) return;
    shared_->writes.fetch_add(1, std::memory_order_relaxed);
    if (out_.chunks.empty()) {
      stream_->write(std::move(out_.head));
    } else {
      if (!out_.head.empty()) out_.chunks.push_back(std::move(out_.head));
      stream_->writev(std::move(out_.chunks));
      out_.chunks.clear();
    }
    out_.head.clear();
  }

  // Sends FIN once the output is flushed, then waits (discarding input) for the client's EOF,
  // which closes the stream, or for the linger timeout.
  void begin_close() {
    closing_ = true;
    stream_->shutdown_write();
    stream_->resume_reading();  // drain input so the client's EOF can be seen
    const TimePoint t = now();
    last_pending_ = stream_->write_buffer_size();
    // While output is still flushing, allow the idle timeout for progress first.
    const TimePoint deadline = last_pending_ > 0 ? after(t, options_.idle_timeout) : kNever;
    arm(deadline != kNever ? deadline : linger_deadline(t), Timeout::kLinger);
  }

  // A closing connection always ends: the linger timeout cannot be disabled.
  TimePoint linger_deadline(TimePoint now) const {
    const TimePoint t = after(now, options_.linger_timeout);
    return t != kNever ? t : after(now, absl::Seconds(2));
  }

  // Sets the deadline. The timer is only moved when the deadline comes earlier than it fires;
  // otherwise it re-arms itself when it fires (see on_timer).
  void arm(TimePoint deadline, Timeout kind) {
    deadline_ = deadline;
    kind_ = kind;
    if (deadline == kNever) return;
    if (timer_id_ != 0) {
      if (timer_at_ <= deadline) return;
      cancel_timer();
    }
    timer_at_ = deadline;
    auto cb = [weak = weak_from_this()] {
      if (std::shared_ptr<HTTPConnection> self = weak.lock()) self->on_timer();
    };
    timer_id_ = clock_ ? clock_->call_at(deadline, std::move(cb))
                       : loop_.call_at(deadline, std::move(cb)).id();
  }

  TimePoint now() const { return clock_ ? clock_->now() : loop_.time(); }

  void cancel_timer() {
    if (timer_id_ == 0) return;
    if (clock_) {
      clock_->cancel(timer_id_);
    } else {
      loop_.remove_timeout(TimeoutHandle(timer_id_));
    }
    timer_id_ = 0;
  }

  void on_timer() {
    timer_id_ = 0;
    if (closed_ || deadline_ == kNever) return;
    const TimePoint now = this->now();
    if (now < deadline_) return arm(deadline_, kind_);
    // Output still draining to a slow reader: that is progress, not idleness.
    const size_t pending = stream_->write_buffer_size();
    if (pending > 0 && pending != last_pending_) {
      last_pending_ = pending;
      const TimePoint next = after(now, options_.idle_timeout);
      return arm(next != kNever ? next : linger_deadline(now), kind_);
    }
    switch (kind_) {
      case Timeout::kIdle:
        shared_->idle_timeouts.fetch_add(1, std::memory_order_relaxed);
        logger().debug("HTTP connection fd {} idle timeout", stream_->fd());
        stream_->close();
        break;
      case Timeout::kHeader:
        shared_->header_timeouts.fetch_add(1, std::memory_order_relaxed);
        logger().debug("HTTP connection fd {} header timeout", stream_->fd());
        core_.on_header_timeout(out_);
        flush();
        begin_close();
        break;
      case Timeout::kLinger:
        stream_->close();
        break;
    }
  }

  void on_closed() {
    closed_ = true;
    cancel_timer();
  }

  const HTTPServerOptions& options_;
  std::shared_ptr<HTTPServer::Shared> shared_;
  IOStream* stream_;
  IOLoop& loop_;
  HTTPClock* clock_;  // null: loop_ (the clock is owned by shared_)
  HTTPConnectionCore core_;
  HTTPOutput out_;
  uint64_t timer_id_ = 0;  // the pending timer's id (loop_'s or clock_'s); 0: none
  TimePoint timer_at_{};
  TimePoint deadline_ = kNever;
  Timeout kind_ = Timeout::kIdle;
  size_t last_pending_ = 0;
  bool closing_ = false;
  bool closed_ = false;
};

}  // namespace

void serve_http_connection(const std::shared_ptr<HTTPServer::Shared>& shared,
                           const std::shared_ptr<IOStream>& stream) {
  shared->connections.fetch_add(1, std::memory_order_relaxed);
  std::make_shared<HTTPConnection>(shared, stream.get())->start();
}

HTTPServer::HTTPServer(IOLoop& loop, Handler handler, HTTPServerOptions options)
    : shared_(std::make_shared<Shared>(std::move(handler), options)),
      tcp_server_(
          loop,
          [shared = shared_](std::shared_ptr<IOStream> stream, const SocketAddress&) {
            serve_http_connection(shared, stream);
          },
          options.tcp_options) {}

HTTPServer::~HTTPServer() = default;

absl::Status HTTPServer::listen(uint16_t port, absl::string_view address) {
  return tcp_server_.listen(port, address);
}

absl::Status HTTPServer::add_sockets(std::vector<Socket> sockets) {
  return tcp_server_.add_sockets(std::move(sockets));
}

absl::Status HTTPServer::start(int num_threads) { return tcp_server_.start(num_threads); }

void HTTPServer::stop(bool close_connections) { tcp_server_.stop(close_connections); }

uint16_t HTTPServer::port() const { return tcp_server_.port(); }

std::vector<SocketAddress> HTTPServer::addresses() const { return tcp_server_.addresses(); }

void HTTPServer::serve(std::shared_ptr<IOStream> stream) { serve_http_connection(shared_, stream); }

HTTPServer::Stats HTTPServer::stats() const { return http_server_stats(*shared_); }

HTTPServer::Stats http_server_stats(const HTTPServer::Shared& s) {
  HTTPServer::Stats out;
  out.connections = s.connections.load(std::memory_order_relaxed);
  out.requests = s.requests.load(std::memory_order_relaxed);
  out.responses = s.responses.load(std::memory_order_relaxed);
  out.writes = s.writes.load(std::memory_order_relaxed);
  out.protocol_errors = s.protocol_errors.load(std::memory_order_relaxed);
  out.handler_exceptions = s.handler_exceptions.load(std::memory_order_relaxed);
  out.idle_timeouts = s.idle_timeouts.load(std::memory_order_relaxed);
  out.header_timeouts = s.header_timeouts.load(std::memory_order_relaxed);
  return out;
}

}  // namespace ioloop::net
