// File: tests/net/http/response_parser_test.cc
// ResponseParser framing: every way a response body ends, each fed whole, in three pieces at
// every pair of split points and one byte at a time, with the exact events, the bytes consumed
// and the keep-alive verdict. Errors, limits and finish() are in response_parser_errors_test.cc.
#include "ioloop/net/http/response_parser.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "response_parser_testing.h"

namespace ioloop::net {
namespace {

using ::ioloop::net::testing::Outcome;
using ::ioloop::net::testing::RecordingSink;
using ::ioloop::net::testing::run_every_split;
using ::ioloop::net::testing::run_pieces;
using ::testing::ElementsAre;
using ::testing::Pair;

TEST(ResponseIsBodylessTest, HeadNoContentNotModifiedInterimAndConnectSuccess) {
  EXPECT_TRUE(response_is_bodyless(HTTPMethod::kHead, 200));
  EXPECT_TRUE(response_is_bodyless(HTTPMethod::kHead, 404));
  EXPECT_TRUE(response_is_bodyless(HTTPMethod::kGet, 204));
  EXPECT_TRUE(response_is_bodyless(HTTPMethod::kPost, 304));
  EXPECT_TRUE(response_is_bodyless(HTTPMethod::kGet, 103));
  EXPECT_TRUE(response_is_bodyless(HTTPMethod::kConnect, 200));
  EXPECT_FALSE(response_is_bodyless(HTTPMethod::kConnect, 407));
  EXPECT_FALSE(response_is_bodyless(HTTPMethod::kGet, 200));
  EXPECT_FALSE(response_is_bodyless(HTTPMethod::kPost, 205));
  EXPECT_FALSE(response_is_bodyless(HTTPMethod::kGet, 500));
}

TEST(ResponseParserTest, ContentLength) {
  const std::string input =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  spaced value \t\r\nX-A: 2\r\n\r\nhello";
  Outcome out = run_every_split(HTTPMethod::kGet, input, /*eof=*/false);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "body:hello", "complete"));
  ASSERT_TRUE(out.head.has_value());
  EXPECT_EQ(out.head->version_minor, 1);
  EXPECT_THAT(out.head->headers, ElementsAre(Pair("Content-Length", "5"),
                                             Pair("X-A", "spaced value"), Pair("X-A", "2")));
  EXPECT_EQ(out.consumed, input.size());
  EXPECT_TRUE(out.status.ok()) << out.status;
  EXPECT_TRUE(out.complete);
  EXPECT_TRUE(out.keep_alive);
  EXPECT_TRUE(out.started);
}

TEST(ResponseParserTest, ContentLengthZeroCompletesAtTheHeadsEnd) {
  const std::string input = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  Outcome out = run_every_split(HTTPMethod::kGet, input, false);
  EXPECT_THAT(out.events, ElementsAre("head 404 Not Found", "complete"));
  EXPECT_EQ(out.consumed, input.size());
  EXPECT_TRUE(out.keep_alive);
}

TEST(ResponseParserTest, ChunkedWithExtensionsAndTrailers) {
  const std::string input =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value\r\nhello\r\n6 ; x\r\n world\r\n0;last\r\nTrailer-X: 1\r\nT2: 2\r\n\r\n";
  Outcome out = run_every_split(HTTPMethod::kGet, input, false);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "body:hello world", "complete"));
  // Trailers are consumed, not reported (they would come after on_head).
  EXPECT_THAT(out.head->headers, ElementsAre(Pair("Transfer-Encoding", "chunked")));
  EXPECT_EQ(out.consumed, input.size());
  EXPECT_TRUE(out.keep_alive);
}

TEST(ResponseParserTest, ChunkedWithoutTrailersAndUpperCaseSize) {
  const std::string input =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n";
  Outcome out = run_every_split(HTTPMethod::kPost, input, false);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "body:0123456789", "complete"));
  EXPECT_EQ(out.consumed, input.size());
}

