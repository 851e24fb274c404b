// HTTPClient::pause_reading() and response_timeout together, on the manual clock: the caller's
// pause holds for the whole fetch (across the keep-alive retry), and response_timeout runs only
// while the server owes something (written bytes in flight, a finished request, a response under
// way) and nobody holds the response. (After a callback that held the loop, the timeout still
// gets its whole length: http_client_clock_test.cc, on the real clock.)
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "http_client_testing.h"
#include "ioloop/net/http/http_client.h"

namespace ioloop::net {
namespace {

using Result = std::optional<absl::StatusOr<HTTPClientResponse>>;

class HTTPClientPauseTest : public HTTPClientTest {
 protected:
  // A streamed POST whose producer only keeps its writer, with response_timeout 2 s.
  HTTPClientRequest upload(const std::string& url) {
    HTTPClientRequest request;
    request.method = "POST";
    request.url = url;
    request.request_timeout = absl::InfiniteDuration();
    request.response_timeout = absl::Seconds(2);
    request.body_producer = [this](HTTPClientBodyWriter& w) { kept_ = w; };
    return request;
  }

  // Runs the loop for `d` of manual time (the clock jumping from deadline to deadline).
  void run_for(absl::Duration d) {
    TimeoutHandle t = loop().call_later(d, [this] { loop().stop(); });
    loop().start();
    loop().remove_timeout(t);
  }

  HTTPClientBodyWriter kept_;
};

// Regression: resume_reading() started response_timeout although the producer had nothing in
// flight and had not finished (the server owed nothing): the upload failed 2 s later.
TEST_F(HTTPClientPauseTest, AResumeWhileTheProducerHasNothingToSendStartsNoTimeout) {
  start_server(echo_handler);
  HTTPClient client(loop());
  Result result;
  const uint64_t id = start(client, upload(url("/idle")), &result);
  ASSERT_TRUE(wait_for([&] { return kept_.active(); }));
  EXPECT_TRUE(kept_.write("a"));
  EXPECT_TRUE(client.pause_reading(id));
  settle();  // "a" is flushed: the producer has nothing more for now
  EXPECT_TRUE(client.resume_reading(id));
  run_for(absl::Seconds(10));  // nothing to send for 10 s: not the server's silence
  ASSERT_FALSE(result.has_value()) << result->status();
  EXPECT_TRUE(kept_.write("b"));
  EXPECT_TRUE(kept_.finish());
  ASSERT_TRUE(wait_for([&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ((*result)->body, "POST /idle|ab");
}

// Regression: a pause while the producer had nothing in flight did not hold response_timeout,
// so the write and finish() that followed started it while the caller held the response: the
// server's answer sat unread and the fetch failed 2 s later.
TEST_F(HTTPClientPauseTest, APauseBeforeTheProducerWritesHoldsTheTimeout) {
  auto raw = raw_server();
  raw->on_data = [](RawServer::Conn& c) {
    if (!c.eof && c.received.find("0\r\n\r\n") != std::string::npos) c.stream->write(kOkResponse);
  };
  HTTPClient client(loop());
  Result result;
  const uint64_t id = start(client, upload(raw->url("/paused")), &result);
  ASSERT_TRUE(wait_for([&] { return kept_.active(); }));
  settle();
  EXPECT_TRUE(client.pause_reading(id));
  EXPECT_TRUE(kept_.write("a"));
  EXPECT_TRUE(kept_.finish());
  run_for(absl::Seconds(10));  // the caller holds the answer for 10 s
  ASSERT_FALSE(result.has_value()) << result->status();
  EXPECT_TRUE(client.resume_reading(id));
  ASSERT_TRUE(wait_for([&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ((*result)->body, "ok");
}

// Regression: the keep-alive retry started its fresh connection unpaused, so the response was
// read and streamed while the caller held it. (A reset, which the paused stream sees; an EOF is
// read only after the resume, and the retry then starts unpaused anyway.)
TEST_F(HTTPClientPauseTest, APauseHoldsAcrossTheStaleConnectionRetry) {
  auto raw = racy_server(raw_server(), /*reset=*/true);
  HTTPClient client(loop());
  ASSERT_TRUE(get(client, raw->url()).ok());
  HTTPClientRequest request;
  request.url = raw->url("/retried");
  std::string body;
  request.streaming_callback = [&](absl::string_view d) { body.append(d.data(), d.size()); };
  Result result;
  const uint64_t id = start(client, std::move(request), &result);
  EXPECT_TRUE(client.pause_reading(id));  // the exchange started on the pooled connection
  ASSERT_TRUE(wait_for([&] { return raw->connections() == 2 && raw->conn(1).heads() == 1; }));
  settle();
  EXPECT_EQ(client.stats().retries, 1u);
  EXPECT_EQ(body, "");
  EXPECT_FALSE(result.has_value());
  EXPECT_TRUE(client.resume_reading(id));
  ASSERT_TRUE(wait_for([&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ(body, "ok");
}

}  // namespace
}  // namespace ioloop::net
