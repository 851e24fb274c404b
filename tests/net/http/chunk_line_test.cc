// File: tests/net/http/chunk_line_test.cc
// Chunk-size lines in both parsers (net/src/http/chunk_line_guard.h). libhttp_parser, built
// non-strict, skips any byte but CR in a chunk extension and takes any byte after the line's
// CR for its LF, so "3;x\nabc\r\nXYZ" was the chunk "XYZ" where a front end ending lines at a
// bare LF reads "abc" (chunk-extension smuggling). Each case runs whole, split in two at every
// position and one byte at a time, buffered and streamed: the same error, at the same stream
// position, after the same body bytes.
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
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
  return run;
}

// The outcome of `input` fed whole, asserting that every split gives the same.
Parse drive_every_split(const std::string& input, bool stream) {
  const Parse whole = drive({input}, stream);
  for (size_t k = 0; k <= input.size(); ++k) {
    EXPECT_EQ(drive({input.substr(0, k), input.substr(k)}, stream), whole) << "split at " << k;
    if (::testing::Test::HasFailure()) return whole;  // one report, not hundreds
  }
  std::vector<std::string> bytes;
  for (char c : input) bytes.emplace_back(1, c);
  EXPECT_EQ(drive(bytes, stream), whole) << "one byte at a time";
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
        BadLine{"LfInExtensionOfAChunkTooLarge", "FFFFFF;\n\r\n", 7, "", kControl}),
    [](const ::testing::TestParamInfo<BadLine>& param) { return std::string(param.param.name); });

TEST(RequestChunkLineTest, ExtensionsTheGrammarAllowsAreSkipped) {
  const std::string input = kChunkedHead +
                            "3;name=val;q=\"a\tb\"\t; x = \x80\xff\r\nabc\r\n"
                            "2 ;y\r\nde\r\n0;last\r\nT: 1\r\n\r\n"
                            "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "streamed" : "buffered");
    const Parse run = drive_every_split(input, stream);
    EXPECT_FALSE(run.error.has_value()) << run.detail;
    EXPECT_EQ(run.body, "abcde");
    EXPECT_EQ(run.requests, 2u);
    EXPECT_EQ(run.consumed, input.size());
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

}  // namespace
}  // namespace ioloop::net
