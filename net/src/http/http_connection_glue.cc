// File: net/src/http/http_connection_glue.cc
// The stream glue of HTTPServer: one HTTPConnection per IOStream, feeding what arrives to
// HTTPConnectionCore, writing what it produces with one call, and running the timeouts.
#include <algorithm>
#include <atomic>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "http_server_state.h"
#include "ioloop/logging.h"

namespace ioloop::net {
namespace {

// A deadline far enough away to mean "never".
constexpr TimePoint kNever = TimePoint::max();

TimePoint after(TimePoint now, absl::Duration d) {
  if (d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) return kNever;
  return now + to_clock_duration(d);
}

TimePoint earliest(std::initializer_list<TimePoint> deadlines) { return std::min(deadlines); }

// While a deferred response is pending, later requests wait unparsed in the core's backlog;
// reading goes on (so the client's EOF or reset is noticed) until the backlog exceeds this.
constexpr size_t kMaxWaitingBacklog = 64 * 1024;

// A lingering close that the client keeps busy (each read restarts linger_timeout) ends this
// long after the output was flushed at most: nginx's lingering_time.
constexpr absl::Duration kMaxLinger = absl::Seconds(30);

// The idle cores of this thread's connections, kept for reuse: under keep-alive a connection
// goes idle after every request, and reusing a core costs far less than deleting it and
// making a new one (its parser, request vector and response buffers keep their capacity).
// It holds at most as many cores as were in use at once on this thread: one with synchronous
// handlers (a loop runs one connection's callback at a time), one per response in progress
// with deferred ones (a proxy's requests in flight), which all come back in bursts. Bounded
// by kMaxCores, so that idle connections still cost no core each. A loop runs on one thread,
// so this is also one cache per loop.
class CoreCache {
 public:
  // A core equivalent to HTTPConnectionCore(state, loop): a recycled one if any.
  std::unique_ptr<HTTPConnectionCore> take(std::shared_ptr<HTTPCoreState> state, IOLoop* loop) {
    if (cores_.empty()) return std::make_unique<HTTPConnectionCore>(std::move(state), loop);
    std::unique_ptr<HTTPConnectionCore> core = std::move(cores_.back());
    cores_.pop_back();
    core->rebind(std::move(state), loop);
    return core;
  }
  void clear() { cores_.clear(); }
  // Takes an idle() core: recycled and kept, or destroyed if the cache is full.
  void give(std::unique_ptr<HTTPConnectionCore> core) {
    if (cores_.size() >= kMaxCores) return;
    core->recycle();
    cores_.push_back(std::move(core));
  }

