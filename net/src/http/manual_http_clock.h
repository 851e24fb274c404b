// File: net/src/http/manual_http_clock.h (private, header-only)
// ManualHTTPClock: an HTTPClock whose time moves only when advance() is called, for tests and
// the fuzzer. Timers run inside advance(), each with now() equal to its own deadline, in
// deadline order (then in the order they were added), so a timeout's re-arming and the next
// timeout behave as they would on a real loop, minus the scheduling noise.
#ifndef IOLOOP_NET_SRC_HTTP_MANUAL_HTTP_CLOCK_H_
#define IOLOOP_NET_SRC_HTTP_MANUAL_HTTP_CLOCK_H_

#include <cstdint>
#include <map>
#include <utility>

#include "absl/time/time.h"
#include "http_server_state.h"

namespace ioloop::net {

class ManualHTTPClock : public HTTPClock {
 public:
  // Starts at an arbitrary fixed point (not the epoch, so "now - timeout" never underflows).
  ManualHTTPClock() : now_(TimePoint() + std::chrono::hours(24)) {}

  TimePoint now() override { return now_; }

  uint64_t call_at(TimePoint deadline, Callback cb) override {
    const uint64_t id = ++next_id_;
    timers_.emplace(std::make_pair(deadline, id), std::move(cb));
    return id;
  }

  void cancel(uint64_t id) override {
    for (auto it = timers_.begin(); it != timers_.end(); ++it) {
      if (it->first.second == id) {
        timers_.erase(it);
        return;
      }
    }
  }

  // Moves time forward by `d` (>= 0), running every timer that falls due on the way. Returns
  // how many ran.
  size_t advance(absl::Duration d) {
    const TimePoint target = now_ + to_clock_duration(d);
    size_t ran = 0;
    while (!timers_.empty() && timers_.begin()->first.first <= target) {
      auto it = timers_.begin();
      if (it->first.first > now_) now_ = it->first.first;
      Callback cb = std::move(it->second);
      timers_.erase(it);
      ++ran;
      std::move(cb)();
    }
    if (target > now_) now_ = target;
    return ran;
  }

  size_t pending() const { return timers_.size(); }
  // The earliest pending deadline, or TimePoint::max() if none.
  TimePoint next_deadline() const {
    return timers_.empty() ? TimePoint::max() : timers_.begin()->first.first;
  }

 private:
  TimePoint now_;
  uint64_t next_id_ = 0;
  std::map<std::pair<TimePoint, uint64_t>, Callback> timers_;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_SRC_HTTP_MANUAL_HTTP_CLOCK_H_
