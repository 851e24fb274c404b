#include "ioloop/rate_limiter.h"

#include <chrono>

#include "gtest/gtest.h"

namespace ioloop {
namespace {

using std::chrono::milliseconds;

TEST(LogRateLimiterTest, AllowsABurstPerWindowAndCountsTheRest) {
  LogRateLimiter limiter(3, milliseconds(1000));
  const TimePoint t0 = TimePoint() + std::chrono::hours(1);
  uint64_t suppressed = 99;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(limiter.allow(t0 + milliseconds(i), &suppressed)) << i;
    EXPECT_EQ(suppressed, 0u);
  }
  suppressed = 99;
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limiter.allow(t0 + milliseconds(10 + i), &suppressed));
  EXPECT_EQ(suppressed, 99u);  // untouched on refusal
  EXPECT_FALSE(limiter.allow(t0 + milliseconds(999), &suppressed));

  // A new window: allowed again, and told how many were dropped (6).
  EXPECT_TRUE(limiter.allow(t0 + milliseconds(1000), &suppressed));
  EXPECT_EQ(suppressed, 6u);
  // The count restarts after being reported.
  EXPECT_TRUE(limiter.allow(t0 + milliseconds(1001), &suppressed));
  EXPECT_EQ(suppressed, 0u);
}

TEST(LogRateLimiterTest, DefaultIsTenPerSecond) {
  LogRateLimiter limiter;
  const TimePoint t0 = TimePoint() + std::chrono::hours(1);
  uint64_t suppressed = 0;
  int allowed = 0;
  for (int i = 0; i < 1000; ++i)
    allowed += limiter.allow(t0 + std::chrono::microseconds(i), &suppressed);
  EXPECT_EQ(allowed, 10);
  EXPECT_TRUE(limiter.allow(t0 + std::chrono::seconds(1), &suppressed));
  EXPECT_EQ(suppressed, 990u);
}

TEST(LogRateLimiterTest, FirstCallAtClockStartIsAllowed) {
  LogRateLimiter limiter(1, milliseconds(100));
  uint64_t suppressed = 0;
  EXPECT_TRUE(limiter.allow(TimePoint(), &suppressed));
  EXPECT_FALSE(limiter.allow(TimePoint(), &suppressed));
}

TEST(LogRateLimiterTest, SuppressedNoteEndsTheAllowedLine) {
  EXPECT_EQ(suppressed_note(0), "");
  EXPECT_EQ(suppressed_note(1), " (1 similar line suppressed)");
  EXPECT_EQ(suppressed_note(990), " (990 similar lines suppressed)");
}

}  // namespace
}  // namespace ioloop
