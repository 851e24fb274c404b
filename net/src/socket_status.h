// File: net/src/socket_status.h (private)
// The absl::Status for an errno from a connected socket's I/O (a receive, a send, SO_ERROR),
// shared by the plain and the TLS transports and Socket::take_error().
#ifndef IOLOOP_NET_SRC_SOCKET_STATUS_H_
#define IOLOOP_NET_SRC_SOCKET_STATUS_H_

#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ioloop::net::internal {

// As absl::ErrnoToStatus(err, what), message included, except that EPIPE is Unavailable. On a
// connected socket it means the peer is gone (a send after its reset, or the reset itself,
// which Linux reports as EPIPE in CLOSE_WAIT), as ECONNRESET (Unavailable) does; absl maps it
// to FailedPrecondition, a code that blames the caller and that callers mapping codes (a proxy's
// 502, a retry) would misread.
inline absl::Status socket_errno_status(int err, absl::string_view what) {
  absl::Status status = absl::ErrnoToStatus(err, what);
  if (err == EPIPE) return absl::UnavailableError(status.message());
  return status;
}

}  // namespace ioloop::net::internal

#endif  // IOLOOP_NET_SRC_SOCKET_STATUS_H_
