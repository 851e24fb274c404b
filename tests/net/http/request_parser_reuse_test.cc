// File: tests/net/http/request_parser_reuse_test.cc
// RequestParser::reset(), which a server uses to keep one parser's storage across
// connections: it may carry no content or state over, so every parse below must equal a new
// parser's.
#include <string>

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

}  // namespace
}  // namespace ioloop::net
