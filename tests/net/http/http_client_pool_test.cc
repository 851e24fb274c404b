// HTTPClient's pool and its FIFO queue beyond max_connections_per_host, when connections fail.
// (Reuse, the limit and the queue with a working server: http_client_test.cc.)
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "http_client_testing.h"
#include "ioloop/net/http/http_client.h"

namespace ioloop::net {
namespace {

// Found by a review: a failed connect ran its fetch's callback before the freed slot went to
// the queue, so a fetch started from that callback took the slot ahead of one already queued
// (a callback that retries on failure could starve the queue for ever).
TEST_F(HTTPClientTest, AFailedConnectsSlotGoesToTheQueueFirst) {
  auto raw = raw_server();
  const std::string dead = raw->url();
  raw.reset();  // nothing listens there any more
  HTTPClientOptions options;
  options.max_connections_per_host = 1;
  HTTPClient client(loop(), options);
  std::vector<std::string> order;
  auto request = [&](const std::string& name) {
    HTTPClientRequest r;
    r.url = dead + name;
    return r;
  };
  client.fetch(request("a"), [&](absl::StatusOr<HTTPClientResponse> r) {
    EXPECT_FALSE(r.ok());
    order.push_back("a");
    client.fetch(request("c"), [&](absl::StatusOr<HTTPClientResponse> c) {
      EXPECT_FALSE(c.ok());
      order.push_back("c");
      check();
    });
  });
  client.fetch(request("b"), [&](absl::StatusOr<HTTPClientResponse> r) {
    EXPECT_FALSE(r.ok());
    order.push_back("b");
    check();
  });
  ASSERT_TRUE(wait_for([&] { return order.size() == 3; }));
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c"}));
}

}  // namespace
}  // namespace ioloop::net
