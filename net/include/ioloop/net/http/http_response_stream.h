/// @file ioloop/net/http/http_response_stream.h
/// HTTPResponseStream: a response that finishes after its handler returned (Tornado's
/// RequestHandler.write/flush/finish). A handler calls HTTPResponseWriter::defer() and keeps the
/// returned stream; it then writes the body in pieces and finishes at any later time, from a
/// timer, another stream's callback, or another thread through its loop's handle (see Threading).
///
/// ```
///   HTTPServer server(loop, [&](const HTTPRequest&, HTTPResponseWriter& w) {
///     w.set_header("Content-Type", "text/plain");
///     std::shared_ptr<HTTPResponseStream> s = w.defer();
///     s->loop().call_later(absl::Seconds(1), [s] {
///       s->write("later\n").IgnoreError();   // fails only once the client has gone
///       s->finish().IgnoreError();
///     });
///   });
/// ```
///
/// The head: the status and fields set on the writer, before or after defer(), until the first
/// write(), flush() or finish(), form the response head (head() is that writer). Changes after
/// the head was sent are ignored (head_sent() says whether it was). A body already set on the
/// writer is the first write.
///
/// Framing (chosen when the head is sent):
///  - a Content-Length field set by the handler is sent as given (a valid decimal number, else
///    the response fails as below) and the body must be exactly that long: a write() past it
///    returns InvalidArgument and sends none of its bytes, and finish() before it returns
///    InvalidArgument; either fails the response (below). Never a malformed message.
///  - else HTTP/1.1: "Transfer-Encoding: chunked"; each non-empty write() is one chunk (an
///    empty one sends nothing) and finish() sends the last chunk "0\r\n\r\n".
///  - else HTTP/1.0: close-delimited: no length, "Connection: close", and the connection
///    closes once finish()ed output is flushed.
///  - HEAD requests get the head only (the same framing fields as GET would); 204, 304 and a
///    2xx to CONNECT get no body and no framing fields (a status outside 200..599 is sent as
///    500, http_response.h); a 205 gets "Content-Length: 0" and no body, whatever
///    Content-Length the handler set (RFC 9110 §15.3.6). Body bytes written to them are
///    discarded, as the synchronous writer's body is.
///  Transfer-Encoding, Date and Connection set by the handler are ignored (http_response.h).
///
/// A failed response (Content-Length misuse, an exception caught by run(), dropping the last
/// reference to an unfinished stream, or HTTPServerOptions::response_timeout): "500 Internal
/// Server Error" ("503 Service Unavailable" for the timeout) with "Connection: close" if no
/// byte of the response was sent yet, else the connection closes after what was written (a
/// body cut short: the client sees the connection end before the declared length or the last
/// chunk; a close-delimited body, which has no other sign, ends with a TCP reset after its
/// bytes, over TLS without close_notify). Logged, counted
/// in HTTPServer::Stats (stream_errors, handler_exceptions, response_timeouts), the server
/// unharmed. Then the stream is closed (below).
///
/// Closed: once the client has gone (reset, EOF, the idle/response timeout, server stop) or the
/// response failed, before finish() completed, the close callback runs once (on a later loop
/// iteration, never inside a call of this class, even if the stream's last reference went
/// meanwhile), closed() is true, and write(), finish() and flush() report Unavailable "HTTP
/// connection closed: <why>" (the failure's own status for a failed response). A flush
/// callback that the close fails sees the stream closed already. After finish() succeeded,
/// write(), finish() and flush() return FailedPrecondition and the close callback never runs.
///
/// Pipelining: requests after this one on the same connection wait until it finishes (see
/// http_server.h); so finish() (or a failure) is what lets the connection go on.
///
/// Threading: loop-thread only (the connection's loop, loop()). To complete a response from
/// another thread, post to that loop through its handle, taken on the loop thread (h =
/// s->loop().handle(), then h->post([s] { s->finish().IgnoreError(); })): post() returns
/// false once the loop is gone (a server's worker loop goes with the server), where a
/// reference to loop() kept by that thread would dangle.
/// Lifetime: shared_ptr, owned by the handler's code; the connection keeps only a plain
/// pointer, cleared when the response ends. Dropping the last reference before finish() is a
/// handler error (a 500 or a close, see above): that is how an exception that unwinds through
/// the callback holding the stream is noticed. The last reference may be dropped on any
/// thread (a worker's copy, or a post() that failed because the loop is gone): off the loop
/// thread, the stream is destroyed on its loop (posted through the loop's handle), or, if that
/// loop is being destroyed, by its connection as that goes.
#ifndef IOLOOP_NET_HTTP_HTTP_RESPONSE_STREAM_H_
#define IOLOOP_NET_HTTP_HTTP_RESPONSE_STREAM_H_

