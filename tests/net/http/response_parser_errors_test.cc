// File: tests/net/http/response_parser_errors_test.cc
// ResponseParser errors: each malformed or unusable response with its exact status code and
// message, at every split; max_header_size at a fixed stream position; misuse (feed() before
// start() or after completion); finish() in every phase.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ioloop/net/http/response_parser.h"
#include "response_parser_testing.h"

namespace ioloop::net {
namespace {

using ::ioloop::net::testing::Outcome;
using ::ioloop::net::testing::RecordingSink;
using ::ioloop::net::testing::run_every_split;
using ::ioloop::net::testing::run_pieces;
using ::testing::ElementsAre;

struct ErrorCase {
  const char* input;
  absl::Status status;
};

TEST(ResponseParserErrorsTest, MalformedResponses) {
  const ErrorCase cases[] = {
      // libhttp_parser's "invalid constant string" said nothing to a user (a probe's finding).
      {"XTTP/1.1 200 OK\r\n\r\n",
       absl::DataLossError("malformed response: no status line (\"HTTP/\") where one begins")},
      {"http/1.1 200 OK\r\n\r\n",
       absl::DataLossError("malformed response: no status line (\"HTTP/\") where one begins")},
      {"HTTP/1.1 100 Continue\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n",
       absl::DataLossError("malformed response: no status line (\"HTTP/\") where one begins")},
      {"HTTP/1.1 2x0 OK\r\n\r\n",
       absl::DataLossError("malformed response: invalid HTTP status code")},
      {"HTTP/1.1 OK\r\n\r\n", absl::DataLossError("malformed response: invalid HTTP status code")},
      {"HTTP/x.1 200 OK\r\n\r\n", absl::DataLossError("malformed response: invalid HTTP version")},
      {"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
       absl::DataLossError("malformed response: unsupported version HTTP/2.0")},
      // Debian's non-strict libhttp_parser took these for HTTP/1.1 200 (found by a probe of
      // http_proxy, which forwarded them as such): RFC 9112 §4 wants "HTTP/" DIGIT "." DIGIT SP
      // 3DIGIT.
      {"HTTX/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
       absl::DataLossError("malformed response: invalid status line")},
      {"HXXX/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
       absl::DataLossError("malformed response: invalid status line")},
      {"HTTP/1.1 0200 OK\r\nContent-Length: 0\r\n\r\n",
       absl::DataLossError("malformed response: invalid status line")},
      {"HTTP/1.1 00200 OK\r\nContent-Length: 0\r\n\r\n",
       absl::DataLossError("malformed response: invalid status line")},
      {"HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n",
       absl::DataLossError("malformed response: invalid status line")},
      {"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
       absl::DataLossError("malformed response: invalid status line")},
      {"HTTP/1.1 103 Early\r\n\r\nHTTP/1.1 0200 OK\r\nContent-Length: 0\r\n\r\n",
       absl::DataLossError("malformed response: invalid status line")},
      {"HTTP/1.1 099 Low\r\n\r\n",
       absl::DataLossError("malformed response: invalid status code 99")},
      {"HTTP/1.1 600 High\r\n\r\n",
       absl::DataLossError("malformed response: invalid status code 600")},
      {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
       absl::DataLossError(
           "malformed response: 101 Switching Protocols (upgrades are not supported)")},
      {"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
       absl::DataLossError("malformed response: invalid character in header field name")},
      // Regression (found by the fuzzer): a space in a name, then a CR before any ':', gave
      // "invalid character in header field name" when fed byte by byte (the name callback saw
      // the space first) but libhttp_parser's error when fed whole. Names are now checked at
      // the end of the head, so libhttp_parser's error comes first at every split.
      {"HTTP/1.1 200 OK\r\nCo1 200 OK\r\nX: y\r\n\r\n",
       absl::DataLossError("malformed response: invalid character in header")},
      {"HTTP/1.1 200 OK\r\nBad Name: x\x01\r\n\r\n",
       absl::DataLossError("malformed response: invalid character in header")},
      // Control bytes in the reason phrase (RFC 9112 §4), which a proxy would forward.
      {"HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n",
       absl::DataLossError("malformed response: invalid character in reason phrase")},
      {"HTTP/1.1 200 O\x7fK\r\nContent-Length: 0\r\n\r\n",
       absl::DataLossError("malformed response: invalid character in reason phrase")},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
       absl::DataLossError("malformed response: invalid character in content-length header")},
      {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
       absl::DataLossError("malformed response: several Content-Length fields")},
      // Even equal ones: libhttp_parser rejects them, and RFC 9112 §6.3 allows it.
      {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
       absl::DataLossError("malformed response: several Content-Length fields")},
      {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       absl::DataLossError("malformed response: both Content-Length and Transfer-Encoding")},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
       absl::DataLossError("malformed response: both Content-Length and Transfer-Encoding")},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n",
       absl::DataLossError("malformed response: both Content-Length and Transfer-Encoding")},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
       absl::DataLossError("malformed response: unsupported Transfer-Encoding: gzip")},
      // Found by a probe: libhttp_parser takes "Transfer-Encoding :" (a space before the colon,
      // RFC 9112 §5.1) for Transfer-Encoding, so the Content-Length after it was reported as
      // "several Content-Length fields". The bad name is the first error.
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc",
       absl::DataLossError("malformed response: invalid character in header field name")},
      {"HTTP/1.1 200 OK\r\nContent-Length : 3\r\nContent-Length: 3\r\n\r\nabc",
       absl::DataLossError("malformed response: invalid character in header field name")},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
       absl::DataLossError("malformed response: unsupported Transfer-Encoding: chunked, gzip")},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
       absl::DataLossError("malformed response: unsupported Transfer-Encoding: gzip, chunked")},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       absl::DataLossError("malformed response: Transfer-Encoding must be exactly \"chunked\"")},
      // Found by a probe: accepted in this order only (libhttp_parser frames by the last field).
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       absl::DataLossError("malformed response: Transfer-Encoding must be exactly \"chunked\"")},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n0\r\n\r\n",
       absl::DataLossError("malformed response: Transfer-Encoding must be exactly \"chunked\"")},
      // Found by a probe: a length a signed 64-bit number cannot hold was taken (and forwarded
      // by a proxy to clients that may wrap it).
      {"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n",
       absl::DataLossError(
           "malformed response: Content-Length 9223372036854775808 is over 2^63 - 1")},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n",
       absl::DataLossError("malformed response: Transfer-Encoding must be exactly \"chunked\"")},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
       absl::DataLossError("malformed response: invalid character in chunk size header")},
      // libhttp_parser (built non-strict) takes any byte for the LF after a CR, and any two
      // bytes for the CRLF after chunk data; the wrapper does not.
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n",
       absl::DataLossError("malformed response: CRLF expected after chunk data")},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\rY0\r\n\r\n",
       absl::DataLossError("malformed response: CRLF expected after chunk data")},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\n\n0\r\n\r\n",
       absl::DataLossError("malformed response: CRLF expected after chunk data")},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\rXab\r\n0\r\n\r\n",
       absl::DataLossError("malformed response: bare CR (not followed by LF)")},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\rX\r\n",
       absl::DataLossError("malformed response: bare CR (not followed by LF)")},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 1\r\n\rX",
       absl::DataLossError("malformed response: bare CR (not followed by LF)")},
      {"HTTP/1.1 200 OK\rXContent-Length: 0\r\n\r\n",
       absl::DataLossError("malformed response: bare CR (not followed by LF)")},
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\rX",
       absl::DataLossError("malformed response: bare CR (not followed by LF)")},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\rX",  // before the field check
       absl::DataLossError("malformed response: bare CR (not followed by LF)")},
      {"\rHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
       absl::DataLossError("malformed response: bare CR (not followed by LF)")},
      {"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
       absl::DataLossError("malformed response: LF character expected")},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.input);
    Outcome out = run_every_split(HTTPMethod::kGet, c.input, /*eof=*/true);
    EXPECT_EQ(out.status, c.status);
    EXPECT_FALSE(out.complete);
    EXPECT_TRUE(out.started);
  }
}

