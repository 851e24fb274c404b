// File: tests/net/http/line_ends_test.cc
// Line ends and chunk-size lines that libhttp_parser, built non-strict, lets through, in both
// parsers (net/src/http/chunk_line_guard.h, line_end_scan.h): it skips any byte but CR in a
// chunk extension, takes a space after a chunk size for the start of one, and takes any byte
// after some CRs for the LF. So "3;x\nabc\r\nXYZ" was the chunk "XYZ" where a front end ending
// lines at a bare LF reads "abc", and "Foo:\rXContent-Length: 3" a Content-Length field where
// one replacing the bare CR with SP (RFC 9112 §2.2) sees none (request smuggling); it also joins
// folded lines, which a request may not bring (RFC 9112 §5.2). Each case runs whole, split in
// two at every position and one byte at a time, buffered and streamed: the same error after the
// same body bytes (and, for a chunk-size line, at the same position).
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/line_end_scan.h"
#include "ioloop/net/http/request_parser.h"
#include "ioloop/net/http/response_parser.h"
#include "response_parser_testing.h"

namespace ioloop::net {
namespace {

using ::testing::ElementsAre;

const std::string kChunkedHead =
    "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";

struct Parse {
  std::optional<RequestError> error;
  std::string detail;
  size_t consumed = 0;  // bytes feed() took in all: the error's position
  std::string body;     // what a sink received (streamed) or the requests' bodies (buffered)
  size_t requests = 0;
  std::optional<int> version_minor;  // what an error response's version is taken from
  bool operator==(const Parse&) const = default;
};

// Feeds `pieces` in order; `stream`: stop at each header section and stream its body.
Parse drive(const std::vector<std::string>& pieces, bool stream) {
  RequestParser::Options options;
  options.max_body_size = 16;
  RequestParser parser(options);
  RequestParser::Result result;
  Parse run;
  for (const std::string& piece : pieces) {
    absl::string_view rest = piece;
    for (;;) {
      result.at_headers = false;
      const size_t n = parser.feed(rest, result, {.stop_at_headers = stream});
      run.consumed += n;
      rest.remove_prefix(n);
      if (!result.at_headers) break;
      EXPECT_TRUE(parser
                      .stream_body([&run](absl::string_view chunk) {
                        run.body.append(chunk.data(), chunk.size());
                        return true;
                      })
                      .ok());
    }
  }
  for (const HTTPRequest& request : result.requests) run.body += request.body();
  run.requests = result.requests.size();
  run.error = parser.error();
  run.detail = parser.error_detail();
  run.version_minor = parser.version_minor();
  return run;
}

// The outcome of `input` fed whole, asserting that every split gives the same. `same_consumed`:
// also the count of bytes consumed (after an error, feed() consumed a split-dependent part of
// the bytes before it, unless the error is found before they reach libhttp_parser).
Parse drive_every_split(const std::string& input, bool stream, bool same_consumed = true) {
  const Parse whole = drive({input}, stream);
  auto expect_same = [&](Parse split, const std::string& where) {
    if (!same_consumed) split.consumed = whole.consumed;
    EXPECT_EQ(split, whole) << where;
  };
  for (size_t k = 0; k <= input.size(); ++k) {
    expect_same(drive({input.substr(0, k), input.substr(k)}, stream), absl::StrCat("split ", k));
    if (::testing::Test::HasFailure()) return whole;  // one report, not hundreds
  }
  std::vector<std::string> bytes;
  for (char c : input) bytes.emplace_back(1, c);
  expect_same(drive(bytes, stream), "one byte at a time");
  return whole;
}

struct BadLine {
  const char* name;
  std::string body;  // after kChunkedHead
  size_t bad_at;     // offset in `body` of the byte the error is at
  std::string streamed;
  const char* detail;
  friend void PrintTo(const BadLine& c, std::ostream* os) { *os << c.name; }
};

class RequestChunkLineTest : public ::testing::TestWithParam<BadLine> {};

TEST_P(RequestChunkLineTest, IsA400AtTheBadByteAtEverySplit) {
  const BadLine& c = GetParam();
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "streamed" : "buffered");
    const Parse run = drive_every_split(kChunkedHead + c.body, stream);
    ASSERT_TRUE(run.error.has_value());
    EXPECT_EQ(*run.error, RequestError::kMalformed);
    EXPECT_EQ(error_status(*run.error), 400);
    EXPECT_EQ(run.detail, c.detail);
    EXPECT_EQ(run.consumed, kChunkedHead.size() + c.bad_at);
    EXPECT_EQ(run.body, stream ? c.streamed : "");
    EXPECT_EQ(run.requests, 0u);
  }
}

