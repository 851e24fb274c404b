// File: examples/body_output.h
// Where http_fetch writes: stdout (or a file) for the body, stderr for the head and its last
// line, from the loop thread, with a bound on how long a write may wait.
//
// Why not fwrite(): a pipe, socket or terminal whose reader stops reading blocks a write, and
// a write blocked on the loop thread stops the loop, --timeout's timer included, so the
// transfer could outlive its limit for ever (found by a probe: `http_fetch --timeout=2s URL |
// sleep 600` ran until sleep ended). BodyOutput writes to such an output without blocking and
// waits for room in poll(), up to the deadline:
//  - a pipe or terminal through a descriptor of its own, opened with O_NONBLOCK through
//    /proc/self/fd: the inherited one's flags are shared with other processes (a terminal's
//    with the shell), so they are left alone. Only where /proc cannot reopen it: poll(), then
//    PIPE_BUF bytes per write(), which a pipe with one writer takes without blocking;
//  - a socket with send(MSG_DONTWAIT);
//  - a file, a block device or /dev/null as it is: they wait for the disk, never for a reader.
//
// A file named by --output is opened at once (an unwritable path is an error before any
// request) but replaced only by begin(), at the first byte of the body or a response without
// one, as curl -o does: a transfer that fails before that leaves the file as it was, and
// close() removes a file this object made for it.
//
// Threads: one, the loop's. Errors: errno's message as a Status (UNKNOWN), DeadlineExceeded
// once the deadline passed with the output still full.
#ifndef IOLOOP_EXAMPLES_BODY_OUTPUT_H_
#define IOLOOP_EXAMPLES_BODY_OUTPUT_H_

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "ioloop/time.h"

namespace ioloop::examples {

class BodyOutput {
 public:
  // Standard output, or `path` when it is not empty: created if missing, emptied by begin().
  static absl::StatusOr<BodyOutput> open(const std::string& path) {
    if (path.empty()) return BodyOutput(STDOUT_FILENO, false);
    constexpr int kFlags = O_WRONLY | O_CLOEXEC;
    bool created = true;
    int fd = ::open(path.c_str(), kFlags | O_CREAT | O_EXCL, 0666);
    if (fd < 0 && errno == EEXIST) {
      // There already (or a symbolic link, which O_EXCL never follows: one to a missing file
      // makes it, as curl would): not ours to remove.
      created = false;
      fd = ::open(path.c_str(), kFlags | O_CREAT, 0666);
    }
    if (fd < 0) return absl::UnknownError(absl::StrCat("cannot open ", path, ": ", error()));
    BodyOutput out(fd, true);
    if (created) out.made_path_ = path;
    return out;
  }
  // An inherited descriptor (STDERR_FILENO), not closed by this object.
  static BodyOutput inherited(int fd) { return BodyOutput(fd, false); }

  BodyOutput(BodyOutput&& other) noexcept
      : fd_(other.fd_),
        owned_(other.owned_),
        own_fd_(other.own_fd_),
        kind_(other.kind_),
        begun_(other.begun_),
        made_path_(std::move(other.made_path_)) {
    other.owned_ = false;
    other.own_fd_ = -1;
    other.made_path_.clear();
  }
  BodyOutput& operator=(BodyOutput&&) = delete;
  ~BodyOutput() {
    if (own_fd_ >= 0) ::close(own_fd_);
    (void)close();  // an early return's too: a file made for nothing goes
  }

  // The response has begun: a file that was there is emptied now (a FIFO or a device, which
  // ftruncate() refuses with EINVAL, is written as it is).
  absl::Status begin() {
    if (std::exchange(begun_, true) || !owned_ || !made_path_.empty()) return absl::OkStatus();
    if (::ftruncate(fd_, 0) != 0 && errno != EINVAL) return absl::UnknownError(error());
    return absl::OkStatus();
  }

