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

absl::StatusOr<std::unique_ptr<Poller>> make_epoll_poller();
absl::StatusOr<std::unique_ptr<Poller>> make_poll_poller();
absl::StatusOr<std::unique_ptr<Poller>> make_select_poller();

// nullopt -> nullptr (block forever); otherwise fills `ts`, clamping negatives to zero.
const struct timespec* to_timespec(std::optional<absl::Duration> timeout, struct timespec* ts);

}  // namespace ioloop

#endif  // IOLOOP_SRC_POLLERS_H_
