#include "ioloop/net/http/http_response.h"

#include "gtest/gtest.h"

namespace ioloop::net {
namespace {

TEST(ReasonPhraseTest, StandardCodes) {
  EXPECT_EQ(reason_phrase(200), "OK");
  EXPECT_EQ(reason_phrase(100), "Continue");
  EXPECT_EQ(reason_phrase(400), "Bad Request");
  EXPECT_EQ(reason_phrase(404), "Not Found");
  EXPECT_EQ(reason_phrase(408), "Request Timeout");
  EXPECT_EQ(reason_phrase(413), "Content Too Large");
  EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reason_phrase(500), "Internal Server Error");
  EXPECT_EQ(reason_phrase(501), "Not Implemented");
  EXPECT_EQ(reason_phrase(505), "HTTP Version Not Supported");
  EXPECT_EQ(reason_phrase(305), "Use Proxy");  // deprecated (RFC 9110 §15.4.6), still listed
  EXPECT_EQ(reason_phrase(799), "Unknown");
}

// Codes in IANA's registry outside RFC 9110 (WebDAV, RFC 6585, RFC 7725, RFC 8470) are sent by
// real servers; a handler that sets one without a reason must not send "Unknown".
TEST(ReasonPhraseTest, RegisteredCodesBeyondRfc9110) {
  EXPECT_EQ(reason_phrase(207), "Multi-Status");
  EXPECT_EQ(reason_phrase(208), "Already Reported");
  EXPECT_EQ(reason_phrase(226), "IM Used");
  EXPECT_EQ(reason_phrase(423), "Locked");
  EXPECT_EQ(reason_phrase(424), "Failed Dependency");
  EXPECT_EQ(reason_phrase(425), "Too Early");
  EXPECT_EQ(reason_phrase(451), "Unavailable For Legal Reasons");
  EXPECT_EQ(reason_phrase(506), "Variant Also Negotiates");
  EXPECT_EQ(reason_phrase(507), "Insufficient Storage");
  EXPECT_EQ(reason_phrase(508), "Loop Detected");
  EXPECT_EQ(reason_phrase(511), "Network Authentication Required");
  EXPECT_EQ(reason_phrase(306), "Unknown");  // RFC 9110 §15.4.7: unused
}

TEST(HTTPResponseWriterTest, DefaultsToEmpty200) {
  HTTPResponseWriter w;
  EXPECT_EQ(w.status(), 200);
  EXPECT_EQ(w.reason(), "OK");
  EXPECT_EQ(w.body(), "");
  EXPECT_FALSE(w.close_requested());
}

TEST(HTTPResponseWriterTest, CustomReasonIsClearedBySetStatus) {
  HTTPResponseWriter w;
  w.set_status(404, "Nothing Here");
  EXPECT_EQ(w.reason(), "Nothing Here");
  w.set_status(404);
  EXPECT_EQ(w.reason(), "Not Found");
}

TEST(HTTPResponseWriterTest, HeadersKeepOrderAndSetReplaces) {
  HTTPResponseWriter w;
  w.add_header("X-A", "1");
  w.add_header("Set-Cookie", "a=1");
  w.add_header("Set-Cookie", "b=2");
  w.set_header("x-a", "3");
  EXPECT_EQ(w.headers().get("X-A"), "3");
  const std::vector<absl::string_view> cookies = w.headers().get_all("set-cookie");
  ASSERT_EQ(cookies.size(), 2u);
  EXPECT_EQ(cookies[0], "a=1");
  EXPECT_EQ(cookies[1], "b=2");
}

TEST(HTTPResponseWriterTest, BodyWriteAppendsAndSetBodyReplaces) {
  HTTPResponseWriter w;
  w.write("Hello, ");
  w.write("world!");
  EXPECT_EQ(w.body(), "Hello, world!");
  w.set_body("x");
  EXPECT_EQ(w.body(), "x");
}

TEST(HTTPResponseWriterTest, ResetForgetsEverything) {
  HTTPResponseWriter w;
  w.set_status(503, "Busy");
  w.add_header("A", "b");
  w.set_body("body");
  w.set_close();
  w.reset();
  EXPECT_EQ(w.status(), 200);
  EXPECT_EQ(w.reason(), "OK");
  EXPECT_FALSE(w.headers().get("A").has_value());
  EXPECT_EQ(w.body(), "");
  EXPECT_FALSE(w.close_requested());
}

}  // namespace
}  // namespace ioloop::net
