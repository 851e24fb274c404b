#include "ioloop/net/io_stream.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <utility>

#include "io_stream_names.h"
#include "write_queue.h"

namespace ioloop::net {
namespace {

using internal::kCloseCallback;
using internal::kHandshakeCallback;
using internal::kReadCallback;
using internal::kWriteCallback;

}  // namespace

// Every user callback runs through here (Tornado's _run_callback): an exception is logged and
// counted by the loop and closes the stream with Internal "exception in <what>: <what()>"
// (if it is still open; else the first reason stands). Unread data goes with it, so the
// reads still pending fail with that status rather than feed more data to failing code.
// Returns false if `fn` threw.
bool IOStream::run_user(const char* what, absl::FunctionRef<void()> fn) {
  absl::Status s = loop_->invoke_guarded(what, fn);
  if (s.ok()) return true;
  if (!closed()) {
    read_buffer_.retrieve_all();
    close(std::move(s));
  }
  return false;
}

// Runs the user callback `fn` on the next iteration, through run_user() if the stream still
// exists (the post must not keep it alive: dropping the last pointer closes the fd now).
template <typename F>
void IOStream::post(const char* what, F fn) {
  loop_->add_callback([self = weak_from_this(), loop = loop_, what, fn = std::move(fn)]() mutable {
    if (std::shared_ptr<IOStream> stream = self.lock()) {
      stream->run_user(what, [&] { fn(); });
    } else {
      loop->invoke_guarded(what, fn).IgnoreError();  // no stream left to close
    }
  });
}

void IOStream::post_read(ReadCallback cb, absl::StatusOr<std::string> result) {
  if (!cb) return;
  post(kReadCallback, [cb = std::move(cb), result = std::move(result)]() mutable {
    std::move(cb)(std::move(result));
  });
}

void IOStream::post_write(WriteCallback cb, absl::Status status) {
  if (!cb) return;
  post(kWriteCallback,
       [cb = std::move(cb), status = std::move(status)]() mutable { std::move(cb)(status); });
}

// The lifetime idiom's strong capture (docs/architecture.md, "Lifetimes"): the loop's fd
// handler and queued dispatches must keep the stream alive, so they hold a shared_ptr (user
// completions, which must not, go through post() with a weak_ptr). LoopRef and HandlerRef add
// one cleanup hook for the one case the idiom leaves open: if the loop destroys them unrun (the
// loop itself is being destroyed) while the stream still has callbacks to deliver, those
// callbacks are destroyed unrun. One of them usually owns the stream (`[s] { ...
// s->read_until(...) }`), and that cycle would otherwise outlive the loop. Each is one
// shared_ptr (16 bytes), so the lambda that captures it fits AnyInvocable's inline storage:
// the handler is kept for the stream's whole registration, a heap box would be per connection.
//
// LoopRef: a one-shot dispatch (add_callback). take() hands the reference to the run.
class IOStream::LoopRef {
 public:
  explicit LoopRef(std::shared_ptr<IOStream> stream) : stream_(std::move(stream)) {}
  LoopRef(LoopRef&& other) noexcept = default;
  LoopRef& operator=(LoopRef&&) = delete;
  ~LoopRef() {
    if (stream_) stream_->drop_callbacks();  // destroyed unrun
  }
  std::shared_ptr<IOStream> take() { return std::move(stream_); }

 private:
  std::shared_ptr<IOStream> stream_;
};

// HandlerRef: the loop's fd handler, run on every readiness event.
class IOStream::HandlerRef {
 public:
  explicit HandlerRef(std::shared_ptr<IOStream> stream) : stream_(std::move(stream)) {}
  HandlerRef(HandlerRef&& other) noexcept = default;
  HandlerRef& operator=(HandlerRef&&) = delete;
  ~HandlerRef() {
    // close() removes the handler on purpose; its queued close callbacks still run. A handler
    // the loop refused (add_handler failed: interest_ still kUnregistered) is not an abandon
    // either: update_interest() closes the stream next, which completes every callback.
    if (stream_ && !stream_->closed() && stream_->interest_ != kUnregistered) {
      stream_->drop_callbacks();
    }
  }
  IOStream* get() const { return stream_.get(); }

