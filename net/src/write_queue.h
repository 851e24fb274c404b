// File: net/src/write_queue.h (private to ioloop::net)
// WriteQueue: IOStream's queued output, as a value. Chunks in write order, the iovecs for the
// next send, how far the kernel has taken them, and the flush callbacks, each due once the
// bytes queued before it are written. It does no I/O and runs no user code: the stream sends
// what gather() returns, reports it with consume(), and runs the callbacks pop_flushed()
// hands back (exactly once each: popped callbacks are the stream's to run).
//
// Memory: the stream allocates one only while bytes or callbacks are queued; sent chunks are
// freed as soon as they are out, not when the queue drains, and the slots of sent chunks and
// popped callbacks are compacted away, so a queue that never drains stays bounded too.
// Threading: the stream's loop thread, like the stream.
#ifndef IOLOOP_NET_SRC_WRITE_QUEUE_H_
#define IOLOOP_NET_SRC_WRITE_QUEUE_H_

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "ioloop/net/io_stream.h"

namespace ioloop::net {

class WriteQueue {
 public:
  using Callback = IOStream::WriteCallback;
  // Most iovecs one gather() fills.
  static constexpr int kMaxIov = 64;

  // Bytes queued and not yet written.
  size_t size() const { return pending_; }
  // No bytes and no callbacks: the stream may free the queue.
  bool idle() const { return pending_ == 0 && cb_head_ == callbacks_.size(); }

  // Queues `data` after everything before it; `already_sent` leading bytes of it are in the
  // kernel already (a partial send straight from write()), which requires size() == 0.
  void append(std::string data, size_t already_sent = 0);
  // `cb` becomes due once everything queued so far is written (at once if nothing is).
  void add_callback(Callback cb);

  // Fills `iov` with the next unsent bytes, at most `budget` of them; returns the count
  // (0 when nothing is queued) and their total in *bytes.
  int gather(struct iovec (&iov)[kMaxIov], size_t budget, size_t* bytes) const;
  // The kernel took the next `n` gathered bytes.
  void consume(size_t n);
  // Moves the oldest callback whose bytes are all written into *cb; false if none is due.
  bool pop_flushed(Callback* cb);

  // The stream closed: drops unsent bytes (their callbacks stay, to fail).
  void discard_unsent();
  // Moves the oldest remaining callback into *cb, with whether its bytes were all written
  // before the close (then it succeeds; else it fails with the close status).
  bool pop_remaining(Callback* cb, bool* written);

 private:
  std::vector<std::string> chunks_;
  size_t head_ = 0;         // first chunk not fully written
  size_t head_offset_ = 0;  // bytes of chunks_[head_] already written
  size_t pending_ = 0;      // queued bytes not yet written
  uint64_t queued_total_ = 0;
  uint64_t written_total_ = 0;
  // Flush callbacks, each with the queued_total_ its data ends at.
  std::vector<std::pair<uint64_t, Callback>> callbacks_;
  size_t cb_head_ = 0;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_SRC_WRITE_QUEUE_H_