#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "ioloop/io_loop.h"
#include "ioloop/loop_handle.h"
#include "ioloop/mutex.h"
#include "ioloop/net/http/http_response.h"

namespace ioloop::net {

namespace internal {
/// What a stream talks to: the server's connection (net/src/http/http_connection.h).
class HTTPResponseTarget {
 public:
  virtual std::shared_ptr<HTTPResponseStream> defer() = 0;
  virtual absl::Status stream_write(std::string chunk) = 0;
  virtual void stream_flush(absl::AnyInvocable<void(absl::Status) &&> done) = 0;
  /// `done` (may be empty) runs once the finished response is in the kernel, or with the
  /// error (posted, never inside the call).
  virtual absl::Status stream_finish(absl::AnyInvocable<void(absl::Status) &&> done) = 0;
  virtual absl::Status stream_interim(int status, absl::string_view reason,
                                      const HTTPHeaders& fields) = 0;
  /// The response failed (exception, abandoned): 500 or close.
  virtual void stream_fail(const absl::Status& why, bool exception) = 0;
  virtual size_t stream_queued() const = 0;

 protected:
  ~HTTPResponseTarget() = default;
};
}  // namespace internal

/// A response that finishes after its handler returned (HTTPResponseWriter::defer()). Shared by
/// whoever completes it; used on the connection's loop thread only (loop()). Framing, closing
/// and lifetime: the file comment of ioloop/net/http/http_response_stream.h.
class HTTPResponseStream : public std::enable_shared_from_this<HTTPResponseStream> {
 public:
  /// Runs once, on the loop thread, with OK or the status that ended the response.
  using Callback = absl::AnyInvocable<void(absl::Status) &&>;

  /// The status and fields of the response (see "The head").
  HTTPResponseWriter& head() { return *head_; }
  /// True once the status line and header fields were serialized for sending (by the first
  /// write(), flush() or finish()).
  bool head_sent() const { return head_sent_; }

  /// Queues `chunk` (see "Framing"). Errors: Unavailable once closed; FailedPrecondition after
  /// finish(); InvalidArgument past the Content-Length (the response then fails).
  absl::Status write(std::string chunk);
  /// `done` (may be empty) runs once (never inside this call): OK when everything written so
  /// far (the head included, sent now if it was not) has been handed to the kernel, or the
  /// closed status if the connection goes first (the stream is closed by then: closed() is
  /// true, its close callback is scheduled). Wait for it before writing more to keep memory
  /// bounded. After finish(): FailedPrecondition (the connection has moved on; finish(done)
  /// tells instead).
  void flush(Callback done);
  /// Ends the response (see "Framing"). Errors as write(); InvalidArgument when fewer bytes
  /// than the Content-Length were written (the response then fails).
  absl::Status finish();
  /// finish(), then `done` runs once (never inside this call): OK when the whole response, its
  /// last bytes included, has been handed to the kernel; Unavailable "HTTP connection closed:
  /// <why>" if the connection goes first (the close callback does not run: the response was
  /// finished); finish()'s error if it failed.
  absl::Status finish(Callback done);
  /// Queues an interim response before the head: "HTTP/1.1 <status> <reason>" and `fields`
  /// (an empty or unsafe reason is the status's own; fields add_header() would drop, and framing
  /// and connection fields, are dropped; no Date or Server), e.g. 103 Early Hints, or a 1xx
  /// a proxy forwards (RFC 9110 §15.2). Sends nothing to an HTTP/1.0 client, which would
  /// take it for the final response (§15.2), and returns OK. Errors: InvalidArgument for a
  /// status outside 100..199 or 101 (no upgrades); FailedPrecondition once the head was sent
  /// or after finish(); Unavailable once closed.
  absl::Status send_interim(int status, absl::string_view reason, const HTTPHeaders& fields);
  /// Ends the response unfinished, for one that cannot be completed (its source failed, e.g. an
  /// upstream that died mid-body): a failed response (see above: 500 if no byte was sent, else
  /// the connection closes after what was written), with `why` as the stream's status. Counted
  /// (stats().stream_errors) and logged with `why`'s message, at most 5 lines a second per
  /// thread (abandoned responses share that limit). A no-op once closed or finished.
  void abort(absl::Status why);

