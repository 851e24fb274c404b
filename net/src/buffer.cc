#include "ioloop/net/buffer.h"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ioloop::net {

Buffer::~Buffer() { std::free(data_); }

Buffer::Buffer(Buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      capacity_(std::exchange(other.capacity_, 0)),
      read_(std::exchange(other.read_, 0)),
      write_(std::exchange(other.write_, 0)) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    std::free(data_);
    data_ = std::exchange(other.data_, nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
    read_ = std::exchange(other.read_, 0);
    write_ = std::exchange(other.write_, 0);
  }
  return *this;
}

absl::Status Buffer::append(const char* data, size_t n) {
  if (n == 0) return absl::OkStatus();
  if (absl::Status s = ensure_writable(n); !s.ok()) return s;
  std::memcpy(data_ + write_, data, n);
  write_ += static_cast<uint32_t>(n);
  return absl::OkStatus();
}

void Buffer::retrieve(size_t n) {
  if (n >= readable_bytes()) {
    retrieve_all();
  } else {
    read_ += static_cast<uint32_t>(n);
  }
}

std::string Buffer::retrieve_as_string(size_t n) {
  n = std::min(n, readable_bytes());
  std::string out(peek(), n);
  retrieve(n);
  return out;
}

size_t Buffer::find(absl::string_view delimiter, size_t from) const {
  if (delimiter.empty() || from >= readable_bytes()) return npos;
  absl::string_view hay = view();
  size_t pos = hay.find(delimiter, from);
  return pos == absl::string_view::npos ? npos : pos;
}

absl::Status Buffer::ensure_writable(size_t n) {
  if (writable_bytes() >= n) return absl::OkStatus();
  const size_t readable = readable_bytes();
  if (n > kMaxSize - readable) {  // the 32-bit indices cannot address it
    return absl::ResourceExhaustedError(absl::StrCat("Buffer: ", readable, " bytes held + ", n,
                                                     " more exceed the limit of ", kMaxSize));
  }
  if (read_ > 0 && capacity_ - readable >= n) {
    // Enough room once the consumed prefix is reclaimed.
    std::memmove(data_, data_ + read_, readable);
    read_ = 0;
    write_ = static_cast<uint32_t>(readable);
    return absl::OkStatus();
  }
  // Exact fit for the first block (small messages stay small), doubling afterwards so a
  // growing buffer costs amortised O(1) per byte.
  size_t want = readable + n;
  if (capacity_ > 0) want = std::max(want, static_cast<size_t>(capacity_) * 2);
  want = std::min(std::max(want, readable + n), kMaxSize);
  char* fresh = static_cast<char*>(std::malloc(want));
  if (fresh == nullptr) throw std::bad_alloc();  // as operator new would
  if (readable > 0) std::memcpy(fresh, data_ + read_, readable);
  std::free(data_);
  data_ = fresh;
  capacity_ = static_cast<uint32_t>(want);
  read_ = 0;
  write_ = static_cast<uint32_t>(readable);
  return absl::OkStatus();
}

bool Buffer::release_if_empty() {
  if (!empty()) return false;
  std::free(data_);
  data_ = nullptr;
  capacity_ = read_ = write_ = 0;
  return true;
}

void Buffer::shrink() {
  if (release_if_empty()) return;
  const size_t readable = readable_bytes();
  char* fresh = static_cast<char*>(std::malloc(readable));
  if (fresh == nullptr) return;  // keeping the larger block is harmless
  std::memcpy(fresh, peek(), readable);
  std::free(data_);
  data_ = fresh;
  capacity_ = static_cast<uint32_t>(readable);
  read_ = 0;
  write_ = static_cast<uint32_t>(readable);
}

size_t Buffer::read_fd_request(size_t max_bytes) const {
  max_bytes = std::min(max_bytes, kMaxSize - readable_bytes());
  const size_t writable = std::min(writable_bytes(), max_bytes);
  if (writable >= kSpillSize) return writable;
  return writable + std::min(kSpillSize, max_bytes - writable);
}

ssize_t Buffer::read_fd(int fd, int* saved_errno, size_t max_bytes) {
  max_bytes = std::min(max_bytes, kMaxSize - readable_bytes());  // so the append below fits
  char spill[kSpillSize];
  const size_t writable = std::min(writable_bytes(), max_bytes);
  struct iovec iov[2];
  int iovcnt = 0;
  if (writable > 0) {
    iov[iovcnt].iov_base = begin_write();
    iov[iovcnt].iov_len = writable;
    ++iovcnt;
  }
  // The spill area is only worth a second iovec when the block itself is small.
  const size_t spill_len = std::min(kSpillSize, max_bytes - writable);
  if (spill_len > 0 && writable < kSpillSize) {
    iov[iovcnt].iov_base = spill;
    iov[iovcnt].iov_len = spill_len;
    ++iovcnt;
  }
  if (iovcnt == 0) {  // max_bytes == 0: reading nothing must not look like EOF
    *saved_errno = ENOBUFS;
    return -1;
  }
  ssize_t n;
  do {
    n = ::readv(fd, iov, iovcnt);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    *saved_errno = errno;
    return n;
  }
  const size_t got = static_cast<size_t>(n);
  if (got <= writable) {
    has_written(got);
  } else {
    has_written(writable);
    append(spill, got - writable).IgnoreError();  // fits: max_bytes was capped to the room left
  }
  return n;
}

}  // namespace ioloop::net