 private:
  std::shared_ptr<IOStream> stream_;
};

void IOStream::drop_callbacks() {
  ReadCallback read = std::move(read_cb_);
  read_cb_ = nullptr;
  read_.finish();
  CloseCallback on_close = std::move(close_cb_);
  close_cb_ = nullptr;
  std::unique_ptr<WriteQueue> writes = std::move(writes_);
  WatermarkCallback on_high = std::move(on_high_);
  on_high_ = nullptr;
  WatermarkCallback on_low = std::move(on_low_);
  on_low_ = nullptr;
  std::unique_ptr<SideState> side = std::move(side_);
  // The locals die here; the LoopRef's reference keeps `this` alive meanwhile.
}

// Marks "inside this stream's own dispatch": read_*() then only records the request and
// the running dispatch serves it, so callbacks never recurse into each other.
class IOStream::DispatchScope {
 public:
  explicit DispatchScope(IOStream* stream) : stream_(stream), prev_(stream->dispatching_) {
    stream_->dispatching_ = true;
  }
  ~DispatchScope() { stream_->dispatching_ = prev_; }
  DispatchScope(const DispatchScope&) = delete;
  DispatchScope& operator=(const DispatchScope&) = delete;

 private:
  IOStream* stream_;
  bool prev_;
};

std::shared_ptr<IOStream> IOStream::create(IOLoop& loop, Socket socket, IOStreamOptions options,
                                           std::unique_ptr<Transport> transport) {
  if (socket.valid() && !options.socket_nonblocking) {
    int flags = ::fcntl(socket.fd(), F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK) == 0) {
      ::fcntl(socket.fd(), F_SETFL, flags | O_NONBLOCK);
    }
  }
  return std::make_shared<IOStream>(CreateToken(), loop, std::move(socket), options,
                                    std::move(transport));
}

IOStream::IOStream(CreateToken, IOLoop& loop, Socket socket, const IOStreamOptions& options,
                   std::unique_ptr<Transport> transport)
    : loop_(&loop),
      // 0 is 1: a stream that reads ahead must have room for a byte, or READ would stay
      // registered with nothing read (a spin).
      max_buffer_size_(
          static_cast<uint32_t>(std::clamp<size_t>(options.max_buffer_size, 1, UINT32_MAX - 1))),
      socket_(std::move(socket)),
      allow_half_open_(options.allow_half_open) {
  // A message read whole and consumed within the dispatch costs no block and no copy; the
  // loan ends in dispatch_epilogue() (and at the close), so it never outlives a dispatch.
  read_buffer_.set_lending(true);
  if (transport) {
    side().transport = std::move(transport);
    transport_wait_ = kHandshaking;
  }
  if (!socket_.valid()) {
    phase_ = Phase::kFinished;
    set_error(absl::InvalidArgumentError("IOStream: created without a socket"));
  }
}

// A registered stream is only destroyed by the IOLoop's destructor, so never touch loop_.
IOStream::~IOStream() = default;

const absl::Status& IOStream::error() const {
  static const absl::Status* const kOk = new absl::Status();  // leaked: no exit-time destructor
  // The analyzer takes the static's first-use initialisation for a possibly null pointer.
  return side_ ? side_->error : *kOk;  // NOLINT(clang-analyzer-core.uninitialized.UndefReturn)
}

void IOStream::set_error(absl::Status status) { side().error = std::move(status); }

bool IOStream::peer_ended() const { return peer_eof_ || closed(); }

// ---------------------------------------------------------------------------------------------
// Dispatch

void IOStream::schedule_deferred() {
  if (deferred_scheduled_ || !loop_) return;
  deferred_scheduled_ = true;
  loop_->add_callback([ref = LoopRef(shared_from_this())]() mutable {
    std::shared_ptr<IOStream> self = ref.take();
    self->dispatch_deferred();
  });
}

