#include "ioloop/net/io_stream.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ioloop::net {
namespace {

// Per readiness event: at most this many bytes read or written, so one busy stream yields
// to timers and other fds (level-triggered polling brings it back next iteration).
constexpr size_t kReadSlice = 256 * 1024;
constexpr size_t kWriteSlice = 256 * 1024;
constexpr int kMaxIov = 64;
// Read completions served by one dispatch before the rest is deferred to the next
// iteration (pipelined requests issued from callbacks).
constexpr int kMaxCompletionsPerDispatch = 64;

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

// What a throwing callback is called in the log and in the status that closes its stream.
constexpr char kReadCallback[] = "IOStream read callback";
constexpr char kStreamingCallback[] = "IOStream streaming callback";
constexpr char kWriteCallback[] = "IOStream write callback";
constexpr char kHighCallback[] = "IOStream high watermark callback";
constexpr char kLowCallback[] = "IOStream low watermark callback";
constexpr char kCloseCallback[] = "IOStream close callback";

}  // namespace

// Every user callback runs through here (Tornado's _run_callback): an exception is logged and
// counted by the loop and closes the stream with Internal "exception in <what>: <what()>"
// (if it is still open; else the first reason stands). Unread data goes with it, so the
// reads still pending fail with that status rather than feed more data to failing code.
// Returns false if `fn` threw.
template <typename F>
bool IOStream::run_user(const char* what, F&& fn) {
  absl::Status s = loop_->invoke_guarded(what, std::forward<F>(fn));
  if (s.ok()) return true;
  if (!closed_) {
    read_buffer_.retrieve_all();
    scan_from_ = 0;
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
      stream->run_user(what, fn);
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

struct IOStream::WriteState {
  std::vector<std::string> chunks;
  size_t head = 0;         // first chunk not fully written
  size_t head_offset = 0;  // bytes of chunks[head] already written
  size_t pending = 0;      // queued bytes not yet written
  uint64_t queued_total = 0;
  uint64_t written_total = 0;
  // on_flushed callbacks, each with the queued_total its data ends at.
  std::vector<std::pair<uint64_t, WriteCallback>> callbacks;
  size_t cb_head = 0;

  bool idle() const { return pending == 0 && cb_head == callbacks.size(); }
};

struct IOStream::Extras {
  absl::Status error;  // what closed the stream, if not OK
  size_t high = 0;
  size_t low = 0;
  bool above_high = false;
  WatermarkCallback on_high;
  WatermarkCallback on_low;
};

// A strong reference to the stream held by the loop: its fd handler or a queued callback.
// If the loop destroys it unrun (the loop itself is being destroyed) while the stream still
// has callbacks to deliver, those callbacks are destroyed unrun. One of them usually owns the
// stream (`[s] { ... s->read_until(...) }`), and that cycle would otherwise outlive the loop.
class IOStream::LoopRef {
 public:
  enum Kind { kHandler, kOneShot };
  LoopRef(std::shared_ptr<IOStream> stream, Kind kind) : stream_(std::move(stream)), kind_(kind) {}
  LoopRef(LoopRef&& other) noexcept = default;
  LoopRef& operator=(LoopRef&&) = delete;
  ~LoopRef() {
    if (!stream_ || ran_) return;
    // close() removes the handler on purpose; its queued close callbacks still run.
    if (kind_ == kHandler && stream_->closed_) return;
    stream_->drop_callbacks();
  }
  // A one-shot use: marks it run, so destruction drops nothing.
  IOStream* take() {
    ran_ = true;
    return stream_.get();
  }
  IOStream* get() const { return stream_.get(); }

 private:
  std::shared_ptr<IOStream> stream_;
  Kind kind_;
  bool ran_ = false;
};

void IOStream::drop_callbacks() {
  ReadCallback read = std::move(read_cb_);
  read_cb_ = nullptr;
  std::unique_ptr<StreamingCallback> streaming = std::move(streaming_cb_);
  CloseCallback on_close = std::move(close_cb_);
  close_cb_ = nullptr;
  std::unique_ptr<WriteState> writes = std::move(write_state_);
  std::unique_ptr<Extras> extras = std::move(extras_);
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

std::shared_ptr<IOStream> IOStream::create(IOLoop& loop, Socket socket, IOStreamOptions options) {
  if (socket.valid()) {
    int flags = ::fcntl(socket.fd(), F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK) == 0) {
      ::fcntl(socket.fd(), F_SETFL, flags | O_NONBLOCK);
    }
  }
  return std::make_shared<IOStream>(CreateToken(), loop, std::move(socket), options);
}

IOStream::IOStream(CreateToken, IOLoop& loop, Socket socket, const IOStreamOptions& options)
    : loop_(&loop),
      delimiter_{},
      socket_(std::move(socket)),
      max_buffer_size_(
          static_cast<uint32_t>(std::min<size_t>(options.max_buffer_size, UINT32_MAX - 1))),
      allow_half_open_(options.allow_half_open) {
  if (!socket_.valid()) {
    closed_ = true;
    extras().error = absl::InvalidArgumentError("IOStream: created without a socket");
    close_callbacks_ran_ = true;
  }
}

// A registered stream is only destroyed by the IOLoop's destructor, so never touch loop_.
IOStream::~IOStream() { clear_delimiter(); }

void IOStream::set_delimiter(std::string delimiter) {
  clear_delimiter();
  delimiter_len_ = static_cast<uint16_t>(delimiter.size());
  char* dst = delimiter_.inline_chars;
  if (delimiter.size() > sizeof delimiter_.inline_chars) {
    dst = delimiter_.heap_chars = new char[delimiter.size()];
  }
  std::memcpy(dst, delimiter.data(), delimiter.size());
}

absl::string_view IOStream::delimiter() const {
  return absl::string_view(delimiter_len_ > sizeof delimiter_.inline_chars
                               ? delimiter_.heap_chars
                               : delimiter_.inline_chars,
                           delimiter_len_);
}

void IOStream::clear_delimiter() {
  if (delimiter_len_ > sizeof delimiter_.inline_chars) delete[] delimiter_.heap_chars;
  delimiter_len_ = 0;
}

// ---------------------------------------------------------------------------------------------
// Reads

bool IOStream::start_read(ReadMode mode, ReadCallback& cb) {
  if (!cb) cb = [](absl::StatusOr<std::string>) {};
  if (read_mode() != ReadMode::kNone) {
    post_read(std::move(cb), absl::FailedPreconditionError(
                                 "IOStream: a read is already outstanding (one read at a time)"));
    return false;
  }
  set_read_mode(mode);
  read_cb_ = std::move(cb);
  return true;
}

void IOStream::after_read_started() {
  if (dispatching_) return;  // the running dispatch serves it after the callback returns
  if (!read_buffer_.empty() || eof_ || closed_ ||
      (read_mode() == ReadMode::kBytes && read_target_ == 0)) {
    schedule_deferred();
  }
  update_interest();
}

void IOStream::read_until(std::string delimiter, ReadCallback cb, size_t max_bytes) {
  if (delimiter.empty() || delimiter.size() > std::min<size_t>(max_buffer_size_, UINT16_MAX)) {
    post_read(std::move(cb), absl::InvalidArgumentError(absl::StrCat(
                                 "IOStream::read_until: delimiter of ", delimiter.size(),
                                 " bytes (must be 1..max_buffer_size)")));
    return;
  }
  if (!start_read(ReadMode::kUntil, cb)) return;
  set_delimiter(std::move(delimiter));
  read_target_ = max_bytes;
  scan_from_ = 0;
  after_read_started();
}

void IOStream::read_bytes(size_t n, ReadCallback cb, bool partial) {
  if (!start_read(partial && n > 0 ? ReadMode::kBytesPartial : ReadMode::kBytes, cb)) return;
  read_target_ = n;
  after_read_started();
}

void IOStream::read_until_close(ReadCallback cb) {
  if (!start_read(ReadMode::kUntilClose, cb)) return;
  after_read_started();
}

void IOStream::read_streaming(StreamingCallback on_chunk, ReadCallback on_done,
                              size_t total_bytes) {
  if (!start_read(ReadMode::kStreaming, on_done)) return;
  if (!on_chunk) on_chunk = [](std::string) {};
  streaming_cb_ = std::make_unique<StreamingCallback>(std::move(on_chunk));
  read_target_ = total_bytes;
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
  if (read_mode() != ReadMode::kNone && (!read_buffer_.empty() || eof_ || closed_)) {
    schedule_deferred();
  } else if (eof_) {
    schedule_deferred();  // a close held back while paused
  }
  update_interest();
}

void IOStream::schedule_deferred() {
  if (deferred_scheduled_ || !loop_) return;
  deferred_scheduled_ = true;
  loop_->add_callback([ref = LoopRef(shared_from_this(), LoopRef::kOneShot)]() mutable {
    ref.take()->dispatch_deferred();
  });
}

void IOStream::dispatch_deferred() {
  deferred_scheduled_ = false;
  {
    DispatchScope scope(this);
    serve_reads();
  }
  maybe_close_after_eof();
  if (read_buffer_.empty()) read_buffer_.release_if_empty();
  update_interest();
}

void IOStream::serve_reads() {
  for (int i = 0; i < kMaxCompletionsPerDispatch; ++i) {
    if (read_mode() == ReadMode::kNone || (paused_ && !closed_)) return;
    if (try_complete_read()) continue;
    if (read_mode() != ReadMode::kNone && (eof_ || closed_)) {
      finish_read_at_eof();
      continue;
    }
    return;
  }
  if (read_mode() != ReadMode::kNone) schedule_deferred();
}

bool IOStream::try_complete_read() {
  const size_t size = read_buffer_.size();
  switch (read_mode()) {
    case ReadMode::kNone:
    case ReadMode::kUntilClose:  // completes only at EOF
      return false;
    case ReadMode::kUntil: {
      // max_bytes exceeded: the stream closes with ResourceExhausted; if it is closed already,
      // the read alone fails with it (buffered data must not get past the limit either).
      auto exceeded = [this](std::string message) {
        absl::Status status = absl::ResourceExhaustedError(std::move(message));
        if (!closed_) {
          close(std::move(status));
          return false;
        }
        complete_read(std::move(status));
        return true;
      };
      const absl::string_view delim = delimiter();
      const size_t pos = read_buffer_.find(delim, scan_from_);
      if (pos == Buffer::npos) {
        // A delimiter found later would end at size + 1 or beyond.
        if (read_target_ > 0 && size >= read_target_) {
          return exceeded(absl::StrCat(
              "IOStream::read_until: delimiter not found within max_bytes=", read_target_));
        }
        const size_t keep = delim.size() - 1;  // a delimiter may straddle the next read
        scan_from_ = static_cast<uint32_t>(size > keep ? size - keep : 0);
        return false;
      }
      const size_t end = pos + delim.size();
      if (read_target_ > 0 && end > read_target_) {
        return exceeded(absl::StrCat("IOStream::read_until: delimiter ends at byte ", end,
                                     ", beyond max_bytes=", read_target_));
      }
      complete_read(read_buffer_.retrieve_as_string(end));
      return true;
    }
    case ReadMode::kBytes:
      if (size < read_target_) return false;
      complete_read(read_buffer_.retrieve_as_string(read_target_));
      return true;
    case ReadMode::kBytesPartial:
      if (size == 0) return false;
      complete_read(read_buffer_.retrieve_as_string(std::min(size, read_target_)));
      return true;
    case ReadMode::kStreaming: {
      if (size == 0) return false;
      size_t n = std::min(size, kReadSlice);
      if (read_target_ > 0) n = std::min(n, read_target_);
      std::string chunk = read_buffer_.retrieve_as_string(n);
      bool last = false;
      if (read_target_ > 0) {
        read_target_ -= n;
        last = read_target_ == 0;
      }
      // Hold the callable in a local: the user may start a new read from a later callback.
      std::unique_ptr<StreamingCallback> on_chunk = std::move(streaming_cb_);
      const bool ok = run_user(kStreamingCallback, [&] { (*on_chunk)(std::move(chunk)); });
      if (read_mode() == ReadMode::kStreaming && !streaming_cb_) {
        if (!ok) {
          complete_read(closed_status());  // a callback that threw is not called again
        } else if (last) {
          complete_read(std::string());
        } else {
          streaming_cb_ = std::move(on_chunk);
        }
      }
      return true;
    }
  }
  return false;
}

void IOStream::complete_read(absl::StatusOr<std::string> result) {
  ReadCallback cb = std::move(read_cb_);
  read_cb_ = nullptr;
  set_read_mode(ReadMode::kNone);
  streaming_cb_.reset();
  clear_delimiter();
  read_target_ = 0;
  scan_from_ = 0;
  run_user(kReadCallback, [&] { std::move(cb)(std::move(result)); });
}

void IOStream::finish_read_at_eof() {
  switch (read_mode()) {
    case ReadMode::kNone:
      return;
    case ReadMode::kUntilClose:
      if (error().ok()) {
        complete_read(read_buffer_.retrieve_all_as_string());
      } else {
        complete_read(error());
      }
      return;
    case ReadMode::kStreaming:
      if (error().ok() && read_target_ == 0) {
        complete_read(std::string());
      } else {
        complete_read(closed_status());
      }
      return;
    default:
      complete_read(closed_status());
      return;
  }
}

absl::Status IOStream::closed_status() const {
  if (!error().ok()) return error();
  if (eof_) return absl::UnavailableError("IOStream: stream closed by peer (EOF)");
  return absl::CancelledError("IOStream: stream closed");
}

// ---------------------------------------------------------------------------------------------
// Events

void IOStream::update_interest() {
  if (closed_) return;
  uint32_t want = 0;
  // With no read outstanding, still read into an empty buffer when a close callback wants
  // to hear about EOF/RST (Tornado's "error listener"); stop once anything is buffered.
  if (!eof_ && !paused_ &&
      (read_mode() != ReadMode::kNone || (close_cb_ && read_buffer_.empty()))) {
    want |= IOLoop::READ;
  }
  if (writing()) want |= IOLoop::WRITE;
  if (!registered_) {
    if (want == 0) return;
    absl::Status s = loop_->add_handler(
        socket_.fd(),
        [ref = LoopRef(shared_from_this(), LoopRef::kHandler)](int, uint32_t events) {
          ref.get()->on_events(events);
        },
        want);
    if (!s.ok()) {
      close(s);
      return;
    }
    registered_ = true;
    set_events(want);
    return;
  }
  if (want != events()) {
    absl::Status s = loop_->update_handler(socket_.fd(), want);
    if (!s.ok()) {
      close(s);
      return;
    }
    set_events(want);
  }
}

void IOStream::on_events(uint32_t events) {
  if (closed_) return;
  {
    DispatchScope scope(this);
    bool force_read = false;
    if (events & IOLoop::ERROR) {
      absl::Status err = socket_.take_error();
      if (!err.ok()) {
        close(std::move(err));
      } else if (eof_) {
        // Hang-up after EOF: the write side is gone too.
        if (writing()) {
          events |= IOLoop::WRITE;
        } else {
          close();
        }
      } else {
        force_read = true;  // find the EOF or error, even while paused
      }
    }
    if (!closed_ && ((events & IOLoop::READ) || force_read)) handle_read(force_read);
    if (!closed_ && (events & IOLoop::WRITE)) handle_write();
    if (!closed_) serve_reads();
  }
  maybe_close_after_eof();
  if (read_buffer_.empty()) read_buffer_.release_if_empty();
  update_interest();
}

void IOStream::handle_read(bool force) {
  size_t budget = kReadSlice;
  while (budget > 0 && !closed_ && !eof_ && (force || !paused_)) {
    const size_t size = read_buffer_.size();
    if (size > max_buffer_size_) break;
    const size_t limit = std::min(budget, max_buffer_size_ - size + 1);
    const size_t asked = read_buffer_.read_fd_request(limit);
    int err = 0;
    const ssize_t n = read_buffer_.read_fd(socket_.fd(), &err, limit);
    if (n < 0) {
      if (would_block(err)) break;
      close(absl::ErrnoToStatus(err, absl::StrCat("IOStream: read from fd ", socket_.fd())));
      return;
    }
    if (n == 0) {
      eof_ = true;
      break;
    }
    budget -= std::min(budget, static_cast<size_t>(n));
    if (read_mode() == ReadMode::kNone) break;  // buffered for a future read
    serve_reads();
    if (static_cast<size_t>(n) < asked) break;  // drained
  }
  if (!closed_ && read_buffer_.size() > max_buffer_size_) {
    close(absl::ResourceExhaustedError(
        absl::StrCat("IOStream: read buffer exceeded max_buffer_size=", max_buffer_size_,
                     " bytes on fd ", socket_.fd())));
  }
}

void IOStream::maybe_close_after_eof() {
  if (closed_ || !eof_ || writing()) return;
  if (paused_ && !read_buffer_.empty() && read_mode() != ReadMode::kNone) return;
  if (allow_half_open_ && !shutdown_done_) return;
  close();
}

// ---------------------------------------------------------------------------------------------
// Writes

size_t IOStream::write_buffer_size() const { return write_state_ ? write_state_->pending : 0; }

void IOStream::send_now(const char* data, size_t n, size_t* sent) {
  *sent = 0;
  ssize_t r;
  do {
    r = ::send(socket_.fd(), data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  if (r >= 0) {
    *sent = static_cast<size_t>(r);
  } else if (!would_block(errno)) {
    close(absl::ErrnoToStatus(errno, absl::StrCat("IOStream: write to fd ", socket_.fd())));
  }
}

void IOStream::enqueue(std::string data) {
  if (!write_state_) write_state_ = std::make_unique<WriteState>();
  WriteState& ws = *write_state_;
  ws.pending += data.size();
  ws.queued_total += data.size();
  if (!data.empty()) ws.chunks.push_back(std::move(data));
}

void IOStream::add_flush_callback(WriteCallback cb) {
  if (!cb) return;
  if (!write_state_) write_state_ = std::make_unique<WriteState>();
  write_state_->callbacks.emplace_back(write_state_->queued_total, std::move(cb));
}

absl::Status IOStream::write_precheck() const {
  if (closed_) return closed_status();
  if (shutdown_requested_) {
    return absl::FailedPreconditionError("IOStream: write after shutdown_write()");
  }
  return absl::OkStatus();
}

void IOStream::write(std::string data, WriteCallback on_flushed) {
  if (absl::Status s = write_precheck(); !s.ok()) {
    post_write(std::move(on_flushed), std::move(s));
    return;
  }
  if (writing()) {
    enqueue(std::move(data));
    add_flush_callback(std::move(on_flushed));
    check_high_watermark();
    return;
  }
  // Fast path: nothing queued, so the bytes may go straight to the kernel.
  size_t sent = 0;
  if (!data.empty()) send_now(data.data(), data.size(), &sent);
  if (closed_) {
    // Leave the callback to run_close_callbacks(), so it runs before the close callback.
    enqueue(std::move(data));
    write_state_->pending = 0;
    add_flush_callback(std::move(on_flushed));
    return;
  }
  if (sent == data.size()) {
    post_write(std::move(on_flushed), absl::OkStatus());
    return;
  }
  const size_t total = data.size();
  enqueue(std::move(data));
  WriteState& ws = *write_state_;
  ws.head_offset = sent;  // the queue was empty: this chunk is the head
  ws.pending = total - sent;
  ws.queued_total -= sent;  // positions count only queued bytes
  add_flush_callback(std::move(on_flushed));
  update_interest();
  check_high_watermark();
}

void IOStream::writev(std::vector<std::string> chunks, WriteCallback on_flushed) {
  if (absl::Status s = write_precheck(); !s.ok()) {
    post_write(std::move(on_flushed), std::move(s));
    return;
  }
  const bool was_writing = writing();
  for (std::string& chunk : chunks) enqueue(std::move(chunk));
  add_flush_callback(std::move(on_flushed));
  if (!was_writing && writing()) {
    flush_queue(kWriteSlice);
    if (closed_) return;  // close() completes the callbacks
    // Callbacks whose data is out: complete them on the next iteration, never in here.
    WriteState& ws = *write_state_;
    while (ws.cb_head < ws.callbacks.size() && ws.callbacks[ws.cb_head].first <= ws.written_total) {
      post_write(std::move(ws.callbacks[ws.cb_head].second), absl::OkStatus());
      ++ws.cb_head;
    }
    if (ws.idle()) write_state_.reset();
    update_interest();
  } else if (!writing() && write_state_) {
    // Only empty chunks: nothing to send, complete in order on the next iteration.
    WriteState& ws = *write_state_;
    while (ws.cb_head < ws.callbacks.size()) {
      post_write(std::move(ws.callbacks[ws.cb_head].second), absl::OkStatus());
      ++ws.cb_head;
    }
    write_state_.reset();
  }
  check_high_watermark();
}

void IOStream::flush_queue(size_t budget) {
  WriteState* ws = write_state_.get();
  while (ws != nullptr && ws->pending > 0 && budget > 0) {
    struct iovec iov[kMaxIov];
    int count = 0;
    size_t asked = 0;
    for (size_t i = ws->head; i < ws->chunks.size() && count < kMaxIov && asked < budget; ++i) {
      const std::string& chunk = ws->chunks[i];
      const size_t offset = i == ws->head ? ws->head_offset : 0;
      const size_t len = std::min(chunk.size() - offset, budget - asked);
      if (len == 0) continue;
      iov[count].iov_base = const_cast<char*>(chunk.data() + offset);
      iov[count].iov_len = len;
      ++count;
      asked += len;
    }
    struct msghdr msg = {};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(count);
    const ssize_t n = ::sendmsg(socket_.fd(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (would_block(errno)) return;
      close(absl::ErrnoToStatus(errno, absl::StrCat("IOStream: write to fd ", socket_.fd())));
      return;
    }
    size_t left = static_cast<size_t>(n);
    ws->pending -= left;
    ws->written_total += left;
    budget -= std::min(budget, left);
    while (left > 0) {
      std::string& chunk = ws->chunks[ws->head];
      const size_t rest = chunk.size() - ws->head_offset;
      if (left < rest) {
        ws->head_offset += left;
        break;
      }
      left -= rest;
      std::string().swap(chunk);  // free sent data now, not when the queue drains
      ++ws->head;
      ws->head_offset = 0;
    }
    if (ws->head == ws->chunks.size()) {
      ws->chunks.clear();
      ws->head = 0;
    } else if (ws->head >= 32 && ws->head * 2 >= ws->chunks.size()) {
      ws->chunks.erase(ws->chunks.begin(), ws->chunks.begin() + static_cast<long>(ws->head));
      ws->head = 0;
    }
    if (static_cast<size_t>(n) < asked) return;  // the socket buffer is full
  }
}

void IOStream::handle_write() {
  flush_queue(kWriteSlice);
  if (closed_) return;
  run_flush_callbacks();
  if (closed_) return;
  check_low_watermark();
  if (closed_ || writing()) return;
  if (shutdown_requested_ && !shutdown_done_) do_shutdown_write();
  if (write_state_ && write_state_->idle()) write_state_.reset();
}

void IOStream::run_flush_callbacks() {
  while (!closed_ && write_state_) {
    WriteState& ws = *write_state_;
    if (ws.cb_head >= ws.callbacks.size() || ws.callbacks[ws.cb_head].first > ws.written_total) {
      break;
    }
    WriteCallback cb = std::move(ws.callbacks[ws.cb_head].second);
    if (++ws.cb_head == ws.callbacks.size()) {
      ws.callbacks.clear();
      ws.cb_head = 0;
    }
    run_user(kWriteCallback, [&] { std::move(cb)(absl::OkStatus()); });
  }
}

void IOStream::set_write_watermarks(size_t high, size_t low) {
  Extras& e = extras();
  e.high = high;
  e.low = high == 0 ? 0 : std::min(low, high - 1);
  check_high_watermark();
}

void IOStream::set_high_watermark_callback(WatermarkCallback cb) {
  extras().on_high = std::move(cb);
}
void IOStream::set_low_watermark_callback(WatermarkCallback cb) { extras().on_low = std::move(cb); }

const absl::Status& IOStream::error() const {
  static const absl::Status* const kOk = new absl::Status();
  return extras_ ? extras_->error : *kOk;
}

uint32_t IOStream::events() const {
  return ((events_bits_ & 1) ? IOLoop::READ : 0u) | ((events_bits_ & 2) ? IOLoop::WRITE : 0u);
}

void IOStream::set_events(uint32_t events) {
  events_bits_ = ((events & IOLoop::READ) ? 1 : 0) | ((events & IOLoop::WRITE) ? 2 : 0);
}

IOStream::Extras& IOStream::extras() {
  if (!extras_) extras_ = std::make_unique<Extras>();
  return *extras_;
}

void IOStream::check_high_watermark() {
  if (!extras_ || extras_->high == 0 || extras_->above_high || closed_) return;
  if (write_buffer_size() < extras_->high) return;
  extras_->above_high = true;
  if (!extras_->on_high) return;
  WatermarkCallback cb = std::move(extras_->on_high);  // it may replace itself
  run_user(kHighCallback, cb);
  if (extras_ && !extras_->on_high) extras_->on_high = std::move(cb);
}

void IOStream::check_low_watermark() {
  if (!extras_ || !extras_->above_high || write_buffer_size() > extras_->low) return;
  extras_->above_high = false;
  if (!extras_->on_low) return;
  WatermarkCallback cb = std::move(extras_->on_low);
  run_user(kLowCallback, cb);
  if (extras_ && !extras_->on_low) extras_->on_low = std::move(cb);
}

void IOStream::shutdown_write() {
  if (closed_ || shutdown_requested_) return;
  shutdown_requested_ = true;
  if (!writing()) do_shutdown_write();
}

void IOStream::do_shutdown_write() {
  shutdown_done_ = true;
  if (::shutdown(socket_.fd(), SHUT_WR) != 0 && errno != ENOTCONN) {
    close(
        absl::ErrnoToStatus(errno, absl::StrCat("IOStream: shutdown(SHUT_WR) fd ", socket_.fd())));
    return;
  }
  if (!dispatching_ && eof_) schedule_deferred();  // both directions done: close
}

// ---------------------------------------------------------------------------------------------
// Closing

void IOStream::set_close_callback(CloseCallback cb) {
  if (close_callbacks_ran_) {
    if (!cb) return;
    post(kCloseCallback, [cb = std::move(cb), status = error()]() mutable { cb(status); });
    return;
  }
  close_cb_ = std::move(cb);
  if (!dispatching_) update_interest();
}

void IOStream::close(absl::Status reason) {
  if (closed_) return;
  closed_ = true;
  if (!reason.ok()) extras().error = std::move(reason);
  if (registered_) {
    // The loop keeps the handler (and its reference to us) alive until the batch ends.
    loop_->remove_handler(socket_.fd());
    registered_ = false;
  }
  socket_.reset();
  // Unsent data is discarded now; its callbacks complete in run_close_callbacks().
  if (write_state_) {
    WriteState& ws = *write_state_;
    ws.chunks.clear();
    ws.chunks.shrink_to_fit();
    ws.head = ws.head_offset = 0;
    ws.pending = 0;
  }
  loop_->add_callback([ref = LoopRef(shared_from_this(), LoopRef::kOneShot)]() mutable {
    ref.take()->run_close_callbacks();
  });
}

void IOStream::run_close_callbacks() {
  {
    DispatchScope scope(this);
    serve_reads();
    if (std::unique_ptr<WriteState> ws = std::move(write_state_)) {
      const absl::Status status = closed_status();
      for (size_t i = ws->cb_head; i < ws->callbacks.size(); ++i) {
        const absl::Status result =
            ws->callbacks[i].first <= ws->written_total ? absl::OkStatus() : status;
        WriteCallback& cb = ws->callbacks[i].second;  // (clang 14 cannot capture a binding)
        run_user(kWriteCallback, [&] { std::move(cb)(result); });
      }
    }
    close_callbacks_ran_ = true;
    if (close_cb_) {
      CloseCallback cb = std::move(close_cb_);
      close_cb_ = nullptr;
      run_user(kCloseCallback, [&] { cb(error()); });
    }
    // Reads or writes started by those callbacks: complete them too.
    serve_reads();
    if (write_state_) {
      std::unique_ptr<WriteState> ws = std::move(write_state_);
      for (size_t i = ws->cb_head; i < ws->callbacks.size(); ++i) {
        post_write(std::move(ws->callbacks[i].second), closed_status());
      }
    }
  }
  read_buffer_.release_if_empty();
  // Keep the close reason (in extras_) for error(); drop the rest.
  if (extras_) {
    extras_->on_high = nullptr;
    extras_->on_low = nullptr;
  }
}

}  // namespace ioloop::net
