// poll(2) backend: a dense pollfd array scanned by the kernel on every call, which is why
// its cost grows with the number of registered fds. ppoll() gives nanosecond timeouts.
// A registered fd closed behind our back shows as POLLNVAL on every call: it is reported once
// as ERROR and then muted (its pollfd.fd negated, which poll() skips) until modify() or
// remove(), so a handler that ignores the error cannot make the loop spin.
#include <poll.h>

#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ioloop/events.h"
#include "pollers.h"

namespace ioloop {
namespace {

class PollPoller final : public Poller {
 public:
  PollerKind kind() const override { return PollerKind::kPoll; }

  absl::Status add(int fd, uint32_t events, uint32_t tag) override {
    if (fd < 0) return absl::InvalidArgumentError(absl::StrCat("invalid fd ", fd));
    if (events & EDGE) {
      return absl::InvalidArgumentError("EDGE (edge-triggered) needs the epoll poller");
    }
    if (static_cast<size_t>(fd) < index_.size() && index_[fd] >= 0) {
      return absl::AlreadyExistsError(absl::StrCat("poll: fd ", fd, " already registered"));
    }
    if (absl::Status s = check_fd_open(fd); !s.ok()) return s;
    if (static_cast<size_t>(fd) >= index_.size()) index_.resize(fd + 1, -1);
    index_[fd] = static_cast<int>(fds_.size());
    fds_.push_back(pollfd{fd, static_cast<short>(events & (READ | WRITE)), 0});
    tags_.push_back(tag);
    return absl::OkStatus();
  }

  absl::Status modify(int fd, uint32_t events, uint32_t tag) override {
    if (events & EDGE) {
      return absl::InvalidArgumentError("EDGE (edge-triggered) needs the epoll poller");
    }
    if (fd < 0 || static_cast<size_t>(fd) >= index_.size() || index_[fd] < 0) {
      return absl::NotFoundError(absl::StrCat("poll: fd ", fd, " not registered"));
    }
    fds_[index_[fd]].fd = fd;  // unmutes
    fds_[index_[fd]].events = static_cast<short>(events & (READ | WRITE));
    tags_[index_[fd]] = tag;
    return absl::OkStatus();
  }

  void remove(int fd) override {
    if (fd < 0 || static_cast<size_t>(fd) >= index_.size() || index_[fd] < 0) return;
    const int pos = index_[fd];
    const int last = static_cast<int>(fds_.size()) - 1;
    if (pos != last) {
      fds_[pos] = fds_[last];
      tags_[pos] = tags_[last];
      index_[real_fd(fds_[pos])] = pos;
    }
    fds_.pop_back();
    tags_.pop_back();
    index_[fd] = -1;
  }

  absl::StatusOr<int> poll(std::optional<absl::Duration> timeout,
                           std::vector<Event>* out) override {
    struct timespec ts;
    int n = ::ppoll(fds_.data(), fds_.size(), to_timespec(timeout, &ts), nullptr);
    if (n < 0) {
      if (errno == EINTR) return 0;
      return absl::ErrnoToStatus(errno, "ppoll");
    }
    int found = 0;
    for (size_t i = 0; i < fds_.size() && found < n; ++i) {
      if (fds_[i].revents == 0) continue;
      ++found;
      uint32_t ev = static_cast<uint32_t>(fds_[i].revents) & (READ | WRITE | ERROR);
      const int fd = fds_[i].fd;
      if (fds_[i].revents & POLLNVAL) {
        // Closed while registered: report it as an error once, then stop asking the kernel.
        ev |= ERROR;
        fds_[i].fd = ~fd;
      }
      out->push_back(Event{fd, ev, tags_[i]});
    }
    return found;
  }

 private:
  // A muted entry holds ~fd: negative, so poll() ignores it, and still names the fd.
  static int real_fd(const pollfd& p) { return p.fd < 0 ? ~p.fd : p.fd; }

  std::vector<pollfd> fds_;
  std::vector<uint32_t> tags_;  // parallel to fds_
  std::vector<int> index_;      // fd -> position in fds_, or -1
};

}  // namespace

absl::StatusOr<std::unique_ptr<Poller>> make_poll_poller() {
  return std::unique_ptr<Poller>(new PollPoller());
}

}  // namespace ioloop