TEST(ResponseParserTest, CloseDelimitedBodyEndsAtFinish) {
  const std::string input = "HTTP/1.1 200 OK\r\nServer: x\r\n\r\nabc\r\n\r\ndef";
  Outcome out = run_every_split(HTTPMethod::kGet, input, /*eof=*/true);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "body:abc\r\n\r\ndef", "complete"));
  EXPECT_EQ(out.consumed, input.size());
  EXPECT_TRUE(out.status.ok()) << out.status;
  EXPECT_TRUE(out.complete);
  EXPECT_FALSE(out.keep_alive);  // the body ended with the connection

  Outcome open = run_every_split(HTTPMethod::kGet, input, /*eof=*/false);
  EXPECT_THAT(open.events, ElementsAre("head 200 OK", "body:abc\r\n\r\ndef"));
  EXPECT_EQ(open.consumed, input.size());
  EXPECT_FALSE(open.complete);
}

TEST(ResponseParserTest, CloseDelimitedEmptyBody) {
  Outcome out = run_every_split(HTTPMethod::kGet, "HTTP/1.0 200 OK\r\n\r\n", true);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "complete"));
  EXPECT_FALSE(out.keep_alive);
}

TEST(ResponseParserTest, HeadHasNoBodyWhateverTheFieldsSay) {
  const std::string length = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
  Outcome out = run_every_split(HTTPMethod::kHead, length + "HTTP/1.1", false);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "complete"));
  EXPECT_EQ(out.consumed, length.size());
  EXPECT_TRUE(out.keep_alive);

  const std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  out = run_every_split(HTTPMethod::kHead, chunked + "5\r\n", false);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "complete"));
  EXPECT_EQ(out.consumed, chunked.size());

  // Neither length nor chunked: not close-delimited for HEAD, so the connection stays usable.
  const std::string bare = "HTTP/1.1 200 OK\r\n\r\n";
  out = run_every_split(HTTPMethod::kHead, bare, false);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "complete"));
  EXPECT_TRUE(out.keep_alive);
}

TEST(ResponseParserTest, NoBodyFor204And304) {
  for (const char* status : {"204 No Content", "304 Not Modified"}) {
    const std::string head =
        std::string("HTTP/1.1 ") + status + "\r\nContent-Length: 3\r\nETag: \"x\"\r\n\r\n";
    Outcome out = run_every_split(HTTPMethod::kGet, head + "abc", false);
    EXPECT_THAT(out.events, ElementsAre(std::string("head ") + status, "complete"));
    EXPECT_EQ(out.consumed, head.size()) << "the 3 bytes after it are not its body";
    EXPECT_TRUE(out.keep_alive);
  }
  const std::string no_length = "HTTP/1.1 204 No Content\r\n\r\n";
  Outcome out = run_every_split(HTTPMethod::kGet, no_length, false);
  EXPECT_THAT(out.events, ElementsAre("head 204 No Content", "complete"));
  EXPECT_TRUE(out.keep_alive);
}

// Found by a review: the transfer codings of a response without a body were checked as if it
// had one, so a HEAD response carrying the fields its GET would have (RFC 9110 §9.3.2), or a
// 304 naming a coding, failed with DataLoss "unsupported Transfer-Encoding". RFC 9112 §6.3:
// such a response ends at its empty line, whatever its fields say.
TEST(ResponseParserTest, NoBodyWhateverItsTransferCodingsSay) {
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
  Outcome out = run_every_split(HTTPMethod::kHead, head, false);
  EXPECT_TRUE(out.status.ok()) << out.status;
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "complete"));
  EXPECT_TRUE(out.keep_alive);

  const std::string not_modified = "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: gzip\r\n\r\n";
  out = run_every_split(HTTPMethod::kGet, not_modified, false);
  EXPECT_TRUE(out.status.ok()) << out.status;
  EXPECT_THAT(out.events, ElementsAre("head 304 Not Modified", "complete"));
  EXPECT_EQ(out.consumed, not_modified.size());
}

