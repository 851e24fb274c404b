// File: tests/net/http/request_parser_reuse_test.cc
// RequestParser::reset() and recycle(), which a server uses to keep one parser's storage
// across requests and connections: neither may carry content or state over, so every parse
// below must equal a new parser's.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ioloop/net/http/request_parser.h"

namespace ioloop::net {
namespace {

using State = RequestParser::State;

const char kPipeline[] =
    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    "GET /b HTTP/1.0\r\nConnection: keep-alive\r\nX-Long: 0123456789abcdefghijklmnop\r\n\r\n"
    "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n";

RequestParser::Result fresh_parse(absl::string_view input, RequestParser::Options options = {}) {
  RequestParser parser(options);
  return parser.feed(input);
}

TEST(RequestParserReuseTest, ResetMidRequestOrAfterAnErrorParsesLikeANewParser) {
  const RequestParser::Result expected = fresh_parse(kPipeline);
  ASSERT_EQ(expected.requests.size(), 3u);
  for (const char* before : {"GET / HTTP/1.1\r\nHost: x\r\nX-Half: ab",  // kHeaders, mid-value
                             "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nab",  // kBody
                             "GET / HTTP/1.1\r\n\r\n",  // kError: no Host
                             "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  // kClosed
                             "\r\n\r\n"}) {  // leading empty lines
    RequestParser parser;
    parser.feed(before);
    ASSERT_NE(parser.state(), State::kIdle) << before;
    parser.reset(RequestParser::Options());
    EXPECT_EQ(parser.state(), State::kIdle);
    EXPECT_FALSE(parser.error().has_value());
    EXPECT_EQ(parser.error_detail(), "");
    EXPECT_EQ(parser.pending_request(), nullptr);
    EXPECT_FALSE(parser.version_minor().has_value());
    const RequestParser::Result got = parser.feed(kPipeline);
    EXPECT_EQ(got.requests, expected.requests) << "after " << before;
    EXPECT_FALSE(got.error.has_value()) << "after " << before;
  }
}

TEST(RequestParserReuseTest, ResetTakesTheNewOptions) {
  RequestParser parser;
  parser.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  RequestParser::Options small;
  small.max_header_size = 20;
  parser.reset(small);
  EXPECT_EQ(parser.options().max_header_size, 20u);
  const RequestParser::Result got = parser.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(got.requests.empty());
  EXPECT_EQ(got.error, RequestError::kHeaderTooLarge);
}

TEST(RequestParserReuseTest, RecycledRequestsCarryNoContentOver) {
  const RequestParser::Result expected = fresh_parse(kPipeline);
  RequestParser parser;
  // A big request first, whose storage (a long body, many fields) is then recycled.
  std::string big = "POST /big?q=1 HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 100; ++i) big += "F" + std::to_string(i) + ": some value\r\n";
  big += "Content-Length: 10000\r\n\r\n" + std::string(10000, 'b');
  RequestParser::Result result = parser.feed(big);
  ASSERT_EQ(result.requests.size(), 1u);
  parser.recycle(std::move(result.requests[0]));
  // Every request of the pipeline is recycled before the next is parsed, as a server does.
  std::vector<HTTPRequest> got;
  absl::string_view input = kPipeline;
  while (!input.empty()) {
    RequestParser::Result r;
    input.remove_prefix(parser.feed(input, r, 1));
    ASSERT_FALSE(r.error.has_value());
    ASSERT_EQ(r.requests.size(), 1u);
    got.push_back(r.requests[0]);
    parser.recycle(std::move(r.requests[0]));
  }
  EXPECT_EQ(got, expected.requests);
}

TEST(RequestParserReuseTest, ClearedRequestEqualsADefaultOne) {
  RequestParser::Result r = fresh_parse(kPipeline);
  ASSERT_FALSE(r.requests.empty());
  for (HTTPRequest& request : r.requests) {
    request.clear();
    EXPECT_EQ(request, HTTPRequest());
  }
}

}  // namespace
}  // namespace ioloop::net
