// File: tests/net/http/field_values_test.cc
// Control bytes in field values, in both parsers. libhttp_parser checks every byte of a value
// but its first (the byte after the colon and any whitespace), so "X: \x00evil" reached
// handlers, and through http_proxy the client of a hostile upstream (RFC 9110 §5.5: a recipient
// must reject a NUL, CR or LF in a field value or replace it; other control bytes are not
// field-vchar either). Each case runs whole, split in two at every position and one byte at a
// time: the same error, so that it does not depend on where a read ended.
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ioloop/net/http/request_parser.h"
#include "ioloop/net/http/response_parser.h"
#include "response_parser_testing.h"

namespace ioloop::net {
namespace {

struct RequestOutcome {
  std::optional<RequestError> error;
  std::string detail;
  size_t requests = 0;
  bool operator==(const RequestOutcome&) const = default;
};

RequestOutcome feed_request(const std::vector<std::string>& pieces) {
  RequestParser parser;
  RequestParser::Result result;
  for (const std::string& piece : pieces) parser.feed(piece, result);
  return {parser.error(), parser.error_detail(), result.requests.size()};
}

RequestOutcome feed_request_every_split(const std::string& input) {
  const RequestOutcome whole = feed_request({input});
  for (size_t k = 0; k <= input.size(); ++k) {
    EXPECT_EQ(feed_request({input.substr(0, k), input.substr(k)}), whole) << "split " << k;
  }
  std::vector<std::string> bytes;
  for (char c : input) bytes.emplace_back(1, c);
  EXPECT_EQ(feed_request(bytes), whole) << "one byte at a time";
  return whole;
}

// The first byte of a value, then a byte in the middle of one: each control byte but HTAB.
std::vector<std::string> values_with_a_control_byte() {
  std::vector<std::string> values;
  for (int c = 0; c < 0x20; ++c) {
    if (c == '\t' || c == '\r' || c == '\n') continue;  // whitespace, or the line's end
    values.push_back(std::string(1, static_cast<char>(c)) + "evil");
    values.push_back("a" + std::string(1, static_cast<char>(c)) + "b");
  }
  values.push_back(
      "\x7f"
      "evil");
  values.push_back(
      "a\x7f"
      "b");
  return values;
}

TEST(RequestFieldValueTest, AControlByteAnywhereInAValueIsA400AtEverySplit) {
  for (const std::string& value : values_with_a_control_byte()) {
    for (const char* ows : {"", " ", " \t "}) {
      const std::string input =
          absl::StrCat("GET / HTTP/1.1\r\nHost: h\r\nX-A:", ows, value, "\r\n\r\n");
      SCOPED_TRACE(absl::CEscape(input));
      const RequestOutcome out = feed_request_every_split(input);
      ASSERT_TRUE(out.error.has_value());
      EXPECT_EQ(*out.error, RequestError::kMalformed);
      EXPECT_EQ(out.detail, "invalid character in header");
      EXPECT_EQ(out.requests, 0u);
    }
  }
  // In the Host value too (which is checked apart).
  const RequestOutcome host = feed_request_every_split("GET / HTTP/1.1\r\nHost: \x01h\r\n\r\n");
  EXPECT_EQ(host.error, RequestError::kMalformed);
}

TEST(RequestFieldValueTest, VisibleBytesObsTextAndInnerWhitespaceAreKept) {
  RequestParser parser;
  const RequestParser::Result result =
      parser.feed("GET / HTTP/1.1\r\nHost: h\r\nX-A: \x80\xff a\tb ~\r\nX-B:\r\n\r\n");
  ASSERT_FALSE(result.error.has_value()) << parser.error_detail();
  ASSERT_EQ(result.requests.size(), 1u);
  EXPECT_EQ(result.requests[0].headers().get("X-A"), "\x80\xff a\tb ~");
  EXPECT_EQ(result.requests[0].headers().get("X-B"), "");
}

// Found by a black-box probe: trailer field lines skipped the name and first-byte checks of
// the header section, so "X : y" (RFC 9112 §5.1: a server MUST answer 400) and "X: \0y" were
// accepted there, and the request after them served.
TEST(RequestFieldValueTest, TrailerFieldLinesAreCheckedAsHeaderFieldLinesAre) {
  const std::string head =
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n";
  struct Case {
    std::string trailer;
    std::string detail;
  };
  const std::vector<Case> cases = {
      {"X : y", "invalid character in header field name"},
      {"X Y: y", "invalid character in header field name"},
      {std::string("X: \0y", 5), "invalid character in header"},
      {"X: \x01y", "invalid character in header"},
      {"X: \x7fy", "invalid character in header"},
  };
  for (const Case& c : cases) {
    const std::string input = absl::StrCat(head, c.trailer, "\r\n\r\n");
    SCOPED_TRACE(absl::CEscape(input));
    const RequestOutcome out = feed_request_every_split(input);
    ASSERT_TRUE(out.error.has_value());
    EXPECT_EQ(*out.error, RequestError::kMalformed);
    EXPECT_EQ(out.detail, c.detail);
    EXPECT_EQ(out.requests, 0u);
  }
  const RequestOutcome fine = feed_request_every_split(absl::StrCat(head, "X: y\t~\r\n\r\n"));
  EXPECT_FALSE(fine.error.has_value()) << fine.detail;
  EXPECT_EQ(fine.requests, 1u);
}

TEST(ResponseFieldValueTest, AControlByteAnywhereInAValueIsMalformedAtEverySplit) {
  for (const std::string& value : values_with_a_control_byte()) {
    for (const char* ows : {"", " ", " \t "}) {
      const std::string input =
          absl::StrCat("HTTP/1.1 200 OK\r\nX-A:", ows, value, "\r\nContent-Length: 0\r\n\r\n");
      SCOPED_TRACE(absl::CEscape(input));
      const testing::Outcome out = testing::run_every_split(HTTPMethod::kGet, input, false);
      EXPECT_EQ(out.status, absl::DataLossError("malformed response: invalid character in header"));
      EXPECT_TRUE(out.events.empty());
    }
  }
}

TEST(ResponseFieldValueTest, VisibleBytesObsTextAndInnerWhitespaceAreKept) {
  const testing::Outcome out = testing::run_every_split(
      HTTPMethod::kGet, "HTTP/1.1 200 OK\r\nX-A: \x80\xff a\tb ~\r\nContent-Length: 0\r\n\r\n",
      false);
  ASSERT_TRUE(out.status.ok()) << out.status;
  ASSERT_TRUE(out.head.has_value());
  EXPECT_EQ(out.head->headers.get("X-A"), "\x80\xff a\tb ~");
}

}  // namespace
}  // namespace ioloop::net
