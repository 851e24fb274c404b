// TCPClient: lifetime against its loop and resolver, exceptions from user callbacks, option
// validation. (Connecting itself: tcp_client_test.cc; Happy Eyeballs:
// tcp_client_happy_eyeballs_test.cc.)
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ioloop/net/tcp_client.h"
#include "testing/connect_targets.h"
#include "testing/gated_lookup.h"
#include "testing/loop_test_base.h"

namespace ioloop::net {
namespace {

using ioloop::testing::ClosedPort;
using ioloop::testing::GatedLookup;
using ioloop::testing::Listener;

using ConnectResult = absl::StatusOr<std::shared_ptr<IOStream>>;

class TCPClientLifetimeTest : public ioloop::testing::LoopTestBase {};

// Regression (defect 2): destroying a client left its lookups queued; every one of them was
// still looked up (and its result posted) after the client was gone.
TEST_F(TCPClientLifetimeTest, DestroyingTheClientCancelsItsQueuedLookups) {
  GatedLookup gate;
  Resolver resolver(2, gate.lookup());
  int cancelled = 0;
  {
    TCPClient client(loop(), &resolver);
    for (int i = 0; i < 2000; ++i) {
      client.connect(absl::StrCat("host", i, ".test"), 80, [&](ConnectResult s) {
        if (s.status().code() == absl::StatusCode::kCancelled) ++cancelled;
      });
    }
    gate.wait_started(2);  // two in flight, 1,998 queued
  }
  EXPECT_EQ(cancelled, 2000);
  gate.open();
  // The queue is FIFO: once this probe has been looked up, everything queued before it has
  // been taken off the queue, looked up or not.
  absl::StatusOr<std::vector<SocketAddress>> probe;
  resolver.resolve(loop(), "probe.test", 1, AF_UNSPEC, [&](auto result) {
    probe = std::move(result);
    done();
  });
  ASSERT_TRUE(wait());
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(gate.started(), 3) << "lookups of a destroyed client were still run";
  EXPECT_EQ(gate.hosts().back(), "probe.test");
}

// Regression (defect 2): client and loop destroyed while 2,000 lookups are queued and two
// are in flight; the lookups finish afterwards. ASan: nothing may touch either.
TEST(TCPClientLoopLifetimeTest, DestroyingClientAndLoopWithTwoThousandLookupsQueued) {
  GatedLookup gate;
  int cancelled = 0;
  {
    Resolver resolver(2, gate.lookup());
    auto loop = std::make_unique<IOLoop>();
    auto client = std::make_unique<TCPClient>(*loop, &resolver);
    for (int i = 0; i < 2000; ++i) {
      client->connect(absl::StrCat("host", i, ".test"), 80, [&](ConnectResult s) {
        if (s.status().code() == absl::StatusCode::kCancelled) ++cancelled;
      });
    }
    gate.wait_started(2);
    client.reset();
    loop.reset();
    gate.open();
  }  // the resolver joins its workers
  EXPECT_EQ(cancelled, 2000);
  EXPECT_EQ(gate.started(), 2);
}

// A try that times out while its lookup is still queued withdraws the lookup.
TEST_F(TCPClientLifetimeTest, TimeoutWithdrawsAQueuedLookup) {
  GatedLookup gate;
  Resolver resolver(1, gate.lookup());
  resolver.resolve(loop(), "blocker.test", 1, AF_UNSPEC, [](auto) {});
  gate.wait_started(1);  // the only thread is busy: the client's lookup stays queued
  TCPClient client(loop(), &resolver);
  ConnectOptions options;
  options.timeout = absl::Milliseconds(1);
  ConnectResult result;
  client.connect(
      "slow.test", 80,
      [&](ConnectResult s) {
        result = std::move(s);
        done();
      },
      options);
  ASSERT_TRUE(wait());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded) << result.status();
  gate.open();
  resolver.resolve(loop(), "probe.test", 1, AF_UNSPEC, [&](auto) { done(); });
  ASSERT_TRUE(wait());
  EXPECT_EQ(gate.hosts(), (std::vector<std::string>{"blocker.test", "probe.test"}));
}

// An invalid connect is a pending attempt like any other: destroying the client first
// completes it with Cancelled, and nothing runs after the client is gone.
TEST_F(TCPClientLifetimeTest, InvalidConnectIsCancelledIfTheClientGoesFirst) {
  int calls = 0;
  absl::Status status;
  {
    TCPClient client(loop());
    client.connect_to({}, [&](ConnectResult s) {
      ++calls;
      status = s.status();
    });
    EXPECT_EQ(client.pending(), 1u);
  }
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  loop().add_callback([&] { done(); });
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 1);
}