constexpr const char* kControl = "invalid character in chunk-size line";
constexpr const char* kBareCr = "bare CR (not followed by LF)";

INSTANTIATE_TEST_SUITE_P(
    All, RequestChunkLineTest,
    ::testing::Values(
        BadLine{"LfInExtension", "3;x\nabc\r\nXYZ\r\n0\r\n\r\n", 3, "", kControl},
        BadLine{"NulInExtension", std::string("3;ext=\0\r\nabc\r\n0\r\n\r\n", 19), 6, "", kControl},
        BadLine{"DelInExtension", "3;e\x7f\r\nabc\r\n0\r\n\r\n", 3, "", kControl},
        BadLine{"ControlByteAfterTheSize", "3\x01\r\nabc\r\n0\r\n\r\n", 1, "", kControl},
        BadLine{"BareCrEndsTheSizeLine", "3\rXabc\r\n0\r\n\r\n", 2, "", kBareCr},
        BadLine{"LfInTheSecondLine", "1\r\na\r\n2;\nbc\r\n0\r\n\r\n", 8, "a", kControl},
        BadLine{"ControlByteInLastChunkExtension", "1\r\na\r\n0;z\x01\r\n\r\n", 9, "a", kControl},
        // The line's end would find the chunk above max_body_size (16): the bad byte comes
        // first, so it is a 400 at every split, never a 413 (found by the fuzzer).
        BadLine{"LfInExtensionOfAChunkTooLarge", "FFFFFF;\n\r\n", 7, "", kControl},
        // libhttp_parser takes a space after the size for an extension's start, so it read
        // "3 5" as 3, and a request line whose method is a hex word as a chunk-size line.
        BadLine{"SecondNumberAfterASpace", "3 5\r\nabc\r\n0\r\n\r\n", 2, "", kControl},
        BadLine{"RequestLineAsChunkSize", "BAD /x HTTP/1.1\r\nHost: h\r\n\r\n", 4, "", kControl}),
    [](const ::testing::TestParamInfo<BadLine>& param) { return std::string(param.param.name); });

TEST(RequestChunkLineTest, ExtensionsTheGrammarAllowsAreSkipped) {
  const std::string input = kChunkedHead +
                            "3;name=val;q=\"a\tb\"\t; x = \x80\xff\r\nabc\r\n"
                            "2 ;y\r\nde\r\n1 \r\nf\r\n0;last\r\nT: 1\r\n\r\n"
                            "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "streamed" : "buffered");
    const Parse run = drive_every_split(input, stream);
    EXPECT_FALSE(run.error.has_value()) << run.detail;
    EXPECT_EQ(run.body, "abcdef");
    EXPECT_EQ(run.requests, 2u);
    EXPECT_EQ(run.consumed, input.size());
  }
}

// A head or trailer section with a bad line end: a 400 with `detail` at every split, buffered
// and streamed, with no request delivered; `streamed`: the body bytes a sink received first.
struct LineCase {
  std::string input;
  std::string streamed;
};
void expect_malformed_at_every_split(const std::vector<LineCase>& cases, absl::string_view detail) {
  for (const LineCase& c : cases) {
    SCOPED_TRACE(c.input);
    for (bool stream : {false, true}) {
      SCOPED_TRACE(stream ? "streamed" : "buffered");
      const Parse run = drive_every_split(c.input, stream, /*same_consumed=*/false);
      ASSERT_TRUE(run.error.has_value());
      EXPECT_EQ(*run.error, RequestError::kMalformed);
      EXPECT_EQ(run.detail, detail);
      EXPECT_EQ(run.body, stream ? c.streamed : "");
      EXPECT_EQ(run.requests, 0u);
    }
  }
}

