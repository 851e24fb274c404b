// File: tests/net/http/http_server_body_early_test.cc
// HTTPBodyControl::answer_early() (http_body_handler.h): a streamed request answered before its
// body ended, from on_headers, from on_body and from outside the server's calls, with a
// response filled at once or deferred; the rest of the request read and dropped, the
// connection closed after the response, no request timeout meanwhile. Over a socketpair on a
// ManualHTTPClock (HTTPServerTest, http_server_testing.h).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "http_server_testing.h"
#include "ioloop/net/http/http_body_handler.h"

namespace ioloop::net {
namespace {

// When the handler asks to answer early, and how it answers.
struct Plan {
  bool at_head = false;     // answer_early() inside on_headers
  size_t after_pieces = 0;  // inside on_body, at this piece (0: never)
  bool stop = false;        // on_body returns false
  bool defer = false;       // on_end defers (the test finishes the response)
  int status = 413;         // on_end's status
  HTTPBodyControl* control = nullptr;
  std::vector<std::string> events;  // "body <n>", "end <received>", "close"
  std::shared_ptr<HTTPResponseStream> response;
};

class EarlyHandler : public HTTPBodyHandler {
 public:
  EarlyHandler(Plan& p, HTTPBodyControl& c) : p_(p), c_(c) {}
  bool on_body(absl::string_view chunk) override {
    p_.events.push_back(absl::StrCat("body ", chunk.size()));
    if (++pieces_ == p_.after_pieces) c_.answer_early();
    return !p_.stop;
  }
  void on_end(const HTTPRequest& request, HTTPResponseWriter& response) override {
    p_.events.push_back(absl::StrCat("end ", c_.received()));
    EXPECT_EQ(request.target(), "/up");
    response.set_status(p_.status);
    response.set_header("Content-Type", "text/plain");
    if (p_.defer) {
      p_.response = response.defer();
      return;
    }
    response.set_body("no\n");
  }
  void on_close(const absl::Status&) override { p_.events.push_back("close"); }

 private:
  Plan& p_;
  HTTPBodyControl& c_;
  size_t pieces_ = 0;
};

class HTTPServerBodyEarlyTest : public HTTPServerTest {
 protected:
  void start(HTTPServerOptions options = {}) {
    shared_ = std::make_shared<HTTPServerState>(
        echo,
        [this](const HTTPRequest&, HTTPBodyControl& control) -> std::unique_ptr<HTTPBodyHandler> {
          plan_.control = &control;
          if (plan_.at_head) control.answer_early();
          return std::make_unique<EarlyHandler>(plan_, control);
        },
        std::move(options));
    clock_ = std::make_shared<ManualHTTPClock>();
    shared_->clock = clock_;
    connect();
  }
  // The client has sent everything it wrote (the server keeps reading).
  bool all_sent() const { return client_->write_buffer_size() == 0; }

