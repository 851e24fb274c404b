// File: net/src/http/post_status.h (private)
// How the HTTP layer hands a status to a completion callback (a flush's, a finish's): on a
// connection, never from inside the call that was given the callback, so a handler may call
// write() or finish() again from it without recursing into the connection mid-update.
#ifndef IOLOOP_NET_SRC_HTTP_POST_STATUS_H_
#define IOLOOP_NET_SRC_HTTP_POST_STATUS_H_

#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "ioloop/io_loop.h"

namespace ioloop::net::internal {

// Runs `done(status)` on a later iteration of `loop`, or now when there is no loop (a connection
// core driven without I/O, as benchmarks and fuzzers do). Loop thread only.
inline void post_status(IOLoop* loop, absl::AnyInvocable<void(absl::Status) &&> done,
                        absl::Status status) {
  if (loop != nullptr) {
    loop->add_callback([done = std::move(done), status = std::move(status)]() mutable {
      std::move(done)(status);
    });
  } else {
    std::move(done)(std::move(status));
  }
}

}  // namespace ioloop::net::internal

#endif  // IOLOOP_NET_SRC_HTTP_POST_STATUS_H_
