// File: net/src/http/http_response_stream.cc
// HTTPResponseStream's checks and lifetime; the framing lives in the connection core
// (http_connection_stream.cc), which implements internal::HTTPResponseTarget.
#include "ioloop/net/http/http_response_stream.h"

#include <cassert>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "http_exception.h"
#include "ioloop/recycling_allocator.h"
#include "post_status.h"

namespace ioloop::net {

std::shared_ptr<HTTPResponseStream> HTTPResponseWriter::defer() {
  return target_ != nullptr ? target_->defer() : nullptr;
}

HTTPResponseStream::HTTPResponseStream(internal::HTTPResponseTarget* target, IOLoop* loop,
                                       HTTPResponseWriter* head, int version_minor,
                                       bool head_request)
    : target_(target),
      loop_thread_(std::this_thread::get_id()),
      handle_(loop != nullptr ? loop->handle() : nullptr),
      loop_(loop),
      head_(head),
      version_minor_(version_minor),
      head_request_(head_request) {}

std::shared_ptr<HTTPResponseStream> HTTPResponseStream::make(internal::HTTPResponseTarget* target,
                                                             IOLoop* loop, HTTPResponseWriter* head,
                                                             int version_minor, bool head_request) {
  return std::shared_ptr<HTTPResponseStream>(
      new HTTPResponseStream(target, loop, head, version_minor, head_request), Release(),
      RecyclingAllocator<HTTPResponseStream>());
}

void* HTTPResponseStream::operator new(size_t size) {
  assert(size == sizeof(HTTPResponseStream));
  (void)size;
  return RecyclingAllocator<HTTPResponseStream>().allocate(1);
}

void HTTPResponseStream::operator delete(void* block) {
  RecyclingAllocator<HTTPResponseStream>().deallocate(static_cast<HTTPResponseStream*>(block), 1);
}

// A stream whose last reference went on another thread, on its way to the loop thread: run,
// it destroys the stream there; destroyed unrun (the post failed, or the loop went before
// running it), it hands the stream to orphan().
class HTTPResponseStream::Orphan {
 public:
  explicit Orphan(HTTPResponseStream* stream) : stream_(stream) {}
  Orphan(Orphan&& other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}
  Orphan& operator=(Orphan&&) = delete;
  ~Orphan() {
    if (stream_ != nullptr) stream_->orphan();
  }
  void operator()() { delete std::exchange(stream_, nullptr); }

