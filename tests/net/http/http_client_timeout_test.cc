// HTTPClient timeouts on the manual clock (each fires exactly at its deadline, no wall-clock
// wait). The keep-alive race retry is in http_client_retry_test.cc.
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "http_client_testing.h"
#include "ioloop/net/http/http_client.h"
#include "testing/connect_targets.h"

namespace ioloop::net {
namespace {

using Result = std::optional<absl::StatusOr<HTTPClientResponse>>;

// An HTTPClient timeout error: DeadlineExceeded, the exact message, and the limit
// fetch_timeout() reads from it.
::testing::AssertionResult IsTimeout(const absl::Status& s, FetchTimeout which,
                                     absl::string_view message) {
  if (s.code() != absl::StatusCode::kDeadlineExceeded || s.message() != message) {
    return ::testing::AssertionFailure() << s << ", not DEADLINE_EXCEEDED: " << message;
  }
  if (fetch_timeout(s) != which) {
    return ::testing::AssertionFailure() << "fetch_timeout() " << static_cast<int>(fetch_timeout(s))
                                         << ", not " << static_cast<int>(which) << ": " << s;
  }
  return ::testing::AssertionSuccess();
}

TEST_F(HTTPClientTest, ConnectTimeoutNamesTheConnectPhase) {
  ::ioloop::testing::Blackhole hole;  // SYNs dropped: the connect hangs
  HTTPClient client(loop());
  HTTPClientRequest request;
  request.url = absl::StrCat("http://127.0.0.1:", hole.address.port(), "/");
  const std::string request_url = request.url;
  request.connect_timeout = absl::Seconds(2);
  const TimePoint t0 = loop().time();
  absl::StatusOr<HTTPClientResponse> r = fetch(client, std::move(request));
  EXPECT_TRUE(IsTimeout(
      r.status(), FetchTimeout::kConnect,
      absl::StrCat("connect to 127.0.0.1:", hole.address.port(),
                   ": connect_timeout (2s) expired (GET ", request_url, ", connecting)")));
  EXPECT_EQ(loop().time() - t0, std::chrono::seconds(2));
  EXPECT_EQ(client.stats().open_connections, 0u);
}

TEST_F(HTTPClientTest, DestroyedWhileConnectingCompletesTheFetchOnce) {
  ::ioloop::testing::Blackhole hole;
  int calls = 0;
  absl::Status status;
  {
    HTTPClient client(loop());
    HTTPClientRequest request;
    request.url = absl::StrCat("http://127.0.0.1:", hole.address.port(), "/");
    client.fetch(std::move(request), [&](absl::StatusOr<HTTPClientResponse> r) {
      ++calls;
      status = r.status();
    });
    settle();
    EXPECT_EQ(client.stats().open_connections, 1u);  // connecting
    EXPECT_EQ(calls, 0);
  }
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(status, absl::CancelledError("HTTPClient destroyed with the fetch pending"));
  settle();
  EXPECT_EQ(calls, 1);
}

TEST_F(HTTPClientTest, RequestTimeoutWaitingForTheResponse) {
  auto raw = raw_server();  // never answers
  HTTPClient client(loop());
  HTTPClientRequest request;
  request.url = raw->url("/slow");
  request.request_timeout = absl::Seconds(3);
  const TimePoint t0 = loop().time();
  absl::StatusOr<HTTPClientResponse> r = fetch(client, std::move(request));
  EXPECT_TRUE(IsTimeout(r.status(), FetchTimeout::kRequest,
                        absl::StrCat("request_timeout (3s) expired waiting for the response "
                                     "from ",
                                     raw->url("/slow"))));
  EXPECT_EQ(loop().time() - t0, std::chrono::seconds(3));
  ASSERT_TRUE(wait_for([&] { return raw->last().eof; }));  // closed, not pooled
  EXPECT_EQ(client.stats().open_connections, 0u);
}

// Deadlines are watched by one timer per connection, armed lazily: an exchange on a reused
// connection arms nothing new, and each timeout still fires exactly at its deadline, whether
// the connection's timer was armed later (idle_timeout 60 s: re-armed earlier) or earlier
// (idle_timeout 5 s: fires early, finds the exchange, re-arms for the deadline).
TEST_F(HTTPClientTest, TimeoutsOnAReusedConnectionShareItsOneTimerAndFireOnTime) {
  for (const int idle_s : {60, 5}) {
    SCOPED_TRACE(idle_s);
    auto raw = raw_server();
    size_t pending_in_exchange = 99;
    raw->on_data = [&](RawServer::Conn& c) {
      if (c.eof) return;
      if (c.heads() <= 3) {  // the first three answered, the fourth never
        pending_in_exchange = loop().stats().timers_pending;
        c.stream->write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
      }
    };
    HTTPClientOptions options;
    options.idle_timeout = absl::Seconds(idle_s);
    HTTPClient client(loop(), options);
    auto request = [&] {
      HTTPClientRequest r;
      r.url = raw->url("/");
      r.request_timeout = absl::Seconds(7);
      r.response_timeout = absl::Seconds(6);
      return r;
    };
    const size_t pending_before = loop().stats().timers_pending;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(fetch(client, request()).ok()) << i;
    // wait_for()'s two timers and the connection's one, whatever its exchange asked: not one
    // per deadline.
    EXPECT_EQ(pending_in_exchange, pending_before + 3);
    EXPECT_EQ(loop().stats().timers_pending, pending_before + 1);
    EXPECT_EQ(raw->connections(), 1u);

    // Idle for 4 s, then a request the server does not answer: response_timeout (6 s, the
    // earlier of the two) fires 6 s after it was sent, on the pooled connection.
    Result r;
    TimePoint sent{};
    loop().call_later(absl::Seconds(4), [&] {
      sent = loop().time();
      start(client, request(), &r);
    });
    ASSERT_TRUE(wait_for([&] { return r.has_value(); }));
    EXPECT_TRUE(
        IsTimeout(r->status(), FetchTimeout::kResponse,
                  absl::StrCat("response_timeout (6s) expired waiting for the response from ",
                               raw->url("/"))));
    EXPECT_EQ(loop().time() - sent, std::chrono::seconds(6));
    EXPECT_EQ(client.stats().connections_reused, 3u);
    EXPECT_EQ(client.stats().idle_expired, 0u);
  }
}

TEST_F(HTTPClientTest, RequestTimeoutReadingTheBody) {
  auto raw = raw_server();
  raw->on_data = [](RawServer::Conn& c) {
    if (c.heads() == 1 && !c.eof)
      c.stream->write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab");
  };
  HTTPClient client(loop());
  HTTPClientRequest request;
  request.url = raw->url();
  request.request_timeout = absl::Seconds(3);
  absl::StatusOr<HTTPClientResponse> r = fetch(client, std::move(request));
  EXPECT_TRUE(
      IsTimeout(r.status(), FetchTimeout::kRequest,
                absl::StrCat("request_timeout (3s) expired reading the body from ", raw->url())));
}

TEST_F(HTTPClientTest, ResponseTimeoutBoundsTheServersSilenceNotTheResponsesLength) {
  auto raw = raw_server();
  HTTPClient client(loop());
  HTTPClientRequest silent;
  silent.url = raw->url("/silent");
  silent.request_timeout = absl::InfiniteDuration();
  silent.response_timeout = absl::Seconds(2);
  const TimePoint t0 = loop().time();
  absl::StatusOr<HTTPClientResponse> r = fetch(client, std::move(silent));
  EXPECT_TRUE(IsTimeout(r.status(), FetchTimeout::kResponse,
                        absl::StrCat("response_timeout (2s) expired waiting for the response from ",
                                     raw->url("/silent"))));
  EXPECT_EQ(loop().time() - t0, std::chrono::seconds(2));

  // The head at 1 s, then a body piece every 1.5 s until 10 s: each wait is under 2 s.
  raw->on_data = [&](RawServer::Conn& c) {
    if (c.heads() != 1 || c.eof || &c != &raw->last() || raw->connections() != 2) return;
    RawServer::Conn* conn = &c;
    loop().call_later(absl::Seconds(1), [conn] {
      conn->stream->write("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\na");
    });
    for (int i = 1; i <= 6; ++i) {
      loop().call_later(absl::Seconds(1) + absl::Milliseconds(1500) * i, [conn, i] {
        conn->stream->write(std::string(1, static_cast<char>('a' + i)));
      });
    }
  };
  HTTPClientRequest slow_body;
  slow_body.url = raw->url("/slow-body");
  slow_body.request_timeout = absl::InfiniteDuration();
  slow_body.response_timeout = absl::Seconds(2);
  r = fetch(client, std::move(slow_body));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "abcdefg");

