// File: tests/net/http/http_forwarding_test.cc
#include "ioloop/net/http/http_forwarding.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace ioloop::net {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

HTTPHeaders make(const Fields& fields) {
  HTTPHeaders h;
  for (const auto& [name, value] : fields) h.add(name, value);
  return h;
}

Fields fields(const HTTPHeaders& h) { return Fields(h.begin(), h.end()); }

TEST(HTTPForwardingTest, RemovesEveryHopByHopFieldAndWhatConnectionNames) {
  HTTPHeaders h = make({{"Host", "example.com"},
                        {"connection", "keep-alive, X-Secret ,Upgrade"},
                        {"Keep-Alive", "timeout=5"},
                        {"X-Secret", "1"},
                        {"Proxy-Connection", "keep-alive"},
                        {"TE", "trailers"},
                        {"Trailer", "X-Sum"},
                        {"Transfer-Encoding", "chunked"},
                        {"Upgrade", "websocket"},
                        {"Proxy-Authenticate", "Basic"},
                        {"Proxy-Authorization", "Basic Zm9v"},
                        {"Connection", "x-other"},
                        {"X-Other", "2"},
                        {"Accept", "*/*"}});
  EXPECT_EQ(remove_hop_by_hop_fields(h), 12u);
  EXPECT_EQ(fields(h), (Fields{{"Host", "example.com"}, {"Accept", "*/*"}}));
}

// Found by a review: Connection's tokens were split as a list of quoted-strings and comments,
// so "x(" hid what followed it, and the field it named went on to the next hop.
TEST(HTTPForwardingTest, ConnectionIsATokenListWhateverItsBytes) {
  HTTPHeaders h = make({{"Host", "example.com"},
                        {"Connection", "x(, Authorization"},
                        {"Authorization", "Basic Zm9v"},
                        {"Connection", "y\", X-Secret"},
                        {"X-Secret", "1"},
                        {"Accept", "*/*"}});
  EXPECT_EQ(remove_hop_by_hop_fields(h), 4u);
  EXPECT_EQ(fields(h), (Fields{{"Host", "example.com"}, {"Accept", "*/*"}}));
}

TEST(HTTPForwardingTest, EndToEndFieldsAreKeptInOrder) {
  HTTPHeaders h = make({{"Host", "a"}, {"Content-Length", "3"}, {"X-A", "1"}, {"X-A", "2"}});
  EXPECT_EQ(remove_hop_by_hop_fields(h), 0u);
  EXPECT_EQ(fields(h),
            (Fields{{"Host", "a"}, {"Content-Length", "3"}, {"X-A", "1"}, {"X-A", "2"}}));
}

TEST(HTTPForwardingTest, CopyOfEndToEndFieldsKeepsWhatRemovalKeeps) {
  const HTTPHeaders from = make({{"Host", "example.com"},
                                 {"connection", "keep-alive, X-Secret ,Upgrade"},
                                 {"Keep-Alive", "timeout=5"},
                                 {"X-Secret", "1"},
                                 {"TE", "trailers"},
                                 {"Transfer-Encoding", "chunked"},
                                 {"Connection", "x-other"},
                                 {"X-Other", "2"},
                                 {"Accept", "*/*"},
                                 {"x-a", "1"},
                                 {"X-A", "2"}});
  HTTPHeaders removed = from;
  const size_t removed_count = remove_hop_by_hop_fields(removed);
  // Appended after what `to` already holds, which is left alone.
  HTTPHeaders to = make({{"X-First", "0"}});
  EXPECT_EQ(copy_end_to_end_fields(from, to, 2), removed_count);
  EXPECT_EQ(removed_count, 7u);
  EXPECT_EQ(fields(to), (Fields{{"X-First", "0"},
                                {"Host", "example.com"},
                                {"Accept", "*/*"},
                                {"x-a", "1"},
                                {"X-A", "2"}}));
  const Fields copied = fields(to);
  EXPECT_EQ(fields(removed), Fields(copied.begin() + 1, copied.end()));
  EXPECT_EQ(from.size(), 11u);  // the source is untouched
}

