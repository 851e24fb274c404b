// TCPClient's Happy Eyeballs (RFC 8305 as Tornado's _Connector), with several addresses per
// family on loopback. Addresses of known outcome (testing/connect_targets.h): a refused port
// fails, a blackhole hangs, a listener succeeds and counts the connects that reached it, so
// each test can tell which addresses were tried. Timeouts only bound a test that would
// otherwise hang; no assertion depends on how long anything took.
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ioloop/net/tcp_client.h"
#include "testing/connect_targets.h"
#include "testing/loop_test_base.h"

namespace ioloop::net {
namespace {

using ioloop::testing::Blackhole;
using ioloop::testing::ClosedPort;
using ioloop::testing::Listener;

using ConnectResult = absl::StatusOr<std::shared_ptr<IOStream>>;

class HappyEyeballsTest : public ioloop::testing::LoopTestBase {
 protected:
  // Runs connect_to(addresses) to its end; counts the callbacks.
  ConnectResult connect(std::vector<SocketAddress> addresses, ConnectOptions options) {
    ConnectResult result;
    client_.connect_to(
        std::move(addresses),
        [&](ConnectResult s) {
          ++calls_;
          result = std::move(s);
          done();
        },
        options);
    EXPECT_TRUE(wait());
    return result;
  }

  static std::string peer(const ConnectResult& r) {
    return r.ok() ? (*r)->peer_address()->to_string() : r.status().ToString();
  }

  TCPClient client_{loop()};
  int calls_ = 0;
};

// Found by a review: connect_to() ignored ConnectOptions::family, so the IPv4 address (first,
// hence the primary family) won though only IPv6 was asked for. Only the family asked for is
// tried, and none of it given is InvalidArgument, as no address at all is.
TEST_F(HappyEyeballsTest, ConnectToTriesOnlyTheFamilyAskedFor) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  Listener v4("127.0.0.1"), v6("::1");
  ConnectOptions options;
  options.family = AF_INET6;
  ConnectResult result = connect({v4.address, v6.address}, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(peer(result), v6.address.to_string());
  EXPECT_EQ(v4.connections(), 0);
  (*result)->close();
  result = connect({v4.address}, options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
  EXPECT_EQ(result.status().message(), "connect_to: no address of the family asked for (AF_INET6)");
  EXPECT_EQ(v4.connections(), 0);
}

// Regression (defect 8), Tornado's test_two_families_immediate_failure: the first failure in
// the first family starts the second family at once (here long before the 60 s delay), and
// the next address of the first family is tried as well. Before the fix the second family
// waited for every first-family address to fail, so the second IPv6 listener never saw a
// connect.
TEST_F(HappyEyeballsTest, FirstFailureStartsTheSecondFamilyAndTheNextOfTheFirst) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  ClosedPort v4_refused("127.0.0.1");
  Listener v4_next("127.0.0.1"), v6_first("::1"), v6_second("::1");
  ConnectOptions options;
  options.happy_eyeballs_delay = absl::Seconds(60);
  ConnectResult result =
      connect({v4_refused.address, v4_next.address, v6_first.address, v6_second.address}, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(calls_, 1);
  // Both started together after the refusal; whichever completed first won.
  EXPECT_EQ(v4_next.connections(), 1);
  EXPECT_EQ(v6_first.connections(), 1);
  // The second family starts once: its next address only follows a failure of its own.
  EXPECT_EQ(v6_second.connections(), 0);
}

// Regression (defect 8): the first family's second address hangs; before the fix the
// second family waited for it (here: until the deadline).
TEST_F(HappyEyeballsTest, SecondFamilyDoesNotWaitForTheRestOfTheFirst) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  ClosedPort v4_refused("127.0.0.1");
  Blackhole v4_hang("127.0.0.1");
  Listener v6("::1");
  ConnectOptions options;
  options.happy_eyeballs_delay = absl::Seconds(60);
  options.timeout = absl::Seconds(5);
  ConnectResult result = connect({v4_refused.address, v4_hang.address, v6.address}, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(peer(result), v6.address.to_string());
}

// Each further failure in the first family moves the first family on, never the second.
TEST_F(HappyEyeballsTest, LaterFailuresOfTheFirstFamilyDoNotStartMoreOfTheSecond) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  ClosedPort v4_refused_a("127.0.0.1"), v4_refused_b("127.0.0.1");
  Blackhole v4_hang("127.0.0.1"), v6_hang("::1");
  Listener v6_second("::1");
  ConnectOptions options;
  options.happy_eyeballs_delay = absl::Seconds(60);
  options.timeout = absl::Milliseconds(300);  // everything started hangs: end the try
  ConnectResult result = connect({v4_refused_a.address, v4_refused_b.address, v4_hang.address,
                                  v6_hang.address, v6_second.address},
                                 options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded) << result.status();
  EXPECT_EQ(v6_second.connections(), 0);
}

// While the first address of the first family hangs, the second family starts when the
// delay expires; it then walks its own addresses in order past a failure. The first family
// had no failure, so its second address is never tried.
TEST_F(HappyEyeballsTest, DelayStartsTheSecondFamilyWhichTriesItsAddressesInOrder) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  Blackhole v4_hang("127.0.0.1");
  Listener v4_next("127.0.0.1");
  ClosedPort v6_refused("::1");
  Listener v6_second("::1"), v6_third("::1");
  ConnectOptions options;
  options.happy_eyeballs_delay = absl::Milliseconds(20);
  ConnectResult result = connect(
      {v4_hang.address, v4_next.address, v6_refused.address, v6_second.address, v6_third.address},
      options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(peer(result), v6_second.address.to_string());
  EXPECT_EQ(v4_next.connections(), 0);
  EXPECT_EQ(v6_second.connections(), 1);
  EXPECT_EQ(v6_third.connections(), 0);
}

TEST_F(HappyEyeballsTest, TriesTheSecondFamilyAtOnceWhenTheFirstFails) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  ClosedPort v4_closed("127.0.0.1");
  Listener v6("::1");
  // The delay is huge, so only the failure of the first family can start the second.
  ConnectOptions options;
  options.happy_eyeballs_delay = absl::Seconds(60);
  ConnectResult result = connect({v4_closed.address, v6.address}, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(peer(result), v6.address.to_string());
}

TEST_F(HappyEyeballsTest, StartsTheSecondFamilyAfterTheDelay) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  Blackhole v6_hang("::1");
  Listener v4("127.0.0.1");
  ConnectOptions options;
  options.happy_eyeballs_delay = absl::Milliseconds(50);
  const TimePoint start = loop().time();
  ConnectResult result = connect({v6_hang.address, v4.address}, options);
  const TimePoint finished = loop().time();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(peer(result), v4.address.to_string());
  // Not before the delay: the second family waited its turn (a lower bound, never flaky).
  EXPECT_GE(finished - start, std::chrono::milliseconds(50));
}

TEST_F(HappyEyeballsTest, EveryAddressRefusedReportsTheLastErrorOnce) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  ClosedPort v4_a("127.0.0.1"), v4_b("127.0.0.1"), v6_a("::1"), v6_b("::1");
  ConnectResult result =
      connect({v4_a.address, v4_b.address, v6_a.address, v6_b.address}, ConnectOptions{});
  EXPECT_EQ(calls_, 1);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_NE(result.status().message().find("refused"), absl::string_view::npos) << result.status();
  EXPECT_EQ(client_.pending(), 0u);
}

