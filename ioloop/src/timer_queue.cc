#include "timer_queue.h"

#include <algorithm>

namespace ioloop {

uint64_t TimerQueue::add(TimePoint deadline, Callback cb) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[slot];
  s.cb = std::move(cb);
  s.live = true;
  s.in_heap = true;
  ++live_;
  heap_.push_back(HeapEntry{deadline, next_seq_++, slot, s.generation});
  std::push_heap(heap_.begin(), heap_.end(), later);
  return (static_cast<uint64_t>(s.generation) << 32) | slot;
}

void TimerQueue::release(uint32_t slot) {
  Slot& s = slots_[slot];
  s.live = false;
  s.cb = nullptr;
  // Generation 0 is never issued, so an id is never 0.
  if (++s.generation == 0) s.generation = 1;
  free_slots_.push_back(slot);
  --live_;
}

bool TimerQueue::cancel(uint64_t id) {
  const auto slot = static_cast<uint32_t>(id & 0xffffffffu);
  const auto generation = static_cast<uint32_t>(id >> 32);
  if (slot >= slots_.size()) return false;
  Slot& s = slots_[slot];
  if (!s.live || s.generation != generation) return false;
  // Destroy the callback now (it may hold resources), but outside the slot's state change.
  Callback doomed = std::move(s.cb);
  const bool in_heap = s.in_heap;
  release(slot);
  if (in_heap) {
    ++stale_;
    maybe_compact();
  }
  return true;
}

void TimerQueue::maybe_compact() {
  // Tornado's rule: rebuild once stale entries are many and the majority.
  if (stale_ > 512 && stale_ > heap_.size() / 2) {
    std::erase_if(heap_, [this](const HeapEntry& e) { return stale(e); });
    std::make_heap(heap_.begin(), heap_.end(), later);
    stale_ = 0;
    heap_.shrink_to_fit();
    // Slots are never freed: a slot's generation must outlive every handle naming it, or a
    // stale handle could cancel a newer timeout. Their number is bounded by the peak of live
    // timeouts, and the free list reuses them.
  }
}

void TimerQueue::clear() {
  std::vector<Callback> doomed;
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].live) {
      doomed.push_back(std::move(slots_[i].cb));
      release(i);
    }
  }
  heap_.clear();
  stale_ = 0;
}

void TimerQueue::drop_stale_top() {
  while (!heap_.empty() && stale(heap_.front())) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    heap_.pop_back();
    if (stale_ > 0) --stale_;
  }
}

std::optional<TimePoint> TimerQueue::next_deadline() {
  drop_stale_top();
  if (heap_.empty()) return std::nullopt;
  return heap_.front().deadline;
}

void TimerQueue::pop_due(TimePoint now, std::vector<uint64_t>* out) {
  for (;;) {
    drop_stale_top();
    if (heap_.empty() || heap_.front().deadline > now) return;
    const HeapEntry top = heap_.front();
    std::pop_heap(heap_.begin(), heap_.end(), later);
    heap_.pop_back();
    slots_[top.slot].in_heap = false;
    out->push_back((static_cast<uint64_t>(top.generation) << 32) | top.slot);
  }
}

TimerQueue::Callback TimerQueue::take(uint64_t id) {
  const auto slot = static_cast<uint32_t>(id & 0xffffffffu);
  const auto generation = static_cast<uint32_t>(id >> 32);
  if (slot >= slots_.size()) return nullptr;
  Slot& s = slots_[slot];
  if (!s.live || s.generation != generation || s.in_heap) return nullptr;
  Callback cb = std::move(s.cb);
  release(slot);
  return cb;
}

}  // namespace ioloop