  /// Runs once when the response ends without finishing (see "Closed"); replaces an earlier
  /// callback. Set after closing, it runs on the next loop iteration.
  void set_close_callback(Callback cb);
  /// True once the response ended without finishing (see "Closed").
  bool closed() const { return closed_; }
  /// True after a successful finish().
  bool finished() const { return finished_; }
  /// Why the stream is closed (OK while open or after finish()).
  const absl::Status& status() const { return status_; }

  /// Runs `fn()`; if it throws, the exception is logged and counted (the loop's
  /// handle_callback_exception; also HTTPServer::Stats::handler_exceptions while the response
  /// is open: once finished or closed it belongs to no connection, and its server may be gone)
  /// and the response fails (500 or close). Returns OK or that Internal status. Use it around
  /// deferred code:
  /// ```
  ///   loop.call_later(d, [s] { s->run([&] { produce(*s); }).IgnoreError(); });
  /// ```
  template <typename F>
  absl::Status run(F&& fn) {
    try {
      std::forward<F>(fn)();
      return absl::OkStatus();
    } catch (...) {
      return on_exception();
    }
  }

  /// The connection's loop (the only thread that may use this stream).
  IOLoop& loop() const { return *loop_; }
  /// The request's minor version (0 or 1) and whether it was a HEAD request.
  int version_minor() const { return version_minor_; }
  /// True if the request was HEAD (the body is then not sent).
  bool head_request() const { return head_request_; }
  /// Response bytes written and not yet handed to the kernel (0 once closed).
  size_t write_buffer_size() const;

  /// An unfinished stream that is still attached fails its response (see "Lifetime").
  ~HTTPResponseStream();
  HTTPResponseStream(const HTTPResponseStream&) = delete;
  HTTPResponseStream& operator=(const HTTPResponseStream&) = delete;

  // --- For the server's connection only ---------------------------------------------------
  /// Made by the connection for defer(), on `loop`'s thread; `target`, `loop` and `head` are
  /// not owned (detach() ends their use). The shared_ptr's deleter sees to the destruction on
  /// the loop thread (see "Lifetime").
  static std::shared_ptr<HTTPResponseStream> make(internal::HTTPResponseTarget* target,
                                                  IOLoop* loop, HTTPResponseWriter* head,
                                                  int version_minor, bool head_request);
  /// The response ended. With an error status: closed, and the close callback is scheduled
  /// (run at once without a loop). Either way the stream stops using the target and the head.
  /// Called last by the connection: it may destroy the stream (an orphan, below).
  void detach(absl::Status status);
  /// The connection queued the head.
  void mark_head_sent() { head_sent_ = true; }

 private:
  // One stream per deferred response, made and freed in bursts under load: its block and its
  // shared_ptr's control block are recycled per thread (ioloop/recycling_allocator.h).
  static void* operator new(size_t size);
  static void operator delete(void* block);
  class Orphan;
  struct Release {  // the shared_ptr's deleter
    void operator()(HTTPResponseStream* stream) const;
  };
  HTTPResponseStream(internal::HTTPResponseTarget* target, IOLoop* loop, HTTPResponseWriter* head,
                     int version_minor, bool head_request);
  absl::Status on_exception();  ///< inside a catch block
  void schedule_close_callback();
  absl::Status unusable() const;
  void run_close_callback();
  /// The last reference went off the loop thread and the loop cannot run the destruction:
  /// destroys the stream now if no connection uses it, else leaves that to detach().
  void orphan();

  /// Cleared by detach() (under link_mu_, so that orphan() on another thread sees whether the
  /// connection is done with the stream) and by the destructor; read freely on the loop thread.
  internal::HTTPResponseTarget* target_;
  Mutex link_mu_;
  bool orphaned_ ABSL_GUARDED_BY(link_mu_) = false;  ///< detach() destroys the stream
  std::thread::id loop_thread_;                      ///< where make() ran
  std::shared_ptr<LoopHandle> handle_;               ///< for the deleter, off that thread
  IOLoop* loop_;
  HTTPResponseWriter* head_;
  HTTPResponseWriter detached_head_;  ///< head() after detach: a scratch writer
  Callback close_cb_;
  absl::Status status_;
  int version_minor_;
  bool head_request_;
  bool head_sent_ = false;
  bool closed_ = false;
  bool finished_ = false;
  bool close_cb_ran_ = false;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_HTTP_HTTP_RESPONSE_STREAM_H_