// A Cancelled callback that connects again (a retry on error) while the client is being
// destroyed: that connect is completed too, Cancelled, before the destructor returns.
// Regression: it was started and then destroyed with the client, its callback never run.
TEST_F(TCPClientLifetimeTest, AConnectStartedByACancelledCallbackIsCancelledToo) {
  std::vector<std::string> calls;
  {
    TCPClient client(loop());
    client.connect_to({}, [&](ConnectResult s) {
      calls.push_back(absl::StrCat("first: ", s.status().code()));
      client.connect_to({}, [&](ConnectResult again) {
        calls.push_back(absl::StrCat("again: ", again.status().code()));
      });
    });
  }
  loop().add_callback([&] { done(); });
  ASSERT_TRUE(wait());
  const int cancelled = static_cast<int>(absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, (std::vector<std::string>{absl::StrCat("first: ", cancelled),
                                             absl::StrCat("again: ", cancelled)}));
}

// Defect 1 audit: a connect callback that throws is logged and counted by the loop; the
// client stays usable.
TEST_F(TCPClientLifetimeTest, ThrowingConnectCallbackIsCountedAndTheClientStaysUsable) {
  Listener listener;
  TCPClient client(loop());
  client.connect_to({listener.address}, [&](ConnectResult s) {
    EXPECT_TRUE(s.ok()) << s.status();
    loop().add_callback([&] { done(); });
    throw std::runtime_error("connect callback failed");
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(loop().stats().exceptions, 1u);
  EXPECT_EQ(client.pending(), 0u);
  // The same client connects again, and can be destroyed with a connect pending.
  ConnectResult second;
  client.connect_to({listener.address}, [&](ConnectResult s) {
    second = std::move(s);
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(listener.connections(), 2);
}

// Defect 1 audit: ~TCPClient completes pending connects with Cancelled. A callback that threw
// there used to escape a destructor: std::terminate.
TEST_F(TCPClientLifetimeTest, CancelledCallbacksThatThrowAreCountedAndAllRun) {
  ClosedPort closed;
  int calls = 0;
  {
    TCPClient client(loop());
    const RetryPolicy retry{.initial_delay = absl::Seconds(10)};
    for (int i = 0; i < 2; ++i) {
      client.connect_with_retry(
          "127.0.0.1", closed.port,
          [&](ConnectResult s) {
            ++calls;
            EXPECT_EQ(s.status().code(), absl::StatusCode::kCancelled) << s.status();
            throw std::runtime_error("cancel callback failed");
          },
          retry);
    }
  }
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(loop().stats().exceptions, 2u);
}

// Point 9: a retry policy that makes the error path a busy loop is refused, naming the field.
struct BadRetry {
  const char* name;
  RetryPolicy policy;
  const char* field;
};

class TCPClientRetryValidationTest : public ioloop::testing::LoopTestBase,
                                     public ::testing::WithParamInterface<BadRetry> {};

TEST_P(TCPClientRetryValidationTest, IsInvalidArgumentNamingTheField) {
  ClosedPort closed;
  TCPClient client(loop());
  ConnectResult result;
  int calls = 0;
  client.connect_with_retry(
      "127.0.0.1", closed.port,
      [&](ConnectResult s) {
        ++calls;
        result = std::move(s);
        done();
      },
      GetParam().policy);
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
  EXPECT_NE(result.status().message().find(GetParam().field), absl::string_view::npos)
      << result.status();
  EXPECT_EQ(client.pending(), 0u);
}

// max_attempts bounds the old, accepting behaviour so that it fails rather than spins.
INSTANTIATE_TEST_SUITE_P(
    Policies, TCPClientRetryValidationTest,
    ::testing::Values(
        BadRetry{"ZeroInitialDelay",
                 {.initial_delay = absl::ZeroDuration(), .max_attempts = 3},
                 "initial_delay"},
        BadRetry{"NegativeInitialDelay",
                 {.initial_delay = absl::Milliseconds(-1), .max_attempts = 3},
                 "initial_delay"},
        BadRetry{"ZeroMaxDelay",
                 {.initial_delay = absl::Milliseconds(1),
                  .max_delay = absl::ZeroDuration(),
                  .max_attempts = 3},
                 "max_delay"},
        BadRetry{"MaxDelayBelowInitialDelay",
                 {.initial_delay = absl::Milliseconds(2),
                  .max_delay = absl::Milliseconds(1),
                  .max_attempts = 3},
                 "max_delay"},
        BadRetry{"MultiplierBelowOne",
                 {.initial_delay = absl::Milliseconds(1), .multiplier = 0.5, .max_attempts = 3},
                 "multiplier"},
        BadRetry{"NegativeMaxAttempts",
                 {.initial_delay = absl::Milliseconds(1), .max_attempts = -1},
                 "max_attempts"}),
    [](const ::testing::TestParamInfo<BadRetry>& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace ioloop::net