// Names go through the resolver: its answer is split by family, each kept in its order, and
// the family of its first address is the primary one (here IPv6).
TEST_F(HappyEyeballsTest, ResolvedAddressesAreSplitByFamilyInTheResolversOrder) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  ClosedPort v6_refused("::1");
  Listener v4("127.0.0.1"), v6_next("::1"), v4_next("127.0.0.1");
  const std::vector<SocketAddress> answer = {v6_refused.address, v4.address, v6_next.address,
                                             v4_next.address};
  Resolver resolver(1, [answer](const std::string&, uint16_t, int) {
    return absl::StatusOr<std::vector<SocketAddress>>(answer);
  });
  TCPClient client(loop(), &resolver);
  ConnectOptions options;
  options.happy_eyeballs_delay = absl::Seconds(60);
  ConnectResult result;
  client.connect(
      "dual-stack.test", 80,
      [&](ConnectResult s) {
        result = std::move(s);
        done();
      },
      options);
  ASSERT_TRUE(wait());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(v6_next.connections(), 1);
  EXPECT_EQ(v4.connections(), 1);
  EXPECT_EQ(v4_next.connections(), 0);
}

// One family only: its addresses are tried one after another, failures included.
TEST_F(HappyEyeballsTest, OneFamilyTriesItsAddressesInOrder) {
  ClosedPort refused_a, refused_b;
  Listener third, fourth;
  ConnectResult result =
      connect({refused_a.address, refused_b.address, third.address, fourth.address}, {});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(peer(result), third.address.to_string());
  EXPECT_EQ(third.connections(), 1);
  EXPECT_EQ(fourth.connections(), 0);
}

}  // namespace
}  // namespace ioloop::net