TEST(ResponseParserErrorsTest, EventsBeforeTheErrorStand) {
  Outcome out = run_every_split(
      HTTPMethod::kGet, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nq\r\n",
      false);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "body:abc"));
  EXPECT_EQ(out.status,
            absl::DataLossError("malformed response: invalid character in chunk size header"));
}

TEST(ResponseParserErrorsTest, ErrorIsStickyUntilStart) {
  ResponseParser parser;
  Outcome out;
  RecordingSink sink(out);
  parser.start(HTTPMethod::kGet);
  const absl::Status bad =
      absl::DataLossError("malformed response: no status line (\"HTTP/\") where one begins");
  EXPECT_EQ(parser.feed("garbage", sink).status(), bad);
  EXPECT_EQ(parser.feed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", sink).status(), bad);
  EXPECT_EQ(parser.finish(sink), bad);
  EXPECT_FALSE(parser.complete());
  EXPECT_FALSE(parser.keep_alive());
  EXPECT_THAT(out.events, ElementsAre());
  parser.start(HTTPMethod::kGet);
  absl::StatusOr<size_t> n = parser.feed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", sink);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_TRUE(parser.complete());
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "complete"));
}

// An error found after the call that completed the message (a bare CR in the trailers) left
// that message's end pending across start(): the next response completed at its head.
TEST(ResponseParserErrorsTest, StartAfterAFailedResponseCarriesNothingOver) {
  ResponseParser parser;
  Outcome out;
  RecordingSink sink(out);
  parser.start(HTTPMethod::kGet);
  EXPECT_EQ(parser
                .feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n"
                      "Foo:\rX\r\n\r\n",
                      sink)
                .status(),
            absl::DataLossError("malformed response: bare CR (not followed by LF)"));
  parser.start(HTTPMethod::kGet);
  Outcome next_out;
  RecordingSink next_sink(next_out);
  const std::string next = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  absl::StatusOr<size_t> n = parser.feed(next, next_sink);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, next.size());
  EXPECT_TRUE(parser.complete());
  EXPECT_THAT(next_out.events, ElementsAre("head 200 OK", "body:hello", "complete"));
}

