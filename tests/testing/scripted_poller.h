// File: testing/scripted_poller.h
// ScriptedPoller: a real readiness backend whose calls fail on demand, for the tests of what
// the loop and its users do when the kernel refuses (epoll_wait's ENOMEM, epoll_ctl's ENOSPC at
// fs.epoll.max_user_watches), and that can run a hook before each wait or hide what a wait
// found. The test keeps the
// PollerScript and changes it while the loop owns the poller; the loop's thread reads it.
#ifndef IOLOOP_TESTS_TESTING_SCRIPTED_POLLER_H_
#define IOLOOP_TESTS_TESTING_SCRIPTED_POLLER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ioloop/poller.h"

namespace ioloop::testing {

struct PollerScript {
  int fail_waits = 0;  // the next this-many poll() calls fail at once with `wait_status`
  absl::Status wait_status = absl::InternalError("injected failure");
  int fail_adds = 0;  // the next this-many add() calls fail with `add_status`
  absl::Status add_status =
      absl::ResourceExhaustedError("injected: epoll_ctl(ADD): No space left on device");
  int waits = 0;  // poll() calls so far
  // If set, called at each poll() with its timeout, before anything else (to look at the
  // loop's state just before it waits).
  std::function<void(std::optional<absl::Duration>)> before_wait;
  // If set, poll() waits as the real one does, then reports no event: the loop never hears
  // of (or reads) what woke it.
  bool discard_events = false;
};

class ScriptedPoller final : public Poller {
 public:
  ScriptedPoller(std::unique_ptr<Poller> real, std::shared_ptr<PollerScript> script)
      : real_(std::move(real)), script_(std::move(script)) {}
  PollerKind kind() const override { return real_->kind(); }
  absl::Status add(int fd, uint32_t events, uint32_t tag) override {
    if (script_->fail_adds > 0) {
      --script_->fail_adds;
      return script_->add_status;
    }
    return real_->add(fd, events, tag);
  }
  absl::Status modify(int fd, uint32_t events, uint32_t tag) override {
    return real_->modify(fd, events, tag);
  }
  void remove(int fd) override { real_->remove(fd); }
  absl::StatusOr<int> poll(std::optional<absl::Duration> timeout,
                           std::vector<Event>* out) override {
    ++script_->waits;
    if (script_->before_wait) script_->before_wait(timeout);
    if (script_->fail_waits > 0) {
      --script_->fail_waits;
      return script_->wait_status;
    }
    absl::StatusOr<int> n = real_->poll(timeout, out);
    if (!script_->discard_events || !n.ok()) return n;
    out->clear();
    return 0;
  }

 private:
  std::unique_ptr<Poller> real_;
  std::shared_ptr<PollerScript> script_;
};

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_TESTING_SCRIPTED_POLLER_H_
