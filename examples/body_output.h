// File: examples/body_output.h
// Where http_fetch writes a response body: stdout or a file, written from the loop thread
// with a bound on how long a write may wait.
//
// Why not fwrite(): a pipe, socket or terminal whose reader stops reading blocks a write, and
// a write blocked on the loop thread stops the loop, --timeout's timer included, so the
// transfer could outlive its limit for ever (found by a probe: `http_fetch --timeout=2s URL |
// sleep 600` ran until sleep ended). BodyOutput waits for such an output in poll(), up to the
// deadline, and then writes only what it can take without blocking. The output's file flags are
// left alone (O_NONBLOCK on an inherited terminal would be the shell's too).
//
// Threads: one, the loop's. Errors: errno's message as a Status (UNKNOWN), DeadlineExceeded
// once the deadline passed with the output still full.
#ifndef IOLOOP_EXAMPLES_BODY_OUTPUT_H_
#define IOLOOP_EXAMPLES_BODY_OUTPUT_H_

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ioloop::examples {

class BodyOutput {
 public:
  // Standard output, or `path` (created or truncated) when it is not empty.
  static absl::StatusOr<BodyOutput> open(const std::string& path) {
    if (path.empty()) return BodyOutput(STDOUT_FILENO, false);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) return absl::UnknownError(absl::StrCat("cannot open ", path, ": ", error()));
    return BodyOutput(fd, true);
  }

  BodyOutput(BodyOutput&& other) noexcept
      : fd_(other.fd_), owned_(other.owned_), kind_(other.kind_) {
    other.owned_ = false;
  }
  BodyOutput& operator=(BodyOutput&&) = delete;
  ~BodyOutput() {
    if (owned_) ::close(fd_);
  }

  // Writes all of `data`, waiting for room up to `deadline` (absl::InfiniteFuture(): no bound).
  absl::Status write(absl::string_view data, absl::Time deadline) {
    bool wait = kind_ != Kind::kNeverFull;
    while (!data.empty()) {
      if (wait) {
        absl::Status room = wait_for_room(deadline);
        if (!room.ok()) return room;
      }
      const ssize_t n = write_some(data);
      if (n < 0) {
        // EAGAIN: an output another program left O_NONBLOCK. Wait for it, never spin.
        if (errno == EAGAIN) wait = true;
        if (errno == EINTR || errno == EAGAIN) continue;
        return absl::UnknownError(error());
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  // Closes a file opened by open(): its error (a full disk may only show here).
  absl::Status close() {
    if (!owned_) return absl::OkStatus();
    owned_ = false;
    return ::close(fd_) == 0 ? absl::OkStatus() : absl::UnknownError(error());
  }

 private:
  // How much a write may take without blocking, once poll() said POLLOUT.
  enum class Kind {
    kNeverFull,  // a regular file, a block device, /dev/null: waits only for the disk
    kPipe,       // PIPE_BUF bytes (a free slot), or its whole capacity when it is empty
    kSocket,     // whatever send(MSG_DONTWAIT) takes
    kTerminal,   // PIPE_BUF bytes at a time (a terminal may take less: a stopped one can
                 // still hold that one write)
  };

  BodyOutput(int fd, bool owned) : fd_(fd), owned_(owned) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return;  // write() reports the error (EBADF)
    if (S_ISFIFO(st.st_mode)) {
      kind_ = Kind::kPipe;
    } else if (S_ISSOCK(st.st_mode)) {
      kind_ = Kind::kSocket;
    } else if (S_ISCHR(st.st_mode) && ::isatty(fd)) {
      kind_ = Kind::kTerminal;
    }
  }

  static std::string error() { return std::strerror(errno); }

  absl::Status wait_for_room(absl::Time deadline) {
    while (true) {
      int timeout_ms = -1;
      if (deadline != absl::InfiniteFuture()) {
        // Rounded up: poll() would otherwise return just before the deadline, and again.
        const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now() +
                                                     absl::Milliseconds(1) - absl::Nanoseconds(1));
        timeout_ms = static_cast<int>(std::clamp<int64_t>(ms, 0, INT_MAX));
      }
      pollfd p{fd_, POLLOUT, 0};
      const int ready = ::poll(&p, 1, timeout_ms);
      if (ready > 0) return absl::OkStatus();  // POLLERR or POLLHUP too: write() says which
      if (ready == 0) return absl::DeadlineExceededError("the output took no bytes");
      if (errno != EINTR) return absl::UnknownError(error());
    }
  }

  ssize_t write_some(absl::string_view data) {
    size_t n = data.size();
    switch (kind_) {
      case Kind::kNeverFull:
        break;
      case Kind::kSocket:
        return ::send(fd_, data.data(), n, MSG_DONTWAIT | MSG_NOSIGNAL);
      case Kind::kPipe: {
        // An empty pipe takes its whole capacity; otherwise POLLOUT promises one free slot,
        // which takes PIPE_BUF bytes. Only the reader changes the pipe meanwhile, emptying it.
        int queued = 0;
        const int capacity = ::fcntl(fd_, F_GETPIPE_SZ);
        const bool empty = ::ioctl(fd_, FIONREAD, &queued) == 0 && queued == 0 && capacity > 0;
        n = std::min(n, empty ? static_cast<size_t>(capacity) : size_t{PIPE_BUF});
        break;
      }
      case Kind::kTerminal:
        n = std::min(n, size_t{PIPE_BUF});
        break;
    }
    return ::write(fd_, data.data(), n);
  }

  int fd_;
  bool owned_;
  Kind kind_ = Kind::kNeverFull;
};

}  // namespace ioloop::examples

#endif  // IOLOOP_EXAMPLES_BODY_OUTPUT_H_
