// File: io_loop_test_peer.h (private)
// The test seam of IOLoop: a loop on a Poller the test supplies (e.g. one that injects
// failures) and with the poller-failure back-off's sleep replaced by a recorder, so that
// tests count sleeps instead of measuring wall time. Not for production code.
#ifndef IOLOOP_SRC_IO_LOOP_TEST_PEER_H_
#define IOLOOP_SRC_IO_LOOP_TEST_PEER_H_

#include <memory>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "ioloop/io_loop.h"
#include "ioloop/logging.h"
#include "waker.h"

namespace ioloop {

class IOLoopTestPeer {
 public:
  // A loop on `poller`. `sleep`, if set, replaces the back-off sleep after a poller failure.
  // Dies if the waker cannot be created or watched (as IOLoop() does).
  static std::unique_ptr<IOLoop> create(std::unique_ptr<Poller> poller,
                                        absl::AnyInvocable<void(absl::Duration)> sleep = nullptr,
                                        IOLoop::Options options = {}) {
    absl::StatusOr<std::unique_ptr<Waker>> waker = Waker::create();
    if (!waker.ok()) {
      logger().critical("IOLoopTestPeer: cannot create the waker: {}", waker.status().ToString());
      std::abort();
    }
    options.poller = poller->kind();
    std::unique_ptr<IOLoop> loop(new IOLoop(std::move(poller), *std::move(waker), options));
    if (absl::Status s = loop->watch_waker(); !s.ok()) {
      logger().critical("IOLoopTestPeer: cannot watch the waker: {}", s.ToString());
      std::abort();
    }
    if (sleep) loop->sleep_for_ = std::move(sleep);
    return loop;
  }
};

}  // namespace ioloop

#endif  // IOLOOP_SRC_IO_LOOP_TEST_PEER_H_
