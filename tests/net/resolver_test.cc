#include "ioloop/net/resolver.h"

#include <netinet/in.h>

#include <atomic>
#include <thread>

#include "gtest/gtest.h"
#include "testing/loop_test_base.h"

namespace ioloop::net {
namespace {

class ResolverTest : public ioloop::testing::LoopTestBase {};

TEST_F(ResolverTest, NumericAddressSkipsThePool) {
  Resolver resolver(1);
  absl::StatusOr<std::vector<SocketAddress>> got;
  resolver.resolve(loop(), "127.0.0.1", 8080, AF_UNSPEC, [&](auto result) {
    got = std::move(result);
    done();
  });
  ASSERT_TRUE(wait());
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].to_string(), "127.0.0.1:8080");
}

TEST_F(ResolverTest, Ipv6NumericAddress) {
  Resolver resolver(1);
  absl::StatusOr<std::vector<SocketAddress>> got;
  resolver.resolve(loop(), "::1", 80, AF_UNSPEC, [&](auto result) {
    got = std::move(result);
    done();
  });
  ASSERT_TRUE(wait());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)[0].to_string(), "[::1]:80");
}

TEST_F(ResolverTest, LocalhostResolvesOnAThreadAndPostsBackToTheLoopThread) {
  Resolver resolver(2);
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id callback_thread;
  absl::StatusOr<std::vector<SocketAddress>> got;
  resolver.resolve(loop(), "localhost", 5000, AF_INET, [&](auto result) {
    callback_thread = std::this_thread::get_id();
    got = std::move(result);
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(callback_thread, loop_thread);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_FALSE(got->empty());
  EXPECT_EQ((*got)[0].to_string(), "127.0.0.1:5000");
}

TEST_F(ResolverTest, UnknownNameIsNotFound) {
  Resolver resolver(1);
  absl::StatusOr<std::vector<SocketAddress>> got;
  // .invalid is reserved (RFC 6761) and never resolves.
  resolver.resolve(loop(), "no-such-host.invalid", 80, AF_UNSPEC, [&](auto result) {
    got = std::move(result);
    done();
  });
  ASSERT_TRUE(wait(absl::Seconds(30)));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(got.status().message().find("no-such-host.invalid"), absl::string_view::npos);
}

TEST_F(ResolverTest, LoopKeepsRunningWhileALookupIsInFlight) {
  Resolver resolver(1);
  int ticks = 0;
  bool resolved = false;
  // A callback that re-adds itself proves the loop iterates; the lookup result arrives
  // through the same loop.
  std::function<void()> tick = [&] {
    ++ticks;
    if (!resolved) loop().add_callback([&] { tick(); });
  };
  loop().add_callback([&] { tick(); });
  resolver.resolve(loop(), "localhost", 1, AF_UNSPEC, [&](auto) {
    resolved = true;
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_GT(ticks, 0);
}

TEST_F(ResolverTest, DestroyingCancelsQueuedLookups) {
  int cancelled = 0, completed = 0;
  {
    Resolver resolver(1);
    for (int i = 0; i < 50; ++i) {
      resolver.resolve(loop(), "localhost", 1, AF_UNSPEC, [&](auto result) {
        if (!result.ok() && result.status().code() == absl::StatusCode::kCancelled) {
          ++cancelled;
        } else {
          ++completed;
        }
      });
    }
  }
  loop().add_callback([&] { loop().add_callback([&] { done(); }); });
  ASSERT_TRUE(wait());
  // Every callback ran exactly once, whether it was resolved or cancelled.
  EXPECT_EQ(cancelled + completed, 50);
}

}  // namespace
}  // namespace ioloop::net
