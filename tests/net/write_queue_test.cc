// WriteQueue (net/src/write_queue.h), IOStream's queued output as a value: the order in which
// flush callbacks become due, and the memory a queue that never drains keeps.
#include "write_queue.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "testing/heap.h"

namespace ioloop::net {
namespace {

using ::ioloop::testing::heap_in_use;

// Runs every callback pop_flushed() hands back, in order.
void run_flushed(WriteQueue& q) {
  WriteQueue::Callback cb;
  while (q.pop_flushed(&cb)) std::move(cb)(absl::OkStatus());
}

TEST(WriteQueueTest, ACallbackIsDueOnceTheBytesBeforeItAreWritten) {
  WriteQueue q;
  std::vector<int> ran;
  q.append("abc");
  q.add_callback([&](absl::Status) { ran.push_back(1); });
  q.append("de");
  q.add_callback([&](absl::Status) { ran.push_back(2); });
  q.consume(2);
  run_flushed(q);
  EXPECT_TRUE(ran.empty());
  q.consume(2);  // "c" and "d"
  run_flushed(q);
  EXPECT_EQ(ran, std::vector<int>({1}));
  EXPECT_FALSE(q.idle());
  q.consume(1);
  run_flushed(q);
  EXPECT_EQ(ran, std::vector<int>({1, 2}));
  EXPECT_TRUE(q.idle());
}

// Found by a review: popped callbacks' slots were dropped only when the last one was popped.
// A stream always one callback ahead (a producer pacing on its write callbacks, a handler
// flushing behind queued bytes) never reached that point, so every write with a callback left
// a slot behind for as long as the stream lived: 100,000 writes held 131,072 slots, about
// 6 MiB. The slots are now compacted as the sent chunks are.
TEST(WriteQueueTest, AQueueAlwaysOneCallbackAheadKeepsBoundedMemory) {
  if (heap_in_use() == 0) GTEST_SKIP() << "the allocator does not count its bytes";
  WriteQueue q;
  const std::string piece(100, 'x');
  int ran = 0;
  q.append("a");
  q.add_callback([&](absl::Status) { ++ran; });
  // Each round queues a piece and its callback, then writes all but the piece's bytes: the
  // round before's callback is due, this round's not.
  const auto rounds = [&](int n) {
    for (int i = 0; i < n; ++i) {
      q.append(piece);
      q.add_callback([&](absl::Status) { ++ran; });
      q.consume(piece.size());
      run_flushed(q);
    }
  };
  rounds(1000);  // the vectors reach their working size
  const size_t before = heap_in_use();
  rounds(20000);
  const size_t after = heap_in_use();
  EXPECT_EQ(ran, 21000);
  EXPECT_FALSE(q.idle());
  EXPECT_LE(after, before + 4096) << "before " << before << ", after " << after;
  q.consume(1);
  run_flushed(q);
  EXPECT_EQ(ran, 21001);
  EXPECT_TRUE(q.idle());
}

}  // namespace
}  // namespace ioloop::net
