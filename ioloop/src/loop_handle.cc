#include "ioloop/loop_handle.h"

#include <utility>

namespace ioloop {

bool LoopHandle::post(IOLoop::Callback cb) {
  {
    MutexLock lock(&mu_);
    if (loop_ != nullptr) {
      loop_->add_callback(std::move(cb));
      return true;
    }
  }
  cb = nullptr;  // destroyed here, unrun, outside the lock: its destructor may post again
  return false;
}

bool LoopHandle::alive() const {
  MutexLock lock(&mu_);
  return loop_ != nullptr;
}

void LoopHandle::detach() {
  MutexLock lock(&mu_);
  loop_ = nullptr;
}

}  // namespace ioloop
