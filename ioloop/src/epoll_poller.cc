// The default backend. Level-triggered unless EDGE is asked. The fd and the caller's tag
// travel in epoll_event.data.u64 so dispatch never needs a lookup to spot a stale event.
// The wait call (epoll_pwait2 or epoll_wait) is chosen once, by a probe at construction.
// A registered fd that is closed leaves the epoll set by itself (unless dup'ed), so a closed
// fd is never reported here: its handler hears nothing.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ioloop/events.h"
#include "pollers.h"

namespace ioloop {
namespace {

constexpr uint32_t kInterest = READ | WRITE | EDGE;

class EpollPoller final : public Poller {
 public:
  EpollPoller(int epfd, EpollWait wait) : epfd_(epfd), ready_(64), wait_(wait) {}
  ~EpollPoller() override { ::close(epfd_); }

  PollerKind kind() const override { return PollerKind::kEpoll; }

  absl::Status add(int fd, uint32_t events, uint32_t tag) override {
    return ctl(EPOLL_CTL_ADD, fd, events, tag);
  }
  absl::Status modify(int fd, uint32_t events, uint32_t tag) override {
    return ctl(EPOLL_CTL_MOD, fd, events, tag);
  }
  void remove(int fd) override {
    // EBADF/ENOENT: the fd was closed (which removes it) or never added. Both are fine.
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  }

  absl::StatusOr<int> poll(std::optional<absl::Duration> timeout,
                           std::vector<Event>* out) override {
    int n;
    if (wait_ == EpollWait::kPwait2) {
      struct timespec ts;
      n = ::epoll_pwait2(epfd_, ready_.data(), static_cast<int>(ready_.size()),
                         to_timespec(timeout, &ts), nullptr);
    } else {
      n = ::epoll_wait(epfd_, ready_.data(), static_cast<int>(ready_.size()),
                       to_millis_rounding_up(timeout));
    }
    if (n < 0) {
      if (errno == EINTR) return 0;
      // The loop backs off and counts it; the probe already chose a call the kernel accepts.
      return absl::ErrnoToStatus(errno,
                                 wait_ == EpollWait::kPwait2 ? "epoll_pwait2" : "epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t data = ready_[i].data.u64;
      out->push_back(Event{static_cast<int>(data & 0xffffffffu),
                           ready_[i].events & (READ | WRITE | ERROR),
                           static_cast<uint32_t>(data >> 32)});
    }
    // A full array may mean more were ready: grow so the next wait reports them all.
    if (n == static_cast<int>(ready_.size()) && ready_.size() < 65536) ready_.resize(n * 2);
    return n;
  }

 private:
  static int to_millis_rounding_up(std::optional<absl::Duration> timeout) {
    if (!timeout) return -1;
    if (*timeout <= absl::ZeroDuration()) return 0;
    // Rounding down would wake before the deadline and spin until it passes.
    double ms = std::ceil(absl::ToDoubleMilliseconds(*timeout));
    return ms > 86400000.0 ? 86400000 : static_cast<int>(ms);
  }

  absl::Status ctl(int op, int fd, uint32_t events, uint32_t tag) {
    if (fd < 0) return absl::InvalidArgumentError(absl::StrCat("invalid fd ", fd));
    struct epoll_event ev = {};
    ev.events = events & kInterest;
    ev.data.u64 = (static_cast<uint64_t>(tag) << 32) | static_cast<uint32_t>(fd);
    if (::epoll_ctl(epfd_, op, fd, &ev) == 0) return absl::OkStatus();
    const int err = errno;
    const char* what = op == EPOLL_CTL_ADD ? "epoll_ctl(ADD) fd " : "epoll_ctl(MOD) fd ";
    if (err == EEXIST)
      return absl::AlreadyExistsError(absl::StrCat(what, fd, ": already registered"));
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat(what, fd, ": not registered"));
    if (err == EBADF) return absl::InvalidArgumentError(absl::StrCat("fd ", fd, " is not open"));
    if (err == EPERM) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, fd, ": this kind of file does not support epoll"));
    }
    return absl::ErrnoToStatus(err, absl::StrCat(what, fd));
  }

  int epfd_;
  std::vector<struct epoll_event> ready_;
  EpollWait wait_;
};

EpollWait probe_epoll_wait(int epfd) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    struct epoll_event ev;
    struct timespec zero = {0, 0};
    const int n = ::epoll_pwait2(epfd, &ev, 1, &zero, nullptr);
    if (std::optional<EpollWait> w = epoll_wait_after_probe(n < 0 ? errno : 0)) return *w;
  }
  return EpollWait::kWait;  // interrupted every time: take the call that always works
}

}  // namespace

std::optional<EpollWait> epoll_wait_after_probe(int probe_errno) {
  switch (probe_errno) {
    case 0:
      return EpollWait::kPwait2;
    case EINTR:
      return std::nullopt;
    case ENOSYS:  // kernel < 5.11
    case EPERM:   // seccomp: unknown syscalls refused with EPERM (container default profiles)
    case EINVAL:  // sandboxes that reject the call's arguments
    default:      // anything else: epoll_wait is the baseline every kernel accepts
      return EpollWait::kWait;
  }
}

absl::StatusOr<std::unique_ptr<Poller>> make_epoll_poller(std::optional<EpollWait> force) {
  int epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return absl::ErrnoToStatus(errno, "epoll_create1");
  const EpollWait wait = force ? *force : probe_epoll_wait(epfd);
  return std::unique_ptr<Poller>(new EpollPoller(epfd, wait));
}

}  // namespace ioloop