// A CR in a head or trailer section that no LF follows, where libhttp_parser took any byte for
// the LF: a 400 (RFC 9112 §2.2), and no request the section ended is delivered.
TEST(RequestBareCrTest, IsA400AtEverySplit) {
  const std::vector<LineCase> cases = {
      // An empty value's CR: X was taken for the LF, so Content-Length was a field.
      {"POST / HTTP/1.1\r\nHost: a\r\nFoo:\rXContent-Length: 3\r\n\r\nabc", ""},
      {std::string(
           "POST / HTTP/1.1\r\nHost: a\r\nFoo: \r\x00Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
           68),
       ""},
      // The head's last line: it ended there, and a second request began.
      {"GET / HTTP/1.1\r\nHost: a\r\n\rXGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", ""},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\rXabc", ""},
      // Found by the fuzzers: a body over max_body_size (413, or streamed), and an HTTP/1.0
      // request line complete in the same call as the bare CR (the error's version).
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\x18xxxx", ""},
      {"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\rX0\r\n\r\n", ""},
      {"GET /x H\rTP/1.0\r\n\r\n", ""},  // a CR in the version: no version known
      // The same in a trailer section, after a streamed piece.
      {kChunkedHead + "1\r\na\r\n0\r\n\rXGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", "a"},
      {kChunkedHead + "1\r\na\r\n0\r\nFoo:\rX\r\n\r\n", "a"},
  };
  expect_malformed_at_every_split(cases, kBareCr);
}

// Obsolete line folding in a request's head or trailers (RFC 9112 §5.2 lets a server reject
// it with a 400): libhttp_parser joins the lines, where a front end that does not fold sees an
// empty Transfer-Encoding and a line it drops, and frames no body. Whitespace at the start of
// the first field line is rejected the same way (RFC 9112 §2.2).
TEST(RequestObsFoldTest, IsA400AtEverySplit) {
  const std::vector<LineCase> cases = {
      {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", ""},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\t2\r\n\r\nab", ""},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", ""},
      {"GET / HTTP/1.1\nHost: a\nX: a\n\tb\n\n", ""},
      {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", ""},
      {"GET / HTTP/1.1\r\nHost:\r\n a\r\n\r\n", ""},
      {kChunkedHead + "1\r\na\r\n0\r\nT: 1\r\n 2\r\n\r\n", "a"},
  };
  expect_malformed_at_every_split(cases, internal::LineEndScan::kFold);
}

// A message that ends in a LF and the next one (or a body) starting with whitespace is no fold.
TEST(RequestObsFoldTest, WhitespaceAfterAHeadIsNotAFold) {
  const std::string body = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n b";
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "streamed" : "buffered");
    const Parse run = drive_every_split(body + "GET / HTTP/1.1\nHost: a\n\n", stream);
    EXPECT_FALSE(run.error.has_value()) << run.detail;
    EXPECT_EQ(run.body, " b");
    EXPECT_EQ(run.requests, 2u);
  }
  const Parse next = drive_every_split("GET / HTTP/1.1\nHost: a\n\n GET", false);
  ASSERT_TRUE(next.error.has_value());
  EXPECT_NE(next.detail, "obsolete line folding (obs-fold) in a header section");
  EXPECT_EQ(next.requests, 1u);
}

// The scan itself, whose fast path takes sixteen bytes at a time: a bare CR, and a fold (an LF
// followed by SP or HTAB), at every position of every length up to three blocks, whole and
// split in two, among CRLFs; a response's scan lets folds through.
TEST(LineEndScanTest, FindsTheFirstFaultAtEveryPositionAndSplit) {
  using internal::LineEndScan;
  struct Fault {
    const char* bytes;
    absl::string_view error;
  };
  const Fault faults[] = {
      {"\rX", LineEndScan::kBareCr}, {"\n ", LineEndScan::kFold}, {"\n\t", LineEndScan::kFold}};
  for (size_t size = 0; size <= 50; ++size) {
    std::string clean;
    while (clean.size() < size) clean += clean.size() % 5 == 3 ? "\r\n" : "a";
    clean.resize(size);
    if (!clean.empty() && clean.back() == '\r') clean.back() = 'b';
    LineEndScan whole(LineEndScan::Folds::kReject);
    EXPECT_EQ(whole.find(clean), absl::string_view::npos) << size;
    for (const Fault& fault : faults) {
      for (size_t bad = 0; bad + 1 < size; ++bad) {
        std::string input = clean;
        input.replace(bad, 2, fault.bytes);
        // The first fault: this one, unless a CR just before it is now bare instead.
        const bool cr_before = bad > 0 && input[bad - 1] == '\r' && input[bad] != '\n';
        const size_t at = cr_before ? bad : bad + 1;
        for (auto folds : {LineEndScan::Folds::kReject, LineEndScan::Folds::kAllow}) {
          const bool seen = cr_before || fault.error == LineEndScan::kBareCr ||
                            folds == LineEndScan::Folds::kReject;
          for (size_t split = 0; split <= size; ++split) {
            LineEndScan scan(folds);
            const absl::string_view in = input;
            const size_t first = scan.find(in.substr(0, split));
            const size_t second = scan.find(in.substr(split));
            const size_t found = first != absl::string_view::npos    ? first
                                 : second != absl::string_view::npos ? split + second
                                                                     : second;
            ASSERT_EQ(found, seen ? at : absl::string_view::npos)
                << "size " << size << " bad " << bad << " split " << split << " " << fault.error;
            if (seen) {
              EXPECT_EQ(scan.error(), cr_before ? LineEndScan::kBareCr : fault.error);
            }
          }
        }
      }
    }
  }
}