 private:
  static constexpr size_t kMaxCores = 64;
  std::vector<std::unique_ptr<HTTPConnectionCore>> cores_;
};

CoreCache& core_cache() {
  thread_local CoreCache cache;
  return cache;
}

// The response head's storage: one per thread rather than per connection. process() lends it
// to the connection's output, flush_output() sends the head with write_copy() and gives the
// storage back, so the next response (of any connection on this thread) reuses its capacity
// instead of allocating, and an idle connection holds none.
std::string& spare_head() {
  thread_local std::string head;
  return head;
}

// Ownership: the stream's callbacks hold the only strong references to the connection, so the
// connection never outlives its stream and may keep a plain pointer to it. The timer holds a
// weak reference. The connection owns its core (the HTTP state of the requests in progress)
// only while a request is in progress; see core().
//
// Flow control: the core stops answering once the output of the current read reaches
// max_pending_output minus what the stream still queues (so the stream never holds more than
// max_pending_output plus one response) and keeps the unparsed rest. The connection then
// stops reading and queues an empty write whose completion (everything before it is in the
// kernel) resumes the rest. Independently, the stream's watermarks pause reading while
// max_pending_output bytes wait and resume at a quarter of it.
//
// Timeouts: one timer, at the earliest of the deadlines below, moved only when a deadline
// comes earlier than it fires; when it fires early it re-arms itself (so a read costs no timer
// insert and cancel, and no clock read: the deadlines move on IOLoop::iteration_time()). While the
// server takes none of the client's bytes (track_stall()), the client's header, request and
// body-rate clocks stand still.
//
// Deferred responses: the core calls on_stream_output() when a response stream wrote outside
// on_data(); the output is sent at once (flush callbacks as empty writes behind it). While the
// response is pending the idle timeout does not close the connection and response_timeout
// runs instead; when it ends the backlog resumes after the output drained (wait_for_drain()).
class HTTPConnection final : public std::enable_shared_from_this<HTTPConnection>,
                             public HTTPConnectionCore::Listener {
 public:
  HTTPConnection(std::shared_ptr<HTTPServerState> state, IOStream* stream)
      : options_(state->options),
        state_(std::move(state)),
        stream_(stream),
        loop_(stream->loop()),
        clock_(state_->clock.get()) {}

  // HTTPConnectionCore::Listener: a deferred response wrote, flushed, finished or failed.
  void on_stream_output(bool response_ended) override {
    if (closed_) return;
    HTTPOutput& pending = core_->pending_output();
    flush_output(pending);
    if (!response_ended) return;
    if (pending.close) return begin_close(pending.client_done, pending.truncated);
    response_deadline_ = kNever;
    idle_deadline_ = after(now(), options_.idle_timeout);
    if (has_backlog() && !waiting_for_drain_) wait_for_drain();
    update_reading();
    rearm();
    // The core is on the stack (this is its callback): drop it, if idle, after it returned.
    loop_.add_callback([weak = weak_from_this()] {
      if (std::shared_ptr<HTTPConnection> self = weak.lock()) self->release_core_if_idle();
    });
  }
  size_t queued_output() const override { return stream_->write_buffer_size(); }
  // A streamed body's handler resumed: go on in a callback of its own (resume() may be
  // called from anywhere on the loop thread, e.g. inside another connection's callback).
  void on_body_resumed() override {
    if (closed_ || closing_) return;
    // answer_early(): the request's own deadlines end now, not when the callback below runs (a
    // 408 in between would replace the handler's answer).
    if (dropping_input()) header_deadline_ = request_deadline_ = rate_deadline_ = kNever;
    loop_.add_callback([self = shared_from_this()] {
      if (self->closed_ || self->closing_ || self->body_paused()) return;
      self->process({});
    });
  }

  void start() {
    std::shared_ptr<HTTPConnection> self = shared_from_this();
    stream_->set_close_callback([self](absl::Status status) { self->on_closed(status); });
    // max_pending_output > 0 (HTTPServer rejects 0), so low < high.
    stream_->set_write_watermarks(options_.max_pending_output, options_.max_pending_output / 4)
        .IgnoreError();
    stream_->set_high_watermark_callback([self] {
      self->output_full_ = true;
      self->update_reading();
    });
    stream_->set_low_watermark_callback([self] {
      self->output_full_ = false;
      self->update_reading();
    });
    stream_->read_streaming([self](absl::string_view chunk) { self->on_chunk(chunk); },
                            // EOF or error: the stream closes itself once output is flushed.
                            [](absl::StatusOr<std::string>) {});
    idle_deadline_ = after(now(), options_.idle_timeout);
    rearm();
  }

 private:
  using State = RequestParser::State;

  // The per-request state, made when a request's first byte arrives and dropped when the
  // connection is idle again (HTTPConnectionCore::idle()): an idle keep-alive connection
  // costs this object and no core. The queries below answer for an absent core.
  HTTPConnectionCore& core() {
    if (!core_) {
      core_ = core_cache().take(state_, &loop_);
      core_->set_listener(this);
      core_->set_stream(stream_);
      if (!remote_address_.empty()) core_->set_remote_address(std::move(remote_address_));
    }
    return *core_;
  }
  void release_core_if_idle() {
    if (!core_ || closing_ || closed_ || !core_->idle()) return;
    remote_address_ = core_->take_remote_address();
    core_cache().give(std::move(core_));
  }
  State parser_state() const { return core_ ? core_->parser_state() : State::kIdle; }
  bool has_backlog() const { return core_ && core_->has_backlog(); }
  bool body_paused() const { return core_ && core_->body_paused(); }
  bool response_pending() const { return core_ && core_->response_pending(); }
  bool dropping_input() const { return core_ && core_->dropping_input(); }

  void on_chunk(absl::string_view chunk) {
    if (closing_) {  // lingering close: discard; the client is still sending, so linger on
      client_done_ = false;
      linger_on();
      return;
    }
    process(chunk);
  }

  // Feeds `data` (after any backlog) to the core and sends what it produced.
  // Never on a closed stream: a request answered then has nowhere to go, so its handler must
  // not run. (After the client's EOF the stream closes as soon as its queue is empty, which
  // can come before a resumption queued earlier runs: requests still held back by flow
  // control then go unanswered, as if the client had reset.)
  void process(absl::string_view data) {
    if (stream_->closed()) return;
    const State before = parser_state();
    const size_t queued = stream_->write_buffer_size();
    const size_t limit = queued < options_.max_pending_output
                             ? options_.max_pending_output - queued
                             : 0;  // answer nothing until the queue drains
    if (out_.head.empty() && out_.head.capacity() < spare_head().capacity()) {
      out_.head.swap(spare_head());
    }
    const size_t completed = core().on_data(data, out_, limit);
    flush();
    if (out_.close) return begin_close(out_.client_done, out_.truncated);
    if (has_backlog() && !waiting_for_drain_ && !response_pending() && !body_paused()) {
      wait_for_drain();
    }
    update_reading();
    update_deadlines(before, completed, data.size());
    release_core_if_idle();
  }

  // Resumes the backlog once everything queued so far is in the kernel: an empty write
  // completes exactly then, on a later iteration.
  void wait_for_drain() {
    waiting_for_drain_ = true;
    stream_->write(std::string(), [self = shared_from_this()](absl::Status status) {
      self->waiting_for_drain_ = false;
      if (status.ok() && !self->closing_ && !self->closed_) self->process({});
    });
  }

  // Reading pauses while output is over the high watermark or requests wait unanswered, unless
  // the core drops what it reads (a request answered early).
  void update_reading() {
    if (closing_ || closed_) return;  // begin_close() drains input until the end
    const bool hold =
        output_full_ || body_paused() ||
        (has_backlog() && (!response_pending() || core_->backlog_size() > kMaxWaitingBacklog));
    if (hold && !dropping_input()) {
      stream_->pause_reading();
    } else {
      stream_->resume_reading();
    }
    track_stall();
  }

  // While the server takes none of the client's bytes (its output backed up, requests waiting
  // unparsed, a body its handler holds stopped), the time is the server's or the handler's:
  // the client's header, request and body-rate deadlines stand still (on_timer() and
  // next_deadline() skip them), and move on by the stall's length when it ends, so the client
  // has exactly the time it had left. (A deadline merely re-armed at its expiry would leave it
  // anything from nothing to a whole period after a resume.)
  void track_stall() {
    const bool stalled = output_full_ || has_backlog() || body_paused();
    if (stalled == (stalled_since_ != kNever)) return;
    const TimePoint t = now();
    if (stalled) {
      stalled_since_ = t;
      return;
    }
    const Clock::duration length = t - stalled_since_;
    stalled_since_ = kNever;
    for (TimePoint* deadline : {&header_deadline_, &request_deadline_, &rate_deadline_}) {
      if (*deadline != kNever) *deadline = add_saturating(*deadline, length);
    }
    rearm();
  }

  void flush() { flush_output(out_); }

  void flush_output(HTTPOutput& out) {
    if (out.message != HTTPOutput::Message::kUnchanged) {
      stream_->set_message_complete(out.message == HTTPOutput::Message::kComplete);
      out.message = HTTPOutput::Message::kUnchanged;
    }
    if (out.empty()) {
      if (!out.on_flushed.empty()) flush_callbacks(out);
      return;
    }
    state_->writes.fetch_add(1, std::memory_order_relaxed);
    handed_ += out.size();
    if (out.chunks.empty()) {
      stream_->write_copy(out.head);
      out.head.clear();
      if (out.head.capacity() > spare_head().capacity()) out.head.swap(spare_head());
    } else {
      if (!out.head.empty()) out.chunks.push_back(std::move(out.head));
      stream_->writev(std::move(out.chunks));
      out.chunks.clear();
    }
    out.head.clear();
    if (!out.on_flushed.empty()) flush_callbacks(out);
    const uint64_t queued = stream_->write_buffer_size();
    uint64_t seen = state_->max_output_queued.load(std::memory_order_relaxed);
    while (queued > seen && !state_->max_output_queued.compare_exchange_weak(
                                seen, queued, std::memory_order_relaxed)) {
    }
  }

  // A stream's flush(done) or finish(done): an empty write behind its bytes completes once
  // they are in the kernel. The IOStream fails its write callbacks before its close callback
  // runs (on_closed()): a failed one closes the response first, so that `done` finds the
  // stream closed and gets the stream's own status (a failed response's failure), as the close
  // callback will.
  void flush_callbacks(HTTPOutput& out) {
    for (HTTPOutput::Flush& f : out.on_flushed) {
      stream_->write(std::string(), [self = shared_from_this(), cb = std::move(f.callback),
                                     response = f.response](absl::Status status) mutable {
        if (!status.ok()) {
          self->on_closed(self->stream_->error());
          const absl::Status& why = self->stream_->error();
          status = self->core_ ? self->core_->closed_status(why, response)
                               : connection_closed_status(why);
        }
        std::move(cb)(std::move(status));
      });
    }
    out.on_flushed.clear();
  }

  // After a read: the idle deadline restarts; a request that began in this read starts its
  // header and whole-request deadlines; a body that began in it starts a rate window.
  void update_deadlines(State before, size_t completed, size_t bytes) {
    const TimePoint t = now();
    idle_deadline_ = after(t, options_.idle_timeout);
    const State state = parser_state();
    // The request in progress now began in this read (its first byte, empty lines included).
    const bool began_here = before == State::kIdle || completed > 0;
    switch (state) {
      case State::kIdle:
      case State::kClosed:  // the connection's last request is complete (its response may wait)
        header_deadline_ = request_deadline_ = rate_deadline_ = kNever;
        break;
      case State::kHeaders:
        if (began_here) {
          header_deadline_ = after(t, options_.header_timeout);
          request_deadline_ = after(t, options_.request_timeout);
        }
        rate_deadline_ = kNever;
        break;
      case State::kBody:
        header_deadline_ = kNever;
        if (began_here) request_deadline_ = after(t, options_.request_timeout);
        if (before != State::kBody || completed > 0) {  // this read began the body
          rate_bytes_ = bytes;
          rate_deadline_ =
              options_.min_body_rate > 0 ? after(t, options_.body_rate_window) : kNever;
        } else {
          rate_bytes_ += bytes;
        }
        break;
      case State::kError:
        break;  // the core set out.close: the connection is closing
    }
    if (response_pending() && response_deadline_ == kNever) {
      response_deadline_ = after(t, options_.response_timeout);
    }
    rearm();
  }

  // Sends FIN once the output is flushed, then waits (discarding input) for the client's EOF,
  // which closes the stream, or for the linger timeout. `client_done` (see HTTPOutput): the
  // client sends nothing more, so the stream closes as soon as the output is flushed (unless
  // unread input says otherwise: no_unread_input()). `truncated` (see HTTPOutput): the FIN
  // goes without TLS close_notify, and the connection lingers as without `client_done` (its
  // quick close would say goodbye cleanly).
  void begin_close(bool client_done = false, bool truncated = false) {
    closing_ = true;
    client_done = client_done && !truncated;
    client_done_ = client_done;
    const bool flushing = stream_->write_buffer_size() > 0;
    if (client_done && !flushing && no_unread_input()) return stream_->close();
    if (client_done || flushing) {
      // An empty write completes once everything before it is in the kernel: then the stream
      // closes (client_done) or the linger starts.
      stream_->write(std::string(), [self = shared_from_this()](absl::Status status) {
        if (!status.ok() || self->closed_) return;
        if (self->client_done_ && self->no_unread_input()) return self->stream_->close();
        self->start_linger(self->now());
      });
    }
    if (truncated) {
      stream_->shutdown_write_truncated();
    } else {
      stream_->shutdown_write();
    }
    stream_->resume_reading();  // drain input so the client's EOF can be seen
    const TimePoint t = now();
    const size_t pending = stream_->write_buffer_size();
    last_sent_ = handed_ - pending;
    if (pending == 0) return start_linger(t);
    // While output is still flushing, the idle timeout bounds each wait for progress; without
    // one, a slow reader is waited for as on a keep-alive connection. The linger starts at the
    // flush (the empty write above).
    close_deadline_ = after(t, options_.idle_timeout);
    rearm();
  }

  // The output is in the kernel: linger_timeout for the client's end, which its input restarts
  // up to kMaxLinger from now (linger_on()).
  void start_linger(TimePoint t) {
    close_deadline_ = linger_deadline(t);
    linger_cap_ = after(t, kMaxLinger);
    rearm();
  }

  // `client_done` means the parser saw nothing after the client's last request, but bytes sent
  // while this side was not reading (its output backed up) may still wait in the kernel, or
  // arrive while the response flushes (on_chunk() then clears client_done_): closing over them,
  // or over more of them later, sends a reset, which can destroy the response in flight (RFC
  // 9112 §9.6). Then the close lingers like any other.
  bool no_unread_input() {
    const absl::StatusOr<size_t> unread = stream_->socket().unread_bytes();
    return unread.ok() && *unread == 0;
  }

  // Input while lingering once the output is flushed: the client is still sending (a body its
  // early answer made useless, which it may send before it reads): linger_timeout from this
  // byte, as nginx's lingering_timeout, but kMaxLinger from the flush at most (lingering_time).
  void linger_on() {
    if (stream_->write_buffer_size() > 0 || close_deadline_ == kNever) return;
    const TimePoint t = now();
    close_deadline_ = std::max(close_deadline_, std::min(linger_deadline(t), linger_cap_));
  }

  // A closing connection always ends: the linger timeout cannot be disabled.
  TimePoint linger_deadline(TimePoint t) const {
    const TimePoint d = after(t, options_.linger_timeout);
    return d != kNever ? d : after(t, absl::Seconds(2));
  }

  TimePoint next_deadline() const {
    if (closing_) return close_deadline_;
    if (stalled_since_ != kNever) return earliest({idle_deadline_, response_deadline_});
    return earliest(
        {idle_deadline_, header_deadline_, request_deadline_, rate_deadline_, response_deadline_});
  }

  // Makes the timer fire no later than next_deadline(). It is only moved when the deadline
  // comes earlier than it fires; otherwise it re-arms itself when it fires (see on_timer).
  void rearm() {
    const TimePoint deadline = next_deadline();
    if (deadline == kNever || closed_) return;
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

  TimePoint now() const { return clock_ ? clock_->now() : loop_.iteration_time(); }

  void cancel_timer() {
    if (timer_id_ == 0) return;
    if (clock_) {
      clock_->cancel(timer_id_);
    } else {
      loop_.remove_timeout(TimeoutHandle(timer_id_));
    }
    timer_id_ = 0;
  }

  // Output still draining to a slow reader is progress, not idleness: true (and the deadline
  // moved) if bytes left the queue since the last look. Not "the queue's size changed": a
  // handler may have written as many as the client took.
  bool output_progress(TimePoint t, TimePoint& deadline) {
    const size_t pending = stream_->write_buffer_size();
    const uint64_t sent = handed_ - pending;
    if (pending == 0 || sent == last_sent_) return false;
    last_sent_ = sent;
    deadline = after(t, options_.idle_timeout);  // only armed with an idle timeout
    return true;
  }

  void on_timer() {
    timer_id_ = 0;
    if (closed_) return;
    const TimePoint t = now();
    if (closing_) {
      if (t < close_deadline_ || output_progress(t, close_deadline_)) return rearm();
      stream_->close();
      return;
    }
    // The client's clocks stand still while it is stalled (track_stall()).
    const bool stalled = stalled_since_ != kNever;
    if (response_deadline_ <= t) {
      response_deadline_ = kNever;
      logger().debug("HTTP connection fd {} response timeout", stream_->fd());
      core().on_response_timeout(out_);  // 503, or close after a partial response
      flush();
      return begin_close(false, out_.truncated);
    }
    if (!stalled && header_deadline_ <= t) return time_out(state_->header_timeouts, "header");
    if (!stalled && request_deadline_ <= t) {
      return time_out(state_->request_timeouts, "request");
    }
    if (!stalled && rate_deadline_ <= t) {
      const double needed = static_cast<double>(options_.min_body_rate) *
                            absl::ToDoubleSeconds(options_.body_rate_window);
      if (static_cast<double>(rate_bytes_) < needed) {
        return time_out(state_->body_rate_timeouts, "body rate");
      }
      rate_bytes_ = 0;
      rate_deadline_ = after(t, options_.body_rate_window);
    }
    // A response in progress is not idleness: its own timeout is response_timeout. Nor is a
    // streamed body its handler stopped (flow control). Output the client does not take is
    // (nginx's send_timeout): then the queue must move between two looks (output_progress).
    if (idle_deadline_ <= t &&
        ((response_pending() && stream_->write_buffer_size() == 0) || body_paused())) {
      idle_deadline_ = after(t, options_.idle_timeout);
    }
    if (idle_deadline_ <= t && !output_progress(t, idle_deadline_)) {
      state_->idle_timeouts.fetch_add(1, std::memory_order_relaxed);
      logger().debug("HTTP connection fd {} idle timeout", stream_->fd());
      // Before the close: on_connection_closed() then finds no handler.
      if (core_) core_->on_idle_timeout();
      stream_->close();
      return;
    }
    rearm();
  }

  // A request took too long: 408, then close.
  void time_out(std::atomic<uint64_t>& counter, const char* which) {
    counter.fetch_add(1, std::memory_order_relaxed);
    logger().debug("HTTP connection fd {} {} timeout", stream_->fd(), which);
    core().on_timeout(out_);
    flush();
    begin_close();
  }

  // Once: the stream's close callback, or a flush callback the close failed (before it).
  void on_closed(const absl::Status& status) {
    if (closed_) return;
    closed_ = true;
    cancel_timer();
    // A pending response's stream learns it here.
    if (core_) core_->on_connection_closed(status);
  }

  const HTTPServerOptions& options_;
  std::shared_ptr<HTTPServerState> state_;
  IOStream* stream_;
  IOLoop& loop_;
  HTTPClock* clock_;                          // null: loop_ (the clock is owned by state_)
  std::unique_ptr<HTTPConnectionCore> core_;  // see core()
  std::string remote_address_;                // the address the last core cached, for the next one
  HTTPOutput out_;
  uint64_t timer_id_ = 0;  // the pending timer's id (loop_'s or clock_'s); 0: none
  TimePoint timer_at_{};
  TimePoint idle_deadline_ = kNever;      // no read for idle_timeout
  TimePoint header_deadline_ = kNever;    // header section started header_timeout ago
  TimePoint request_deadline_ = kNever;   // request started request_timeout ago
  TimePoint rate_deadline_ = kNever;      // end of the current body-rate window
  TimePoint close_deadline_ = kNever;     // closing: flush progress, then the linger (start_linger)
  TimePoint linger_cap_ = kNever;         // closing: input extends the linger up to this
  TimePoint response_deadline_ = kNever;  // a deferred response started response_timeout ago
  TimePoint stalled_since_ = kNever;      // the server takes no byte of the client's since then
  uint64_t rate_bytes_ = 0;               // bytes read in the current body-rate window
  uint64_t handed_ = 0;                   // bytes flush_output() gave the stream, ever
  uint64_t last_sent_ = 0;          // of those, the bytes that had left its queue at the last look
  bool output_full_ = false;        // over the high watermark
  bool waiting_for_drain_ = false;  // wait_for_drain()'s write is pending
  bool closing_ = false;
  bool client_done_ = false;  // closing, and the client is known to send nothing more
  bool closed_ = false;
};

}  // namespace

void discard_idle_connection_cores() { core_cache().clear(); }

void serve_http_connection(const std::shared_ptr<HTTPServerState>& state,
                           const std::shared_ptr<IOStream>& stream) {
  state->connections.fetch_add(1, std::memory_order_relaxed);
  std::make_shared<HTTPConnection>(state, stream.get())->start();
}

}  // namespace ioloop::net
