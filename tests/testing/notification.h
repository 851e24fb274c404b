// A one-shot event between threads with absl::Notification's interface, built on ioloop::Mutex
// so ThreadSanitizer sees the synchronisation (Debian's abseil is not TSan-instrumented, so
// absl::Notification's happens-before edge is invisible to it and tests report false races).
#ifndef IOLOOP_TESTING_NOTIFICATION_H_
#define IOLOOP_TESTING_NOTIFICATION_H_

#include "absl/time/time.h"
#include "ioloop/mutex.h"

namespace ioloop::testing {

class Notification {
 public:
  void Notify() {
    MutexLock lock(&mu_);
    notified_ = true;
  }
  bool HasBeenNotified() const {
    MutexLock lock(&mu_);
    return notified_;
  }
  void WaitForNotification() const {
    MutexLock lock(&mu_);
    mu_.await([this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return notified_; });
  }
  bool WaitForNotificationWithTimeout(absl::Duration timeout) const {
    MutexLock lock(&mu_);
    return mu_.await_with_timeout([this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return notified_; },
                                  timeout);
  }

 private:
  mutable Mutex mu_;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTING_NOTIFICATION_H_
