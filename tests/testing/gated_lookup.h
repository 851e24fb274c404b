// File: testing/gated_lookup.h
// A Resolver lookup function for tests: every lookup blocks until the test opens the gate,
// so the test decides what is in flight and what is still queued. It records how many
// lookups started, on which threads and for which hosts.
//
//   GatedLookup gate;                        // must outlive the Resolver
//   Resolver resolver(2, gate.lookup());
//   ... resolver.resolve(...) ...
//   gate.wait_started(2);                    // both threads are inside a lookup
//   gate.open();                             // from the test, a timer or another thread
//
// A lookup that finds the gate still shut after `max_wait` returns DeadlineExceeded, so a
// test that never opens it (or a resolver that looks up inline) fails instead of hanging.
#ifndef IOLOOP_TESTS_TESTING_GATED_LOOKUP_H_
#define IOLOOP_TESTS_TESTING_GATED_LOOKUP_H_

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ioloop/mutex.h"
#include "ioloop/net/resolver.h"
#include "ioloop/net/socket_address.h"
#include "testing/notification.h"

namespace ioloop::testing {

class GatedLookup {
 public:
  explicit GatedLookup(absl::Duration max_wait = absl::Seconds(10)) : max_wait_(max_wait) {}

  // The function to give the Resolver. Answers 127.0.0.1:port once the gate is open.
  net::Resolver::Lookup lookup() {
    return [this](const std::string& host, uint16_t port,
                  int) -> absl::StatusOr<std::vector<net::SocketAddress>> {
      {
        MutexLock lock(&mu_);
        ++started_;
        threads_.push_back(std::this_thread::get_id());
        hosts_.push_back(host);
      }
      if (!gate_.WaitForNotificationWithTimeout(max_wait_)) {
        return absl::DeadlineExceededError("GatedLookup: the gate was never opened");
      }
      return std::vector<net::SocketAddress>{net::SocketAddress::ipv4_loopback(port)};
    };
  }

  // Thread-safe. Lets every blocked and future lookup finish.
  void open() { gate_.Notify(); }

  // Blocks the calling thread until `n` lookups have started.
  void wait_started(int n) {
    MutexLock lock(&mu_);
    mu_.await([this, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return started_ >= n; });
  }

  int started() const {
    MutexLock lock(&mu_);
    return started_;
  }
  std::vector<std::thread::id> threads() const {
    MutexLock lock(&mu_);
    return threads_;
  }
  std::vector<std::string> hosts() const {
    MutexLock lock(&mu_);
    return hosts_;
  }

 private:
  const absl::Duration max_wait_;
  Notification gate_;
  mutable Mutex mu_;
  int started_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread::id> threads_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> hosts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_TESTING_GATED_LOOKUP_H_
