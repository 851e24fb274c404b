// File: pollers.h (private)
// The three Poller backends. See ioloop/poller.h for the contract they share.
#ifndef IOLOOP_SRC_POLLERS_H_
#define IOLOOP_SRC_POLLERS_H_

#include <time.h>

#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ioloop/poller.h"

namespace ioloop {

// How the epoll backend waits: epoll_pwait2 (Linux 5.11) takes a nanosecond timeout, epoll_wait
// only milliseconds (rounded up, so never early).
enum class EpollWait { kPwait2, kWait };

// The decision taken once, at construction, from probing epoll_pwait2 with a zero timeout:
// `probe_errno` is 0 if the probe succeeded, else its errno. kWait for ENOSYS (kernel < 5.11),
// EPERM (container seccomp profiles answer syscalls they do not know with EPERM), EINVAL (some
// sandboxes) and any other failure: epoll_wait always works and costs only sub-millisecond
// precision, while a wait that fails on every call would spin. nullopt for EINTR: probe again.
std::optional<EpollWait> epoll_wait_after_probe(int probe_errno);

// InvalidArgument "fd N is not open" if `fd` is closed, else OK. poll() and select() learn of a
// closed fd only at the next wait, so their add() asks first; epoll_ctl answers EBADF itself,
// which spares every registration of the epoll backend a syscall.
absl::Status check_fd_open(int fd);

// `force` skips the probe (tests of the epoll_wait path).
absl::StatusOr<std::unique_ptr<Poller>> make_epoll_poller(
    std::optional<EpollWait> force = std::nullopt);
absl::StatusOr<std::unique_ptr<Poller>> make_poll_poller();
absl::StatusOr<std::unique_ptr<Poller>> make_select_poller();

// nullopt -> nullptr (block forever); otherwise fills `ts`, clamping negatives to zero.
const struct timespec* to_timespec(std::optional<absl::Duration> timeout, struct timespec* ts);

}  // namespace ioloop

#endif  // IOLOOP_SRC_POLLERS_H_
