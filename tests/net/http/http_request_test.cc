// File: tests/net/http/http_request_test.cc
#include "ioloop/net/http/http_request.h"

#include "gtest/gtest.h"

namespace ioloop::net {
namespace {

HTTPRequest make(std::string target) {
  HTTPRequest r;
  r.set_target(std::move(target));
  return r;
}

TEST(HTTPRequestTest, SplitsOriginFormTarget) {
  EXPECT_EQ(make("/a/b?x=1&y=2").path(), "/a/b");
  EXPECT_EQ(make("/a/b?x=1&y=2").query(), "x=1&y=2");
  EXPECT_EQ(make("/a/b").query(), "");
  EXPECT_EQ(make("/a?").path(), "/a");
  EXPECT_EQ(make("/a?").query(), "");
  EXPECT_EQ(make("/a?q#frag").query(), "q");
  EXPECT_EQ(make("/a#frag").path(), "/a");
  EXPECT_EQ(make("/a?x=/b?c").path(), "/a");
  EXPECT_EQ(make("/a?x=/b?c").query(), "x=/b?c");
}

TEST(HTTPRequestTest, SplitsAbsoluteAuthorityAndAsteriskForms) {
  EXPECT_EQ(make("http://example.com/a/b?q=1").path(), "/a/b");
  EXPECT_EQ(make("http://example.com/a/b?q=1").query(), "q=1");
  EXPECT_EQ(make("http://example.com").path(), "/");
  EXPECT_EQ(make("http://example.com?q").path(), "/");
  EXPECT_EQ(make("http://example.com?q").query(), "q");
  EXPECT_EQ(make("example.com:443").path(), "example.com:443");
  EXPECT_EQ(make("*").path(), "*");
  EXPECT_EQ(make("").path(), "");
}

TEST(HTTPRequestTest, MethodNamesMapToTheEnum) {
  HTTPRequest r;
  r.set_method("HEAD");
  EXPECT_EQ(r.method(), "HEAD");
  EXPECT_EQ(r.method_id(), HTTPMethod::kHead);
  r.set_method("PATCH");
  EXPECT_EQ(r.method_id(), HTTPMethod::kPatch);
  r.set_method("get");  // methods are case-sensitive
  EXPECT_EQ(r.method_id(), HTTPMethod::kOther);
  r.set_method("PROPFIND");
  EXPECT_EQ(r.method_id(), HTTPMethod::kOther);
  EXPECT_EQ(http_method_from_string("OPTIONS"), HTTPMethod::kOptions);
}

TEST(HTTPRequestTest, VersionString) {
  HTTPRequest r;
  r.set_version(1, 0);
  EXPECT_EQ(r.version_string(), "HTTP/1.0");
  r.set_version(1, 1);
  EXPECT_EQ(r.version_string(), "HTTP/1.1");
}

TEST(HTTPRequestTest, KeepAliveRules) {
  HTTPRequest r;
  r.set_method("GET");
  r.set_version(1, 1);
  EXPECT_TRUE(r.keep_alive());
  r.mutable_headers().add("Connection", "Close");
  EXPECT_FALSE(r.keep_alive());

  r.mutable_headers().clear();
  r.set_version(1, 0);
  EXPECT_FALSE(r.keep_alive());
  r.mutable_headers().add("Connection", "Keep-Alive");
  EXPECT_TRUE(r.keep_alive());
  r.mutable_headers().add("Transfer-Encoding", "chunked");
  EXPECT_FALSE(r.keep_alive());

  r.mutable_headers().clear();
  r.set_version(2, 0);
  EXPECT_FALSE(r.keep_alive());

  r.set_version(1, 1);
  r.set_method("CONNECT");
  EXPECT_FALSE(r.keep_alive());
}

TEST(HTTPRequestTest, ExpectsContinueOnlyForHttp11) {
  HTTPRequest r;
  r.set_version(1, 1);
  EXPECT_FALSE(r.expects_continue());
  r.mutable_headers().add("Expect", "100-CONTINUE");
  EXPECT_TRUE(r.expects_continue());
  r.set_version(1, 0);
  EXPECT_FALSE(r.expects_continue());
}

TEST(HTTPRequestTest, EqualityComparesEveryField) {
  HTTPRequest a = make("/x");
  HTTPRequest b = make("/x");
  EXPECT_EQ(a, b);
  b.set_body("y");
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace ioloop::net