void IOStream::dispatch_deferred() {
  deferred_scheduled_ = false;
  {
    DispatchScope scope(this);
    run_handshake_callback();
    // TLS plaintext read ahead of the socket: read it now, no readiness will announce it.
    if (!closed() && has_buffered_input()) handle_read(false);
    take_unread();  // queued before the close callbacks: a read waiting here gets those bytes
    serve_reads();  // a closed stream too: reads started after the close complete here
  }
  dispatch_epilogue();
}

// Both dispatch paths end here: close a finished half-close, free an empty read buffer, and
// register what the stream now waits for.
void IOStream::dispatch_epilogue() {
  // Queued bytes went (or go) with WRITE, and handle_write() did the rest after them.
  if (side_ && std::exchange(side_->handshake_finished, false) && !closed() && !writing()) {
    handle_write();
  }
  if (side_ && side_->transport && !closed()) {
    if (!side_->transport->has_pending_output()) {
      // A read or a write may have sent what a flush waited to send.
      transport_wait_ &= static_cast<uint8_t>(~kFlushNeedsWrite);
    } else if (!writing() || (transport_wait_ & kWriteNeedsRead)) {
      // (A queued write waiting for WRITE sends it first; a send now would find the socket
      // full.)
      flush_transport();
    }
  }
  maybe_close_after_eof();
  if (read_buffer_.empty()) {
    read_buffer_.release_if_empty();
  } else {
    read_buffer_.end_lending();  // what no read took yet gets a block of its own
  }
  if (!closed() && has_buffered_input() && !paused_ && read_.active()) {
    schedule_deferred();
  }
  update_interest();
}

// ---------------------------------------------------------------------------------------------
// Events

uint32_t IOStream::wanted_events() const {
  if (transport_wait_ & kHandshaking) {
    return (transport_wait_ & kHandshakeNeedsWrite) ? IOLoop::WRITE : IOLoop::READ;
  }
  uint32_t want = 0;
  // With no read outstanding, still read into an empty buffer when a close callback wants
  // to hear about EOF/RST (Tornado's "error listener"); stop once anything is buffered.
  if (!peer_eof_ && !paused_ && (read_.active() || (close_cb_ && read_buffer_.empty()))) {
    want |= (transport_wait_ & kReadNeedsWrite) ? IOLoop::WRITE : IOLoop::READ;
  }
  if (writing()) want |= (transport_wait_ & kWriteNeedsRead) ? IOLoop::READ : IOLoop::WRITE;
  if (transport_wait_ & (kShutdownNeedsWrite | kFlushNeedsWrite)) want |= IOLoop::WRITE;
  return want;
}

void IOStream::update_interest() {
  if (closed()) return;
  if (interest_ == kUnregistered && (transport_wait_ & kHandshaking)) {
    advance_handshake();  // a client speaks first; a server learns it must wait to read
    if (closed()) return;
    if (!(transport_wait_ & kHandshaking)) schedule_deferred();  // finished at once
  }
  const uint32_t want = wanted_events();
  if (interest_ == kUnregistered) {
    // A read while paused registers too, for errors only: the loop then holds the stream (and
    // drops its callbacks if it goes first) as it holds any stream with work outstanding.
    if (want == 0 && !read_.active()) return;
    absl::Status s = loop_->add_handler(
        socket_.fd(),
        [ref = HandlerRef(shared_from_this())](int, uint32_t events) {
          ref.get()->on_events(events);
        },
        want != 0 ? want : IOLoop::ERROR);
    if (!s.ok()) {
      close(s);
      return;
    }
    interest_ = static_cast<uint8_t>(want);
    return;
  }
  if (want != interest_) {
    absl::Status s = loop_->update_handler(socket_.fd(), want);
    if (!s.ok()) {
      close(s);
      return;
    }
    interest_ = static_cast<uint8_t>(want);
  }
}

