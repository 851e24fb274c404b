#include "write_queue.h"

#include <algorithm>

namespace ioloop::net {
namespace {

// Drops the entries before `head` once they are all of `v`, or at least 32 and half of it: a
// queue that never drains (a stream always a write or a callback ahead) must not keep a slot
// per entry it ever had, and the erase stays amortised O(1) per entry.
template <typename T>
void compact_front(std::vector<T>& v, size_t& head) {
  if (head == v.size()) {
    v.clear();
    head = 0;
  } else if (head >= 32 && head * 2 >= v.size()) {
    v.erase(v.begin(), v.begin() + static_cast<long>(head));
    head = 0;
  }
}

}  // namespace

void WriteQueue::append(std::string data, size_t already_sent) {
  const size_t unsent = data.size() - already_sent;
  if (unsent == 0) return;
  if (already_sent > 0) head_offset_ = already_sent;  // the queue was empty: this is the head
  pending_ += unsent;
  queued_total_ += unsent;  // positions count only bytes that were queued
  chunks_.push_back(std::move(data));
}

void WriteQueue::add_callback(Callback cb) {
  if (cb) callbacks_.emplace_back(queued_total_, std::move(cb));
}

int WriteQueue::gather(struct iovec (&iov)[kMaxIov], size_t budget, size_t* bytes) const {
  int count = 0;
  size_t asked = 0;
  for (size_t i = head_; i < chunks_.size() && count < kMaxIov && asked < budget; ++i) {
    const std::string& chunk = chunks_[i];
    const size_t offset = i == head_ ? head_offset_ : 0;
    const size_t len = std::min(chunk.size() - offset, budget - asked);
    if (len == 0) continue;
    iov[count].iov_base = const_cast<char*>(chunk.data() + offset);
    iov[count].iov_len = len;
    ++count;
    asked += len;
  }
  *bytes = asked;
  return count;
}

void WriteQueue::consume(size_t n) {
  pending_ -= n;
  written_total_ += n;
  while (n > 0) {
    std::string& chunk = chunks_[head_];
    const size_t rest = chunk.size() - head_offset_;
    if (n < rest) {
      head_offset_ += n;
      break;
    }
    n -= rest;
    std::string().swap(chunk);  // free sent data now, not when the queue drains
    ++head_;
    head_offset_ = 0;
  }
  compact_front(chunks_, head_);
}

bool WriteQueue::pop_flushed(Callback* cb) {
  if (cb_head_ >= callbacks_.size() || callbacks_[cb_head_].first > written_total_) return false;
  *cb = std::move(callbacks_[cb_head_].second);
  ++cb_head_;
  compact_front(callbacks_, cb_head_);
  return true;
}

void WriteQueue::discard_unsent() {
  std::vector<std::string>().swap(chunks_);
  head_ = head_offset_ = 0;
  pending_ = 0;
}

bool WriteQueue::pop_remaining(Callback* cb, bool* written) {
  if (cb_head_ >= callbacks_.size()) return false;
  *written = callbacks_[cb_head_].first <= written_total_;
  *cb = std::move(callbacks_[cb_head_].second);
  ++cb_head_;
  return true;
}

}  // namespace ioloop::net
