#include "ioloop/net/internal/read_request.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ioloop::net::internal {

void ReadRequest::start_until(std::string delimiter, size_t max_bytes) {
  if (delimiter.size() <= kShortDelimiter) {
    short_size_ = static_cast<uint8_t>(delimiter.size());
    std::memcpy(short_delimiter_, delimiter.data(), delimiter.size());
  } else {
    long_delimiter_ = std::make_unique<std::string>(std::move(delimiter));
  }
  target_ = max_bytes;
  scan_from_ = 0;
  kind_ = Kind::kUntil;
}

absl::string_view ReadRequest::delimiter() const {
  if (long_delimiter_) return *long_delimiter_;
  return absl::string_view(short_delimiter_, short_size_);
}

void ReadRequest::start_bytes(size_t n, bool partial) {
  target_ = n;
  kind_ = partial && n > 0 ? Kind::kBytesPartial : Kind::kBytes;
}

void ReadRequest::start_until_close() { kind_ = Kind::kUntilClose; }

void ReadRequest::start_streaming(StreamingCallback on_chunk, size_t total_bytes) {
  on_chunk_ = std::move(on_chunk);
  target_ = total_bytes;
  kind_ = Kind::kStreaming;
}

ReadRequest::Match ReadRequest::match(Buffer& buffer, std::string* out, absl::string_view* chunk,
                                      absl::Status* error) {
  const size_t size = buffer.size();
  switch (kind_) {
    case Kind::kNone:
    case Kind::kUntilClose:  // completes only at the end
      return Match::kWait;
    case Kind::kUntil:
      return match_until(buffer, out, error);
    case Kind::kBytes:
      if (size < target_) return Match::kWait;
      *out = buffer.retrieve_as_string(target_);
      return Match::kComplete;
    case Kind::kBytesPartial:
      if (size == 0) return Match::kWait;
      *out = buffer.retrieve_as_string(std::min(size, target_));
      return Match::kComplete;
    case Kind::kStreaming: {
      if (size == 0) return Match::kWait;
      size_t n = std::min(size, kMaxChunk);
      if (target_ > 0) n = std::min(n, target_);
      *chunk = absl::string_view(buffer.peek(), n);
      buffer.retrieve(n);
      if (target_ == 0) return Match::kChunk;
      target_ -= n;
      return target_ == 0 ? Match::kLastChunk : Match::kChunk;
    }
  }
  return Match::kWait;
}

ReadRequest::Match ReadRequest::match_until(Buffer& buffer, std::string* out, absl::Status* error) {
  const size_t size = buffer.size();
  const absl::string_view delim = delimiter();
  const size_t pos = buffer.find(delim, scan_from_);
  if (pos == Buffer::npos) {
    // A delimiter found later would end at size + 1 or beyond.
    if (target_ > 0 && size >= target_) {
      *error = absl::ResourceExhaustedError(
          absl::StrCat("IOStream::read_until: delimiter not found within max_bytes=", target_));
      return Match::kTooLong;
    }
    const size_t keep = delim.size() - 1;  // a delimiter may straddle the next read
    scan_from_ = static_cast<uint32_t>(size > keep ? size - keep : 0);
    return Match::kWait;
  }
  const size_t end = pos + delim.size();
  if (target_ > 0 && end > target_) {
    *error = absl::ResourceExhaustedError(absl::StrCat(
        "IOStream::read_until: delimiter ends at byte ", end, ", beyond max_bytes=", target_));
    return Match::kTooLong;
  }
  *out = buffer.retrieve_as_string(end);
  return Match::kComplete;
}

absl::StatusOr<std::string> ReadRequest::result_at_end(Buffer& buffer, const absl::Status& error,
                                                       const absl::Status& ended) const {
  if (error.ok()) {
    if (kind_ == Kind::kUntilClose) return buffer.retrieve_all_as_string();
    if (kind_ == Kind::kStreaming && target_ == 0) return std::string();
    return ended;
  }
  return error;
}

void ReadRequest::finish() {
  on_chunk_ = nullptr;
  long_delimiter_.reset();
  short_size_ = 0;
  target_ = 0;
  scan_from_ = 0;
  kind_ = Kind::kNone;
}

}  // namespace ioloop::net::internal