void IOStream::on_events(uint32_t events) {
  if (closed()) return;
  {
    DispatchScope scope(this);
    bool force_read = false;
    if (events & IOLoop::ERROR) {
      absl::Status err = socket_.take_error();
      if (!err.ok()) {
        // A TLS peer that refuses the handshake sends an alert, and may reset the connection
        // right after (closing with our bytes unread). The alert says why; the reset only that
        // the connection is gone: let the handshake read what is in the socket first, and
        // report what it found if that was the peer's alert (not a failed send, an EOF).
        int pending = 0;
        if ((transport_wait_ & kHandshaking) && ::ioctl(socket_.fd(), FIONREAD, &pending) == 0 &&
            pending > 0) {
          IOResult r = transport().handshake(socket_.fd());
          if (r.outcome == IOResult::kError && r.status.GetPayload(kPeerAlertPayload)) {
            err = std::move(r.status);
          }
        }
        close_on_connection_error(std::move(err));
      } else if (peer_eof_) {
        // Hang-up after EOF: the write side is gone too. Paused or not, the stream ends now
        // (as at a reset): its owner must hear that the connection is gone, and a hang-up
        // cannot be masked, so waiting for resume_reading() would wake the loop every turn.
        if (writing()) {
          events |= IOLoop::WRITE;
        } else {
          close();
        }
      } else {
        force_read = true;  // find the EOF or error, even while paused
      }
    }
    if (!closed() && (transport_wait_ & kHandshaking)) {
      advance_handshake();
      if (transport_wait_ & kHandshaking) force_read = false;  // still waiting
      // Done: what queued meanwhile goes out, what arrived with the handshake is read.
      events = (transport_wait_ & kHandshaking) ? 0 : IOLoop::READ | IOLoop::WRITE;
      run_handshake_callback();
    }
    // A TLS read may wait for WRITE and a TLS write for READ; plain streams never do.
    const bool readable = events & IOLoop::READ;
    const bool writable = events & IOLoop::WRITE;
    const bool read_ready = (transport_wait_ & kReadNeedsWrite) ? writable : readable;
    const bool write_ready = (transport_wait_ & kWriteNeedsRead) ? readable : writable;
    if (!closed() && (read_ready || force_read)) handle_read(force_read);
    if (!closed() && write_ready && writing()) handle_write();
    if (!closed() && writable && (transport_wait_ & kShutdownNeedsWrite)) do_shutdown_write();
    if (!closed()) serve_reads();
  }
  dispatch_epilogue();
}

void IOStream::advance_handshake() {
  IOResult r = transport().handshake(socket_.fd());
  switch (r.outcome) {
    case IOResult::kDone:
      transport_wait_ = 0;
      side().handshake_finished = true;
      return;
    case IOResult::kWantRead:
      transport_wait_ = kHandshaking;
      return;
    case IOResult::kWantWrite:
      transport_wait_ = kHandshaking | kHandshakeNeedsWrite;
      return;
    case IOResult::kEof:
      peer_eof_ = true;
      close(absl::UnavailableError("IOStream: the peer closed the connection in the handshake"));
      return;
    case IOResult::kError:
      close(std::move(r.status));
      return;
  }
}

// What the transport held back (a TLS server's session tickets; an answer a read made, or a
// record's tail, that a full socket did not take) goes out at the end of a dispatch that
// leaves it held with no write queued to send it first.
void IOStream::flush_transport() {
  transport_wait_ &= static_cast<uint8_t>(~kFlushNeedsWrite);
  IOResult r = transport().flush(socket_.fd());
  if (r.outcome == IOResult::kWantWrite) {
    transport_wait_ |= kFlushNeedsWrite;
  } else if (r.outcome == IOResult::kError) {
    close(std::move(r.status));
  }
}

void IOStream::run_handshake_callback() {
  if ((transport_wait_ & kHandshaking) || !side_ || !side_->on_handshake) return;
  HandshakeCallback cb = std::move(side_->on_handshake);
  side_->on_handshake = nullptr;
  run_user(kHandshakeCallback, [&] { std::move(cb)(absl::OkStatus()); });
}

void IOStream::wait_for_handshake(HandshakeCallback cb) {
  if (!cb) return;
  if (closed() || !(transport_wait_ & kHandshaking)) {
    post(kHandshakeCallback,
         [cb = std::move(cb), status = closed() ? closed_status() : absl::OkStatus()]() mutable {
           std::move(cb)(status);
         });
    return;
  }
  if (HandshakeCallback old = std::move(side().on_handshake)) {
    post(kHandshakeCallback, [old = std::move(old)]() mutable {
      std::move(old)(absl::FailedPreconditionError("IOStream: wait_for_handshake replaced"));
    });
  }
  side().on_handshake = std::move(cb);
  if (!dispatching_) update_interest();
}