TEST(ResponseParserTest, SuccessfulConnectHasNoBody) {
  const std::string head = "HTTP/1.1 200 Connection established\r\n\r\n";
  Outcome out = run_every_split(HTTPMethod::kConnect, head + "tunnel", false);
  EXPECT_THAT(out.events, ElementsAre("head 200 Connection established", "complete"));
  EXPECT_EQ(out.consumed, head.size());
  // A refused CONNECT has a body as usual.
  out = run_every_split(HTTPMethod::kConnect,
                        "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno", false);
  EXPECT_THAT(out.events, ElementsAre("head 403 Forbidden", "body:no", "complete"));
}

// Each interim head reaches the sink whole (a proxy forwards them: RFC 9110 §15.2), then the
// final response as usual, at every split.
TEST(ResponseParserTest, InterimResponsesReachTheSinkBeforeTheFinalOne) {
  const std::string input =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 102 Processing\r\nContent-Length: 4\r\n\r\n"  // a 1xx never has a body
      "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
  Outcome out = run_every_split(HTTPMethod::kPost, input, false);
  EXPECT_THAT(out.events,
              ElementsAre("interim 100 Continue", "interim 102 Processing Content-Length=4",
                          "interim 103 Early Hints Link=</a.css>; rel=preload", "head 201 Created",
                          "body:ok", "complete"));
  EXPECT_THAT(out.head->headers, ElementsAre(Pair("Content-Length", "2")));
  EXPECT_EQ(out.consumed, input.size());
  EXPECT_TRUE(out.keep_alive);
}

TEST(ResponseParserTest, InterimThenEofIsInTheHead) {
  Outcome out = run_every_split(HTTPMethod::kGet, "HTTP/1.1 100 Continue\r\n\r\n", true);
  EXPECT_THAT(out.events, ElementsAre("interim 100 Continue"));
  EXPECT_EQ(out.status, absl::DataLossError("connection closed in the response head"));
  EXPECT_TRUE(out.started);
}

TEST(ResponseParserTest, KeepAliveRules) {
  struct Case {
    const char* head;
    bool keep_alive;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.1 200 OK\r\nConnection: x, Close\r\nContent-Length: 0\r\n\r\n", false},
      // A token list: '(' opens no comment there (found by a review: it hid the "close").
      {"HTTP/1.1 200 OK\r\nConnection: x(, close\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nConnection: x\", keep-alive\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
  };
  for (const Case& c : cases) {
    Outcome out = run_pieces(HTTPMethod::kGet, {c.head}, false);
    EXPECT_TRUE(out.complete) << c.head;
    EXPECT_EQ(out.keep_alive, c.keep_alive) << c.head;
    EXPECT_EQ(out.head->keep_alive(), c.keep_alive) << c.head;
  }
}

TEST(ResponseParserTest, TwoResponsesBackToBack) {
  const std::string first =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n0\r\n\r\n";
  const std::string second = "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\ntwo";
  Outcome out = run_every_split(HTTPMethod::kGet, first + second, false);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "body:one", "complete"));
  EXPECT_EQ(out.consumed, first.size());

  // The same parser reads the next one after start().
  ResponseParser parser;
  Outcome a, b;
  RecordingSink sink_a(a), sink_b(b);
  const std::string both = first + second;
  parser.start(HTTPMethod::kGet);
  absl::StatusOr<size_t> n = parser.feed(both, sink_a);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, first.size());
  EXPECT_TRUE(parser.complete());
  EXPECT_TRUE(parser.keep_alive());
  parser.start(HTTPMethod::kGet);
  EXPECT_FALSE(parser.complete());
  EXPECT_FALSE(parser.started_response());
  n = parser.feed(absl::string_view(both).substr(first.size()), sink_b);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, second.size());
  EXPECT_THAT(a.events, ElementsAre("head 200 OK", "body:one", "complete"));
  EXPECT_THAT(b.events, ElementsAre("head 404 Not Found", "body:two", "complete"));
}

TEST(ResponseParserTest, HeadResponseThenNextResponse) {
  const std::string first = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
  const std::string second = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
  Outcome out = run_every_split(HTTPMethod::kHead, first + second, false);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "complete"));
  EXPECT_EQ(out.consumed, first.size());
}

