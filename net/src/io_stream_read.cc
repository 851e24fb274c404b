// IOStream's read side: the read modes against the buffer, pause/resume, reading from the
// transport and the peer's EOF. (Writes are in io_stream_write.cc; registration, dispatch and
// close order in io_stream.cc.)
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "io_stream_names.h"
#include "ioloop/net/io_stream.h"

namespace ioloop::net {
namespace {

using internal::kReadCallback;
using internal::kStreamingCallback;

// Per readiness event: at most this many bytes read, so one fast sender yields to timers
// and other fds (level-triggered polling brings it back next iteration).
constexpr size_t kReadSlice = 256 * 1024;
// Read completions served by one dispatch before the rest is deferred to the next
// iteration (pipelined requests issued from callbacks).
constexpr int kMaxCompletionsPerDispatch = 64;

constexpr char kSecondRead[] = "IOStream: a read is already outstanding (one read at a time)";

}  // namespace

// ---------------------------------------------------------------------------------------------
// Reads

// Takes `cb` as the new read's completion; a second outstanding read instead fails `cb`
// with FailedPrecondition (on the next iteration) and returns false.
bool IOStream::start_read(ReadCallback& cb) {
  if (read_.active()) {
    post_read(std::move(cb), absl::FailedPreconditionError(kSecondRead));
    return false;
  }
  read_cb_ = std::move(cb);
  if (!read_cb_) read_cb_ = [](absl::StatusOr<std::string>) {};
  return true;
}

void IOStream::after_read_started() {
  if (dispatching_) return;  // the running dispatch serves it after the callback returns
  // Buffered data, an end, a read of nothing, or TLS plaintext already decrypted (a dispatch
  // that stopped at its budget inside a record): none of them makes the fd readable.
  if (!read_buffer_.empty() || peer_ended() || read_.wants_nothing() ||
      (has_buffered_input() && !paused_)) {
    schedule_deferred();
  }
  update_interest();
}

void IOStream::read_until(std::string delimiter, ReadCallback cb, size_t max_bytes) {
  const size_t longest = std::min<size_t>(max_buffer_size_, UINT16_MAX);
  if (delimiter.empty() || delimiter.size() > longest) {
    post_read(std::move(cb),
              absl::InvalidArgumentError(absl::StrCat(
                  "IOStream::read_until: delimiter of ", delimiter.size(), " bytes (must be 1..",
                  longest, ": 65535 at most, and max_buffer_size)")));
    return;
  }
  if (!start_read(cb)) return;
  read_.start_until(std::move(delimiter), max_bytes);
  after_read_started();
}

void IOStream::read_bytes(size_t n, ReadCallback cb, bool partial) {
  if (!start_read(cb)) return;
  read_.start_bytes(n, partial);
  if (!partial && n > max_buffer_size_ && !closed()) {
    // It could only fail once more than max_buffer_size had arrived: a peer waiting for an
    // answer would never send that much. The pending read completes with the close's status.
    close(absl::ResourceExhaustedError(absl::StrCat(
        "IOStream::read_bytes: ", n, " bytes cannot fit max_buffer_size=", max_buffer_size_)));
    return;
  }
  after_read_started();
}

void IOStream::read_until_close(ReadCallback cb) {
  if (!start_read(cb)) return;
  read_.start_until_close();
  after_read_started();
}

void IOStream::read_streaming(StreamingCallback on_chunk, ReadCallback on_done,
                              size_t total_bytes) {
  if (!start_read(on_done)) return;
  if (!on_chunk) on_chunk = [](absl::string_view) {};
  read_.start_streaming(std::move(on_chunk), total_bytes);
  after_read_started();
}

void IOStream::pause_reading() {
  if (paused_) return;
  paused_ = true;
  if (!dispatching_) update_interest();
}

void IOStream::resume_reading() {
  if (!paused_) return;
  paused_ = false;
  if (dispatching_) return;
  // Buffered data for a read, an EOF (or a close held back while paused), or plaintext the
  // transport already decrypted: none of them makes the fd readable again.
  if ((read_.active() && !read_buffer_.empty()) || peer_ended() || (has_buffered_input())) {
    schedule_deferred();
  }
  update_interest();
}

void IOStream::serve_reads() {
  for (int i = 0; i < kMaxCompletionsPerDispatch; ++i) {
    if (!read_.active() || (paused_ && !closed())) return;
    if (try_complete_read()) continue;
    if (read_.active() && peer_ended()) {
      complete_read(read_.result_at_end(read_buffer_, error(), closed_status()));
      continue;
    }
    return;
  }
  if (read_.active()) schedule_deferred();
}

bool IOStream::try_complete_read() {
  if (transport_wait_ & kHandshaking) return false;
  std::string data;
  absl::string_view chunk;
  absl::Status error;
  const internal::ReadRequest::Match match = read_.match(read_buffer_, &data, &chunk, &error);
  switch (match) {
    case internal::ReadRequest::Match::kWait:
      return false;
    case internal::ReadRequest::Match::kComplete:
      complete_read(std::move(data));
      return true;
    case internal::ReadRequest::Match::kTooLong:
      // The stream closes with ResourceExhausted; if it is closed already, the read alone
      // fails with it (buffered data must not get past the limit either).
      if (!closed()) {
        close(std::move(error));
        return false;
      }
      complete_read(std::move(error));
      return true;
    case internal::ReadRequest::Match::kChunk:
    case internal::ReadRequest::Match::kLastChunk: {
      const bool last = match == internal::ReadRequest::Match::kLastChunk;
      // `chunk` stays valid through the callback: nothing reads into the buffer meanwhile
      // (reads happen only in this stream's dispatch, which does not recurse) and it is
      // released only after the dispatch (dispatch_epilogue) or at the close that follows.
      const bool ok = run_user(kStreamingCallback, [&] { read_.on_chunk()(chunk); });
      if (!ok) {
        complete_read(closed_status());  // a callback that threw is not called again
      } else if (last) {
        complete_read(std::string());
      }
      return true;
    }
  }
  return false;
}

void IOStream::complete_read(absl::StatusOr<std::string> result) {
  ReadCallback cb = std::move(read_cb_);
  read_cb_ = nullptr;
  read_.finish();
  run_user(kReadCallback, [&] { std::move(cb)(std::move(result)); });
}

absl::Status IOStream::closed_status() const {
  if (!error().ok()) return error();
  // Made once and never destroyed: a copy shares the message (an atomic reference count, no
  // allocation), and every ordinary close asks for one (the pending read's result).
  static const absl::Status* const kPeerEof =
      new absl::Status(absl::UnavailableError("IOStream: stream closed by peer (EOF)"));
  static const absl::Status* const kClosed =
      new absl::Status(absl::CancelledError("IOStream: stream closed"));
  return peer_eof_ ? *kPeerEof : *kClosed;
}

void IOStream::handle_read(bool force) {
  if (transport_wait_ & kHandshaking) return;
  Transport& t = transport();
  size_t budget = kReadSlice;
  while (budget > 0 && !closed() && !peer_eof_ && (force || !paused_)) {
    const size_t size = read_buffer_.size();
    if (size > max_buffer_size_) break;
    // A read in progress may take one byte past the limit: that is how it learns it needs more
    // than max_buffer_size (and fails). Read-ahead with no read asking stops at the limit, so
    // that bytes nobody asked for yet cannot close the stream. (A forced read, looking for the
    // EOF behind a hang-up, must read something, or the hang-up would be reported again and
    // again.)
    const size_t room = max_buffer_size_ - size + (read_.active() || force ? 1 : 0);
    if (room == 0) break;
    const size_t limit = std::min(budget, room);
    IOResult r = t.read(socket_.fd(), read_buffer_, limit);
    transport_wait_ &= static_cast<uint8_t>(~kReadNeedsWrite);
    if (r.outcome == IOResult::kWantRead) break;
    if (r.outcome == IOResult::kWantWrite) {
      transport_wait_ |= kReadNeedsWrite;
      break;
    }
    if (r.outcome == IOResult::kEof) {
      on_peer_eof(t.eof_status());
      break;
    }
    if (r.outcome == IOResult::kError) {
      close(std::move(r.status));
      return;
    }
    budget -= std::min(budget, r.bytes);
    if (!read_.active()) break;  // buffered for a future read
    serve_reads();
    if (r.drained) break;
  }
  if (!closed() && read_buffer_.size() > max_buffer_size_) {
    close(absl::ResourceExhaustedError(
        absl::StrCat("IOStream: read buffer exceeded max_buffer_size=", max_buffer_size_,
                     " bytes on fd ", socket_.fd())));
  }
}

// What the peer sent before a reset stays readable in the kernel, and it may be what matters
// most: an HTTP server's early error response, sent before it closed with the client's upload
// unread (which resets: RFC 9112 sections 9.5, 9.6). It is read now and handed to the reads by
// run_close_callbacks(), before the error. Not into the read buffer here: a write failing
// inside a read callback gets here while that callback holds a view of the buffer. Bounded by
// max_buffer_size like any read. Over TLS too: a send's failure is no fatal error of
// OpenSSL's (after which it allows no I/O), and the records before the reset decrypt.
void IOStream::close_on_connection_error(absl::Status error) {
  if (!closed() && !peer_eof_ && !(transport_wait_ & kHandshaking) &&
      read_buffer_.size() < max_buffer_size_) {
    Transport& t = transport();
    Buffer tail;
    const size_t limit = max_buffer_size_ - read_buffer_.size();
    while (tail.size() < limit) {
      IOResult r = t.read(socket_.fd(), tail, limit - tail.size());
      if (r.outcome != IOResult::kDone || r.drained) break;
    }
    if (!tail.empty()) side().unread = std::move(tail);
  }
  close(std::move(error));
}

// The peer ended its side. `truncation` is not OK when that end was not clean (a TLS peer
// that sent FIN without close_notify): it becomes the close status, so a read to the end
// fails with it instead of passing a cut stream off as complete.
void IOStream::on_peer_eof(absl::Status truncation) {
  peer_eof_ = true;
  if (!truncation.ok() && error().ok()) set_error(std::move(truncation));
  switch (phase_) {
    case Phase::kOpen:
      phase_ = Phase::kPeerEof;
      return;
    case Phase::kShuttingDown:
    case Phase::kWriteShut:
      phase_ = Phase::kDraining;
      return;
    default:
      return;
  }
}

void IOStream::maybe_close_after_eof() {
  if (writing() || (transport_wait_ & (kShutdownNeedsWrite | kFlushNeedsWrite))) return;
  if (phase_ == Phase::kPeerEof) {
    if (allow_half_open_) return;
  } else if (phase_ != Phase::kDraining) {
    return;
  }
  if (paused_ && !read_buffer_.empty() && read_.active()) return;
  close();
}

}  // namespace ioloop::net