// ---------------------------------------------------------------------------------------------
// Closing

void IOStream::set_close_callback(CloseCallback cb) {
  if (phase_ == Phase::kFinished) {
    if (!cb) return;
    post(kCloseCallback, [cb = std::move(cb), status = error()]() mutable { cb(status); });
    return;
  }
  close_cb_ = std::move(cb);
  if (!dispatching_) update_interest();
}

void IOStream::close(absl::Status reason) {
  if (closed()) return;
  // A clean local close of a TLS stream says goodbye (close_notify, unless sent already),
  // best effort: the fd closes right after, whatever the peer does.
  if (reason.ok() && error().ok() && side_ && side_->transport && !side_->truncated_end &&
      !side_->message_incomplete && !(transport_wait_ & kHandshaking)) {
    side_->transport->end_before_close(socket_.fd());
  }
  // A plain TCP stream has no goodbye to withhold: a message in progress (or cut short) ends
  // with a reset, which the peer cannot take for the message's end as it would a FIN. Bytes
  // the kernel holds unsent are dropped with it; the peer reads those it received, then the
  // reset.
  if (side_ && !side_->transport && (side_->message_incomplete || side_->truncated_end) &&
      can_reset()) {
    (void)socket_.set_linger_zero();  // best effort: the close follows either way
  }
  phase_ = Phase::kClosed;
  if (!reason.ok() && error().ok()) set_error(std::move(reason));
  if (interest_ != kUnregistered) {
    // The loop keeps the handler (and its reference to us) alive until the batch ends.
    loop_->remove_handler(socket_.fd());
    interest_ = kUnregistered;
  }
  socket_.reset();
  // Unsent data is discarded now; its callbacks complete in run_close_callbacks().
  if (writes_) writes_->discard_unsent();
  loop_->add_callback([ref = LoopRef(shared_from_this())]() mutable {
    std::shared_ptr<IOStream> self = ref.take();
    self->run_close_callbacks();
  });
}

// What close_on_connection_error() read goes behind the read buffer's bytes. Only here, from
// a dispatch of the stream's own (deferred, or the close callbacks): no read callback runs
// then, so the buffer is free.
void IOStream::take_unread() {
  if (!side_ || side_->unread.empty()) return;
  (void)read_buffer_.append(side_->unread.view());  // bounded by max_buffer_size at the read
  side_->unread = Buffer();
}

// Completion order at close: the handshake callback, the pending read, the write callbacks
// in write order, then the close callback.
void IOStream::run_close_callbacks() {
  {
    DispatchScope scope(this);
    if (side_ && side_->on_handshake) {
      HandshakeCallback cb = std::move(side_->on_handshake);
      side_->on_handshake = nullptr;
      run_user(kHandshakeCallback, [&] { std::move(cb)(closed_status()); });
    }
    take_unread();
    serve_reads();
    if (std::unique_ptr<WriteQueue> writes = std::move(writes_)) {
      const absl::Status status = closed_status();
      WriteCallback cb;
      bool written = false;
      while (writes->pop_remaining(&cb, &written)) {
        run_user(kWriteCallback, [&] { std::move(cb)(written ? absl::OkStatus() : status); });
      }
    }
    phase_ = Phase::kFinished;
    if (close_cb_) {
      CloseCallback cb = std::move(close_cb_);
      close_cb_ = nullptr;
      run_user(kCloseCallback, [&] { cb(error()); });
    }
    // Reads or writes started by those callbacks: complete them too.
    serve_reads();
    if (std::unique_ptr<WriteQueue> writes = std::move(writes_)) {
      WriteCallback cb;
      bool written = false;
      while (writes->pop_remaining(&cb, &written)) post_write(std::move(cb), closed_status());
    }
  }
  if (!read_buffer_.release_if_empty()) read_buffer_.end_lending();
  on_high_ = nullptr;
  on_low_ = nullptr;
}

}  // namespace ioloop::net
