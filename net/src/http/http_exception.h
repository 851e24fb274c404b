// File: net/src/http/http_exception.h (private, header-only)
// How the HTTP server reports an exception from user code it called (a Handler, a deferred
// response's code inside run(), a streamed body's handler or its factory): one place, so the
// connection core, the response stream and the body path log and count it the same way.
#ifndef IOLOOP_NET_SRC_HTTP_HTTP_EXCEPTION_H_
#define IOLOOP_NET_SRC_HTTP_HTTP_EXCEPTION_H_

#include <exception>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "ioloop/io_loop.h"
#include "ioloop/logging.h"

namespace ioloop::net::internal {

// Call inside a catch block: reports the exception in flight, thrown by `what`, and returns
// Internal "exception in <what>: <its what()>" for the caller to fail its response or
// request with. With `loop` (the connection's), that is IOLoop::handle_callback_exception:
// the loop's rate-limited log and its stats().exceptions. Without one (the benchmark and the
// fuzzer drive HTTPConnectionCore with no loop) it is logged through ioloop::logger() as
// "<what> threw: <message>". Counting in HTTPServer::Stats stays with the caller, which knows
// the counter. Cold and out of line: the callers' catch blocks stay small.
[[gnu::cold, gnu::noinline]] inline absl::Status report_http_exception(IOLoop* loop,
                                                                       const char* what) {
  if (loop != nullptr) return loop->handle_callback_exception(what);
  std::string message = "unknown exception";
  try {
    throw;
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
  }
  logger().error("{} threw: {}", what, message);
  return absl::InternalError(absl::StrCat("exception in ", what, ": ", message));
}

}  // namespace ioloop::net::internal

#endif  // IOLOOP_NET_SRC_HTTP_HTTP_EXCEPTION_H_
