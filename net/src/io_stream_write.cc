// IOStream's write side: the send fast path, the queue, watermarks and shutdown_write().
// (Reads are in io_stream_read.cc; registration, dispatch and close order in io_stream.cc.)
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "io_stream_names.h"
#include "ioloop/net/io_stream.h"
#include "write_queue.h"

namespace ioloop::net {
namespace {

using internal::kHighCallback;
using internal::kLowCallback;
using internal::kWriteCallback;

// Per readiness event: at most this many bytes written, so one stream's huge write cannot
// starve timers and other fds.
constexpr size_t kWriteSlice = 256 * 1024;

// Queues what write() and write_copy() did not send: write()'s string itself (the queue skips
// the `sent` bytes), a copy of the rest of write_copy()'s view.
void enqueue(WriteQueue& q, std::string data, size_t sent = 0) { q.append(std::move(data), sent); }
void enqueue(WriteQueue& q, absl::string_view data, size_t sent = 0) {
  q.append(std::string(data.substr(sent)));
}

}  // namespace

size_t IOStream::write_buffer_size() const { return writes_ ? writes_->size() : 0; }

WriteQueue& IOStream::queue() {
  if (!writes_) writes_ = std::make_unique<WriteQueue>();
  return *writes_;
}

absl::Status IOStream::write_precheck() const {
  if (closed()) return closed_status();
  if (phase_ == Phase::kShuttingDown || phase_ == Phase::kWriteShut || phase_ == Phase::kDraining) {
    return absl::FailedPreconditionError("IOStream: write after shutdown_write()");
  }
  return absl::OkStatus();
}

template <typename Data>
void IOStream::write_one(Data data, WriteCallback on_flushed) {
  if (absl::Status s = write_precheck(); !s.ok()) {
    post_write(std::move(on_flushed), std::move(s));
    return;
  }
  if (writing() || (transport_wait_ & kHandshaking)) {
    // Behind queued bytes, or before the handshake: queue, in order.
    enqueue(queue(), std::move(data));
    queue().add_callback(std::move(on_flushed));
    check_high_watermark();
    if (!dispatching_) update_interest();
    return;
  }
  // Fast path: nothing queued, so the bytes may go straight to the kernel (no WRITE
  // registration unless the kernel takes less than all of them).
  size_t sent = 0;
  if (!data.empty()) {
    struct iovec iov = {const_cast<char*>(data.data()), data.size()};
    IOResult r = transport().write(socket_.fd(), &iov, 1);
    if (r.outcome == IOResult::kDone) {
      sent = r.bytes;
    } else if (r.outcome == IOResult::kWantRead) {
      transport_wait_ |= kWriteNeedsRead;
    } else if (r.outcome == IOResult::kError) {
      close_on_connection_error(std::move(r.status));
    }
  }
  if (closed()) {
    // The callback fails in run_close_callbacks(), before the close callback runs.
    enqueue(queue(), std::move(data));
    queue().add_callback(std::move(on_flushed));
    writes_->discard_unsent();
    return;
  }
  if (sent == data.size()) {
    post_write(std::move(on_flushed), absl::OkStatus());
    return;
  }
  enqueue(queue(), std::move(data), sent);
  queue().add_callback(std::move(on_flushed));
  update_interest();
  check_high_watermark();
}

void IOStream::write(std::string data, WriteCallback on_flushed) {
  write_one(std::move(data), std::move(on_flushed));
}

void IOStream::write_copy(absl::string_view data, WriteCallback on_flushed) {
  write_one(data, std::move(on_flushed));
}

void IOStream::writev(std::vector<std::string> chunks, WriteCallback on_flushed) {
  if (absl::Status s = write_precheck(); !s.ok()) {
    post_write(std::move(on_flushed), std::move(s));
    return;
  }
  const bool was_writing = writing();
  WriteQueue& q = queue();
  for (std::string& chunk : chunks) q.append(std::move(chunk));
  q.add_callback(std::move(on_flushed));
  if (transport_wait_ & kHandshaking) {
    if (!dispatching_) update_interest();
  } else if (!was_writing) {
    // One send for the whole batch; callbacks whose data is out complete on the next
    // iteration, never in here.
    if (writing()) flush_queue(kWriteSlice);
    if (closed()) return;  // close() completes the callbacks
    run_flush_callbacks();
    if (writes_->idle()) writes_.reset();
    update_interest();
  }
  check_high_watermark();
}

void IOStream::flush_queue(size_t budget) {
  Transport& t = transport();
  while (writes_ && writes_->size() > 0 && budget > 0) {
    struct iovec iov[WriteQueue::kMaxIov];
    size_t asked = 0;
    const int count = writes_->gather(iov, budget, &asked);
    IOResult r = t.write(socket_.fd(), iov, count);
    transport_wait_ &= static_cast<uint8_t>(~kWriteNeedsRead);
    if (r.outcome == IOResult::kWantWrite) return;
    if (r.outcome == IOResult::kWantRead) {
      transport_wait_ |= kWriteNeedsRead;
      return;
    }
    if (r.outcome != IOResult::kDone) {
      close_on_connection_error(std::move(r.status));
      return;
    }
    writes_->consume(r.bytes);
    budget -= std::min(budget, r.bytes);
    if (r.bytes < asked) return;  // the socket buffer is full
  }
}

void IOStream::handle_write() {
  flush_queue(kWriteSlice);
  if (closed()) return;
  run_flush_callbacks();
  check_low_watermark();
  if (closed() || writing()) return;
  if (phase_ == Phase::kShuttingDown || phase_ == Phase::kDraining) do_shutdown_write();
  if (writes_ && writes_->idle()) writes_.reset();
}

// Posted like the fast path's (write_one(), writev()): run here, a later write's callback
// would overtake an earlier write's that the kernel took at once and that waits in the loop's
// queue. Callbacks run in write order, on a later iteration.
void IOStream::run_flush_callbacks() {
  WriteCallback cb;
  while (writes_ && writes_->pop_flushed(&cb)) post_write(std::move(cb), absl::OkStatus());
}

absl::Status IOStream::set_write_watermarks(size_t high, size_t low) {
  if (high > 0 && low >= high) {
    return absl::InvalidArgumentError(absl::StrCat("IOStream::set_write_watermarks: low (", low,
                                                   ") must be below high (", high, "), or high 0"));
  }
  high = std::min<size_t>(high, kMaxWatermark);
  watermark_high_ = static_cast<uint32_t>(high);
  watermark_low_ = static_cast<uint32_t>(high == 0 ? 0 : std::min(low, high - 1));
  check_high_watermark();
  return absl::OkStatus();
}

void IOStream::set_high_watermark_callback(WatermarkCallback cb) { on_high_ = std::move(cb); }
void IOStream::set_low_watermark_callback(WatermarkCallback cb) { on_low_ = std::move(cb); }

IOStream::SideState& IOStream::side() {
  if (!side_) side_ = std::make_unique<SideState>();
  return *side_;
}

bool IOStream::can_reset() const {
  const absl::StatusOr<int> domain = socket_.get_option(SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN");
  return domain.ok() && (*domain == AF_INET || *domain == AF_INET6);
}

void IOStream::check_high_watermark() {
  if (watermark_high_ == 0 || above_high_ || closed()) return;
  if (write_buffer_size() < watermark_high_) return;
  above_high_ = true;
  if (!on_high_) return;
  WatermarkCallback cb = std::move(on_high_);  // it may replace itself
  on_high_ = nullptr;
  run_user(kHighCallback, [&] { cb(); });
  if (!on_high_) on_high_ = std::move(cb);
}

void IOStream::check_low_watermark() {
  if (!above_high_ || write_buffer_size() > watermark_low_) return;
  above_high_ = false;
  if (!on_low_) return;
  WatermarkCallback cb = std::move(on_low_);
  on_low_ = nullptr;
  run_user(kLowCallback, [&] { cb(); });
  if (!on_low_) on_low_ = std::move(cb);
}

void IOStream::shutdown_write() {
  switch (phase_) {
    case Phase::kOpen:
      phase_ = Phase::kShuttingDown;
      break;
    case Phase::kPeerEof:
      phase_ = Phase::kDraining;
      break;
    default:
      return;  // already shutting down, or closed
  }
  if (!writing() && !(transport_wait_ & kHandshaking)) do_shutdown_write();
}

void IOStream::shutdown_write_truncated() {
  if (side_ && side_->transport) side_->truncated_end = true;
  shutdown_write();
}

void IOStream::set_message_complete(bool complete) {
  if (!complete || side_) side().message_incomplete = !complete;
}

// The queue is empty: send our end (FIN, or TLS close_notify unless the data was cut short).
void IOStream::do_shutdown_write() {
  // Cut short by this FIN whatever is said later: close() sends no goodbye after it either.
  if (side_ && side_->message_incomplete) side_->truncated_end = true;
  const bool truncated = side_ && side_->truncated_end;
  if (truncated && !side_->transport && can_reset()) {
    close();  // a plain TCP stream's only end that says "cut short": a reset (see close())
    return;
  }
  Transport& t = transport();
  IOResult r = IOResult::done(0);
  // What the transport holds (an answer to the peer) goes before a bare FIN; a TLS
  // close_notify is sent behind it by the transport itself.
  if (truncated && t.has_pending_output()) r = t.flush(socket_.fd());
  if (r.outcome == IOResult::kDone) {
    r = (truncated ? Transport::plain() : t).shutdown_write(socket_.fd());
  }
  if (r.outcome == IOResult::kError) {
    close(std::move(r.status));
    return;
  }
  // A TLS close_notify that does not fit now goes out when the socket is writable: a
  // half-closed stream may never close, so the peer would wait for our end forever.
  transport_wait_ &= static_cast<uint8_t>(~kShutdownNeedsWrite);
  if (r.outcome == IOResult::kWantWrite) {
    transport_wait_ |= kShutdownNeedsWrite;
    if (!dispatching_) update_interest();
    return;
  }
  if (phase_ == Phase::kShuttingDown) {
    phase_ = Phase::kWriteShut;
  } else if (phase_ == Phase::kDraining && !dispatching_) {
    schedule_deferred();  // both directions done: close
  }
}

}  // namespace ioloop::net
