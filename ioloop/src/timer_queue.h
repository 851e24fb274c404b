// File: timer_queue.h (private)
// The timeout store of an IOLoop: a binary min-heap of (deadline, sequence) entries that
// point into a slot table holding the callbacks.
//
// Cancellation is O(1) and frees the callback at once: the slot is released (its generation
// bumped, so the heap entry and the caller's handle go stale) and put on a free list. Stale
// heap entries are dropped lazily when they surface, and the heap is rebuilt without them
// once they are more than half of it (Tornado's compaction), so a million add+cancel cycles
// leave a store no bigger than the largest number of timeouts live at one time.
//
// Not thread-safe; owned by one IOLoop.
#ifndef IOLOOP_SRC_TIMER_QUEUE_H_
#define IOLOOP_SRC_TIMER_QUEUE_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "ioloop/time.h"

namespace ioloop {

class TimerQueue {
 public:
  using Callback = absl::AnyInvocable<void() &&>;

  // Returns a non-zero id: slot index in the low 32 bits, slot generation in the high ones.
  uint64_t add(TimePoint deadline, Callback cb);
  // Returns true if `id` was live. Its callback is destroyed before this returns.
  bool cancel(uint64_t id);
  // The earliest live deadline.
  std::optional<TimePoint> next_deadline();
  // Appends the ids of every live timeout with deadline <= now to `out`, in run order, and
  // takes them off the heap. They stay live, so cancel() still works on them until take():
  // a timeout that cancels another one due in the same batch must win (Tornado's rule).
  void pop_due(TimePoint now, std::vector<uint64_t>* out);
  // Returns the callback of a timeout popped by pop_due() and frees its slot; an empty
  // callback if it was cancelled in between.
  Callback take(uint64_t id);

  // Destroys every callback (in a local, so their destructors may add timeouts safely).
  void clear();

  size_t live() const { return live_; }
  // Heap entries plus slots: what the store holds, live or not.
  size_t store_size() const { return heap_.size() + slots_.size(); }

 private:
  struct HeapEntry {
    TimePoint deadline;
    uint64_t seq;  // tie-break: equal deadlines run in insertion order
    uint32_t slot;
    uint32_t generation;
  };
  struct Slot {
    Callback cb;
    uint32_t generation = 1;
    bool live = false;
    bool in_heap = false;  // false once pop_due() took its heap entry
  };
  static bool later(const HeapEntry& a, const HeapEntry& b) {
    return a.deadline != b.deadline ? a.deadline > b.deadline : a.seq > b.seq;
  }
  bool stale(const HeapEntry& e) const {
    const Slot& s = slots_[e.slot];
    return !s.live || s.generation != e.generation;
  }
  void release(uint32_t slot);
  void drop_stale_top();
  void maybe_compact();

  std::vector<HeapEntry> heap_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  uint64_t next_seq_ = 0;
  size_t live_ = 0;
  size_t stale_ = 0;  // heap entries whose slot was cancelled
};

}  // namespace ioloop

#endif  // IOLOOP_SRC_TIMER_QUEUE_H_