  // The head and 2 of 4 bytes at 1 s, then silence: 2 s after the last piece, it expires.
  bool answered = false;
  raw->on_data = [&](RawServer::Conn& c) {
    if (answered || c.eof || c.received.find("/stalled-body") == std::string::npos) return;
    answered = true;
    RawServer::Conn* conn = &c;
    loop().call_later(absl::Seconds(1), [conn] {
      conn->stream->write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab");
    });
  };
  HTTPClientRequest stalled;
  stalled.url = raw->url("/stalled-body");
  stalled.request_timeout = absl::InfiniteDuration();
  stalled.response_timeout = absl::Seconds(2);
  const TimePoint t1 = loop().time();
  r = fetch(client, std::move(stalled));
  EXPECT_TRUE(IsTimeout(r.status(), FetchTimeout::kResponse,
                        absl::StrCat("response_timeout (2s) expired reading the body from ",
                                     raw->url("/stalled-body"))));
  EXPECT_EQ(loop().time() - t1, std::chrono::seconds(3));
}

// Found by a review: before the final head, response_timeout ran from the request's write
// whatever came meanwhile, so a server sending 102 Processing every 1.5 s (as a WebDAV server
// does through a long job) was cut off at 2 s. Any byte ends a silence: an interim response,
// part of the head.
TEST_F(HTTPClientTest, ResponseTimeoutStartsAgainAtEachByteBeforeTheHead) {
  auto raw = raw_server();
  bool answered = false;
  raw->on_data = [&](RawServer::Conn& c) {
    if (answered || c.received.find("\r\n\r\n") == std::string::npos) return;
    answered = true;
    RawServer::Conn* conn = &c;
    for (int i = 1; i <= 3; ++i) {
      loop().call_later(absl::Milliseconds(1500) * i,
                        [conn] { conn->stream->write("HTTP/1.1 102 Processing\r\n\r\n"); });
    }
    loop().call_later(absl::Seconds(6), [conn] { conn->stream->write("HTTP/1.1 200 OK\r\n"); });
    loop().call_later(absl::Milliseconds(7500),
                      [conn] { conn->stream->write("Content-Length: 2\r\n\r\nok"); });
  };
  HTTPClientRequest slow;
  slow.url = raw->url("/slow");
  slow.request_timeout = absl::InfiniteDuration();
  slow.response_timeout = absl::Seconds(2);
  int interims = 0;
  slow.interim_callback = [&](const HTTPResponseHead& head) {
    EXPECT_EQ(head.status, 102);
    ++interims;
  };
  HTTPClient client(loop());
  const TimePoint t0 = loop().time();
  absl::StatusOr<HTTPClientResponse> r = fetch(client, std::move(slow));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "ok");
  EXPECT_EQ(interims, 3);
  EXPECT_EQ(loop().time() - t0, std::chrono::milliseconds(7500));

