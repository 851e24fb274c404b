// File: net/src/http/http_client_connection.h (private)
// ClientConnection: one keep-alive connection of HTTPClient's pool. It reads its stream all the
// time (so that a pooled connection notices the server closing it), feeds the bytes of the
// exchange in progress to a ResponseParser and reports the response to its Owner (the client
// core) as events tagged with the exchange's id. One exchange at a time: begin() ... then
// exactly one of on_complete / on_failed, or the owner close()s it.
//
// Rules the owner relies on:
//  - Events arrive from the stream's callbacks, never inside begin(), write() or close().
//  - on_head/on_body are forwarded only while the exchange that produced them is current and
//    the connection open: the owner may close() from inside them (a failed fetch).
//  - The exchange is over (exchange() == 0) before on_complete/on_failed run; the owner may
//    then begin() the next exchange from inside on_complete.
//  - Bytes after a complete response, or bytes while idle, make the connection unusable
//    (reusable false / on_idle_closed): the client never pipelines, so they are a server bug.
//  - close() reports nothing.
//
// Lifetime: shared_ptr; the stream's callbacks hold weak references, and lock the owner (a
// weak_ptr) for the duration of each dispatch, so the owner may be destroyed from inside an
// event. Loop thread only.
#ifndef IOLOOP_NET_SRC_HTTP_HTTP_CLIENT_CONNECTION_H_
#define IOLOOP_NET_SRC_HTTP_HTTP_CLIENT_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/http/http_request.h"
#include "ioloop/net/http/response_parser.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/time.h"

namespace ioloop::net {

struct ClientFetch;  // http_client_core.h

class ClientConnection : public std::enable_shared_from_this<ClientConnection>,
                         private ResponseParser::Sink {
 public:
  class Owner {
   public:
    virtual ~Owner() = default;
    virtual void on_head(ClientConnection& c, uint64_t exchange, HTTPResponseHead head) = 0;
    virtual void on_interim(ClientConnection& c, uint64_t exchange, HTTPResponseHead head) = 0;
    virtual void on_body(ClientConnection& c, uint64_t exchange, absl::string_view data) = 0;
    // The response ended; `reusable`: keep-alive and nothing after it.
    virtual void on_complete(ClientConnection& c, uint64_t exchange, bool reusable) = 0;
    // The exchange failed and the connection is closed. `response_started`: a byte of the
    // response had arrived (a request on a reused connection without one may be retried).
    virtual void on_failed(ClientConnection& c, uint64_t exchange, absl::Status status,
                           bool response_started) = 0;
    // Closed (by the server, or for unexpected bytes) while no exchange was in progress.
    virtual void on_idle_closed(ClientConnection& c) = 0;
  };

  static std::shared_ptr<ClientConnection> create(IOLoop& loop, std::shared_ptr<IOStream> stream,
                                                  std::string key, ResponseParserOptions options,
                                                  std::weak_ptr<Owner> owner);
  ~ClientConnection() override;

  // Starts an exchange answering a request with `method`; `id` is never 0.
  void begin(uint64_t id, HTTPMethod method);
  uint64_t exchange() const { return exchange_; }
  // When the first and the last byte of the current (or last) exchange's response arrived;
  // zero if none.
  TimePoint first_byte_at() const { return first_byte_at_; }
  TimePoint last_byte_at() const { return last_byte_at_; }

  void write(std::string data, IOStream::WriteCallback on_flushed = nullptr);
  // As write(), copying only what the kernel does not take at once (IOStream::write_copy).
  void write_copy(absl::string_view data, IOStream::WriteCallback on_flushed = nullptr);
  void pause_reading();
  void resume_reading();
  bool reading_paused() const;
  // Closes the stream; nothing is reported afterwards. Idempotent.
  void close(absl::Status reason = absl::OkStatus());
  bool closed() const { return closed_; }
  // Bytes written to this connection are still queued for the socket.
  bool sending() const;
  // Whether this idle connection can no longer carry a request: the server's FIN (or reset),
  // or bytes nobody asked for (a stray response, a 408 said on closing), wait in the kernel,
  // unread, having come behind the last response. One non-blocking peek, paid only before a
  // request that would not be retried (a retry covers the others) and after a response without
  // a body (HTTPClientCore::discard_if_closed_for()).
  bool stale() const;
  // The last response had no body by its framing (a HEAD's, a 204, a 304).
  bool last_response_bodiless() const { return bodiless_; }

  const std::string& key() const { return key_; }
  // The pool's bookkeeping: whether this connection still counts toward its host's limit.
  bool counted = true;
  // The core's one timer for this connection (HTTPClientCore::wake_at()): armed at or before
  // the earliest of its idle expiry and its exchange's deadlines, and re-armed only when it
  // fires early. So a deadline set per request costs a store, not a timer add and cancel.
  TimeoutHandle timer;
  TimePoint timer_at{};    // when `timer` fires; zero: not armed
  TimePoint idle_until{};  // in the idle list: when idle_timeout closes it; zero otherwise
  // The fetch whose exchange runs on this connection (set by the core when the exchange
  // starts). Weak: the fetch owns its connection, not the other way round; the core locks it
  // to route this connection's events.
  std::weak_ptr<ClientFetch> fetch;

  // Use create().
  ClientConnection(IOLoop& loop, std::shared_ptr<IOStream> stream, std::string key,
                   ResponseParserOptions options, std::weak_ptr<Owner> owner);

 private:
  void start_reading();
  void on_chunk(absl::string_view chunk);
  void on_done(absl::Status status);
  // Ends the current exchange with on_failed (closing first).
  void fail(Owner& owner, absl::Status status);

  // ResponseParser::Sink
  void on_head(HTTPResponseHead head) override;
  void on_interim(HTTPResponseHead head) override;
  void on_body(absl::string_view data) override;
  void on_complete() override;
  // Hands the owner what on_body() gathered during one feed (see body_view_).
  void deliver_body(uint64_t exchange);

  IOLoop& loop_;
  std::shared_ptr<IOStream> stream_;
  const std::string key_;
  ResponseParser parser_;
  std::weak_ptr<Owner> owner_;
  Owner* feeding_owner_ = nullptr;  // set while feed()/finish() run
  uint64_t exchange_ = 0;
  TimePoint first_byte_at_{};
  TimePoint last_byte_at_{};
  bool closed_ = false;
  bool completed_ = false;  // the parser reported on_complete for the current exchange
  bool bodiless_ = false;   // see last_response_bodiless()
  HTTPMethod method_ = HTTPMethod::kGet;  // the current exchange's request
  // The body pieces of one feed, delivered together after it: a chunked body of tiny chunks
  // would otherwise cost the owner a call (and a proxy a send) per chunk. One piece stays a
  // view into the read (no copy); several are joined.
  absl::string_view body_view_;
  std::string joined_body_;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_SRC_HTTP_HTTP_CLIENT_CONNECTION_H_
