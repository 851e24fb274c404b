#include "ioloop/poller.h"

#include <errno.h>
#include <fcntl.h>

#include "absl/strings/str_cat.h"
#include "pollers.h"

namespace ioloop {

absl::StatusOr<PollerKind> parse_poller_kind(absl::string_view name) {
  if (name == "epoll") return PollerKind::kEpoll;
  if (name == "poll") return PollerKind::kPoll;
  if (name == "select") return PollerKind::kSelect;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown poller '", name, "': expected epoll, poll or select"));
}

absl::string_view poller_kind_name(PollerKind kind) {
  switch (kind) {
    case PollerKind::kEpoll:
      return "epoll";
    case PollerKind::kPoll:
      return "poll";
    case PollerKind::kSelect:
      return "select";
  }
  return "unknown";
}

absl::Status check_fd_open(int fd) {
  if (::fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
    return absl::InvalidArgumentError(absl::StrCat("fd ", fd, " is not open"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Poller>> Poller::create(PollerKind kind) {
  switch (kind) {
    case PollerKind::kEpoll:
      return make_epoll_poller();
    case PollerKind::kPoll:
      return make_poll_poller();
    case PollerKind::kSelect:
      return make_select_poller();
  }
  return absl::InvalidArgumentError("unknown PollerKind");
}

const struct timespec* to_timespec(std::optional<absl::Duration> timeout, struct timespec* ts) {
  if (!timeout) return nullptr;
  absl::Duration d = *timeout;
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  // A day is as good as forever and keeps tv_sec far from overflow.
  if (d > absl::Hours(24)) d = absl::Hours(24);
  *ts = absl::ToTimespec(d);
  return ts;
}

}  // namespace ioloop
