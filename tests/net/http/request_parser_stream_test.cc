// File: tests/net/http/request_parser_stream_test.cc
// RequestParser's streaming bodies: FeedOptions::stop_at_headers, stream_body() and the sink's
// flow control. Every case is checked at every split point (and byte at a time) against the
// buffered parse of the same bytes: same requests (streamed bodies moved to the sink), same
// error at the same position, same final state.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ioloop/net/http/request_parser.h"

namespace ioloop::net {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using State = RequestParser::State;

struct Outcome {
  std::vector<HTTPRequest> requests;  // streamed ones with their sink's bytes as body
  std::vector<size_t> streamed;       // indices of the streamed requests
  std::vector<std::string> chunks;    // every piece any sink received, in order
  std::vector<std::string> heads;     // "METHOD target" at each stop at a header section
  std::optional<RequestError> error;
  State state = State::kIdle;
  size_t consumed = 0;  // bytes consumed in all (the error position, if any)
  int pauses = 0;       // feeds stopped by a sink
};

struct Mode {
  bool stream = true;  // stream every body that stops at its header section
  bool pause = false;  // every sink call returns false
  RequestParser::Options options;
};

// Feeds `pieces` in order with stop_at_headers, one Result appended across every feed (as a
// caller may), re-feeding the rest of a piece after each stop.
Outcome drive(const std::vector<std::string>& pieces, const Mode& mode) {
  RequestParser parser(mode.options);
  RequestParser::Result result;
  Outcome out;
  std::vector<std::string> bodies;
  for (const std::string& piece : pieces) {
    absl::string_view rest = piece;
    for (;;) {
      result.at_headers = false;
      result.sink_paused = false;
      const size_t n = parser.feed(rest, result, {.stop_at_headers = true});
      out.consumed += n;
      rest.remove_prefix(n);
      if (result.at_headers) {
        EXPECT_EQ(parser.state(), State::kBody);
        EXPECT_FALSE(rest.empty());  // the header section's last LF is still to come
        const HTTPRequest* pending = parser.pending_request();
        EXPECT_NE(pending, nullptr);
        if (pending == nullptr) break;
        EXPECT_EQ(pending->body(), "");
        out.heads.push_back(absl::StrCat(pending->method(), " ", pending->target()));
        if (mode.stream) {
          bodies.emplace_back();
          EXPECT_TRUE(parser
                          .stream_body([&out, &bodies, &mode](absl::string_view chunk) {
                            EXPECT_FALSE(chunk.empty());
                            out.chunks.emplace_back(chunk);
                            bodies.back().append(chunk.data(), chunk.size());
                            return !mode.pause;
                          })
                          .ok());
          EXPECT_TRUE(parser.streaming());
        }
        continue;
      }
      if (result.sink_paused) {
        EXPECT_GT(n, 0u);  // a stop always makes progress
        ++out.pauses;
        continue;
      }
      if (!result.error && parser.state() != State::kClosed) {
        EXPECT_TRUE(rest.empty());
      }
      break;
    }
  }
  EXPECT_FALSE(parser.streaming() && parser.state() != State::kBody);
  out.requests = std::move(result.requests);
  out.streamed = result.streamed;
  EXPECT_LE(out.streamed.size(), bodies.size());
  for (size_t i = 0; i < out.streamed.size(); ++i) {
    HTTPRequest& r = out.requests.at(out.streamed[i]);
    EXPECT_EQ(r.body(), "") << "a streamed request's body stays empty";
    r.set_body(bodies[i]);
  }
  out.error = result.error;
  EXPECT_EQ(out.error, parser.error());
  out.state = parser.state();
  return out;
}

// The buffered parse of the same bytes (one feed), and where it stopped.
Outcome buffered(const std::string& input, RequestParser::Options options) {
  RequestParser parser(options);
  RequestParser::Result result;
  Outcome out;
  out.consumed = parser.feed(input, result, SIZE_MAX);
  out.requests = std::move(result.requests);
  out.error = result.error;
  out.state = parser.state();
  return out;
}

std::vector<std::string> split_at(const std::string& input, size_t k) {
  return {input.substr(0, k), input.substr(k)};
}

std::vector<std::string> bytes_of(const std::string& input) {
  std::vector<std::string> bytes;
  for (char c : input) bytes.emplace_back(1, c);
  return bytes;
}

// Drives `input` whole, split in two at every position and byte at a time; each must give the
// buffered parse's requests (compared with `reference` options), error, position and state,
// and the same concatenated streamed bytes. Returns the whole-input outcome.
Outcome drive_every_split(const std::string& input, const Mode& mode,
                          RequestParser::Options reference) {
  const Outcome want = buffered(input, reference);
  const Outcome whole = drive({input}, mode);
  auto same = [&](const Outcome& got, const std::string& where) {
    EXPECT_EQ(got.requests, want.requests) << where;
    EXPECT_EQ(got.error, want.error) << where;
    EXPECT_EQ(got.state, want.state) << where;
    EXPECT_EQ(got.consumed, want.consumed) << where;
    EXPECT_EQ(got.streamed, whole.streamed) << where;
    EXPECT_EQ(got.heads, whole.heads) << where;
    EXPECT_EQ(absl::StrJoin(got.chunks, ""), absl::StrJoin(whole.chunks, "")) << where;
  };
  same(whole, "whole");
  for (size_t k = 0; k <= input.size(); ++k)
    same(drive(split_at(input, k), mode), "split " + std::to_string(k));
  same(drive(bytes_of(input), mode), "byte at a time");
  return whole;
}

const std::string kLengthPost =
    "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
const std::string kChunkedPost =
    "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
const std::string kNext = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";

TEST(RequestParserStreamTest, ContentLengthBodyGoesToTheSinkAtEverySplit) {
  Outcome out = drive_every_split(kLengthPost + kNext, Mode{}, {});
  EXPECT_THAT(out.heads, ElementsAre("POST /up"));
  EXPECT_THAT(out.chunks, ElementsAre("0123456789"));
  ASSERT_EQ(out.requests.size(), 2u);
  EXPECT_THAT(out.streamed, ElementsAre(0u));
  EXPECT_EQ(out.requests[0].body(), "0123456789");
  EXPECT_EQ(out.requests[1].target(), "/next");
  EXPECT_EQ(out.state, State::kIdle);
}

TEST(RequestParserStreamTest, ExactPiecesFollowTheSplit) {
  const std::string input = kLengthPost + kNext;
  const size_t body = kLengthPost.size() - 10;
  for (size_t k = 0; k <= input.size(); ++k) {
    std::vector<std::string> want;
    const size_t a = std::min(std::max(k, body), body + 10);
    if (a > body) want.push_back(input.substr(body, a - body));
    if (a < body + 10) want.push_back(input.substr(a, body + 10 - a));
    EXPECT_EQ(drive(split_at(input, k), Mode{}).chunks, want) << "split " << k;
  }
  Outcome bytes = drive(bytes_of(input), Mode{});
  EXPECT_THAT(bytes.chunks, ElementsAre("0", "1", "2", "3", "4", "5", "6", "7", "8", "9"));
}

TEST(RequestParserStreamTest, ChunkedBodyIsDechunkedAtEverySplit) {
  Outcome out = drive_every_split(kChunkedPost + kNext, Mode{}, {});
  EXPECT_THAT(out.heads, ElementsAre("POST /c"));
  EXPECT_THAT(out.chunks, ElementsAre("hello", " world"));
  ASSERT_EQ(out.requests.size(), 2u);
  EXPECT_THAT(out.streamed, ElementsAre(0u));
  EXPECT_EQ(out.requests[0].body(), "hello world");
  // Trailers are framing, not kept, streamed or not.
  EXPECT_FALSE(out.requests[0].headers().contains("X-Trailer"));
  Outcome bytes = drive(bytes_of(kChunkedPost), Mode{});
  EXPECT_EQ(bytes.chunks.size(), 11u);
}

TEST(RequestParserStreamTest, PauseAfterEveryPieceIsJustAnotherSplit) {
  Mode pause{.stream = true, .pause = true, .options = {}};
  Outcome cl = drive_every_split(kLengthPost + kNext, pause, {});
  EXPECT_EQ(cl.pauses, 1);  // after the only piece, which also completed the request
  Outcome chunked = drive_every_split(kChunkedPost + kNext + kChunkedPost, pause, {});
  EXPECT_EQ(chunked.pauses, 4);
  EXPECT_THAT(chunked.streamed, ElementsAre(0u, 2u));
  EXPECT_THAT(chunked.chunks, ElementsAre("hello", " world", "hello", " world"));
}

TEST(RequestParserStreamTest, EachStopReturnsWhereItStopped) {
  RequestParser parser;
  RequestParser::Result result;
  const std::string input = kChunkedPost + kNext;
  absl::string_view rest = input;
  std::vector<std::string> chunks;
  const RequestParser::FeedOptions stop{.stop_at_headers = true};

  size_t n = parser.feed(rest, result, stop);
  EXPECT_TRUE(result.at_headers);
  EXPECT_EQ(n, kChunkedPost.find("\r\n\r\n") + 3);  // up to the last LF, excluded
  EXPECT_THAT(result.requests, IsEmpty());
  ASSERT_TRUE(parser
                  .stream_body([&](absl::string_view c) {
                    chunks.emplace_back(c);
                    return false;
                  })
                  .ok());
  rest.remove_prefix(n);

  result.clear();
  n = parser.feed(rest, result, stop);
  EXPECT_TRUE(result.sink_paused);
  EXPECT_THAT(chunks, ElementsAre("hello"));
  EXPECT_EQ(rest.substr(0, n), "\n5\r\nhello\r");  // the data's CR, not yet its LF
  rest.remove_prefix(n);

  result.clear();
  n = parser.feed(rest, result, stop);
  EXPECT_TRUE(result.sink_paused);
  EXPECT_EQ(rest.substr(0, n), "\n6\r\n world\r");
  rest.remove_prefix(n);

  result.clear();
  n = parser.feed(rest, result, stop);
  EXPECT_FALSE(result.sink_paused);
  EXPECT_EQ(n, rest.size());
  ASSERT_EQ(result.requests.size(), 2u);
  EXPECT_THAT(result.streamed, ElementsAre(0u));
  EXPECT_EQ(result.requests[0].body(), "");
  EXPECT_EQ(result.requests[1].target(), "/next");
  EXPECT_FALSE(parser.streaming());
}

TEST(RequestParserStreamTest, PauseOnTheLastPieceReturnsTheCompletedRequest) {
  RequestParser parser;
  RequestParser::Result result;
  absl::string_view rest = kLengthPost;
  size_t n = parser.feed(rest, result, {.stop_at_headers = true});
  rest.remove_prefix(n);
  ASSERT_TRUE(parser.stream_body([](absl::string_view) { return false; }).ok());
  n = parser.feed(rest, result, {.stop_at_headers = true});
  EXPECT_EQ(n, rest.size());
  EXPECT_TRUE(result.sink_paused);
  ASSERT_EQ(result.requests.size(), 1u);
  EXPECT_THAT(result.streamed, ElementsAre(0u));
  EXPECT_EQ(parser.state(), State::kIdle);
}

TEST(RequestParserStreamTest, MaxRequestsAndStopsCombine) {
  // Two GETs, then a streamed POST: max_requests = 1 stops after each GET; the POST stops at
  // its header section.
  const std::string input = kNext + kNext + kLengthPost;
  RequestParser parser;
  RequestParser::Result result;
  absl::string_view rest = input;
  const RequestParser::FeedOptions one{.max_requests = 1, .stop_at_headers = true};
  rest.remove_prefix(parser.feed(rest, result, one));
  rest.remove_prefix(parser.feed(rest, result, one));
  EXPECT_EQ(result.requests.size(), 2u);
  EXPECT_FALSE(result.at_headers);
  rest.remove_prefix(parser.feed(rest, result, one));
  EXPECT_TRUE(result.at_headers);
  ASSERT_TRUE(parser.stream_body([](absl::string_view) { return true; }).ok());
  rest.remove_prefix(parser.feed(rest, result, one));
  EXPECT_TRUE(rest.empty());
  ASSERT_EQ(result.requests.size(), 3u);
  EXPECT_THAT(result.streamed, ElementsAre(2u));
}

TEST(RequestParserStreamTest, NotStreamingBuffersAsBefore) {
  Mode buffer{.stream = false, .options = {}};
  Outcome out = drive_every_split(kLengthPost + kChunkedPost + kNext, buffer, {});
  EXPECT_THAT(out.heads, ElementsAre("POST /up", "POST /c"));
  EXPECT_THAT(out.streamed, IsEmpty());
  ASSERT_EQ(out.requests.size(), 3u);
  EXPECT_EQ(out.requests[0].body(), "0123456789");
  EXPECT_EQ(out.requests[1].body(), "hello world");
}

TEST(RequestParserStreamTest, RequestsWithoutBodyDoNotStop) {
  Outcome out = drive_every_split(
      kNext + "POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n" + kNext, Mode{}, {});
  EXPECT_THAT(out.heads, IsEmpty());
  EXPECT_EQ(out.requests.size(), 3u);
}

// Found by a review: a CONNECT request's Content-Length or chunked made the parser stop at its
// head as if a body followed, which libhttp_parser never reads (what follows a CONNECT is the
// tunnel's, RFC 9110 §9.3.6): a handler streaming it waited for bytes that never came. Such a
// request has no body, whatever its fields say, and ends the connection as any CONNECT.
TEST(RequestParserStreamTest, AConnectRequestHasNoBodyWhateverItsFieldsSay) {
  for (const std::string framing :
       {"Content-Length: 5\r\n", "Transfer-Encoding: chunked\r\n",
        "Content-Length: 99999999999\r\n"}) {  // over max_body_size: no 413 either
    Outcome out = drive_every_split(
        "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n" + framing + "\r\n5\r\nhello", Mode{}, {});
    EXPECT_THAT(out.heads, IsEmpty()) << framing;
    ASSERT_EQ(out.requests.size(), 1u) << framing;
    EXPECT_EQ(out.requests[0].body(), "");
    EXPECT_FALSE(out.error) << framing;
    EXPECT_FALSE(buffered("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n" + framing + "\r\n", {}).error)
        << framing;
  }
}

TEST(RequestParserStreamTest, StreamedBodyHasNoMaxBodySize) {
  RequestParser::Options small;
  small.max_body_size = 4;
  small.discard_body = true;  // ignored for a streamed body
  RequestParser::Options reference;
  Outcome out =
      drive_every_split(kLengthPost + kChunkedPost + kNext, {.options = small}, reference);
  EXPECT_THAT(out.streamed, ElementsAre(0u, 1u));
  EXPECT_EQ(out.requests[1].body(), "hello world");
}

TEST(RequestParserStreamTest, UnstreamedTooLargeBodyIs413AtTheSamePosition) {
  RequestParser::Options small;
  small.max_body_size = 4;
  Mode buffer{.stream = false, .options = small};
  for (const std::string& post : {kLengthPost, kChunkedPost}) {
    Outcome out = drive_every_split(kNext + post + kNext, buffer, small);
    EXPECT_EQ(out.error, RequestError::kBodyTooLarge);
    EXPECT_EQ(out.requests.size(), 1u);
    EXPECT_THAT(out.heads, ElementsAre(post.substr(0, post.find(" HTTP"))));
  }
}

TEST(RequestParserStreamTest, FramingErrorsMidBodyAtTheSamePosition) {
  RequestParser::Options small;
  small.max_header_size = 60;  // the header section is 57 bytes
  const std::string head =
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
  struct Case {
    std::string tail;
    RequestError error;
  } cases[] = {
      {"zz\r\n", RequestError::kMalformed},      // chunk size not hex
      {"3\nabc\r\n", RequestError::kMalformed},  // bare LF after the size
      {"0\r\nX-Long: " + std::string(60, 'x'), RequestError::kHeaderTooLarge},  // trailers
  };
  for (const Case& c : cases) {
    for (bool pause : {false, true}) {
      Outcome out = drive_every_split(head + c.tail, {.pause = pause, .options = small}, small);
      EXPECT_EQ(out.error, c.error) << c.tail;
      EXPECT_THAT(out.chunks, ElementsAre("hello")) << c.tail;
      EXPECT_THAT(out.streamed, IsEmpty());
      EXPECT_EQ(out.state, State::kError);
    }
  }
}

TEST(RequestParserStreamTest, ContinueWaitsForTheCallersChoice) {
  const std::string head =
      "PUT /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
  RequestParser parser;
  RequestParser::Result result;
  size_t n = parser.feed(head, result, {.stop_at_headers = true});
  EXPECT_TRUE(result.at_headers);
  EXPECT_FALSE(result.send_continue);  // not before the caller has chosen
  ASSERT_TRUE(parser.stream_body([](absl::string_view) { return true; }).ok());
  // `result` still says at_headers from the last feed(): only this feed()'s stops count.
  n = parser.feed(absl::string_view(head).substr(n), result, {.stop_at_headers = true});
  EXPECT_EQ(n, 1u);
  EXPECT_TRUE(result.send_continue);
  result.clear();
  parser.feed("abc", result, {.stop_at_headers = true});
  EXPECT_FALSE(result.send_continue);
  EXPECT_THAT(result.streamed, ElementsAre(0u));

  // A body too large to buffer: no 100, a 413 once the caller does not stream.
  RequestParser::Options small;
  small.max_body_size = 2;
  RequestParser limited(small);
  result.clear();
  n = limited.feed(head, result, {.stop_at_headers = true});
  EXPECT_FALSE(result.send_continue);
  result.clear();
  EXPECT_EQ(limited.feed(absl::string_view(head).substr(n), result, {}), 0u);
  EXPECT_FALSE(result.send_continue);
  EXPECT_EQ(result.error, RequestError::kBodyTooLarge);
  EXPECT_EQ(limited.error_detail(), "Content-Length 3 > max_body_size 2");
}

TEST(RequestParserStreamTest, StreamBodyPreconditions) {
  RequestParser parser;
  auto sink = [](absl::string_view) { return true; };
  EXPECT_EQ(parser.stream_body(sink).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(parser.stream_body(nullptr).code(), absl::StatusCode::kInvalidArgument);
  RequestParser::Result result;
  parser.feed(kLengthPost.substr(0, kLengthPost.size() - 8), result);  // 2 body bytes
  EXPECT_EQ(parser.state(), State::kBody);
  EXPECT_EQ(parser.stream_body(sink).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(parser.streaming());

  RequestParser fresh;
  fresh.feed(kLengthPost.substr(0, kLengthPost.size() - 10), result);  // header section only
  EXPECT_TRUE(fresh.stream_body(sink).ok());
  EXPECT_EQ(fresh.stream_body(sink).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(RequestParserStreamTest, SinkIsReleasedWhenTheRequestEndsOrFails) {
  for (const std::string& tail : {std::string("0123456789"), std::string("\r\n")}) {
    const bool chunked_error = tail == "\r\n";
    const std::string input = chunked_error ? kChunkedPost.substr(0, kChunkedPost.find("5\r"))
                                            : kLengthPost.substr(0, kLengthPost.size() - 10);
    RequestParser parser;
    RequestParser::Result result;
    parser.feed(input, result);
    auto held = std::make_shared<int>(0);
    ASSERT_TRUE(parser.stream_body([held](absl::string_view) { return true; }).ok());
    EXPECT_EQ(held.use_count(), 2);
    parser.feed(chunked_error ? std::string("x\r\n") : tail, result);
    EXPECT_EQ(held.use_count(), 1) << (chunked_error ? "error" : "end");
    EXPECT_EQ(result.error.has_value(), chunked_error);
  }
}

TEST(RequestParserStreamTest, Http10StreamedRequestClosesTheConnection) {
  Outcome out = drive_every_split("POST /old HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc" + kNext,
                                  Mode{.pause = true, .options = {}}, {});
  ASSERT_EQ(out.requests.size(), 1u);
  EXPECT_THAT(out.streamed, ElementsAre(0u));
  EXPECT_EQ(out.requests[0].body(), "abc");
  EXPECT_EQ(out.state, State::kClosed);
}

}  // namespace
}  // namespace ioloop::net