// Host is end-to-end and mandatory (RFC 9112 §3.2): a Connection token naming it is ignored,
// as nginx and HAProxy do. Removing it let a client make http_proxy's HTTPClient send the
// upstream's internal authority as Host instead (found by a differential probe).
TEST(HTTPForwardingTest, ConnectionNamingHostDoesNotRemoveHost) {
  const HTTPHeaders from = make(
      {{"Host", "h.test"}, {"Connection", "host, X-Secret"}, {"X-Secret", "1"}, {"Accept", "*/*"}});
  HTTPHeaders removed = from;
  EXPECT_EQ(remove_hop_by_hop_fields(removed), 2u);
  EXPECT_EQ(fields(removed), (Fields{{"Host", "h.test"}, {"Accept", "*/*"}}));
  HTTPHeaders to;
  EXPECT_EQ(copy_end_to_end_fields(from, to), 2u);
  EXPECT_EQ(fields(to), (Fields{{"Host", "h.test"}, {"Accept", "*/*"}}));
}

TEST(HTTPForwardingTest, CopyLeavesOutTheFieldNamedToSkipInAnyCase) {
  const HTTPHeaders from = make({{"Date", "Fri, 04 Dec 2026 15:00:00 GMT"},
                                 {"Connection", "close"},
                                 {"Content-Length", "3"},
                                 {"DATE", "again"},
                                 {"X-Date", "kept"}});
  HTTPHeaders to;
  EXPECT_EQ(copy_end_to_end_fields(from, to, 0, "date"), 3u);
  EXPECT_EQ(fields(to), (Fields{{"Content-Length", "3"}, {"X-Date", "kept"}}));
}

TEST(HTTPForwardingTest, ForwardedForCombinesEarlierFieldsInOrderThenTheClient) {
  HTTPHeaders h = make({{"X-Forwarded-For", "192.0.2.1, 192.0.2.2"},
                        {"Host", "a"},
                        {"x-forwarded-for", " 192.0.2.3 ,"}});
  append_forwarded_for(h, "127.0.0.1");
  EXPECT_EQ(fields(h), (Fields{{"Host", "a"},
                               {"X-Forwarded-For", "192.0.2.1, 192.0.2.2, 192.0.2.3, 127.0.0.1"}}));
}

TEST(HTTPForwardingTest, ForwardedForWithoutEarlierFieldsIsTheClientAlone) {
  HTTPHeaders h;
  append_forwarded_for(h, "2001:db8::1");
  EXPECT_EQ(fields(h), (Fields{{"X-Forwarded-For", "2001:db8::1"}}));
}

TEST(HTTPForwardingTest, ViaNamesTheReceivedProtocolVersion) {
  HTTPHeaders h11;
  append_via(h11, 1, "ioloop");
  EXPECT_EQ(fields(h11), (Fields{{"Via", "1.1 ioloop"}}));

  HTTPHeaders h10 = make({{"Via", "1.0 fred, 1.1 p.example.net"}});
  append_via(h10, 0, "ioloop");
  EXPECT_EQ(fields(h10), (Fields{{"Via", "1.0 fred, 1.1 p.example.net, 1.0 ioloop"}}));

  // A comment may hold commas (RFC 9110 §7.6.3): it was split and rejoined as "(a, b)".
  HTTPHeaders commented = make({{"Via", "1.1 proxy (a,b)"}, {"Via", "1.0 q (x,,y)"}});
  append_via(commented, 1, "ioloop");
  EXPECT_EQ(fields(commented), (Fields{{"Via", "1.1 proxy (a,b), 1.0 q (x,,y), 1.1 ioloop"}}));
}

}  // namespace
}  // namespace ioloop::net
