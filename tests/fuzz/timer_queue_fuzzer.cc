// File: tests/fuzz/timer_queue_fuzzer.cc
// libFuzzer target for the loop's timeout store (ioloop/src/timer_queue.h), checked step by
// step against a simple model: a std::map from (deadline, insertion sequence) to the timeout.
// The input is a sequence of operations:
//   add       a timeout at now + a delay drawn from a few ranges (many equal deadlines, many
//             already due, some far away), optionally many at once;
//   cancel    a timeout the fuzzer picks among every id ever issued (live, fired, cancelled)
//             or a made-up id;
//   advance   the clock, then run the due batch as IOLoop::run_once() does: pop_due(), then
//             take() and run each id in turn, while callbacks of the batch cancel other
//             timeouts (due in the same batch or not) and add new ones (even already due);
//   peek      next_deadline();
//   clear     destroy everything (as ~IOLoop does).
// At the end everything left is run by advancing the clock far past every deadline.
//
// It traps when:
//  - a batch's ids are not the model's due timeouts in (deadline, insertion) order, or a
//    timeout runs early, twice, after it was cancelled, or never (once its deadline passed
//    and the clock was advanced past it);
//  - a timeout added by a callback of the batch runs in that same batch;
//  - cancel() answers differently from the model (true exactly for a live timeout), or a
//    cancelled or cleared timeout's callback is not destroyed before cancel()/clear() returns;
//  - live() or next_deadline() differ from the model;
//  - an id is issued twice (a stale handle could then cancel a newer timeout);
//  - store_size() outgrows its bound. Slots never exceed the peak of live timeouts. The heap
//    holds the live timeouts plus stale (cancelled) entries; at every cancel, compaction
//    leaves at most 512 of them or at most half the heap, i.e. no more than the live ones,
//    and between cancels they only shrink. So store <= peak + live + max(peak, 512).
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "ioloop/time.h"
#include "timer_queue.h"

namespace {

using ioloop::TimePoint;
using ioloop::TimerQueue;
using Ns = std::chrono::nanoseconds;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Timeout {
  uint64_t id;
  uint64_t label;            // insertion order, also the model's tie-break
  std::weak_ptr<int> alive;  // expires once the queue destroyed the callback
};

class Harness {
 public:
  static constexpr uint64_t kMaxTimeouts = 8000;

  explicit Harness(FuzzedDataProvider& in) : in_(in) {}

  void add(TimePoint deadline) {
    // Enough for compaction (it needs > 512 stale entries), small enough for speed.
    if (next_label_ >= kMaxTimeouts) return;
    const uint64_t label = next_label_++;
    auto token = std::make_shared<int>(0);
    std::weak_ptr<int> alive = token;
    const uint64_t id = queue_.add(deadline, [this, label, token] { ran_.push_back(label); });
    check(id != 0);
    check(!issued_.count(id));  // ids are never reused
    issued_.insert(id);
    issued_list_.push_back(id);
    model_.emplace(std::make_pair(deadline, label), Timeout{id, label, alive});
    live_by_id_.emplace(id, std::make_pair(deadline, label));
    peak_ = std::max(peak_, live_by_id_.size());
  }

  // A delay from a few ranges, so deadlines collide often and some are already due.
  Ns delay() {
    switch (in_.ConsumeIntegralInRange<int>(0, 3)) {
      case 0:
        return Ns(0);
      case 1:
        return Ns(in_.ConsumeIntegralInRange<int64_t>(-3, 3));
      case 2:
        return std::chrono::microseconds(in_.ConsumeIntegralInRange<int64_t>(0, 2000));
      default:
        return std::chrono::seconds(in_.ConsumeIntegralInRange<int64_t>(0, 100000));
    }
  }

  uint64_t pick_id() {
    if (issued_list_.empty() || in_.ConsumeIntegralInRange<int>(0, 15) == 0) {
      return in_.ConsumeIntegral<uint64_t>();  // made up (or 0)
    }
    return issued_list_[in_.ConsumeIntegralInRange<size_t>(0, issued_list_.size() - 1)];
  }

  void cancel(uint64_t id) {
    auto it = live_by_id_.find(id);
    const bool live = it != live_by_id_.end();
    std::weak_ptr<int> alive;
    if (live) {
      auto m = model_.find(it->second);
      check(m != model_.end());
      alive = m->second.alive;
      model_.erase(m);
      live_by_id_.erase(it);
      cancelled_.insert(id);
    }
    check(queue_.cancel(id) == live);
    if (live) check(alive.expired());  // destroyed before cancel() returned
  }

