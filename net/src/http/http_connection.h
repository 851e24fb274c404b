// File: net/src/http/http_connection.h (private)
// The I/O-free core of an HTTPServer connection: bytes in, response bytes out. The server's
// stream glue (http_server.cc) reads, calls on_data(), writes what it produced in one call and
// closes when told; the benchmark and the fuzzer drive this class directly.
#ifndef IOLOOP_NET_SRC_HTTP_HTTP_CONNECTION_H_
#define IOLOOP_NET_SRC_HTTP_HTTP_CONNECTION_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "ioloop/net/http/http_request.h"
#include "ioloop/net/http/http_response.h"
#include "ioloop/net/http/http_server.h"
#include "ioloop/net/http/request_parser.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/time.h"

namespace ioloop::net {

// Where a connection's timeouts come from. With none installed (the default) the stream glue
// uses its loop: loop.time() and loop.call_at(). Tests and the fuzzer install a
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

struct HTTPServer::Shared {
  Shared(Handler h, HTTPServerOptions o) : handler(std::move(h)), options(std::move(o)) {}

  Handler handler;
  const HTTPServerOptions options;
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> responses{0};
  std::atomic<uint64_t> writes{0};
  std::atomic<uint64_t> protocol_errors{0};
  std::atomic<uint64_t> handler_exceptions{0};
  std::atomic<uint64_t> idle_timeouts{0};
  std::atomic<uint64_t> header_timeouts{0};
  std::atomic<uint64_t> body_rate_timeouts{0};
  std::atomic<uint64_t> request_timeouts{0};
  std::atomic<uint64_t> output_stalls{0};
  std::atomic<uint64_t> max_output_queued{0};
  // Null: each connection's loop. Set before the first connection is served.
  std::shared_ptr<HTTPClock> clock;
};

// The stream glue (http_server.cc), for tests and the fuzzer: serves `stream` exactly as
// HTTPServer::serve() does, with `shared`'s handler, options and clock.
void serve_http_connection(const std::shared_ptr<HTTPServer::Shared>& shared,
                           const std::shared_ptr<IOStream>& stream);
// The counters of `shared` (what HTTPServer::stats() returns).
HTTPServer::Stats http_server_stats(const HTTPServer::Shared& shared);

// Response bytes produced by one on_data(): `head` collects small pieces; a large body is
// moved into `chunks` rather than copied (then head's bytes so far go before it). Send as
// chunks + head, in that order, with one write/writev.
struct HTTPOutput {
  std::vector<std::string> chunks;
  std::string head;
  bool close = false;  // the connection ends once this output is flushed

  bool empty() const { return chunks.empty() && head.empty(); }
  size_t size() const {
    size_t n = head.size();
    for (const std::string& c : chunks) n += c.size();
    return n;
  }
};

class HTTPConnectionCore {
 public:
  // `loop`, if given, is the connection's loop: a handler's exception is reported through
  // it (rate-limited log, stats().exceptions). Without one (benchmarks, the fuzzer) it is
  // logged through ioloop::logger().
  explicit HTTPConnectionCore(std::shared_ptr<HTTPServer::Shared> shared, IOLoop* loop = nullptr);

  // Parses `data`, runs the handler for each complete request and appends the responses (and
  // any 100 Continue, or a final error response) to `out`. Once `out.close` has been set, the
  // connection is finished: later calls ignore their input. Returns the number of requests
  // completed.
  //
  // Flow control: before each request is parsed, if out.size() >= `output_limit`, the core
  // stops and keeps the rest of the input, unparsed, as its backlog (has_backlog()). The
  // next call parses the backlog first, then its own `data` (call with empty data once the
  // output has drained). So one call's output exceeds output_limit by at most one response.
  size_t on_data(absl::string_view data, HTTPOutput& out, size_t output_limit = SIZE_MAX);
  bool has_backlog() const { return backlog_pos_ < backlog_.size(); }
  size_t backlog_size() const { return backlog_.size() - backlog_pos_; }

  // The 408 for a request that took too long (header section, body rate or whole-request
  // deadline); sets out.close. In the request's version when its request line is complete.
  void on_timeout(HTTPOutput& out);

  RequestParser::State parser_state() const { return parser_.state(); }
  bool finished() const { return finished_; }

 private:
  // Answers what the last parser_.feed() left in result_: its request (at most one), then
  // its error or 100 Continue. May finish the connection.
  void answer(HTTPOutput& out);
  // Serializes writer_ as the answer to a request of HTTP/1.`minor`.
  void serialize(int minor, bool head, bool keep_alive, HTTPOutput& out);
  // A canned response (errors, 408, 500) that closes the connection.
  void respond_and_close(int status, int minor, bool head, HTTPOutput& out);
  // The minor version for an error response: the request's if known, else 1.
  int error_minor() const { return parser_.version_minor().value_or(1) == 0 ? 0 : 1; }
  void release_backlog() {
    std::string().swap(backlog_);  // give the memory back: it may be a whole read's worth
    backlog_pos_ = 0;
  }

  std::shared_ptr<HTTPServer::Shared> shared_;
  HTTPServer::Shared& s_;
  IOLoop* loop_;
  RequestParser parser_;
  RequestParser::Result result_;
  HTTPResponseWriter writer_;
  // Input not parsed yet because output reached its limit: backlog_[backlog_pos_..].
  std::string backlog_;
  size_t backlog_pos_ = 0;
  bool finished_ = false;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_SRC_HTTP_HTTP_CONNECTION_H_