TEST(ResponseParserTest, StatusLineVariants) {
  Outcome out =
      run_every_split(HTTPMethod::kGet, "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false);
  EXPECT_THAT(out.events, ElementsAre("head 200 ", "complete"));
  EXPECT_EQ(out.head->reason, "");
  out = run_every_split(HTTPMethod::kGet,
                        "HTTP/1.1 599 Some Odd  Reason\r\nContent-Length: 0\r\n\r\n", false);
  EXPECT_EQ(out.head->status, 599);
  EXPECT_EQ(out.head->reason, "Some Odd  Reason");
  // Bare LF line endings in the head.
  out = run_every_split(HTTPMethod::kGet,
                        "HTTP/1.0 302 Found\nLocation: /x\nContent-Length: 1\n\nz", false);
  EXPECT_THAT(out.events, ElementsAre("head 302 Found", "body:z", "complete"));
  EXPECT_EQ(out.head->version_minor, 0);
  EXPECT_THAT(out.head->headers, ElementsAre(Pair("Location", "/x"), Pair("Content-Length", "1")));
}

TEST(ResponseParserTest, FieldValues) {
  // Empty values, whitespace around values trimmed, an obs-fold line (RFC 9112 §5.2) joined
  // into the value by libhttp_parser, names kept as spelled.
  Outcome out =
      run_every_split(HTTPMethod::kGet,
                      "HTTP/1.1 200 OK\r\nX-Empty:\r\nx-blank: \t \r\nX-Fold: a\r\n  b\r\n"
                      "CONTENT-length:   1 \r\n\r\nz",
                      false);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "body:z", "complete"));
  EXPECT_THAT(out.head->headers, ElementsAre(Pair("X-Empty", ""), Pair("x-blank", ""),
                                             Pair("X-Fold", "a  b"), Pair("CONTENT-length", "1")));
}

TEST(ResponseParserTest, EmptyLinesBeforeTheStatusLineAreNotAResponseYet) {
  ResponseParser parser;
  Outcome out;
  RecordingSink sink(out);
  parser.start(HTTPMethod::kGet);
  ASSERT_EQ(*parser.feed("\r\n\n", sink), 3u);
  EXPECT_FALSE(parser.started_response());
  EXPECT_EQ(parser.finish(sink), absl::DataLossError("connection closed before the response"));

  Outcome full = run_every_split(HTTPMethod::kGet,
                                 "\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!", false);
  EXPECT_THAT(full.events, ElementsAre("head 200 OK", "body:!", "complete"));
  EXPECT_TRUE(full.started);
}

TEST(ResponseParserTest, StartedResponseAfterTheFirstByte) {
  ResponseParser parser;
  Outcome out;
  RecordingSink sink(out);
  parser.start(HTTPMethod::kGet);
  EXPECT_FALSE(parser.started_response());
  ASSERT_EQ(*parser.feed("", sink), 0u);
  EXPECT_FALSE(parser.started_response());
  ASSERT_EQ(*parser.feed("H", sink), 1u);
  EXPECT_TRUE(parser.started_response());
  EXPECT_FALSE(parser.complete());
  EXPECT_FALSE(parser.keep_alive());
  EXPECT_THAT(out.events, ElementsAre());
}

TEST(ResponseParserTest, LargeBodyPassesThroughInPieces) {
  std::string body(1 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 7);
  const std::string input =
      "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  std::vector<std::string> pieces;
  for (size_t i = 0; i < input.size(); i += 4093) pieces.push_back(input.substr(i, 4093));
  Outcome out = run_pieces(HTTPMethod::kGet, pieces, false);
  EXPECT_TRUE(out.complete);
  EXPECT_EQ(out.body, body);
  EXPECT_EQ(out.consumed, input.size());
}

TEST(ResponseParserTest, MovedParserKeepsItsState) {
  ResponseParser parser;
  Outcome out;
  RecordingSink sink(out);
  parser.start(HTTPMethod::kGet);
  ASSERT_TRUE(parser.feed("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab", sink).ok());
  ResponseParser moved(std::move(parser));
  ASSERT_EQ(*moved.feed("cdEXTRA", sink), 2u);
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "body:abcd", "complete"));
}

}  // namespace
}  // namespace ioloop::net
