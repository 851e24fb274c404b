// File: ioloop/net/internal/read_request.h (an implementation detail of IOStream, not API:
// it is a public header only because IOStream holds it by value).
// ReadRequest: IOStream's one outstanding read, as a value. It knows the read modes
// (read_until, read_bytes, partial read_bytes, read_until_close, read_streaming) and how
// each one completes against a Buffer; it never calls back into the stream and runs no user
// code: match() says what the buffered bytes complete, and the stream runs the callbacks
// (it keeps the completion callback itself), in its own order, under its own exception guard.
//
// Memory: 56 bytes. read_streaming's callback is held inline (an idle server stream usually
// waits in a streaming read, so a separate allocation would be per connection; a callback
// whose captures exceed AnyInvocable's 16 inline bytes still takes its own). A read_until
// delimiter of one or two bytes ("\n", "\r\n") is kept inline; a longer one takes one
// allocation made when such a read starts. (io_stream_benchmark's BM_IdleConnectionMemory and
// io_stream_memory_test measure the idle stream.)
// Threading: the stream's loop thread, like the stream.
#ifndef IOLOOP_NET_INTERNAL_READ_REQUEST_H_
#define IOLOOP_NET_INTERNAL_READ_REQUEST_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ioloop/net/buffer.h"

namespace ioloop::net::internal {

class ReadRequest {
 public:
  // IOStream::ReadCallback and IOStream::StreamingCallback.
  using ReadCallback = absl::AnyInvocable<void(absl::StatusOr<std::string>) &&>;
  // The chunk is a view of the stream's read buffer, valid until the callback returns (copy
  // what must outlive it): the bytes are handed over without a string made per chunk.
  using StreamingCallback = absl::AnyInvocable<void(absl::string_view chunk)>;

  // What match() found in the buffer.
  enum class Match : uint8_t {
    kWait,       // not enough data yet
    kComplete,   // *out is the read's result; call finish() and complete the read
    kChunk,      // *chunk is a streaming chunk for on_chunk(); the read goes on
    kLastChunk,  // *chunk is the last streaming chunk (total_bytes reached); then finish("")
    kTooLong,    // read_until's max_bytes exceeded; *error says so
  };

  // Most bytes one streaming chunk carries (a fairness slice).
  static constexpr size_t kMaxChunk = 256 * 1024;

  ReadRequest() = default;
  ReadRequest(const ReadRequest&) = delete;
  ReadRequest& operator=(const ReadRequest&) = delete;

  bool active() const { return kind_ != Kind::kNone; }
  // A read_bytes(0): complete without any data.
  bool wants_nothing() const { return kind_ == Kind::kBytes && target_ == 0; }

  // Each start_*() requires !active(); the stream checks that first (one read at a time).
  void start_until(std::string delimiter, size_t max_bytes);
  void start_bytes(size_t n, bool partial);
  void start_until_close();
  void start_streaming(StreamingCallback on_chunk, size_t total_bytes);

  // Takes from `buffer` what completes (part of) the request; see Match. A streaming chunk is
  // retrieved from `buffer` but stays where it is: *chunk views it, valid until the next
  // change to `buffer` (retrieval only moves its read index).
  Match match(Buffer& buffer, std::string* out, absl::string_view* chunk, absl::Status* error);
  // The result of the request when no more data will come (the peer's EOF or a close) and
  // match() found nothing: read_until_close gets everything buffered and streaming to EOF
  // gets "" when `error` (the stream's close status) is OK; everything else fails with
  // `error` if it is not OK, else with `ended` (why the stream ended).
  absl::StatusOr<std::string> result_at_end(Buffer& buffer, const absl::Status& error,
                                            const absl::Status& ended) const;

  // The streaming callback (only while a read_streaming is active).
  StreamingCallback& on_chunk() { return on_chunk_; }
  // Ends the request (destroying the streaming callback, if any).
  void finish();

 private:
  enum class Kind : uint8_t { kNone, kUntil, kBytes, kBytesPartial, kUntilClose, kStreaming };
  static constexpr size_t kShortDelimiter = 2;

  Match match_until(Buffer& buffer, std::string* out, absl::Status* error);
  absl::string_view delimiter() const;

  StreamingCallback on_chunk_;                   // read_streaming
  std::unique_ptr<std::string> long_delimiter_;  // read_until, over kShortDelimiter bytes
  // read_until: max_bytes (0: none); read_bytes: the count; streaming: bytes left (0: to EOF).
  size_t target_ = 0;
  uint32_t scan_from_ = 0;  // read_until: where the delimiter search resumes
  Kind kind_ = Kind::kNone;
  uint8_t short_size_ = 0;  // read_until: the delimiter's size when it is inline
  char short_delimiter_[kShortDelimiter] = {};
};

}  // namespace ioloop::net::internal

#endif  // IOLOOP_NET_INTERNAL_READ_REQUEST_H_
