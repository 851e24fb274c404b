// HTTPClient lifetimes (docs/architecture.md §18): each fetch is owned by the client's core
// through a shared_ptr, and what may outlive it (a kept HTTPClientBodyWriter, an upload's flush
// completion, the fetch's own callbacks ending it mid-dispatch) holds or locks it weakly and
// must do nothing once it finished or the client is gone.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "http_client_testing.h"
#include "ioloop/net/http/http_client.h"

namespace ioloop::net {
namespace {

using Result = std::optional<absl::StatusOr<HTTPClientResponse>>;

// The producer writes a chunk and cancels its own fetch at once: the chunk's flush completion
// arrives after the fetch ended and must not run the producer again; the kept writer is inert
// from then on, also after the client is gone.
TEST_F(HTTPClientTest, CancelInsideTheBodyProducerEndsTheUploadOnceAndTheKeptWriterIsInert) {
  auto raw = raw_server();
  auto client = std::make_unique<HTTPClient>(loop());
  HTTPClientBodyWriter kept;
  int producer_calls = 0;
  uint64_t id = 0;
  std::vector<std::string> results;
  HTTPClientRequest request;
  request.method = "POST";
  request.url = raw->url("/up");
  request.body_producer = [&](HTTPClientBodyWriter& w) {
    ++producer_calls;
    kept = w;
    EXPECT_TRUE(w.write("abc"));
    EXPECT_TRUE(client->cancel(id));
    EXPECT_FALSE(w.active());
    EXPECT_FALSE(w.write("more"));
  };
  id = client->fetch(std::move(request), [&](absl::StatusOr<HTTPClientResponse> r) {
    results.push_back(r.status().ToString());
    check();
  });
  ASSERT_TRUE(wait_for([&] { return !results.empty(); }));
  ASSERT_TRUE(wait_for([&] { return raw->connections() == 1 && raw->last().eof; }));
  settle();
  EXPECT_EQ(producer_calls, 1);
  EXPECT_EQ(results, (std::vector<std::string>{"CANCELLED: fetch cancelled (POST " +
                                               raw->url("/up") + ", sending the request)"}));
  EXPECT_EQ(raw->last().received,
            "POST /up HTTP/1.1\r\nHost: " + raw->url("").substr(7) +
                "\r\nUser-Agent: ioloop\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
  EXPECT_FALSE(kept.active());
  EXPECT_FALSE(kept.write("late"));
  EXPECT_FALSE(kept.finish());
  EXPECT_EQ(client->stats().pending, 0u);
  EXPECT_EQ(client->stats().open_connections, 0u);
  client.reset();
  EXPECT_FALSE(kept.active());
  EXPECT_FALSE(kept.write("after the client"));
  EXPECT_FALSE(kept.finish());
  settle();
  EXPECT_EQ(producer_calls, 1);
  EXPECT_EQ(results.size(), 1u);
}

// A writer kept while the upload waits for data, then the client is destroyed: the fetch
// completes once (Cancelled), and the writer neither sends nor keeps anything alive.
TEST_F(HTTPClientTest, KeptBodyWriterOutlivingItsClientIsInert) {
  auto raw = raw_server();
  auto client = std::make_unique<HTTPClient>(loop());
  HTTPClientBodyWriter kept;
  HTTPClientRequest request;
  request.method = "PUT";
  request.url = raw->url("/kept");
  request.headers.add("Content-Length", "4");
  request.body_producer = [&](HTTPClientBodyWriter& w) { kept = w; };
  std::vector<std::string> results;
  client->fetch(std::move(request), [&](absl::StatusOr<HTTPClientResponse> r) {
    results.push_back(r.status().ToString());
  });
  ASSERT_TRUE(wait_for([&] { return kept.active() && raw->connections() == 1; }));
  client.reset();
  EXPECT_EQ(results,
            (std::vector<std::string>{"CANCELLED: HTTPClient destroyed with the fetch pending"}));
  EXPECT_FALSE(kept.active());
  EXPECT_FALSE(kept.write("data"));
  EXPECT_FALSE(kept.finish());
  ASSERT_TRUE(wait_for([&] { return raw->last().eof; }));
  settle();
  EXPECT_EQ(results.size(), 1u);
  EXPECT_EQ(raw->last().received.find("data"), std::string::npos);
}

// The header_callback cancels its own fetch: the dispatch that ran it still holds the fetch,
// which is finished, so the rest of that response (its body) reaches nobody, the connection is
// closed rather than pooled, and the next fetch gets a new one.
TEST_F(HTTPClientTest, CancelInsideTheHeaderCallbackIgnoresTheRestOfThatResponse) {
  auto raw = raw_server();
  raw->on_data = [](RawServer::Conn& c) {
    if (c.heads() == 1) {
      c.stream->write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234");
      c.stream->write("56789");
    }
  };
  HTTPClient client(loop());
  uint64_t id = 0;
  std::vector<std::string> calls;
  HTTPClientRequest request;
  request.url = raw->url("/a");
  request.header_callback = [&](const HTTPResponseHead& head) {
    calls.push_back(absl::StrCat("head ", head.status));
    EXPECT_TRUE(client.cancel(id));
  };
  request.streaming_callback = [&](absl::string_view data) {
    calls.push_back(absl::StrCat("body ", data));
  };
  id = client.fetch(std::move(request), [&](absl::StatusOr<HTTPClientResponse> r) {
    calls.push_back(r.status().ToString());
    check();
  });
  ASSERT_TRUE(wait_for([&] { return raw->connections() == 1 && raw->last().eof; }));
  settle();
  EXPECT_EQ(calls,
            (std::vector<std::string>{"head 200", "CANCELLED: fetch cancelled (GET " +
                                                      raw->url("/a") + ", reading the body)"}));
  EXPECT_EQ(client.stats().open_connections, 0u);
  EXPECT_EQ(client.stats().pending, 0u);
  absl::StatusOr<HTTPClientResponse> next = get(client, raw->url("/b"));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->body, "0123456789");
  EXPECT_EQ(raw->connections(), 2u);
}

// Found by a probe: a callback the destructor runs starts another fetch (a retry on error).
// fetch() took it and nothing ever completed it. The destructor completes it too, Cancelled,
// whether its URL is valid or not; the server never sees it.
TEST_F(HTTPClientTest, AFetchStartedFromACallbackTheDestructorRunsIsCompletedByIt) {
  auto raw = raw_server();
  auto client = std::make_unique<HTTPClient>(loop());
  HTTPClient* being_destroyed = client.get();  // unique_ptr::reset() nulls `client` first
  std::vector<std::string> calls;
  HTTPClientRequest request;
  request.url = raw->url("/first");
  client->fetch(std::move(request), [&](absl::StatusOr<HTTPClientResponse> r) {
    calls.push_back(absl::StrCat("first: ", r.status().ToString()));
    for (const char* url : {"/again", "bad"}) {
      HTTPClientRequest again;
      again.url = url[0] == '/' ? raw->url(url) : url;
      const uint64_t id =
          being_destroyed->fetch(std::move(again), [&, url](absl::StatusOr<HTTPClientResponse> a) {
            calls.push_back(absl::StrCat(url, ": ", a.status().ToString()));
          });
      EXPECT_NE(id, 0u);
    }
  });
  ASSERT_TRUE(wait_for([&] { return raw->connections() == 1 && raw->last().heads() == 1; }));
  client.reset();
  EXPECT_EQ(calls, (std::vector<std::string>{
                       "first: CANCELLED: HTTPClient destroyed with the fetch pending",
                       "/again: CANCELLED: HTTPClient destroyed with the fetch pending",
                       "bad: CANCELLED: HTTPClient destroyed with the fetch pending"}));
  settle();
  EXPECT_EQ(calls.size(), 3u);
  EXPECT_EQ(raw->connections(), 1u);
}

}  // namespace
}  // namespace ioloop::net
