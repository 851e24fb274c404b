#include "waker.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "absl/status/status.h"

namespace ioloop {

absl::StatusOr<std::unique_ptr<Waker>> Waker::create() {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return absl::ErrnoToStatus(errno, "eventfd");
  return std::unique_ptr<Waker>(new Waker(fd));
}

Waker::~Waker() { ::close(fd_); }

void Waker::wake() {
  uint64_t one = 1;
  // EAGAIN means the counter is saturated: the loop is certainly going to wake.
  ssize_t n;
  do {
    n = ::write(fd_, &one, sizeof one);
  } while (n < 0 && errno == EINTR);
}

void Waker::drain() {
  uint64_t value;
  ssize_t n;
  do {
    n = ::read(fd_, &value, sizeof value);
  } while (n < 0 && errno == EINTR);
}

}  // namespace ioloop
