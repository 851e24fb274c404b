// The client's timeouts on the loop's real clock, where they start from a fresh read and move
// on IOLoop::iteration_time() (the other client suites run on a ManualClock, where both are
// the manual clock's time).
#include <chrono>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "http_client_testing.h"
#include "ioloop/net/http/http_client.h"
#include "ioloop/time.h"

namespace ioloop::net {
namespace {

// A fetch started by a callback that first held the loop longer than the fetch's timeouts, on
// a pooled connection (so its exchange starts within fetch()), gets its whole timeouts.
// Regression: its deadlines started from the iteration's time, as old as that callback's work,
// so they had passed before the request was written (request_timeout expired at once).
TEST_F(HTTPClientRealClockTest, AFetchAfterALongCallbackGetsItsWholeTimeouts) {
  start_server(echo_handler);
  HTTPClient client(loop());
  ASSERT_TRUE(get(client, url("/warm")).ok());  // leaves a pooled connection
  std::optional<absl::StatusOr<HTTPClientResponse>> result;
  loop().add_callback([&] {
    const TimePoint until = loop().time() + std::chrono::milliseconds(1500);
    while (loop().time() < until) {
    }  // the loop is held: its iteration time stands still
    HTTPClientRequest request;
    request.url = url("/late");
    request.request_timeout = absl::Seconds(1);
    request.response_timeout = absl::Seconds(1);
    start(client, std::move(request), &result);
  });
  ASSERT_TRUE(wait_for([&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ((*result)->body, "GET /late|");
  EXPECT_TRUE((*result)->reused_connection);
}

}  // namespace
}  // namespace ioloop::net