TEST(ResponseParserErrorsTest, Misuse) {
  ResponseParser parser;
  Outcome out;
  RecordingSink sink(out);
  EXPECT_EQ(parser.feed("HTTP/1.1", sink).status(),
            absl::InvalidArgumentError("ResponseParser: feed() before start()"));
  EXPECT_EQ(parser.finish(sink),
            absl::InvalidArgumentError("ResponseParser: finish() before start()"));
  EXPECT_FALSE(parser.started_response());
  parser.start(HTTPMethod::kGet);
  ASSERT_EQ(*parser.feed("HTTP/1.1 204 No Content\r\n\r\n", sink), 27u);
  EXPECT_EQ(parser.feed("x", sink).status(),
            absl::InvalidArgumentError("ResponseParser: feed() after the response completed"));
  EXPECT_EQ(parser.feed("", sink).status(),
            absl::InvalidArgumentError("ResponseParser: feed() after the response completed"));
  EXPECT_TRUE(parser.finish(sink).ok());  // completed already: nothing to report
  EXPECT_THAT(out.events, ElementsAre("head 204 No Content", "complete"));
}

// A head of exactly max_header_size bytes (empty line included) passes; one byte more fails,
// as soon as that byte arrives, at every split.
TEST(ResponseParserErrorsTest, MaxHeaderSizeAtAFixedPosition) {
  const std::string head = "HTTP/1.1 200 OK\r\nX-Pad: 0123456789\r\nContent-Length: 2\r\n\r\n";
  ResponseParserOptions exact{.max_header_size = head.size()};
  Outcome out = run_every_split(HTTPMethod::kGet, head + "ok", false, exact);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "body:ok", "complete"));

  ResponseParserOptions small{.max_header_size = head.size() - 1};
  const absl::Status too_large = absl::ResourceExhaustedError(
      absl::StrCat("response head exceeds max_header_size ", head.size() - 1));
  out = run_every_split(HTTPMethod::kGet, head + "ok", false, small);
  EXPECT_THAT(out.events, ElementsAre());
  EXPECT_EQ(out.status, too_large);
  // The first max_header_size bytes alone are not an error yet.
  out = run_every_split(HTTPMethod::kGet, head.substr(0, head.size() - 1), false, small);
  EXPECT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(out.consumed, head.size() - 1);

  // A line far longer than the limit fails at the same byte, however it is split.
  ResponseParserOptions tiny{.max_header_size = 20};
  out = run_every_split(HTTPMethod::kGet, "HTTP/1.1 200 " + std::string(40, 'r'), false, tiny);
  EXPECT_EQ(out.status, absl::ResourceExhaustedError("response head exceeds max_header_size 20"));
}

// Interim heads count toward max_header_size together with the final head (as curl's header
// budget): an upstream that sends 1xx heads for ever would otherwise keep a fetch, and the
// loop's thread, busy without end.
TEST(ResponseParserErrorsTest, MaxHeaderSizeCountsInterimHeadsWithTheFinalOne) {
  const std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";                    // 25 bytes
  const std::string final_head = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";  // 38 bytes
  const std::string input = interim + interim + final_head;
  ResponseParserOptions options{.max_header_size = input.size()};
  Outcome out = run_every_split(HTTPMethod::kGet, input, false, options);
  EXPECT_TRUE(out.status.ok()) << out.status;
  EXPECT_THAT(out.events, ElementsAre("interim 100 Continue", "interim 100 Continue", "head 200 OK",
                                      "complete"));

  // One byte less: the final head's empty line is over the budget, at that byte whatever the
  // split, and the message says the interim heads counted.
  options.max_header_size = input.size() - 1;
  out = run_every_split(HTTPMethod::kGet, input, false, options);
  EXPECT_THAT(out.events, ElementsAre("interim 100 Continue", "interim 100 Continue"));
  EXPECT_EQ(out.status, absl::ResourceExhaustedError(
                            absl::StrCat("response head, with its 2 interim (1xx) heads, exceeds "
                                         "max_header_size ",
                                         input.size() - 1)));

  // An endless run of interim heads ends at the budget.
  std::string endless;
  while (endless.size() < 4096) endless += "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n";
  options.max_header_size = 1024;
  out = run_pieces(HTTPMethod::kGet, {endless}, false, options);
  EXPECT_EQ(out.status.code(), absl::StatusCode::kResourceExhausted) << out.status;
  // The first max_header_size bytes alone are not an error yet.
  EXPECT_TRUE(run_pieces(HTTPMethod::kGet, {endless.substr(0, 1024)}, false, options).status.ok());
  std::vector<std::string> bytes;
  for (char c : endless) bytes.emplace_back(1, c);
  expect_same(run_pieces(HTTPMethod::kGet, bytes, false, options), out, "one byte at a time");
}