// The response parser: the same lines from an upstream (which a proxy would re-frame).
TEST(ResponseChunkLineTest, ControlBytesAndBareCrsAreMalformedAtEverySplit) {
  struct Case {
    std::string body;
    std::vector<std::string> events;
    const char* reason;
  };
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  const Case cases[] = {
      {"3;x\nabc\r\nXYZ\r\n0\r\n\r\n", {"head 200 OK"}, kControl},
      {std::string("3;ext=\0\r\nabc\r\n0\r\n\r\n", 19), {"head 200 OK"}, kControl},
      {"3\x7f\r\nabc\r\n0\r\n\r\n", {"head 200 OK"}, kControl},
      {"1\r\na\r\n2;\nbc\r\n0\r\n\r\n", {"head 200 OK", "body:a"}, kControl},
      {"1\r\na\r\n0;\x1f\r\n\r\n", {"head 200 OK", "body:a"}, kControl},
      {"2\rXab\r\n0\r\n\r\n", {"head 200 OK"}, kBareCr},
      {"3 5\r\nabc\r\n0\r\n\r\n", {"head 200 OK"}, kControl},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    testing::Outcome out = testing::run_every_split(HTTPMethod::kGet, head + c.body, false);
    EXPECT_EQ(out.status, absl::DataLossError(absl::StrCat("malformed response: ", c.reason)));
    EXPECT_EQ(out.events, c.events);
    EXPECT_FALSE(out.complete);
  }
}

TEST(ResponseChunkLineTest, ExtensionsTheGrammarAllowsAreSkipped) {
  testing::Outcome out =
      testing::run_every_split(HTTPMethod::kGet,
                               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "3;name=val;q=\"a\tb\"\t; x = \x80\xff\r\nabc\r\n0;last\r\n\r\n",
                               false);
  EXPECT_TRUE(out.status.ok()) << out.status;
  EXPECT_THAT(out.events, ElementsAre("head 200 OK", "body:abc", "complete"));
}

// A chunk size of 2^64 or more, and a chunk-size line longer than libhttp_parser's 80 KiB
// limit (a long extension): a 400 (request) or a malformed response, named as what they are
// (they were "invalid character in content-length header", and a 431 or "response head
// exceeds"). Whole and byte by byte; the long line is not run at every split (80 KiB).
TEST(ChunkLineLimitsTest, ASizeTooLargeOrALineTooLongIsNamed) {
  struct Case {
    std::string line;
    const char* detail;
  };
  const Case cases[] = {
      {"FFFFFFFFFFFFFFFFF\r\n", "chunk size too large"},
      {"1;" + std::string(100000, 'x') + "\r\n", "chunk-size line exceeds 81920 bytes"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.detail);
    for (bool stream : {false, true}) {
      const Parse whole = drive({kChunkedHead + c.line}, stream);
      std::vector<std::string> bytes;
      for (char b : kChunkedHead + c.line) bytes.emplace_back(1, b);
      Parse split = drive(bytes, stream);
      split.consumed = whole.consumed;
      EXPECT_EQ(split, whole);
      ASSERT_TRUE(whole.error.has_value());
      EXPECT_EQ(*whole.error, RequestError::kMalformed);
      EXPECT_EQ(error_status(*whole.error), 400);
      EXPECT_EQ(whole.detail, c.detail);
    }
    const std::string response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + c.line;
    const testing::Outcome out = testing::run_pieces(HTTPMethod::kGet, {response}, false);
    EXPECT_EQ(out.status, absl::DataLossError(absl::StrCat("malformed response: ", c.detail)));
    std::vector<std::string> bytes;
    for (char b : response) bytes.emplace_back(1, b);
    EXPECT_EQ(testing::run_pieces(HTTPMethod::kGet, bytes, false).status, out.status);
  }
}

}  // namespace
}  // namespace ioloop::net