  // Part of a head at 1 s, then silence: 2 s after that byte it expires, reading the head.
  answered = false;
  raw->on_data = [&](RawServer::Conn& c) {
    if (answered || c.received.find("/partial") == std::string::npos) return;
    answered = true;
    RawServer::Conn* conn = &c;
    loop().call_later(absl::Seconds(1), [conn] { conn->stream->write("HTTP/1.1 200 OK\r\n"); });
  };
  HTTPClientRequest partial;
  partial.url = raw->url("/partial");
  partial.request_timeout = absl::InfiniteDuration();
  partial.response_timeout = absl::Seconds(2);
  const TimePoint t1 = loop().time();
  r = fetch(client, std::move(partial));
  EXPECT_TRUE(IsTimeout(
      r.status(), FetchTimeout::kResponse,
      absl::StrCat("response_timeout (2s) expired reading the head from ", raw->url("/partial"))));
  EXPECT_EQ(loop().time() - t1, std::chrono::seconds(3));
}

TEST_F(HTTPClientTest, ResponseTimeoutDoesNotRunWhileTheCallerPausesReading) {
  auto raw = raw_server();
  raw->on_data = [&](RawServer::Conn& c) {
    if (c.heads() == 1 && !c.eof) c.stream->write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n");
  };
  HTTPClient client(loop());
  HTTPClientRequest request;
  request.url = raw->url("/paused");
  request.request_timeout = absl::InfiniteDuration();
  request.response_timeout = absl::Seconds(2);
  std::string body;
  uint64_t id = 0;
  // Paused at the head for 10 s (a slow client behind a proxy): not the server's silence.
  request.header_callback = [&](const HTTPResponseHead&) {
    EXPECT_TRUE(client.pause_reading(id));
    loop().call_later(absl::Seconds(10), [&] {
      EXPECT_TRUE(client.resume_reading(id));
      raw->last().stream->write("wxyz");
    });
  };
  request.streaming_callback = [&](absl::string_view d) { body.append(d.data(), d.size()); };
  Result result;
  id = start(client, std::move(request), &result);
  ASSERT_TRUE(wait_for([&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ(body, "wxyz");
}

TEST_F(HTTPClientTest, ResponseTimeoutDoesNotRunWhileTheBodyProducerHasNothingToSend) {
  start_server(echo_handler);
  HTTPClient client(loop());
  HTTPClientRequest request;
  request.method = "PUT";
  request.url = url("/slow-upload");
  request.headers.add("Content-Length", "10");
  request.request_timeout = absl::InfiniteDuration();
  request.response_timeout = absl::Seconds(2);
  HTTPClientBodyWriter kept;
  request.body_producer = [&](HTTPClientBodyWriter& w) { kept = w; };
  Result result;
  start(client, std::move(request), &result);
  ASSERT_TRUE(wait_for([&] { return kept.active(); }));
  // Five pieces 3 s apart (a slow client behind a proxy): 15 s of upload, every gap longer
  // than the response_timeout, which bounds the server's silence, not the producer's.
  for (int i = 1; i <= 5; ++i) {
    loop().call_later(absl::Seconds(3 * i), [&kept, i] {
      EXPECT_TRUE(kept.write(std::string(2, static_cast<char>('0' + i))));
      if (i == 5) {
        EXPECT_TRUE(kept.finish());
      }
    });
  }
  ASSERT_TRUE(wait_for([&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ((*result)->body, "PUT /slow-upload|1122334455");
}

TEST_F(HTTPClientTest, ResponseTimeoutFailsAnUploadTheServerStopsReading) {
  auto raw = raw_server();
  raw->on_data = [](RawServer::Conn& c) { c.stream->pause_reading(); };  // reads no more
  HTTPClient client(loop());
  HTTPClientRequest request;
  request.method = "POST";
  request.url = raw->url("/stalled");
  request.request_timeout = absl::InfiniteDuration();
  request.response_timeout = absl::Seconds(2);
  HTTPClientBodyWriter kept;
  request.body_producer = [&](HTTPClientBodyWriter& w) { kept = w; };
  Result result;
  start(client, std::move(request), &result);
  ASSERT_TRUE(wait_for([&] { return kept.active(); }));
  // More than the sockets buffer: the write never completes, so the timeout runs from it.
  const TimePoint written = loop().time();
  EXPECT_TRUE(kept.write(std::string(64 << 20, 'x')));
  ASSERT_TRUE(wait_for([&] { return result.has_value(); }));
  // The upload never finished: the fetch was still sending its request.
  EXPECT_TRUE(IsTimeout(result->status(), FetchTimeout::kResponse,
                        absl::StrCat("response_timeout (2s) expired sending the request from ",
                                     raw->url("/stalled"))));
  EXPECT_EQ(loop().time() - written, std::chrono::seconds(2));
}

TEST_F(HTTPClientTest, ACompletedFetchLeavesNoTimerBehind) {
  start_server(echo_handler);
  HTTPClient client(loop());
  HTTPClientRequest request;
  request.url = url();
  request.request_timeout = absl::Seconds(1);
  request.response_timeout = absl::Seconds(1);
  ASSERT_TRUE(fetch(client, std::move(request)).ok());
  // Well past the request_timeout the pooled connection is still there and usable.
  bool checked = false;
  loop().call_later(absl::Seconds(5), [&] {
    checked = true;
    check();
  });
  ASSERT_TRUE(wait_for([&] { return checked; }));
  EXPECT_EQ(client.stats().idle_connections, 1u);
  absl::StatusOr<HTTPClientResponse> r = get(client, url());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->reused_connection);
}

TEST_F(HTTPClientRealClockTest, HostNamesGoThroughTheResolver) {
  start_server(echo_handler);
  HTTPClient client(loop());
  // "localhost" may resolve to ::1 first, where nothing listens: Happy Eyeballs falls back.
  absl::StatusOr<HTTPClientResponse> r =
      get(client, absl::StrCat("http://localhost:", server_->port(), "/name"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "GET /name|");
  EXPECT_EQ(r->effective_url, absl::StrCat("http://localhost:", server_->port(), "/name"));
}

// queue_timeout bounds the wait for a pooled connection, and only that: the queued fetch fails
// at its deadline without being sent, the busy one goes on, and the connection then goes idle.
TEST_F(HTTPClientTest, QueueTimeoutFailsAFetchStillWaitingForAConnection) {
  auto raw = raw_server();  // answers only when told
  HTTPClientOptions options;
  options.max_connections_per_host = 1;
  HTTPClient client(loop(), options);
  Result first, second;
  HTTPClientRequest r1;
  r1.url = raw->url("/1");
  r1.request_timeout = absl::InfiniteDuration();
  start(client, std::move(r1), &first);
  HTTPClientRequest r2;
  r2.url = raw->url("/2");
  r2.queue_timeout = absl::Seconds(3);
  const TimePoint t0 = loop().time();
  start(client, std::move(r2), &second);
  EXPECT_EQ(client.stats().queued, 1u);
  ASSERT_TRUE(wait_for([&] { return second.has_value(); }));
  EXPECT_EQ(loop().time() - t0, std::chrono::seconds(3));
  EXPECT_TRUE(IsTimeout(second->status(), FetchTimeout::kQueue,
                        absl::StrCat("queue_timeout (3s) expired: no free connection to 127.0.0.1:",
                                     raw->port(), " (max_connections_per_host 1) (GET ",
                                     raw->url("/2"), ", queued for a connection)")));
  EXPECT_EQ(client.stats().queued, 0u);
  EXPECT_FALSE(first.has_value());

  raw->last().stream->write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1");
  ASSERT_TRUE(wait_for([&] { return first.has_value(); }));
  ASSERT_TRUE(first->ok()) << first->status();
  settle();
  EXPECT_EQ(raw->connections(), 1u);
  EXPECT_EQ(raw->last().heads(), 1u);  // the timed-out request was never sent
  EXPECT_EQ(client.stats().idle_connections, 1u);
}

// A fetch that leaves the queue in time (for the connection released after the exchange before
// it, or for a new one when that connection closed) has its queue_timeout timer removed: once
// both fetches are done, only the idle connection's timer is pending, where the queue_timeout
// (due at 100 s, after the exchanges end at 51 s) would otherwise still be.
TEST_F(HTTPClientTest, QueueTimeoutStopsWhenTheFetchGetsAConnection) {
  for (const bool close_first : {false, true}) {
    SCOPED_TRACE(close_first);
    auto raw = raw_server();
    std::map<RawServer::Conn*, size_t> seen;  // heads answered (or scheduled), per connection
    int requests = 0;
    raw->on_data = [&](RawServer::Conn& c) {
      if (c.eof || c.heads() == seen[&c]) return;
      seen[&c] = c.heads();
      RawServer::Conn* conn = &c;
      const bool first = requests++ == 0;
      // The first answered after 1 s, the second after 50 s.
      loop().call_later(absl::Seconds(first ? 1 : 50), [conn, first, close_first] {
        conn->stream->write(first && close_first ? "HTTP/1.1 200 OK\r\nConnection: close\r\n"
                                                   "Content-Length: 1\r\n\r\n1"
                                                 : "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1");
      });
    };
    HTTPClientOptions options;
    options.max_connections_per_host = 1;
    HTTPClient client(loop(), options);
    const size_t timers_before = loop().stats().timers_pending;
    Result first, second;
    HTTPClientRequest r1;
    r1.url = raw->url("/1");
    start(client, std::move(r1), &first);
    HTTPClientRequest r2;
    r2.url = raw->url("/2");
    r2.request_timeout = absl::InfiniteDuration();
    r2.queue_timeout = absl::Seconds(100);
    start(client, std::move(r2), &second);
    ASSERT_TRUE(wait_for([&] { return second.has_value(); }));
    ASSERT_TRUE(first->ok()) << first->status();
    ASSERT_TRUE(second->ok()) << second->status();
    EXPECT_EQ(raw->connections(), close_first ? 2u : 1u);
    // The idle connection's timer only: the queue_timeout (due at 100 s) was removed.
    EXPECT_EQ(loop().stats().timers_pending, timers_before + 1);
  }
}

// Ending a queued fetch otherwise (cancel(), the client's destruction) removes its timer too.
TEST_F(HTTPClientTest, AQueuedFetchEndedOtherwiseLeavesNoQueueTimer) {
  auto raw = raw_server();  // never answers
  const size_t timers_before = loop().stats().timers_pending;
  Result first, second, third;
  {
    HTTPClientOptions options;
    options.max_connections_per_host = 1;
    HTTPClient client(loop(), options);
    HTTPClientRequest r1;
    r1.url = raw->url("/1");
    r1.request_timeout = absl::InfiniteDuration();
    start(client, std::move(r1), &first);
    settle();  // connected, the request sent
    const size_t base = loop().stats().timers_pending;
    auto queued = [&] {
      HTTPClientRequest r;
      r.url = raw->url("/q");
      r.queue_timeout = absl::Seconds(100);
      return r;
    };
    const uint64_t id = start(client, queued(), &second);
    start(client, queued(), &third);
    EXPECT_EQ(loop().stats().timers_pending, base + 2);
    EXPECT_TRUE(client.cancel(id));
    EXPECT_EQ(loop().stats().timers_pending, base + 1);
    EXPECT_EQ(second->status().code(), absl::StatusCode::kCancelled);
  }
  EXPECT_EQ(third->status(), absl::CancelledError("HTTPClient destroyed with the fetch pending"));
  EXPECT_EQ(loop().stats().timers_pending, timers_before);
}

TEST(FetchTimeoutTest, OnlyTheClientsOwnLimitsAreTimeouts) {
  EXPECT_EQ(fetch_timeout(absl::OkStatus()), FetchTimeout::kNone);
  // A socket's ETIMEDOUT, or anyone else's DeadlineExceeded, with the same text.
  EXPECT_EQ(fetch_timeout(absl::DeadlineExceededError("connect to h:1: connect_timeout (1s) "
                                                      "expired")),
            FetchTimeout::kNone);
  EXPECT_EQ(fetch_timeout(absl::UnavailableError("Connection refused")), FetchTimeout::kNone);
}

}  // namespace
}  // namespace ioloop::net