  // IOLoop::run_once()'s timer step at `now_`.
  void run_due() {
    std::vector<uint64_t> due;
    queue_.pop_due(now_, &due);
    // The model's due set, in order.
    std::vector<uint64_t> expected;
    for (const auto& [key, t] : model_) {
      if (key.first > now_) break;
      expected.push_back(t.id);
    }
    check(due == expected);
    for (uint64_t id : due) {
      auto it = live_by_id_.find(id);
      TimerQueue::Callback cb = queue_.take(id);
      if (it == live_by_id_.end()) {  // cancelled earlier in this batch
        check(!cb);
        continue;
      }
      check(static_cast<bool>(cb));
      const auto key = it->second;
      check(key.first <= now_);  // never early
      model_.erase(key);
      live_by_id_.erase(it);
      ran_.clear();
      std::move(cb)();
      check(ran_.size() == 1 && ran_[0] == key.second);
      check(fired_.insert(key.second).second);  // exactly once
      cb = nullptr;
      // What the callback does next, as user code would.
      const int actions = in_.ConsumeIntegralInRange<int>(0, 3);
      for (int i = 0; i < actions && in_.remaining_bytes() > 0; ++i) {
        if (in_.ConsumeBool()) {
          // Cancel one of this batch still to come, or anything else.
          if (in_.ConsumeBool() && !due.empty()) {
            cancel(due[in_.ConsumeIntegralInRange<size_t>(0, due.size() - 1)]);
          } else {
            cancel(pick_id());
          }
        } else {
          add(now_ + delay());  // even if already due: runs in a later batch, not this one
        }
      }
    }
  }

  void check_state() {
    check(queue_.live() == live_by_id_.size());
    std::optional<TimePoint> next = queue_.next_deadline();
    if (model_.empty()) {
      check(!next.has_value());
    } else {
      check(next.has_value() && *next == model_.begin()->first.first);
    }
    const size_t live = live_by_id_.size();
    check(queue_.store_size() <= peak_ + live + std::max<size_t>(peak_, 512));
  }

  void clear() {
    std::vector<std::weak_ptr<int>> alive;
    for (const auto& [key, t] : model_) alive.push_back(t.alive);
    queue_.clear();
    for (const auto& w : alive) check(w.expired());
    for (const auto& [id, key] : live_by_id_) cancelled_.insert(id);
    model_.clear();
    live_by_id_.clear();
  }

  void run() {
    while (in_.remaining_bytes() > 0) {
      switch (in_.ConsumeIntegralInRange<int>(0, 9)) {
        case 0:
        case 1:
        case 2:
          add(now_ + delay());
          break;
        case 3: {  // a burst: exercises compaction once cancelled
          const int n = in_.ConsumeIntegralInRange<int>(1, 700);
          const Ns base = delay();
          for (int i = 0; i < n; ++i) add(now_ + base + Ns(i % 7));
          break;
        }
        case 4:
        case 5:
          cancel(pick_id());
          break;
        case 6: {  // cancel many: heavy stale heap
          const int n = in_.ConsumeIntegralInRange<int>(1, 700);
          for (int i = 0; i < n && !live_by_id_.empty(); ++i) {
            auto it = live_by_id_.begin();
            std::advance(it, in_.ConsumeIntegralInRange<size_t>(
                                 0, std::min<size_t>(live_by_id_.size() - 1, 64)));
            cancel(it->first);
          }
          break;
        }
        case 7:
        case 8:
          now_ += delay();  // may be a few ns back: the loop's clock never goes back, but
          if (now_ < min_now_) now_ = min_now_;  // the queue must not care
          min_now_ = now_;
          run_due();
          break;
        default:
          if (in_.ConsumeIntegralInRange<int>(0, 7) == 0) {
            clear();
          } else {
            queue_.next_deadline();
          }
          break;
      }
      check_state();
    }
    // Everything still live runs once the clock passes every deadline.
    now_ += std::chrono::hours(24 * 365);
    run_due();
    check(model_.empty() && live_by_id_.empty() && queue_.live() == 0);
    check(!queue_.next_deadline().has_value());
    // Exactly once and never after a cancel: fired and cancelled labels/ids are disjoint by
    // construction above; every label is fired or cancelled.
    check(fired_.size() + cancelled_.size() == next_label_);
  }

 private:
  FuzzedDataProvider& in_;
  TimerQueue queue_;
  TimePoint now_ = TimePoint(std::chrono::hours(1));
  TimePoint min_now_ = now_;
  uint64_t next_label_ = 0;
  std::map<std::pair<TimePoint, uint64_t>, Timeout> model_;
  std::map<uint64_t, std::pair<TimePoint, uint64_t>> live_by_id_;
  std::set<uint64_t> issued_;
  std::vector<uint64_t> issued_list_;
  std::set<uint64_t> cancelled_;  // ids
  std::set<uint64_t> fired_;      // labels
  std::vector<uint64_t> ran_;
  size_t peak_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  Harness(in).run();
  return 0;
}
