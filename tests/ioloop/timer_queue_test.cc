#include "timer_queue.h"

#include <memory>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ioloop {
namespace {

using std::chrono::milliseconds;

const TimePoint kT0 = TimePoint() + std::chrono::hours(1);

// Pops everything due at `now` and runs it; returns how many ran.
int RunDue(TimerQueue& q, TimePoint now) {
  std::vector<uint64_t> ids;
  q.pop_due(now, &ids);
  int ran = 0;
  for (uint64_t id : ids) {
    if (TimerQueue::Callback cb = q.take(id)) {
      std::move(cb)();
      ++ran;
    }
  }
  return ran;
}

TEST(TimerQueueTest, IdsAreNonZeroAndDistinct) {
  TimerQueue q;
  std::set<uint64_t> ids;
  for (int i = 0; i < 100; ++i) {
    uint64_t id = q.add(kT0, [] {});
    EXPECT_NE(id, 0u);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 100u);
  EXPECT_EQ(q.live(), 100u);
}

TEST(TimerQueueTest, EmptyQueue) {
  TimerQueue q;
  EXPECT_EQ(q.next_deadline(), std::nullopt);
  EXPECT_EQ(RunDue(q, kT0), 0);
  EXPECT_FALSE(q.cancel(0));
  EXPECT_FALSE(q.cancel(12345));
  EXPECT_EQ(q.take(12345), nullptr);
  EXPECT_EQ(q.store_size(), 0u);
}

TEST(TimerQueueTest, PopsDueInDeadlineThenInsertionOrder) {
  TimerQueue q;
  std::vector<int> order;
  q.add(kT0 + milliseconds(5), [&] { order.push_back(5); });
  q.add(kT0 + milliseconds(1), [&] { order.push_back(1); });
  q.add(kT0 + milliseconds(3), [&] { order.push_back(30); });
  q.add(kT0 + milliseconds(3), [&] { order.push_back(31); });
  q.add(kT0 + milliseconds(3), [&] { order.push_back(32); });
  q.add(kT0 + milliseconds(9), [&] { order.push_back(9); });
  EXPECT_EQ(q.next_deadline(), kT0 + milliseconds(1));

  EXPECT_EQ(RunDue(q, kT0), 0);                    // nothing due yet
  EXPECT_EQ(RunDue(q, kT0 + milliseconds(3)), 4);  // deadline == now is due
  EXPECT_THAT(order, ::testing::ElementsAre(1, 30, 31, 32));
  EXPECT_EQ(q.next_deadline(), kT0 + milliseconds(5));
  EXPECT_EQ(RunDue(q, kT0 + milliseconds(100)), 2);
  EXPECT_THAT(order, ::testing::ElementsAre(1, 30, 31, 32, 5, 9));
  EXPECT_EQ(q.live(), 0u);
  EXPECT_EQ(q.next_deadline(), std::nullopt);
}

TEST(TimerQueueTest, CancelFreesTheCallbackAtOnce) {
  TimerQueue q;
  auto token = std::make_shared<int>(7);
  std::weak_ptr<int> weak = token;
  bool ran = false;
  uint64_t id = q.add(kT0, [&ran, t = std::move(token)] { ran = true; });
  EXPECT_FALSE(weak.expired());
  EXPECT_TRUE(q.cancel(id));
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(q.live(), 0u);
  EXPECT_FALSE(q.cancel(id));  // twice: no-op
  EXPECT_EQ(RunDue(q, kT0 + milliseconds(1)), 0);
  EXPECT_FALSE(ran);
}

TEST(TimerQueueTest, NextDeadlineSkipsCancelledTimers) {
  TimerQueue q;
  uint64_t early = q.add(kT0, [] {});
  q.add(kT0 + milliseconds(2), [] {});
  ASSERT_TRUE(q.cancel(early));
  EXPECT_EQ(q.next_deadline(), kT0 + milliseconds(2));
}

TEST(TimerQueueTest, CancelAfterFireIsNoOpAndCannotHitAReusedSlot) {
  TimerQueue q;
  uint64_t old_id = q.add(kT0, [] {});
  EXPECT_EQ(RunDue(q, kT0), 1);
  EXPECT_FALSE(q.cancel(old_id));
  // The next timeout may reuse the slot; the stale id must not cancel it.
  bool ran = false;
  uint64_t new_id = q.add(kT0, [&] { ran = true; });
  EXPECT_NE(new_id, old_id);
  EXPECT_FALSE(q.cancel(old_id));
  EXPECT_EQ(q.take(old_id), nullptr);
  EXPECT_EQ(RunDue(q, kT0), 1);
  EXPECT_TRUE(ran);
}

TEST(TimerQueueTest, PoppedTimerStaysCancellableUntilTaken) {
  TimerQueue q;
  std::vector<int> ran;
  uint64_t a = q.add(kT0, [&] { ran.push_back(1); });
  uint64_t b = q.add(kT0, [&] { ran.push_back(2); });
  std::vector<uint64_t> ids;
  q.pop_due(kT0, &ids);
  ASSERT_THAT(ids, ::testing::ElementsAre(a, b));
  EXPECT_EQ(q.live(), 2u);
  // As if the first timeout cancelled the second one of its batch.
  TimerQueue::Callback first = q.take(a);
  ASSERT_NE(first, nullptr);
  EXPECT_TRUE(q.cancel(b));
  EXPECT_EQ(q.take(b), nullptr);
  EXPECT_EQ(q.take(a), nullptr);  // taken once only
  std::move(first)();
  EXPECT_THAT(ran, ::testing::ElementsAre(1));
  EXPECT_EQ(q.live(), 0u);
}

TEST(TimerQueueTest, MillionAddCancelCyclesStaySmall) {
  TimerQueue q;
  for (int i = 0; i < 1000000; ++i) {
    ASSERT_TRUE(q.cancel(q.add(kT0 + milliseconds(i % 5000), [] {})));
  }
  EXPECT_EQ(q.live(), 0u);
  EXPECT_LT(q.store_size(), 2048u);
}

TEST(TimerQueueTest, CompactionDropsCancelledEntriesBuriedInTheHeap) {
  TimerQueue q;
  // The earliest timer stays live, so cancelled entries never surface at the top and can
  // only go by compaction.
  q.add(kT0, [] {});
  std::vector<uint64_t> ids;
  for (int i = 0; i < 10000; ++i) ids.push_back(q.add(kT0 + milliseconds(1 + i), [] {}));
  const size_t full = q.store_size();
  EXPECT_EQ(full, 2 * 10001u);
  for (int i = 0; i < 9000; ++i) ASSERT_TRUE(q.cancel(ids[i]));
  EXPECT_EQ(q.live(), 1001u);
  // Slots are kept (generations must outlive handles) but the heap shrank.
  EXPECT_LT(q.store_size(), 10001u + 5001u);
  // Everything still runs in order.
  std::vector<uint64_t> due;
  q.pop_due(kT0 + std::chrono::hours(1), &due);
  EXPECT_EQ(due.size(), 1001u);
}

}  // namespace
}  // namespace ioloop
