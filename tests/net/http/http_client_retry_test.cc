// HTTPClient's keep-alive race retry, on the manual clock: a request written on a pooled
// connection that the server closed (EOF or reset before any response byte) is retried once on
// a fresh connection if its method is idempotent, never otherwise, and the dead connection
// leaves nothing behind.
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "http_client_testing.h"
#include "ioloop/net/http/http_client.h"

namespace ioloop::net {
namespace {

using Result = std::optional<absl::StatusOr<HTTPClientResponse>>;

TEST_F(HTTPClientTest, IdempotentRequestOnAStaleConnectionIsRetriedOnceOnAFreshOne) {
  for (bool reset : {false, true}) {
    for (const char* method : {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"}) {
      auto raw = racy_server(raw_server(), reset);
      HTTPClient client(loop());
      ASSERT_TRUE(get(client, raw->url()).ok());
      HTTPClientRequest request;
      request.method = method;
      request.url = raw->url();
      absl::StatusOr<HTTPClientResponse> r = fetch(client, std::move(request));
      ASSERT_TRUE(r.ok()) << method << " reset=" << reset << ": " << r.status();
      EXPECT_FALSE(r->reused_connection);
      EXPECT_EQ(client.stats().retries, 1u) << method;
      EXPECT_EQ(raw->connections(), 2u) << method;
      EXPECT_EQ(raw->conn(1).heads(), 1u) << method;
    }
  }
}

TEST_F(HTTPClientTest, PostOnAStaleConnectionIsNeverRetried) {
  for (bool reset : {false, true}) {
    for (const char* method : {"POST", "PATCH"}) {
      auto raw = racy_server(raw_server(), reset);
      HTTPClient client(loop());
      ASSERT_TRUE(get(client, raw->url()).ok());
      HTTPClientRequest request;
      request.method = method;
      request.url = raw->url();
      request.body = "once";
      absl::StatusOr<HTTPClientResponse> r = fetch(client, std::move(request));
      EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
      if (!reset) {
        EXPECT_EQ(r.status(), absl::UnavailableError(absl::StrCat(
                                  "the server closed the connection before sending a response (",
                                  method, " ", raw->url(), ", waiting for the response)")));
      }
      EXPECT_EQ(client.stats().retries, 0u);
      settle();
      EXPECT_EQ(raw->connections(), 1u) << "the request was sent again";
    }
  }
}

// A connection opened for a fetch that was cancelled while it connected waits in the pool
// like any other, and the server may close it just as the next request arrives: that request
// is on a reused connection (so counted), and retried (found by a probe: it failed).
TEST_F(HTTPClientTest, ARequestOnAConnectionItsFirstFetchLeftIsRetried) {
  auto raw = raw_server();
  RawServer* r = raw.get();
  raw->on_data = [r](RawServer::Conn& c) {  // connection 0 closes on its first request
    if (c.eof || c.heads() == 0) return;
    if (&c == &r->conn(0)) {
      c.stream->close();
      return;
    }
    c.stream->write(kOkResponse);
  };
  HTTPClientOptions options;
  options.max_connections_per_host = 1;
  HTTPClient client(loop(), options);
  Result cancelled;
  HTTPClientRequest first;
  first.url = raw->url("/a");
  EXPECT_TRUE(client.cancel(start(client, std::move(first), &cancelled)));  // while connecting
  ASSERT_TRUE(wait_for([&] { return client.stats().idle_connections == 1; }));
  absl::StatusOr<HTTPClientResponse> res = get(client, raw->url("/b"));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->body, "ok");
  EXPECT_EQ(client.stats().connections_reused, 1u);
  EXPECT_EQ(client.stats().retries, 1u);
  EXPECT_EQ(raw->connections(), 2u);
}

TEST_F(HTTPClientTest, RetryHappensOnceAndNotAfterAResponseByte) {
  auto raw = raw_server();
  RawServer* r = raw.get();
  // Connection 0 answers its first request and closes on the second; connection 1 closes on
  // its first: the retry is not retried again.
  raw->on_data = [r](RawServer::Conn& c) {
    if (c.eof) return;
    if (&c == &r->conn(0) && c.heads() == 1) {
      c.stream->write(kOkResponse);
    } else if (c.heads() >= 1) {
      c.stream->close();
    }
  };
  HTTPClient client(loop());
  ASSERT_TRUE(get(client, raw->url()).ok());
  absl::StatusOr<HTTPClientResponse> res = get(client, raw->url());
  EXPECT_EQ(res.status(), absl::UnavailableError(
                              "the server closed the connection before sending a response (GET " +
                              raw->url() + ", waiting for the response)"));
  EXPECT_EQ(client.stats().retries, 1u);
  EXPECT_EQ(raw->connections(), 2u);

  // A reused connection that dies after a byte of the response: DataLoss, no retry.
  auto raw2 = raw_server();
  RawServer* r2 = raw2.get();
  raw2->on_data = [r2](RawServer::Conn& c) {
    if (c.eof || &c != &r2->conn(0)) return;
    if (c.heads() == 1) c.stream->write(kOkResponse);
    if (c.heads() == 2) {
      c.stream->write("HTTP/1.1 2");
      c.stream->close();
    }
  };
  HTTPClient client2(loop());
  ASSERT_TRUE(get(client2, raw2->url()).ok());
  res = get(client2, raw2->url());
  EXPECT_EQ(res.status().code(), absl::StatusCode::kDataLoss) << res.status();
  EXPECT_EQ(client2.stats().retries, 0u);
  EXPECT_EQ(raw2->connections(), 1u);
}

// Regression: the retry left the dead connection's timer armed (at its request_timeout, up to a
// minute later), holding a live timeout on the loop for nothing.
TEST_F(HTTPClientTest, TheRetryLeavesNoTimerOfTheDeadConnection) {
  auto raw = racy_server(raw_server(), /*reset=*/false);
  HTTPClientOptions options;
  options.idle_timeout = absl::InfiniteDuration();  // pooled connections arm no timer
  HTTPClient client(loop(), options);
  ASSERT_TRUE(get(client, raw->url()).ok());
  HTTPClientRequest request;
  request.url = raw->url("/retried");
  request.request_timeout = absl::Seconds(60);
  absl::StatusOr<HTTPClientResponse> r = fetch(client, std::move(request));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(client.stats().retries, 1u);
  settle();
  // The fresh connection's own timer only (re-armed lazily, it stays until the deadline its
  // exchange set, then finds nothing to do): not a second one for the dead connection.
  EXPECT_EQ(loop().stats().timers_pending, 1u);
}

}  // namespace
}  // namespace ioloop::net
