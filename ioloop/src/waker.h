// File: waker.h (private)
// An eventfd that another thread writes to wake a loop blocked in its poller. Writes are
// coalesced by the caller (IOLoop only wakes a loop that may be sleeping); the counter
// semantics of eventfd make extra writes harmless anyway.
#ifndef IOLOOP_SRC_WAKER_H_
#define IOLOOP_SRC_WAKER_H_

#include <memory>

#include "absl/status/statusor.h"

namespace ioloop {

class Waker {
 public:
  static absl::StatusOr<std::unique_ptr<Waker>> create();
  ~Waker();
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;

  int fd() const { return fd_; }
  // Thread-safe, async-signal-safe.
  void wake();
  // Loop thread: reads the counter back to zero.
  void drain();

 private:
  explicit Waker(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace ioloop

#endif  // IOLOOP_SRC_WAKER_H_
