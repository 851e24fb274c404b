// File: net/src/gai_status.h (private)
// The absl::Status for a getaddrinfo() failure, so that callers can tell a transient failure
// (retry later) from a name that does not exist or a bad request.
#ifndef IOLOOP_NET_SRC_GAI_STATUS_H_
#define IOLOOP_NET_SRC_GAI_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ioloop::net::internal {

// `gai_error` is getaddrinfo()'s non-zero return; `saved_errno` is errno right after the
// call (used for EAI_SYSTEM). The message names the host and carries gai_strerror's text.
absl::Status gai_error_to_status(int gai_error, int saved_errno, absl::string_view host);

}  // namespace ioloop::net::internal

#endif  // IOLOOP_NET_SRC_GAI_STATUS_H_
