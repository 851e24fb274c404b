// select(2) backend, kept for portability lessons and benchmarks. fd_set is a fixed bitmap
// of FD_SETSIZE bits: FD_SET on a larger fd writes past it, so such fds are refused.
// select has no error set for sockets (exceptfds means urgent data): an error or hang-up
// shows as readable/writable, and the handler's read or write then sees it.
// A registered fd closed behind our back fails the whole call with EBADF: the poller finds
// which fds are closed (fcntl(F_GETFD) over the watched set), reports each once as ERROR and
// mutes it (out of the fd_sets) until modify() or remove(), so the loop never spins on it.
#include <fcntl.h>
#include <sys/select.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ioloop/events.h"
#include "pollers.h"

namespace ioloop {
namespace {

class SelectPoller final : public Poller {
 public:
  SelectPoller() : interest_(FD_SETSIZE, 0), tags_(FD_SETSIZE, 0) {
    FD_ZERO(&read_);
    FD_ZERO(&write_);
  }

  PollerKind kind() const override { return PollerKind::kSelect; }

  absl::Status add(int fd, uint32_t events, uint32_t tag) override {
    if (absl::Status s = check(fd, events); !s.ok()) return s;
    if (interest_[fd] & kRegistered) {
      return absl::AlreadyExistsError(absl::StrCat("select: fd ", fd, " already registered"));
    }
    if (absl::Status s = check_fd_open(fd); !s.ok()) return s;
    set(fd, events, tag);
    max_fd_ = std::max(max_fd_, fd);
    return absl::OkStatus();
  }

  absl::Status modify(int fd, uint32_t events, uint32_t tag) override {
    if (absl::Status s = check(fd, events); !s.ok()) return s;
    if (!(interest_[fd] & kRegistered)) {
      return absl::NotFoundError(absl::StrCat("select: fd ", fd, " not registered"));
    }
    set(fd, events, tag);
    return absl::OkStatus();
  }

  void remove(int fd) override {
    if (fd < 0 || fd >= FD_SETSIZE || !(interest_[fd] & kRegistered)) return;
    interest_[fd] = 0;
    FD_CLR(fd, &read_);
    FD_CLR(fd, &write_);
    while (max_fd_ >= 0 && !(interest_[max_fd_] & kRegistered)) --max_fd_;
  }

  absl::StatusOr<int> poll(std::optional<absl::Duration> timeout,
                           std::vector<Event>* out) override {
    fd_set r = read_, w = write_;
    struct timespec ts;
    int n = ::pselect(max_fd_ + 1, &r, &w, nullptr, to_timespec(timeout, &ts), nullptr);
    if (n < 0) {
      if (errno == EINTR) return 0;
      if (errno == EBADF) {
        if (int bad = report_closed_fds(out); bad > 0) return bad;
        errno = EBADF;
      }
      return absl::ErrnoToStatus(errno, "pselect");
    }
    int found = 0;
    for (int fd = 0; fd <= max_fd_ && n > 0; ++fd) {
      uint32_t ev = 0;
      if (FD_ISSET(fd, &r)) ev |= READ;
      if (FD_ISSET(fd, &w)) ev |= WRITE;
      if (ev == 0) continue;
      ++found;
      out->push_back(Event{fd, ev, tags_[fd]});
    }
    return found;
  }

 private:
  static constexpr uint32_t kRegistered = 1u << 30;

  static absl::Status check(int fd, uint32_t events) {
    if (fd < 0) return absl::InvalidArgumentError(absl::StrCat("invalid fd ", fd));
    if (fd >= FD_SETSIZE) {
      return absl::InvalidArgumentError(absl::StrCat(
          "select: fd ", fd, " >= FD_SETSIZE (", FD_SETSIZE, "); use the epoll or poll poller"));
    }
    if (events & EDGE) {
      return absl::InvalidArgumentError("EDGE (edge-triggered) needs the epoll poller");
    }
    return absl::OkStatus();
  }

  // After EBADF: appends an ERROR event for every watched fd that is not open and mutes it.
  // Returns how many were found.
  int report_closed_fds(std::vector<Event>* out) {
    int found = 0;
    for (int fd = 0; fd <= max_fd_; ++fd) {
      if (!FD_ISSET(fd, &read_) && !FD_ISSET(fd, &write_)) continue;  // not given to select
      if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
      FD_CLR(fd, &read_);
      FD_CLR(fd, &write_);
      out->push_back(Event{fd, ERROR, tags_[fd]});
      ++found;
    }
    return found;
  }

  void set(int fd, uint32_t events, uint32_t tag) {
    interest_[fd] = kRegistered | (events & (READ | WRITE));
    tags_[fd] = tag;
    if (events & READ)
      FD_SET(fd, &read_);
    else
      FD_CLR(fd, &read_);
    if (events & WRITE)
      FD_SET(fd, &write_);
    else
      FD_CLR(fd, &write_);
  }

  fd_set read_;
  fd_set write_;
  std::vector<uint32_t> interest_;  // indexed by fd
  std::vector<uint32_t> tags_;      // indexed by fd
  int max_fd_ = -1;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Poller>> make_select_poller() {
  return std::unique_ptr<Poller>(new SelectPoller());
}

}  // namespace ioloop
