// File: tests/net/http/request_target_test.cc
// RequestParser: the forms of a request target (RFC 9112 §3.2) and the Host an absolute-form
// target gives (§3.2.2). libhttp_parser took any target starting with '*' for a path, and
// http_proxy appended it to its upstream's origin: "GET *.evil.example:19092/secret" made it
// connect to a host and port of the client's choosing. Each case runs at every split.
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ioloop/net/http/request_parser.h"

namespace ioloop::net {
namespace {

struct Outcome {
  std::optional<RequestError> error;
  std::vector<HTTPRequest> requests;
};

Outcome feed(const std::vector<std::string>& pieces) {
  RequestParser parser;
  RequestParser::Result result;
  for (const std::string& piece : pieces) parser.feed(piece, result);
  return {parser.error(), std::move(result.requests)};
}

Outcome feed_every_split(const std::string& input) {
  Outcome whole = feed({input});
  for (size_t k = 0; k <= input.size(); ++k) {
    const Outcome split = feed({input.substr(0, k), input.substr(k)});
    EXPECT_EQ(split.error, whole.error) << "split " << k;
    EXPECT_EQ(split.requests.size(), whole.requests.size()) << "split " << k;
  }
  return whole;
}

// Each input gives `error` (none: one request) at every split.
void expect_at_every_split(const std::vector<std::string>& inputs,
                           std::optional<RequestError> error) {
  for (const std::string& input : inputs) {
    SCOPED_TRACE(input);
    const Outcome out = feed_every_split(input);
    EXPECT_EQ(out.error, error);
    EXPECT_EQ(out.requests.size(), error ? 0u : 1u);
  }
}

TEST(RequestTargetTest, OnlyTheFourFormsAreAccepted) {
  expect_at_every_split(
      {
          "GET *x HTTP/1.1\r\nHost: h\r\n\r\n",
          "GET *.evil.example:19092/secret HTTP/1.1\r\nHost: h\r\n\r\n",
          "OPTIONS ** HTTP/1.1\r\nHost: h\r\n\r\n",
          // CONNECT takes the authority form, host and port, only.
          "CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n",
          "CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n",
          "CONNECT example.com: HTTP/1.1\r\nHost: h\r\n\r\n",
          "CONNECT example.com:x HTTP/1.1\r\nHost: h\r\n\r\n",
          "CONNECT * HTTP/1.1\r\nHost: h\r\n\r\n",
          "CONNECT :443 HTTP/1.1\r\nHost: h\r\n\r\n",
          "CONNECT http://example.com:443/ HTTP/1.1\r\nHost: h\r\n\r\n",
      },
      RequestError::kMalformed);
  expect_at_every_split(
      {
          "GET /a?b HTTP/1.1\r\nHost: h\r\n\r\n",
          "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
          "M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n",
          "GET http://h/a HTTP/1.1\r\nHost: h\r\n\r\n",
          "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
          "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
      },
      std::nullopt);
}

// RFC 9112 §3.2.2: the target's authority is the request's host, whatever Host said; a proxy
// forwarding Host as received sends that on.
// A fragment is no part of a request target (RFC 9112 §3.2: "?" query at most; RFC 9110 §4.2.5
// leaves fragments to the user agent). libhttp_parser parsed "/p#f" as path "/p", so http_proxy
// forwarded "/p" (found by a differential probe; HAProxy answers 400 too).
TEST(RequestTargetTest, AFragmentIsMalformed) {
  expect_at_every_split(
      {
          "GET /p#f HTTP/1.1\r\nHost: h\r\n\r\n",
          "GET /p?q#f HTTP/1.1\r\nHost: h\r\n\r\n",
          "GET /# HTTP/1.1\r\nHost: h\r\n\r\n",
          "GET http://h/p#f HTTP/1.1\r\nHost: h\r\n\r\n",
      },
      RequestError::kMalformed);
}

TEST(RequestTargetTest, AnAbsoluteFormTargetGivesTheHost) {
  struct Case {
    std::string input;
    std::string host;
  };
  const Case cases[] = {
      {"GET http://other.example:8080/x?q HTTP/1.1\r\nHost: a.example\r\nX: 1\r\n\r\n",
       "other.example:8080"},
      {"GET http://other.example HTTP/1.1\r\nHost: a.example\r\n\r\n", "other.example"},
      {"GET http://other.example?q HTTP/1.1\r\nHost: a.example\r\n\r\n", "other.example"},
      {"GET http://[::1]:81/ HTTP/1.1\r\nHost: a.example\r\n\r\n", "[::1]:81"},
      // HTTP/1.0 may omit Host: one is added.
      {"GET http://other.example/y HTTP/1.0\r\n\r\n", "other.example"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input);
    const Outcome out = feed_every_split(c.input);
    ASSERT_FALSE(out.error.has_value());
    ASSERT_EQ(out.requests.size(), 1u);
    const HTTPHeaders& headers = out.requests[0].headers();
    EXPECT_EQ(headers.get_all("Host"), std::vector<absl::string_view>{c.host});
  }
  EXPECT_EQ(feed_every_split("GET http://other.example/x HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n")
                .requests[0]
                .headers()
                .get("X"),
            "1");
  // An authority that is no valid Host, and the rules for Host itself, still hold.
  expect_at_every_split(
      {
          "GET http://user@other.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
          "GET http:///x HTTP/1.1\r\nHost: a.example\r\n\r\n",
          // A port without a host (RFC 9110 §4.2.1: an http URI's host is never empty).
          "GET http://:80/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
          "GET /x HTTP/1.1\r\nHost: :80\r\n\r\n",
          "GET http://other.example/ HTTP/1.1\r\n\r\n",
          "GET http://other.example/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      },
      RequestError::kBadHost);
}

}  // namespace
}  // namespace ioloop::net
