// HTTPClient streaming: the response body through streaming_callback (max_body_size not applied,
// pause_reading/resume_reading), and streamed uploads through body_producer (chunked or with a
// Content-Length, flow control, a writer kept and used later, misuse, exceptions).
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "http_client_testing.h"
#include "ioloop/net/http/http_client.h"

namespace ioloop::net {
namespace {

using Result = std::optional<absl::StatusOr<HTTPClientResponse>>;

TEST_F(HTTPClientTest, StreamingCallbackGetsTheBodyAndMaxBodySizeDoesNotApply) {
  start_server(
      [](const HTTPRequest&, HTTPResponseWriter& w) { w.set_body(std::string(300000, 'x')); });
  HTTPClient client(loop());
  HTTPClientRequest request;
  request.url = url();
  request.max_body_size = 10;
  std::string streamed;
  int chunks = 0;
  request.streaming_callback = [&](absl::string_view d) {
    streamed.append(d.data(), d.size());
    ++chunks;
  };
  absl::StatusOr<HTTPClientResponse> r = fetch(client, std::move(request));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "");
  EXPECT_EQ(streamed, std::string(300000, 'x'));
  EXPECT_GT(chunks, 1);
}

TEST_F(HTTPClientTest, PauseReadingHoldsTheBodyBackUntilResumed) {
  auto raw = raw_server();
  HTTPClient client(loop());
  HTTPClientRequest request;
  request.url = raw->url();
  std::string streamed;
  uint64_t id = 0;
  request.streaming_callback = [&](absl::string_view d) {
    streamed.append(d.data(), d.size());
    EXPECT_TRUE(client.pause_reading(id));
  };
  Result result;
  id = start(client, std::move(request), &result);
  ASSERT_TRUE(wait_for([&] { return raw->connections() == 1 && raw->last().heads() == 1; }));
  raw->last().stream->write("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc");
  ASSERT_TRUE(wait_for([&] { return streamed == "abc"; }));
  raw->last().stream->write("def");
  settle();
  EXPECT_EQ(streamed, "abc");  // paused: not read
  EXPECT_FALSE(result.has_value());
  EXPECT_TRUE(client.resume_reading(id));
  ASSERT_TRUE(wait_for([&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ(streamed, "abcdef");
  EXPECT_FALSE(client.pause_reading(id));  // over
  // The connection went back to the pool reading again: a second fetch works on it.
  raw->on_data = [](RawServer::Conn& c) {
    if (c.heads() == 2) c.stream->write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz");
  };
  absl::StatusOr<HTTPClientResponse> again = get(client, raw->url());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->reused_connection);
}

// The pieces of body one read holds reach the callback together, not one call per chunk: a
// proxy relaying 1-byte chunks made one send() per chunk (found by a probe: 3,000,000 of them
// took 20 s of CPU and held the loop for 230 ms per read).
TEST_F(HTTPClientTest, StreamingCallbackGetsOneReadsChunksTogether) {
  auto raw = raw_server();
  HTTPClient client(loop());
  HTTPClientRequest request;
  request.url = raw->url();
  std::string streamed;
  int calls = 0;
  request.streaming_callback = [&](absl::string_view d) {
    streamed.append(d.data(), d.size());
    ++calls;
  };
  Result result;
  start(client, std::move(request), &result);
  ASSERT_TRUE(wait_for([&] { return raw->connections() == 1 && raw->last().heads() == 1; }));
  std::string response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string expected;
  for (int i = 0; i < 1000; ++i) {
    const char c = static_cast<char>('a' + i % 26);
    absl::StrAppend(&response, "1\r\n", std::string(1, c), "\r\n");
    expected += c;
  }
  response += "0\r\n\r\n";
  raw->last().stream->write(response);  // one send of 6 KB: one read, or a few
  ASSERT_TRUE(wait_for([&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ(streamed, expected);
  EXPECT_LE(calls, 3);
}

TEST_F(HTTPClientTest, BodyProducerSendsChunksOneFlushAtATime) {
  auto raw = raw_server();
  HTTPClient client(loop());
  HTTPClientRequest request;
  request.method = "POST";
  request.url = raw->url("/up");
  int calls = 0;
  request.body_producer = [&](HTTPClientBodyWriter& w) {
    ++calls;
    if (calls == 1) {
      EXPECT_TRUE(w.write("a"));
    }
    if (calls == 2) {
      EXPECT_TRUE(w.write("bb"));
    }
    if (calls == 3) {
      EXPECT_TRUE(w.finish());
      EXPECT_FALSE(w.write("late"));
      EXPECT_FALSE(w.active());
    }
  };
  Result result;
  start(client, std::move(request), &result);
  EXPECT_EQ(calls, 0) << "never inside fetch()";
  ASSERT_TRUE(wait_for([&] {
    return raw->connections() == 1 && raw->last().received.find("0\r\n\r\n") != std::string::npos;
  }));
  EXPECT_EQ(raw->last().received,
            absl::StrCat("POST /up HTTP/1.1\r\nHost: 127.0.0.1:", raw->port(),
                         "\r\nUser-Agent: ioloop\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "1\r\na\r\n2\r\nbb\r\n0\r\n\r\n"));
  EXPECT_EQ(calls, 3);
  raw->last().stream->write("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(wait_for([&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ((*result)->status, 201);
}

TEST_F(HTTPClientTest, BodyProducerUploadsToHTTPServerWithAContentLengthAndAKeptWriter) {
  start_server(echo_handler);
  HTTPClient client(loop());
  HTTPClientRequest request;
  request.method = "PUT";
  request.url = url("/kept");
  request.headers.add("Content-Length", "10");
  HTTPClientBodyWriter kept;
  request.body_producer = [&](HTTPClientBodyWriter& w) { kept = w; };  // writes nothing now
  Result result;
  start(client, std::move(request), &result);
  ASSERT_TRUE(wait_for([&] { return kept.active(); }));
  loop().call_later(absl::Seconds(1), [&] {
    EXPECT_TRUE(kept.write("01234"));
    EXPECT_TRUE(kept.write("56789"));
    EXPECT_TRUE(kept.finish());
  });
  ASSERT_TRUE(wait_for([&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ((*result)->body, "PUT /kept|0123456789");
  EXPECT_FALSE(kept.active());
}

// Found by a probe of http_proxy: a server may answer once the last byte of a Content-Length
// body arrived, before the producer's finish(). The request is whole on the wire then, yet the
// connection was closed instead of reused (12 new upstream connections for 40 uploads).
TEST_F(HTTPClientTest, AConnectionAnsweredAfterTheWholeLengthIsReusedBeforeFinish) {
  auto raw = raw_server();
  Result result, next;  // before the client: ~HTTPClient completes `next`, still pending
  HTTPClient client(loop());
  HTTPClientRequest request;
  request.method = "PUT";
  request.url = raw->url("/up");
  request.headers.add("Content-Length", "10");
  HTTPClientBodyWriter kept;
  request.body_producer = [&](HTTPClientBodyWriter& w) {  // called again after each flush
    if (!kept.active()) {
      EXPECT_TRUE(w.write("0123456789"));  // all of it, and no finish() yet
    }
    kept = w;
  };
  start(client, std::move(request), &result);
  ASSERT_TRUE(wait_for([&] {
    return raw->connections() == 1 && absl::EndsWith(raw->last().received, "\r\n\r\n0123456789");
  }));
  raw->last().stream->write("HTTP/1.1 204 No Content\r\n\r\n");
  ASSERT_TRUE(wait_for([&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ((*result)->status, 204);
  EXPECT_FALSE(kept.active());
  EXPECT_FALSE(kept.finish());  // too late: inert
  HTTPClientRequest get;
  get.url = raw->url("/next");
  start(client, std::move(get), &next);
  ASSERT_TRUE(wait_for([&] { return raw->last().heads() == 2; }));
  EXPECT_EQ(raw->connections(), 1u);
  EXPECT_EQ(client.stats().connections_reused, 1u);
}

TEST_F(HTTPClientTest, BodyProducerMisuseAndExceptionsFailTheFetch) {
  start_server(echo_handler);
  HTTPClient client(loop());
  struct Case {
    std::string content_length;
    std::function<void(HTTPClientBodyWriter&)> produce;
    absl::Status status;
  };
  const std::vector<Case> cases = {
      {"5",
       [](HTTPClientBodyWriter& w) {
         w.write("hi");
         w.finish();
       },
       absl::InvalidArgumentError(
           absl::StrCat("body_producer finished after 2 bytes; the Content-Length is 5 (POST ",
                        url(), ", sending the request)"))},
      {"5", [](HTTPClientBodyWriter& w) { w.write("too long"); },
       absl::InvalidArgumentError(
           absl::StrCat("body_producer wrote more than the Content-Length (5) (POST ", url(),
                        ", sending the request)"))},
      {"", [](HTTPClientBodyWriter&) { throw std::runtime_error("no data"); },
       absl::InternalError(absl::StrCat("exception in HTTPClient body_producer: no data (POST ",
                                        url(), ", sending the request)"))},
  };
  for (const Case& c : cases) {
    HTTPClientRequest request;
    request.method = "POST";
    request.url = url();
    if (!c.content_length.empty()) request.headers.add("Content-Length", c.content_length);
    request.body_producer = c.produce;
    absl::StatusOr<HTTPClientResponse> r = fetch(client, std::move(request));
    EXPECT_EQ(r.status(), c.status);
  }
  EXPECT_EQ(client.stats().open_connections, 0u);  // each connection was closed
  HTTPClientRequest throws;
  throws.url = url();
  throws.streaming_callback = [](absl::string_view) { throw std::runtime_error("sink"); };
  EXPECT_EQ(
      fetch(client, std::move(throws)).status(),
      absl::InternalError(absl::StrCat("exception in HTTPClient streaming_callback: sink (GET ",
                                       url(), ", reading the body)")));
  EXPECT_EQ(loop().stats().exceptions, 2u);
}

// A request whose fields disagree on its length or its host is ambiguous: the client sent the
// first Content-Length (or Host) and dropped the others, so the caller's mistake went out as
// a request it did not mean. Found by an API probe.
TEST_F(HTTPClientTest, FieldsThatDisagreeOnLengthOrHostAreInvalidArgument) {
  start_server(echo_handler);
  HTTPClient client(loop());
  HTTPClientRequest lengths;
  lengths.method = "PUT";
  lengths.url = url("/up");
  lengths.headers.add("Content-Length", "5");
  lengths.headers.add("content-length", "6");
  lengths.body_producer = [](HTTPClientBodyWriter& w) { w.write("12345"); };
  EXPECT_EQ(fetch(client, std::move(lengths)).status(),
            absl::InvalidArgumentError(
                "HTTPClientRequest.headers: Content-Length fields that differ: '5' and '6'"));
  HTTPClientRequest hosts;
  hosts.url = url("/h");
  hosts.headers.add("Host", "a.example");
  hosts.headers.add("Host", "b.example");
  EXPECT_EQ(fetch(client, std::move(hosts)).status(),
            absl::InvalidArgumentError(
                "HTTPClientRequest.headers: Host fields that differ: 'a.example' and 'b.example'"));
  EXPECT_EQ(client.stats().connections_opened, 0u);  // refused before any connection
  HTTPClientRequest same;                            // equal values are one value said twice
  same.method = "PUT";
  same.url = url("/same");
  same.headers.add("Content-Length", "5");
  same.headers.add("Content-Length", "05");
  same.headers.add("Host", "LOCALHOST");
  same.headers.add("Host", "localhost");
  same.body_producer = [](HTTPClientBodyWriter& w) {
    w.write("12345");
    w.finish();
  };
  absl::StatusOr<HTTPClientResponse> r = fetch(client, std::move(same));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "PUT /same|12345");
}

// On the real clock: 4 MiB in 256 KiB writes is bulk enough for the kernel to finish some
// loopback work after send() (see HTTPClientRealClockTest); the manual clock then jumped to the
// 20 s request_timeout under TSan.
TEST_F(HTTPClientRealClockTest, LargeStreamedUploadIsFlowControlled) {
  start_server([](const HTTPRequest& r, HTTPResponseWriter& w) {
    w.set_body(absl::StrCat(r.body().size()));
  });
  HTTPClient client(loop());
  HTTPClientRequest request;
  request.method = "POST";
  request.url = url();
  int calls = 0;
  const std::string chunk(256 * 1024, 'u');
  request.body_producer = [&](HTTPClientBodyWriter& w) {
    if (++calls <= 16) {
      w.write(chunk);
    } else {
      w.finish();
    }
  };
  absl::StatusOr<HTTPClientResponse> r = fetch(client, std::move(request));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, absl::StrCat(16 * 256 * 1024));
  EXPECT_EQ(calls, 17);  // one call per flushed chunk, then the finish
}

}  // namespace
}  // namespace ioloop::net
