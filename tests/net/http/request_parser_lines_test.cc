// File: tests/net/http/request_parser_lines_test.cc
// RequestParser: empty lines before a request line (RFC 9112 §2.2 lets a server ignore "at
// least one" of them; this parser allows 8 and counts them as the start of the header
// section), bare CRs there, the request's version as soon as its request line is complete,
// the letters of that version, and feed() stopping after a number of requests. Every case is
// checked at every split.
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "ioloop/net/http/request_parser.h"

namespace ioloop::net {
namespace {

using State = RequestParser::State;

struct Outcome {
  std::vector<std::string> targets;
  std::optional<RequestError> error;
  State state = State::kIdle;
  std::optional<int> version_minor;
  bool head_request = false;
  bool operator==(const Outcome&) const = default;
};

Outcome parse_pieces(const std::vector<std::string>& pieces) {
  RequestParser parser;
  Outcome out;
  for (const std::string& piece : pieces) {
    RequestParser::Result r = parser.feed(piece);
    for (const HTTPRequest& req : r.requests) out.targets.push_back(req.target());
    if (r.error) out.error = r.error;
  }
  out.state = parser.state();
  out.version_minor = parser.version_minor();
  out.head_request = parser.head_request();
  return out;
}

// What one feed gives, asserting that every two-way split and byte-at-a-time give the same.
Outcome parse_every_split(const std::string& input) {
  const Outcome whole = parse_pieces({input});
  for (size_t k = 0; k <= input.size(); ++k) {
    EXPECT_EQ(parse_pieces({input.substr(0, k), input.substr(k)}), whole) << "split at " << k;
  }
  std::vector<std::string> bytes;
  for (char c : input) bytes.emplace_back(1, c);
  EXPECT_EQ(parse_pieces(bytes), whole) << "byte at a time";
  return whole;
}

std::string lines(int crlf, int lf = 0) {
  std::string s;
  for (int i = 0; i < crlf; ++i) s += "\r\n";
  return s + std::string(lf, '\n');
}

constexpr char kGet[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";

TEST(RequestParserLinesTest, EmptyLinesStartTheHeaderSection) {
  EXPECT_EQ(parse_every_split("\r\n").state, State::kHeaders);
  EXPECT_EQ(parse_every_split("\n").state, State::kHeaders);
  EXPECT_EQ(parse_every_split(lines(3)).state, State::kHeaders);
  EXPECT_EQ(parse_every_split(std::string(kGet) + "\r\n").state, State::kHeaders);
  EXPECT_EQ(parse_every_split(kGet).state, State::kIdle);
}

TEST(RequestParserLinesTest, EightEmptyLinesBeforeARequestAreAccepted) {
  Outcome out = parse_every_split(lines(8) + kGet);
  EXPECT_EQ(out.targets, std::vector<std::string>{"/a"});
  EXPECT_EQ(out.error, std::nullopt);
  out = parse_every_split(lines(4, 4) + kGet + lines(2, 6) + kGet);
  EXPECT_EQ(out.targets, (std::vector<std::string>{"/a", "/a"}));
  EXPECT_EQ(out.error, std::nullopt);
  EXPECT_EQ(out.state, State::kIdle);
}

// Issue 7, defect 7: empty lines are not a way to keep a connection busy for ever.
TEST(RequestParserLinesTest, NinthEmptyLineIsMalformed) {
  Outcome out = parse_every_split(lines(9) + kGet);
  EXPECT_TRUE(out.targets.empty());
  EXPECT_EQ(out.error, RequestError::kMalformed);
  out = parse_every_split(lines(5, 4));
  EXPECT_EQ(out.error, RequestError::kMalformed);
  // Between requests: the count starts again after each request.
  out = parse_every_split(lines(8) + kGet + lines(8) + kGet + lines(9));
  EXPECT_EQ(out.targets, (std::vector<std::string>{"/a", "/a"}));
  EXPECT_EQ(out.error, RequestError::kMalformed);
  RequestParser parser;
  parser.feed(lines(9));
  EXPECT_EQ(parser.error_detail(), "more than 8 empty lines before a request line");
}

// RFC 9112 §2.2: a bare CR is not a line ending.
TEST(RequestParserLinesTest, BareCarriageReturnBeforeARequestIsMalformed) {
  EXPECT_EQ(parse_every_split(std::string("\r") + kGet).error, RequestError::kMalformed);
  EXPECT_EQ(parse_every_split(std::string("\r\r\n") + kGet).error, RequestError::kMalformed);
  EXPECT_EQ(parse_every_split(std::string("\r\n\r") + kGet).error, RequestError::kMalformed);
}

TEST(RequestParserLinesTest, VersionIsKnownOnceTheRequestLineIsComplete) {
  EXPECT_EQ(parse_every_split("GET / HTTP/1.0").version_minor, std::nullopt);
  EXPECT_EQ(parse_every_split("GET / HTTP/1.0\r").version_minor, std::nullopt);
  EXPECT_EQ(parse_every_split("GET / HTTP/1.0\r\n").version_minor, 0);
  EXPECT_EQ(parse_every_split("\r\nGET / HTTP/1.1\nX: 1").version_minor, 1);
  EXPECT_EQ(parse_every_split("POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\nab").version_minor, 0);
  // Kept after an error in the header section or body.
  Outcome out = parse_every_split("GET / HTTP/1.0\r\nHo st: x\r\n\r\n");
  EXPECT_EQ(out.error, RequestError::kMalformed);
  EXPECT_EQ(out.version_minor, 0);
  // Between requests there is none; nor for another major version or a broken line.
  EXPECT_EQ(parse_every_split(kGet).version_minor, std::nullopt);
  // After a request that closes the connection either (it was 0 fed whole, none split).
  EXPECT_EQ(parse_every_split("GET / HTTP/1.0\r\n\r\n").version_minor, std::nullopt);
  EXPECT_EQ(parse_every_split("GET / HTTP/2.0\r\nHost: h\r\n\r\n").version_minor, std::nullopt);
  EXPECT_EQ(parse_every_split("GARBAGE\r\n\r\n").version_minor, std::nullopt);
}

// libhttp_parser, built non-strict, checks the H of "HTTP/" and not the rest, so "GET /
// HXTP/1.1" was served, and an LF among the letters ended the line for a front end but not for
// it ("GET /x H\nTP/1.1"). A request line up to its first LF must end in "HTTP/", its version's
// digits after it (libhttp_parser checks those), or be HTTP/0.9's "GET /x" (a 505). Each case
// also has a request before it on the connection (the check is per request line).
TEST(RequestParserLinesTest, TheVersionIsSpelledHttp) {
  const char* const bad[] = {
      "GET / HXTP/1.1\r\nHost: h\r\n\r\n",
      "GET / H\x01TP/1.1\r\nHost: h\r\n\r\n",
      "GET / HTTX/1.1\r\nHost: h\r\n\r\n",
      "GET / HTTP 1.1\r\nHost: h\r\n\r\n",
      "GET / H TP/1.1\r\nHost: h\r\n\r\n",
      "GET /x H\nTP/1.1\r\nHost: h\r\n\r\n",
      "GET /x HTT\nP/1.1\r\nHost: h\r\n\r\n",
      // The line ends first; a 413 after it in the same read does not take precedence.
      "POST / HXTP/1.1\r\nHost: h\r\nContent-Length: 99999999999\r\n\r\n",
      // The first LF ends the line: "GET /x H\r" (was a bare CR later in the line).
      "GET /x H\r\n\r`1.0\r\nHost: a\r\n\r\n",
  };
  for (const char* input : bad) {
    SCOPED_TRACE(input);
    for (const std::string& before : {std::string(), std::string(kGet)}) {
      const Outcome out = parse_every_split(before + input);
      EXPECT_EQ(out.error, RequestError::kMalformed);
      EXPECT_EQ(out.targets.size(), before.empty() ? 0u : 1u);
      EXPECT_EQ(out.version_minor, std::nullopt);  // the error response is HTTP/1.1's
    }
  }
  RequestParser parser;
  parser.feed("GET / HXTP/1.1\r\n");
  EXPECT_EQ(parser.error_detail(), "invalid HTTP version in the request line");

  // Several spaces before the version, and HTTP/0.9's line without one, are not this error.
  EXPECT_EQ(parse_every_split("GET /a   HTTP/1.1\r\nHost: h\r\n\r\n").targets,
            std::vector<std::string>{"/a"});
  EXPECT_EQ(parse_every_split("GET /a\r\n\r\n").error, RequestError::kUnsupportedVersion);
  EXPECT_EQ(parse_every_split("GET  /a\n\n").error, RequestError::kUnsupportedVersion);
}

// An error response to HEAD has no body, so whether the failed request was a HEAD must not
// depend on the split either (http_connection_fuzzer found "HEAD /x HT\rq/1.1": a bare CR
// in the request line was a HEAD's error fed whole, and not fed a byte at a time). A request
// line with a bare CR, or not complete, names no method; one that is complete does, even
// when its version is not HTTP's or the error comes later in the head.
TEST(RequestParserLinesTest, AFailedRequestIsAHeadAsItsRequestLineSays) {
  for (const std::string& before : {std::string(), std::string(kGet)}) {
    SCOPED_TRACE(before);
    EXPECT_FALSE(parse_every_split(before + "HEAD /x HT\rq/1.1\r\nHost: h\r\n\r\n").head_request);
    EXPECT_FALSE(parse_every_split(before + "HEAD /x\r HTTP/1.1\r\nHost: h\r\n\r\n").head_request);
    EXPECT_FALSE(parse_every_split(before + "HEAD /x HT").head_request);
    EXPECT_TRUE(parse_every_split(before + "HEAD /x H\r\n\r`1.0\r\nHost: a\r\n\r\n").head_request);
    EXPECT_TRUE(parse_every_split(before + "HEAD /x HXTP/1.1\r\nHost: h\r\n\r\n").head_request);
    EXPECT_TRUE(parse_every_split(before + "HEAD /x HTTP/1.1\r\nX: a\rb\r\n\r\n").head_request);
    EXPECT_TRUE(parse_every_split(before + "HEAD /x HTTP/1.1\r\nX: a\r\n b\r\n\r\n").head_request);
    EXPECT_TRUE(parse_every_split(before + "HEAD /x HTTP/1.1\r\nHo st: h\r\n\r\n").head_request);
    EXPECT_FALSE(parse_every_split(before + "GET /x HT\rq/1.1\r\nHost: h\r\n\r\n").head_request);
  }
}

// RFC 9110 §9.1: a method the server does not know is a 501, not a 400. libhttp_parser knows a
// fixed list and fails at the first byte that continues none of them, whatever the split: a
// token character there means a well-formed method it does not implement, anything else a
// malformed request line.
TEST(RequestParserLinesTest, AnUnknownMethodIsNotImplemented) {
  for (const char* method : {"QUERY", "FOO", "GETS", "get", "PUTT", "M-SEARCHX", "X"}) {
    SCOPED_TRACE(method);
    for (const std::string& before : {std::string(), std::string(kGet)}) {
      const Outcome out = parse_every_split(before + method + " /a HTTP/1.1\r\nHost: h\r\n\r\n");
      EXPECT_EQ(out.error, RequestError::kUnknownMethod);
      EXPECT_EQ(out.targets.size(), before.empty() ? 0u : 1u);
    }
  }
  EXPECT_EQ(error_status(RequestError::kUnknownMethod), 501);
  RequestParser parser;
  parser.feed("QUERY /a HTTP/1.1\r\n");
  EXPECT_EQ(parser.error_detail(), "request method not implemented");

  // Not a token character where the method goes on: malformed, as before.
  for (const char* input : {"G@T /a HTTP/1.1\r\n\r\n", "\x16\x03\x01\x02\x00\x01",
                            "GE\x01 /a HTTP/1.1\r\n\r\n", "GET\t/a HTTP/1.1\r\n\r\n"}) {
    SCOPED_TRACE(input);
    EXPECT_EQ(parse_every_split(input).error, RequestError::kMalformed);
  }
  // The methods libhttp_parser knows, WebDAV's and PURGE among them, are parsed.
  for (const char* method : {"PURGE", "PROPFIND", "M-SEARCH", "PATCH"}) {
    EXPECT_EQ(parse_every_split(std::string(method) + " /a HTTP/1.1\r\nHost: h\r\n\r\n").targets,
              std::vector<std::string>{"/a"})
        << method;
  }
}

// The server stops parsing while its output drains: stopping after each request and feeding
// the rest later is one more split.
TEST(RequestParserLinesTest, FeedStopsAfterMaxRequests) {
  const std::string input = std::string("\r\n") + kGet +
                            "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nxy\r\n" +
                            kGet + "GET /c HTTP/1.1\r\n";
  RequestParser parser;
  RequestParser::Result result;
  std::vector<size_t> consumed;
  absl::string_view rest = input;
  while (!rest.empty()) {
    const size_t n = parser.feed(rest, result, 1);
    consumed.push_back(n);
    rest.remove_prefix(n);
  }
  // Each call ends right after a request; the last takes the partial one.
  const size_t get = std::string(kGet).size();
  EXPECT_EQ(consumed, (std::vector<size_t>{2 + get, 50, 2 + get, 17}));
  std::vector<std::string> targets;
  for (const HTTPRequest& r : result.requests) targets.push_back(r.target());
  EXPECT_EQ(targets, (std::vector<std::string>{"/a", "/b", "/a"}));
  EXPECT_EQ(result.requests[1].body(), "xy");
  EXPECT_EQ(parser.state(), State::kHeaders);
  EXPECT_EQ(parser.version_minor(), 1);

  // Two at a time; and the whole stream at once gives the same requests.
  RequestParser two;
  RequestParser::Result r2;
  EXPECT_EQ(two.feed(input, r2, 2), 2 + get + 50);
  EXPECT_EQ(parse_every_split(input).targets, targets);
}

}  // namespace
}  // namespace ioloop::net
