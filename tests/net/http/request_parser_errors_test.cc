// File: tests/net/http/request_parser_errors_test.cc
// RequestParser errors: each malformed or refused request, fed in every split and a byte at a
// time, gives the same RequestError and status, and no request.
#include <string>

#include "gtest/gtest.h"
#include "ioloop/net/http/request_parser.h"
#include "request_parser_testing.h"

namespace ioloop::net {
namespace {

using State = RequestParser::State;
using ::ioloop::net::testing::parse_every_split;
using Outcome = ::ioloop::net::testing::RequestOutcome;

struct ErrorCase {
  const char* name;
  std::string input;
  RequestError error;
  int status;
};

class RequestErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(RequestErrorTest, ReportsTheErrorAndItsStatus) {
  RequestParser::Options options;
  options.max_header_size = 256;
  options.max_body_size = 16;
  Outcome out = parse_every_split(GetParam().input, options);
  ASSERT_TRUE(out.error.has_value());
  EXPECT_EQ(*out.error, GetParam().error) << error_name(*out.error);
  EXPECT_EQ(error_status(*out.error), GetParam().status);
  EXPECT_TRUE(out.requests.empty());
  EXPECT_EQ(out.state, State::kError);
}

INSTANTIATE_TEST_SUITE_P(
    All, RequestErrorTest,
    ::testing::Values(
        ErrorCase{"GarbageRequestLine", "\x01\x02\x03 / HTTP/1.1\r\n\r\n", RequestError::kMalformed,
                  400},
        ErrorCase{"BadVersion", "GET / HTTP/x.1\r\nHost: h\r\n\r\n", RequestError::kMalformed, 400},
        ErrorCase{"SpaceInHeaderName", "GET / HTTP/1.1\r\nHo st: h\r\n\r\n",
                  RequestError::kMalformed, 400},
        ErrorCase{"SpaceBeforeColon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
                  RequestError::kMalformed, 400},
        ErrorCase{"WhitespaceBeforeFirstField", "GET / HTTP/1.1\r\n Host: h\r\n\r\n",
                  RequestError::kMalformed, 400},
        ErrorCase{"ControlCharInValue", "GET / HTTP/1.1\r\nHost: h\x01\r\n\r\n",
                  RequestError::kMalformed, 400},
        ErrorCase{"BadChunkSize",
                  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                  RequestError::kMalformed, 400},
        // libhttp_parser (not built strict) skips the two bytes after a chunk's data unread.
        ErrorCase{"NoCrLfAfterChunkData",
                  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhelloXX0\r\n\r\n",
                  RequestError::kMalformed, 400},
        ErrorCase{"CrCrAfterChunkData",
                  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "2\r\nhi\r\r0\r\n\r\n",
                  RequestError::kMalformed, 400},
        ErrorCase{"LfAloneAfterChunkData",
                  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "1\r\na\r\n2\r\nbc\nX0\r\n\r\n",
                  RequestError::kMalformed, 400},
        ErrorCase{"NonNumericContentLength",
                  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12a\r\n\r\n",
                  RequestError::kInvalidContentLength, 400},
        ErrorCase{"NegativeContentLength",
                  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
                  RequestError::kInvalidContentLength, 400},
        ErrorCase{"DifferingContentLengths",
                  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                  RequestError::kInvalidContentLength, 400},
        ErrorCase{"EqualContentLengths",
                  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
                  RequestError::kInvalidContentLength, 400},
        ErrorCase{"ContentLengthList",
                  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\na",
                  RequestError::kInvalidContentLength, 400},
        ErrorCase{"ContentLengthThenChunked",
                  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                  RequestError::kContentLengthWithTransferEncoding, 400},
        ErrorCase{"ChunkedThenContentLength",
                  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                  "Content-Length: 3\r\n\r\n0\r\n\r\n",
                  RequestError::kContentLengthWithTransferEncoding, 400},
        ErrorCase{"ContentLengthWithGzip",
                  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
                  "Content-Length: 3\r\n\r\nabc",
                  RequestError::kContentLengthWithTransferEncoding, 400},
        ErrorCase{"ChunkedTwice",
                  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
                  "0\r\n\r\n",
                  RequestError::kInvalidTransferEncoding, 400},
        ErrorCase{"ChunkedTwiceInTwoFields",
                  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                  RequestError::kInvalidTransferEncoding, 400},
        // Found by a probe: an empty field then "chunked" passed (libhttp_parser frames by the
        // last field) where the other order was a 400. Both orders are now refused.
        ErrorCase{"EmptyTransferEncodingThenChunked",
                  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n"
                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                  RequestError::kInvalidTransferEncoding, 400},
        ErrorCase{"ChunkedThenEmptyTransferEncoding",
                  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                  "Transfer-Encoding: \r\n\r\n0\r\n\r\n",
                  RequestError::kInvalidTransferEncoding, 400},
        ErrorCase{"MissingHost", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", RequestError::kBadHost,
                  400},
        ErrorCase{"TwoHosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                  RequestError::kBadHost, 400},
        ErrorCase{"HeaderSectionTooLarge",
                  "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(300, 'a') + "\r\n\r\n",
                  RequestError::kHeaderTooLarge, 431},
        // RFC 9112 §3: a target longer than the server parses is a 414 (was a 431).
        ErrorCase{"EndlessRequestLine", "GET /" + std::string(300, 'a'), RequestError::kUriTooLong,
                  414},
        ErrorCase{"RequestLineTooLargeWithVersion",
                  "GET /" + std::string(300, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n",
                  RequestError::kUriTooLong, 414},
        // The request line fits; the fields after it do not: the header section is too large.
        ErrorCase{"LongRequestLineThenFields",
                  "GET /" + std::string(200, 'a') +
                      " HTTP/1.1\r\nHost: h\r\nX: " + std::string(100, 'b') + "\r\n\r\n",
                  RequestError::kHeaderTooLarge, 431},
        // The 9th empty line before a request line (issue 7, defect 7; was a 431 at 300 bytes).
        ErrorCase{"EndlessEmptyLines", std::string(300, '\n'), RequestError::kMalformed, 400},
        ErrorCase{"TrailersTooLarge",
                  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: " +
                      std::string(300, 'a') + "\r\n\r\n",
                  RequestError::kHeaderTooLarge, 431},
        ErrorCase{"ContentLengthTooLarge",
                  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n\r\n",
                  RequestError::kBodyTooLarge, 413},
        // Found by a probe: a length libhttp_parser holds but a signed 64-bit one cannot (an
        // upstream that wraps it would frame the body otherwise) was taken as a body.
        ErrorCase{"ContentLengthOverInt64Max",
                  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n",
                  RequestError::kInvalidContentLength, 400},
        ErrorCase{"ContentLengthInt64Max",
                  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n",
                  RequestError::kBodyTooLarge, 413},
        ErrorCase{"HugeContentLength",
                  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
                  RequestError::kInvalidContentLength, 400},
        ErrorCase{"ChunkedBodyTooLarge",
                  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "8\r\n12345678\r\n8\r\n12345678\r\n1\r\nx\r\n0\r\n\r\n",
                  RequestError::kBodyTooLarge, 413},
        ErrorCase{"HugeChunk",
                  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "ffffffff\r\n",
                  RequestError::kBodyTooLarge, 413},
        ErrorCase{"Gzip", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
                  RequestError::kUnsupportedTransferEncoding, 501},
        ErrorCase{"GzipThenChunked",
                  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                  RequestError::kUnsupportedTransferEncoding, 501},
        ErrorCase{"ChunkedThenGzip",
                  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                  RequestError::kUnsupportedTransferEncoding, 501},
        ErrorCase{"Http2", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", RequestError::kUnsupportedVersion,
                  505},
        ErrorCase{"Http09", "GET /\r\n\r\n", RequestError::kUnsupportedVersion, 505},
        // Whitespace and control bytes in a target (RFC 9112 §3), and Host values outside
        // RFC 3986's uri-host [":" port] (RFC 9112 §3.2), which libhttp_parser let through.
        ErrorCase{"TabInTarget", "GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", RequestError::kMalformed,
                  400},
        ErrorCase{"DelInTarget", "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", RequestError::kMalformed,
                  400},
        ErrorCase{"SpaceInHost", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", RequestError::kBadHost,
                  400},
        ErrorCase{"UserinfoInHost", "GET / HTTP/1.1\r\nHost: a/b@c\r\n\r\n", RequestError::kBadHost,
                  400},
        ErrorCase{"LettersInPort", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", RequestError::kBadHost,
                  400}),
    [](const ::testing::TestParamInfo<ErrorCase>& param) { return param.param.name; });

}  // namespace
}  // namespace ioloop::net
