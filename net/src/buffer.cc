#include "ioloop/net/buffer.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ioloop::net {
namespace {

// The spill area of lending reads, one per thread, made on first use, and the one Buffer
// whose readable bytes are in it (if any).
struct LendingArea {
  std::unique_ptr<char[]> data;
  Buffer* lender = nullptr;
};
thread_local LendingArea t_lending;

}  // namespace

Buffer::~Buffer() {
  if (lending_) {
    if (t_lending.lender == this) t_lending.lender = nullptr;
  } else {
    std::free(data_);
  }
}

Buffer::Buffer(Buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      capacity_(std::exchange(other.capacity_, 0)),
      read_(std::exchange(other.read_, 0)),
      write_(std::exchange(other.write_, 0)),
      may_lend_(other.may_lend_),
      lending_(std::exchange(other.lending_, false)) {
  if (lending_ && t_lending.lender == &other) t_lending.lender = this;
}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    if (lending_) {
      if (t_lending.lender == this) t_lending.lender = nullptr;
    } else {
      std::free(data_);
    }
    data_ = std::exchange(other.data_, nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
    read_ = std::exchange(other.read_, 0);
    write_ = std::exchange(other.write_, 0);
    may_lend_ = other.may_lend_;
    lending_ = std::exchange(other.lending_, false);
    if (lending_ && t_lending.lender == &other) t_lending.lender = this;
  }
  return *this;
}

void Buffer::set_lending(bool on) {
  may_lend_ = on;
  if (!on) end_lending();
}

void Buffer::own_lent_bytes() {
  const size_t readable = readable_bytes();
  char* fresh = nullptr;
  if (readable > 0) {
    fresh = static_cast<char*>(std::malloc(readable));
    if (fresh == nullptr) throw std::bad_alloc();  // as operator new would; the loan stands
    std::memcpy(fresh, peek(), readable);
  }
  if (t_lending.lender == this) t_lending.lender = nullptr;
  lending_ = false;
  data_ = fresh;
  capacity_ = write_ = static_cast<uint32_t>(readable);
  read_ = 0;
}

absl::Status Buffer::append(const char* data, size_t n) {
  if (n == 0) return absl::OkStatus();
  // A source inside the readable bytes (append(view())) moves with them when ensure_writable()
  // slides them to the front or into a new block (freeing the old): it is found again by its
  // offset, as std::string::append allows its own contents.
  const char* readable = peek();
  const bool own = readable != nullptr && std::less_equal<>()(readable, data) &&
                   std::less<>()(data, readable + readable_bytes());
  const size_t offset = own ? static_cast<size_t>(data - readable) : 0;
  if (absl::Status s = ensure_writable(n); !s.ok()) return s;
  if (own) data = peek() + offset;
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
  if (lending_) own_lent_bytes();  // nothing is written into the lent area
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
  if (lending_) {
    if (t_lending.lender == this) t_lending.lender = nullptr;
    lending_ = false;
  } else {
    std::free(data_);
  }
  data_ = nullptr;
  capacity_ = read_ = write_ = 0;
  return true;
}

void Buffer::shrink() {
  if (release_if_empty()) return;
  if (lending_) {
    own_lent_bytes();  // a block of exactly the readable bytes
    return;
  }
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
  return read_impl(fd, saved_errno, max_bytes, /*socket=*/false);
}

ssize_t Buffer::read_socket(int fd, int* saved_errno, size_t max_bytes) {
  return read_impl(fd, saved_errno, max_bytes, /*socket=*/true);
}

ssize_t Buffer::read_impl(int fd, int* saved_errno, size_t max_bytes, bool socket) {
  if (lending_) own_lent_bytes();  // what is read next is appended to those bytes
  max_bytes = std::min(max_bytes, kMaxSize - readable_bytes());  // so the append below fits
  // No block: all that is read lands in the spill area, so with lending it may stay there.
  const bool lend = may_lend_ && capacity_ == 0;
  char stack_spill[kSpillSize];
  char* spill = stack_spill;
  if (lend) {
    LendingArea& area = t_lending;
    if (area.lender != nullptr) area.lender->end_lending();  // its bytes are overwritten next
    if (!area.data) area.data.reset(new char[kSpillSize]);
    spill = area.data.get();
  }
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
    if (!socket) {
      n = ::readv(fd, iov, iovcnt);
    } else if (iovcnt == 1) {
      n = ::recv(fd, iov[0].iov_base, iov[0].iov_len, 0);
    } else {
      struct msghdr msg = {};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(iovcnt);
      n = ::recvmsg(fd, &msg, 0);
    }
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    *saved_errno = errno;
    return n;
  }
  const size_t got = static_cast<size_t>(n);
  if (lend && got > 0) {
    data_ = spill;
    capacity_ = write_ = static_cast<uint32_t>(got);
    read_ = 0;
    lending_ = true;
    t_lending.lender = this;
  } else if (got <= writable) {
    has_written(got);
  } else {
    has_written(writable);
    append(spill, got - writable).IgnoreError();  // fits: max_bytes was capped to the room left
  }
  return n;
}

}  // namespace ioloop::net