  // Writes all of `data`, waiting for room up to `deadline` (TimePoint::max(): no bound).
  absl::Status write(absl::string_view data, TimePoint deadline) {
    if (absl::Status s = begin(); !s.ok()) return s;
    bool wait = kind_ == Kind::kChunked;
    while (!data.empty()) {
      if (wait) {
        absl::Status room = wait_for_room(deadline);
        if (!room.ok()) return room;
      }
      const ssize_t n = write_some(data);
      if (n < 0) {
        // EAGAIN: full (or, on a file, left O_NONBLOCK by another program): wait, never spin.
        if (errno == EAGAIN) wait = true;
        if (errno == EINTR || errno == EAGAIN) continue;
        return absl::UnknownError(error());
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  // Closes a file opened by open(): its error (a full disk may only show here). One it made
  // is removed if nothing began.
  absl::Status close() {
    if (!owned_) return absl::OkStatus();
    owned_ = false;
    if (!begun_ && !made_path_.empty()) ::unlink(made_path_.c_str());
    return ::close(fd_) == 0 ? absl::OkStatus() : absl::UnknownError(error());
  }

 private:
  enum class Kind {
    kDirect,       // a file, a block device, /dev/null: write() as it is
    kNonBlocking,  // a pipe or terminal: write() to own_fd_ (O_NONBLOCK), poll() on EAGAIN
    kSocket,       // send(MSG_DONTWAIT), poll() on EAGAIN
    kChunked,      // a pipe or terminal /proc could not reopen: poll(), then PIPE_BUF bytes
  };

  BodyOutput(int fd, bool owned) : fd_(fd), owned_(owned) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return;  // write() reports the error (EBADF)
    if (S_ISSOCK(st.st_mode)) {
      kind_ = Kind::kSocket;
    } else if (S_ISFIFO(st.st_mode) || (S_ISCHR(st.st_mode) && ::isatty(fd))) {
      // A new open file description of the same pipe or terminal. Write-only, as this one
      // may be (hold_standard_fds() opens a closed stdout read-only: then the write fails).
      const int flags = ::fcntl(fd, F_GETFL);
      if (flags >= 0 && (flags & O_ACCMODE) != O_RDONLY) {
        own_fd_ = ::open(absl::StrCat("/proc/self/fd/", fd).c_str(),
                         O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
      }
      kind_ = own_fd_ >= 0 ? Kind::kNonBlocking : Kind::kChunked;
    }
  }

  static std::string error() { return std::strerror(errno); }

  int write_fd() const { return own_fd_ >= 0 ? own_fd_ : fd_; }

  absl::Status wait_for_room(TimePoint deadline) {
    while (true) {
      int timeout_ms = -1;
      if (deadline != TimePoint::max()) {
        // Rounded up: poll() would otherwise return just before the deadline, and again.
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, INT_MAX));
      }
      pollfd p{write_fd(), POLLOUT, 0};
      const int ready = ::poll(&p, 1, timeout_ms);
      if (ready > 0) return absl::OkStatus();  // POLLERR or POLLHUP too: write() says which
      if (ready == 0) return absl::DeadlineExceededError("the output took no bytes");
      if (errno != EINTR) return absl::UnknownError(error());
    }
  }

  ssize_t write_some(absl::string_view data) {
    switch (kind_) {
      case Kind::kSocket:
        return ::send(fd_, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      case Kind::kChunked:
        return ::write(fd_, data.data(), std::min(data.size(), size_t{PIPE_BUF}));
      case Kind::kDirect:
      case Kind::kNonBlocking:
        break;
    }
    return ::write(write_fd(), data.data(), data.size());
  }

  int fd_;
  bool owned_;
  int own_fd_ = -1;  // kNonBlocking: the O_NONBLOCK descriptor of the same pipe or terminal
  Kind kind_ = Kind::kDirect;
  bool begun_ = false;     // begin() ran: the file holds this response
  std::string made_path_;  // the file open() created, removed by close() if nothing began
};

}  // namespace ioloop::examples

#endif  // IOLOOP_EXAMPLES_BODY_OUTPUT_H_