TEST(ResponseParserErrorsTest, MaxHeaderSizeAppliesToTrailersSeparately) {
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";  // 47
  const std::string body = "1\r\na\r\n0\r\n";
  const std::string trailers = "T: 01234567890123456789012345678901234567891\r\n\r\n";
  ASSERT_EQ(trailers.size(), head.size() + 1);
  ResponseParserOptions options{.max_header_size = trailers.size()};
  Outcome out = run_every_split(HTTPMethod::kGet, head + body + trailers, false, options);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "body:a", "complete"));
  options.max_header_size = head.size();
  out = run_every_split(HTTPMethod::kGet, head + body + trailers, false, options);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "body:a"));
  EXPECT_EQ(out.status, absl::ResourceExhaustedError(absl::StrCat(
                            "response trailer section exceeds max_header_size ", head.size())));
}

TEST(ResponseParserErrorsTest, LibhttpParsersOwnHeaderLimit) {
  ResponseParserOptions options{.max_header_size = 1 << 20};
  std::string input = "HTTP/1.1 200 OK\r\nX: " + std::string(100 * 1024, 'v') + "\r\n\r\n";
  Outcome out = run_pieces(HTTPMethod::kGet, {input}, false, options);
  EXPECT_EQ(out.status, absl::ResourceExhaustedError("response head exceeds 81920 bytes"));
}

TEST(ResponseParserErrorsTest, FinishInEachPhase) {
  struct Case {
    HTTPMethod method;
    const char* input;
    absl::Status status;
    std::vector<std::string> events;
  };
  const Case cases[] = {
      {HTTPMethod::kGet, "", absl::DataLossError("connection closed before the response"), {}},
      {HTTPMethod::kGet, "\r\n", absl::DataLossError("connection closed before the response"), {}},
      {HTTPMethod::kGet, "H", absl::DataLossError("connection closed in the response head"), {}},
      {HTTPMethod::kGet,
       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r",
       absl::DataLossError("connection closed in the response head"),
       {}},
      {HTTPMethod::kGet,
       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
       absl::DataLossError("connection closed after 0 of 5 body bytes"),
       {"head 200 OK"}},
      {HTTPMethod::kGet,
       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
       absl::DataLossError("connection closed after 2 of 5 body bytes"),
       {"head 200 OK", "body:ab"}},
      {HTTPMethod::kGet,
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
       absl::DataLossError("connection closed in a chunked body"),
       {"head 200 OK", "body:ab"}},
      {HTTPMethod::kGet,
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 1\r\n",
       absl::DataLossError("connection closed in a chunked body"),
       {"head 200 OK"}},
      {HTTPMethod::kGet,
       "HTTP/1.1 200 OK\r\n\r\nxy",
       absl::OkStatus(),
       {"head 200 OK", "body:xy", "complete"}},
      {HTTPMethod::kHead, "HTTP/1.1 200 OK\r\n\r\n", absl::OkStatus(), {"head 200 OK", "complete"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input);
    Outcome out = run_every_split(c.method, c.input, /*eof=*/true);
    EXPECT_EQ(out.status, c.status);
    EXPECT_EQ(out.events, c.events);
    EXPECT_EQ(out.complete, c.status.ok());
    EXPECT_EQ(out.keep_alive, c.method == HTTPMethod::kHead);
  }
}

TEST(ResponseParserErrorsTest, FinishErrorIsSticky) {
  ResponseParser parser;
  Outcome out;
  RecordingSink sink(out);
  parser.start(HTTPMethod::kGet);
  ASSERT_TRUE(parser.feed("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\na", sink).ok());
  const absl::Status cut = absl::DataLossError("connection closed after 1 of 3 body bytes");
  EXPECT_EQ(parser.finish(sink), cut);
  EXPECT_EQ(parser.finish(sink), cut);
  EXPECT_EQ(parser.feed("bc", sink).status(), cut);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "body:a"));
}

}  // namespace
}  // namespace ioloop::net
