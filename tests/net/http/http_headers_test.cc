// File: tests/net/http/http_headers_test.cc
#include "ioloop/net/http/http_headers.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ioloop::net {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(HTTPHeadersTest, KeepsOrderAndDuplicates) {
  HTTPHeaders h;
  h.add("Host", "a");
  h.add("Accept", "*/*");
  h.add("host", "b");
  EXPECT_THAT(h, ElementsAre(Pair("Host", "a"), Pair("Accept", "*/*"), Pair("host", "b")));
  EXPECT_EQ(h.size(), 3u);
  EXPECT_EQ(h[1].first, "Accept");
}

TEST(HTTPHeadersTest, LookupIgnoresCase) {
  HTTPHeaders h;
  h.add("Content-Type", "text/plain");
  h.add("X-A", "1");
  h.add("x-a", "2");
  EXPECT_EQ(h.get("content-type"), "text/plain");
  EXPECT_EQ(h.get("CONTENT-TYPE"), "text/plain");
  EXPECT_EQ(h.get("Content-Length"), std::nullopt);
  EXPECT_EQ(h.get("X-a"), "1");  // the first one
  EXPECT_THAT(h.get_all("X-A"), ElementsAre("1", "2"));
  EXPECT_TRUE(h.get_all("missing").empty());
  EXPECT_EQ(h.count("x-A"), 2u);
  EXPECT_TRUE(h.contains("x-a"));
  EXPECT_FALSE(h.contains("x-b"));
}

TEST(HTTPHeadersTest, SetReplacesEveryFieldOfThatName) {
  HTTPHeaders h;
  h.add("A", "1");
  h.add("B", "2");
  h.add("a", "3");
  h.set("A", "4");
  EXPECT_THAT(h, ElementsAre(Pair("B", "2"), Pair("A", "4")));
  EXPECT_EQ(h.remove("b"), 1u);
  EXPECT_EQ(h.remove("b"), 0u);
  EXPECT_THAT(h, ElementsAre(Pair("A", "4")));
  h.clear();
  EXPECT_TRUE(h.empty());
}

TEST(HTTPHeadersTest, HasTokenReadsCommaSeparatedLists) {
  HTTPHeaders h;
  h.add("Connection", "keep-alive , Upgrade");
  h.add("connection", "\tClose");
  EXPECT_TRUE(h.has_token("Connection", "close"));
  EXPECT_TRUE(h.has_token("CONNECTION", "upgrade"));
  EXPECT_TRUE(h.has_token("Connection", "Keep-Alive"));
  EXPECT_FALSE(h.has_token("Connection", "keep"));
  EXPECT_FALSE(h.has_token("Upgrade", "close"));
}

TEST(HTTPHeadersTest, SplitHeaderListDropsEmptyElements) {
  EXPECT_THAT(split_header_list(" gzip ,, chunked,"), ElementsAre("gzip", "chunked"));
  EXPECT_THAT(split_header_list(""), ElementsAre());
  EXPECT_THAT(split_header_list(" , "), ElementsAre());
  EXPECT_THAT(split_header_list("a"), ElementsAre("a"));
}

}  // namespace
}  // namespace ioloop::net
