// The client's timeouts on the loop's real clock, where they start from a fresh read and move
// on IOLoop::iteration_time() (the other client suites run on a ManualClock, where both are
// the manual clock's time): a fetch, a producer's write or finish() and a resume_reading() that
// come after a callback that held the loop get their whole timeouts.
#include <chrono>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "http_client_testing.h"
#include "ioloop/net/http/http_client.h"
#include "ioloop/time.h"

namespace ioloop::net {
namespace {

// Holds the loop for 1.5 s of real time, as a callback with that much work would: the
// iteration's time stands still meanwhile.
void hold_the_loop(IOLoop& loop) {
  const TimePoint until = loop.time() + std::chrono::milliseconds(1500);
  while (loop.time() < until) {
  }
}

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
    hold_the_loop(loop());
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

// Regression: the producer's write and finish() after a callback that held the loop longer than
// response_timeout started it from the iteration's time, which had already passed: the fetch
// failed with DeadlineExceeded before the server could answer.
TEST_F(HTTPClientRealClockTest, AFinishAfterALongCallbackGetsTheWholeResponseTimeout) {
  start_server(echo_handler);
  HTTPClient client(loop());
  HTTPClientRequest request;
  request.method = "POST";
  request.url = url("/late");
  request.request_timeout = absl::InfiniteDuration();
  request.response_timeout = absl::Seconds(1);
  HTTPClientBodyWriter kept;
  request.body_producer = [&](HTTPClientBodyWriter& w) { kept = w; };
  std::optional<absl::StatusOr<HTTPClientResponse>> result;
  start(client, std::move(request), &result);
  ASSERT_TRUE(wait_for([&] { return kept.active(); }));
  loop().add_callback([&] {
    hold_the_loop(loop());
    EXPECT_TRUE(kept.write("x"));
    EXPECT_TRUE(kept.finish());
  });
  ASSERT_TRUE(wait_for([&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ((*result)->body, "POST /late|x");
}

// The same for resume_reading() after a long callback: the body the server sent meanwhile is
// read, not timed out.
TEST_F(HTTPClientRealClockTest, AResumeAfterALongCallbackGetsTheWholeResponseTimeout) {
  auto raw = raw_server();
  raw->on_data = [](RawServer::Conn& c) {
    if (c.heads() == 1 && !c.eof) c.stream->write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n");
  };
  HTTPClient client(loop());
  HTTPClientRequest request;
  request.url = raw->url("/held");
  request.request_timeout = absl::InfiniteDuration();
  request.response_timeout = absl::Seconds(1);
  std::string body;
  uint64_t id = 0;
  request.header_callback = [&](const HTTPResponseHead&) {
    EXPECT_TRUE(client.pause_reading(id));
    loop().add_callback([&] {
      raw->last().stream->write("wxyz");
      hold_the_loop(loop());
      EXPECT_TRUE(client.resume_reading(id));
    });
  };
  request.streaming_callback = [&](absl::string_view d) { body.append(d.data(), d.size()); };
  std::optional<absl::StatusOr<HTTPClientResponse>> result;
  id = start(client, std::move(request), &result);
  ASSERT_TRUE(wait_for([&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ(body, "wxyz");
}

}  // namespace
}  // namespace ioloop::net