  Plan plan_;
};

constexpr absl::string_view kHead =
    "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 3000000\r\n\r\n";

TEST_F(HTTPServerBodyEarlyTest, FromOnBodyTheResponseGoesAtOnceAndTheRestIsDropped) {
  plan_.after_pieces = 1;
  start();
  send(absl::StrCat(kHead, std::string(10, 'x')));
  wait_for([this] { return count_responses(received_) == 1; });
  EXPECT_EQ(normalize(received_),
            "HTTP/1.1 413 Content Too Large\r\nDate: D\r\nContent-Type: text/plain\r\n"
            "Content-Length: 3\r\nConnection: close\r\n\r\nno\n");
  EXPECT_EQ(plan_.events, (std::vector<std::string>{"body 10", "end 10"}));
  EXPECT_EQ(stats().requests, 1u);
  EXPECT_EQ(stats().responses, 1u);
}

// The client sends its whole body before it reads (as curl and Python's http.client do): the
// server reads and drops it, 3 MB, more than the socketpair holds, and a request after it, so
// the client gets to its read, and then its end, without a reset.
TEST_F(HTTPServerBodyEarlyTest, TheRestOfTheRequestIsReadAndDropped) {
  plan_.after_pieces = 1;
  start();
  send(absl::StrCat(kHead, std::string(3000000, 'y'), "GET /after HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(read_to_eof(),
            "HTTP/1.1 413 Content Too Large\r\nDate: D\r\nContent-Type: text/plain\r\n"
            "Content-Length: 3\r\nConnection: close\r\n\r\nno\n");
  settle();
  EXPECT_TRUE(end_status_.ok()) << end_status_;
  EXPECT_TRUE(all_sent());
  ASSERT_EQ(plan_.events.size(), 2u);
  EXPECT_EQ(plan_.events[1], absl::StrCat("end ", plan_.events[0].substr(5)));
  EXPECT_EQ(stats().requests, 1u);
}

TEST_F(HTTPServerBodyEarlyTest, FromOnHeadersNoContinueAndNoBodyByte) {
  plan_.at_head = true;
  plan_.status = 401;
  start();
  send(
      "POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3000000\r\n"
      "\r\n");
  EXPECT_EQ(read_to_eof(),
            "HTTP/1.1 401 Unauthorized\r\nDate: D\r\nContent-Type: text/plain\r\n"
            "Content-Length: 3\r\nConnection: close\r\n\r\nno\n");
  EXPECT_EQ(plan_.events, (std::vector<std::string>{"end 0"}));
}

// The handler holds the body stopped, then answers from outside any server call with a
// deferred response: on_end comes from a loop callback, the client's body keeps being read
// (and dropped) while the response streams, and the request's timeouts no longer apply.
TEST_F(HTTPServerBodyEarlyTest, FromOutsideWithADeferredResponseAndNoTimeoutMeanwhile) {
  plan_.stop = true;
  plan_.defer = true;
  plan_.status = 200;
  HTTPServerOptions options;
  options.request_timeout = absl::Seconds(10);
  options.min_body_rate = 1000;
  options.body_rate_window = absl::Seconds(2);
  options.idle_timeout = absl::Seconds(100);
  start(options);
  send(absl::StrCat(kHead, "abc"));
  settle();
  ASSERT_EQ(plan_.events, (std::vector<std::string>{"body 3"}));
  plan_.control->answer_early();
  EXPECT_EQ(plan_.events, (std::vector<std::string>{"body 3"}));  // never inside the call
  settle();
  ASSERT_EQ(plan_.events, (std::vector<std::string>{"body 3", "end 3"}));
  ASSERT_NE(plan_.response, nullptr);
  ASSERT_TRUE(plan_.response->write("part 1\n").ok());
  send(std::string(3000000 - 3, 'y'));
  settle();
  EXPECT_TRUE(all_sent());
  advance(absl::Seconds(30));  // past the request and body-rate deadlines: no 408
  ASSERT_FALSE(plan_.response->closed());
  ASSERT_TRUE(plan_.response->write("part 2\n").ok());
  ASSERT_TRUE(plan_.response->finish().ok());
  EXPECT_EQ(read_to_eof(),
            "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Type: text/plain\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            "7\r\npart 1\n\r\n7\r\npart 2\n\r\n0\r\n\r\n");
  EXPECT_EQ(plan_.events, (std::vector<std::string>{"body 3", "end 3"}));
  EXPECT_EQ(stats().request_timeouts + stats().body_rate_timeouts, 0u);
}

// A client that reads only once it has sent its body: the server's output is over its limit
// (the client reads nothing), yet the server goes on reading, and dropping, the body.
TEST_F(HTTPServerBodyEarlyTest, TheBodyIsReadWhileTheOutputIsFull) {
  plan_.after_pieces = 1;
  plan_.defer = true;
  plan_.status = 200;
  HTTPServerOptions options;
  options.max_pending_output = 4096;
  start(options);
  client_->pause_reading();
  send(absl::StrCat(kHead, "abc"));
  settle();
  ASSERT_NE(plan_.response, nullptr);
  ASSERT_TRUE(plan_.response->write(std::string(4 << 20, 'r')).ok());
  settle();
  ASSERT_GT(server_stream_->write_buffer_size(), options.max_pending_output);
  send(std::string(3000000 - 3, 'y'));
  settle();
  EXPECT_TRUE(all_sent());
  client_->resume_reading();
  ASSERT_TRUE(plan_.response->finish().ok());
  const std::string got = read_to_eof();
  const size_t body_at = got.find("\r\n\r\n") + 4;
  EXPECT_EQ(got.substr(0, body_at),
            "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Type: text/plain\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(got.substr(body_at) ==
              absl::StrCat("400000\r\n", std::string(4 << 20, 'r'), "\r\n0\r\n\r\n"));
}

// Once the last piece is in, the body is complete and its end held (on_body stopped after
// it): answer_early() gives the usual on_end, but the connection still ends after it, as after
// any early answer (one rule, whatever the framing): the pipelined GET is not answered.
TEST_F(HTTPServerBodyEarlyTest, AfterTheLastPieceTheConnectionEndsAsWell) {
  plan_.stop = true;
  start();
  send(
      "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /next HTTP/1.1\r\nHost: "
      "h\r\n\r\n");
  settle();
  ASSERT_EQ(plan_.events, (std::vector<std::string>{"body 3"}));
  plan_.control->answer_early();
  EXPECT_EQ(read_to_eof(),
            "HTTP/1.1 413 Content Too Large\r\nDate: D\r\nContent-Type: text/plain\r\n"
            "Content-Length: 3\r\nConnection: close\r\n\r\nno\n");
  EXPECT_EQ(plan_.events, (std::vector<std::string>{"body 3", "end 3"}));
}

// Found by a review: called from outside the server's calls, answer_early() left the request's
// deadlines armed until its callback ran; one that fell due first gave a 408 and on_close
// instead of the handler's answer. They end with the call.
TEST_F(HTTPServerBodyEarlyTest, TheRequestsTimeoutsEndWithTheCall) {
  HTTPServerOptions options;  // the body waits for the client, not stopped (whose clocks stand)
  options.request_timeout = absl::Seconds(10);
  start(options);
  send(absl::StrCat(kHead, "abc"));
  settle();
  plan_.control->answer_early();
  clock_->advance(absl::Seconds(11));  // the deadline passes before the callback runs
  EXPECT_EQ(read_to_eof(),
            "HTTP/1.1 413 Content Too Large\r\nDate: D\r\nContent-Type: text/plain\r\n"
            "Content-Length: 3\r\nConnection: close\r\n\r\nno\n");
  EXPECT_EQ(plan_.events, (std::vector<std::string>{"body 3", "end 3"}));
  EXPECT_EQ(stats().request_timeouts, 0u);
}

// Found by a review: the lingering close after an early answer ended linger_timeout (2 s)
// after the response, while the client was still sending the body it sends before it reads:
// a reset, which can destroy the answer. Each read restarts it now (nginx's lingering_timeout),
// up to 30 s in all (lingering_time). A raw client: an IOStream would close at the FIN.
TEST_F(HTTPServerBodyEarlyTest, TheLingeringCloseWaitsWhileTheClientSends) {
  plan_.after_pieces = 1;
  start();
  auto pair = Socket::pair();
  ASSERT_TRUE(pair.ok());
  std::shared_ptr<IOStream> server = IOStream::create(loop(), std::move(pair->first));
  serve_http_connection(shared_, server);
  const int fd = pair->second.fd();
  const std::string head = absl::StrCat(kHead, "abc");
  ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  settle();  // answered at once: the close begins now
  const std::string more(16 << 10, 'y');
  std::string got;
  char buf[4096];
  for (int second = 0; second < 40; ++second) {
    ASSERT_EQ(::send(fd, more.data(), more.size(), MSG_NOSIGNAL | MSG_DONTWAIT),
              static_cast<ssize_t>(more.size()))
        << "second " << second;
    advance(absl::Seconds(1));
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0;) got.append(buf, n);
    if (server->closed()) {
      EXPECT_EQ(second, 29);  // 30 s after the close began, not 2
      break;
    }
  }
  EXPECT_TRUE(server->closed());
  EXPECT_EQ(normalize(got),
            "HTTP/1.1 413 Content Too Large\r\nDate: D\r\nContent-Type: text/plain\r\n"
            "Content-Length: 3\r\nConnection: close\r\n\r\nno\n");
}

}  // namespace
}  // namespace ioloop::net
