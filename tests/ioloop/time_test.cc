#include "ioloop/time.h"

#include "gtest/gtest.h"

namespace ioloop {
namespace {

TEST(TimeTest, ConvertsExactly) {
  EXPECT_EQ(to_clock_duration(absl::Microseconds(1500)), std::chrono::microseconds(1500));
  EXPECT_EQ(to_clock_duration(absl::Nanoseconds(1)), std::chrono::nanoseconds(1));
  EXPECT_EQ(to_clock_duration(-absl::Seconds(2)), -std::chrono::seconds(2));
  EXPECT_EQ(to_duration(std::chrono::milliseconds(7)), absl::Milliseconds(7));
}

TEST(TimeTest, InfiniteDurationsSaturateWithoutOverflow) {
  const Clock::duration far = to_clock_duration(absl::InfiniteDuration());
  EXPECT_GT(far, std::chrono::hours(24 * 365 * 100));
  // Adding it to now must not overflow the clock's representation.
  const TimePoint later = Clock::now() + far;
  EXPECT_GT(later, Clock::now());
  const Clock::duration past = to_clock_duration(-absl::InfiniteDuration());
  EXPECT_LT(past, -std::chrono::hours(24 * 365 * 100));
  EXPECT_LT(Clock::now() + past, Clock::now());
}

TEST(TimeTest, ClockIsMonotonic) {
  static_assert(Clock::is_steady, "timers must not follow wall-clock steps");
  TimePoint a = Clock::now();
  TimePoint b = Clock::now();
  EXPECT_LE(a, b);
}

// advance() saturates at the end of the clock's range instead of wrapping into the past. Found
// by a probe: an infinite advance went 146 years (to_clock_duration's cap), not to the end as
// the header says.
TEST(ManualClockTest, InfiniteAdvancesSaturate) {
  ManualClock clock;
  clock.advance(absl::InfiniteDuration());
  EXPECT_EQ(clock.now(), TimePoint::max());
  clock.advance(absl::InfiniteDuration());
  clock.advance(absl::Hours(1));
  EXPECT_EQ(clock.now(), TimePoint::max());
  EXPECT_EQ(add_saturating(clock.now(), std::chrono::hours(1)), TimePoint::max());
  EXPECT_EQ(add_saturating(TimePoint(std::chrono::hours(1)), std::chrono::hours(1)),
            TimePoint(std::chrono::hours(2)));
}

TEST(ManualClockTest, MovesOnlyWhenToldAndNeverBackwards) {
  const TimePoint start = TimePoint(std::chrono::hours(5));
  ManualClock clock(start);
  EXPECT_EQ(clock.now(), start);
  EXPECT_EQ(clock.now(), start);
  clock.advance(absl::Microseconds(1500));
  EXPECT_EQ(clock.now(), start + std::chrono::microseconds(1500));
  clock.advance(-absl::Seconds(1));  // ignored
  clock.advance(absl::ZeroDuration());
  EXPECT_EQ(clock.now(), start + std::chrono::microseconds(1500));
  clock.advance_to(start);  // earlier: ignored
  EXPECT_EQ(clock.now(), start + std::chrono::microseconds(1500));
  clock.advance_to(start + std::chrono::seconds(3));
  EXPECT_EQ(clock.now(), start + std::chrono::seconds(3));
}

}  // namespace
}  // namespace ioloop