 private:
  HTTPResponseStream* stream_;
};

void HTTPResponseStream::Release::operator()(HTTPResponseStream* stream) const {
  if (std::this_thread::get_id() == stream->loop_thread_ || stream->handle_ == nullptr) {
    delete stream;
    return;
  }
  // Another thread: the connection the stream may still be attached to belongs to the loop
  // thread, and so does failing an abandoned response. post() destroys the Orphan here,
  // unrun, if the loop is gone.
  std::shared_ptr<LoopHandle> handle = std::move(stream->handle_);
  handle->post(Orphan(stream));
}

void HTTPResponseStream::orphan() {
  {
    MutexLock lock(&link_mu_);
    if (target_ != nullptr) {  // the connection still uses it: its detach() deletes it
      orphaned_ = true;
      return;
    }
  }
  delete this;
}

HTTPResponseStream::~HTTPResponseStream() {
  if (target_ != nullptr) {
    internal::HTTPResponseTarget* target = target_;
    target_ = nullptr;
    closed_ = true;  // the target must not detach() a stream being destroyed
    target->stream_fail(
        absl::InternalError("HTTP response dropped before finish() (an abandoned response)"),
        /*exception=*/false);
  }
}

absl::Status HTTPResponseStream::unusable() const {
  if (closed_) return status_;
  if (finished_) return absl::FailedPreconditionError("HTTP response already finished");
  return absl::OkStatus();
}

absl::Status HTTPResponseStream::write(std::string chunk) {
  if (absl::Status s = unusable(); !s.ok()) return s;
  return target_->stream_write(std::move(chunk));
}

void HTTPResponseStream::flush(Callback done) {
  if (!done) done = [](absl::Status) {};  // no callback: as finish() without one
  if (target_ == nullptr) {
    // Finished: the connection has moved on, so "everything written so far" is no longer
    // this stream's to wait for (finish(done) is).
    internal::post_status(loop_, std::move(done),
                          closed_ ? status_
                                  : absl::FailedPreconditionError(
                                        "HTTP response already finished (finish(done) tells "
                                        "when it was sent)"));
    return;
  }
  target_->stream_flush(std::move(done));
}

absl::Status HTTPResponseStream::send_interim(int status, absl::string_view reason,
                                              const HTTPHeaders& fields) {
  if (absl::Status s = unusable(); !s.ok()) return s;
  if (status < 100 || status > 199 || status == 101) {
    return absl::InvalidArgumentError(
        absl::StrCat("HTTP interim response status must be 1xx but 101, not ", status));
  }
  if (head_sent_) {
    return absl::FailedPreconditionError("HTTP response head already sent: too late for a 1xx");
  }
  return target_->stream_interim(status, reason, fields);
}

absl::Status HTTPResponseStream::finish() { return finish(nullptr); }

absl::Status HTTPResponseStream::finish(Callback done) {
  if (absl::Status s = unusable(); !s.ok()) {
    if (done) internal::post_status(loop_, std::move(done), s);
    return s;
  }
  return target_->stream_finish(std::move(done));
}

void HTTPResponseStream::abort(absl::Status why) {
  if (target_ == nullptr) return;
  if (why.ok()) why = absl::InternalError("HTTP response aborted");
  target_->stream_fail(why, /*exception=*/false);
}

size_t HTTPResponseStream::write_buffer_size() const {
  return target_ != nullptr ? target_->stream_queued() : 0;
}

void HTTPResponseStream::set_close_callback(Callback cb) {
  close_cb_ = std::move(cb);
  close_cb_ran_ = false;
  if (closed_) schedule_close_callback();
}

void HTTPResponseStream::schedule_close_callback() {
  if (loop_ == nullptr) return run_close_callback();
  // A strong reference: the callback runs even if the stream's last reference goes before
  // the next iteration (a failure inside the timer that held it). An orphan (no reference
  // left, detach() destroys it) has nobody to tell.
  if (std::shared_ptr<HTTPResponseStream> self = weak_from_this().lock()) {
    loop_->add_callback([self = std::move(self)] { self->run_close_callback(); });
  }
}

void HTTPResponseStream::run_close_callback() {
  if (close_cb_ran_ || !close_cb_) return;
  close_cb_ran_ = true;
  Callback cb = std::move(close_cb_);
  close_cb_ = nullptr;
  absl::Status s = status_;
  if (loop_ != nullptr) {
    loop_->invoke_guarded("HTTP response close callback", [&] { std::move(cb)(s); }).IgnoreError();
  } else {
    std::move(cb)(s);
  }
}

void HTTPResponseStream::detach(absl::Status status) {
  detached_head_.reset();
  head_ = &detached_head_;
  Callback dropped;      // destroyed last: it may hold the last reference to this stream
  bool run_now = false;  // no loop to run the close callback later
  if (status.ok()) {
    finished_ = true;
    dropped = std::move(close_cb_);  // never runs
    close_cb_ = nullptr;
  } else {
    closed_ = true;
    status_ = std::move(status);
    if (close_cb_ && loop_ != nullptr) {
      schedule_close_callback();
    } else {
      run_now = static_cast<bool>(close_cb_);
    }
  }
  // Last: once target_ is null, an orphan() on another thread may delete the stream.
  bool orphaned;
  {
    MutexLock lock(&link_mu_);
    target_ = nullptr;
    orphaned = orphaned_;
  }
  if (orphaned) {
    delete this;
    return;
  }
  if (run_now) run_close_callback();  // after the target is gone, as a later iteration would
}

absl::Status HTTPResponseStream::on_exception() {
  absl::Status status = internal::report_http_exception(loop_, "HTTP deferred response");
  if (target_ != nullptr) {
    internal::HTTPResponseTarget* target = target_;
    target->stream_fail(status, /*exception=*/true);
  }
  return status;
}

}  // namespace ioloop::net
