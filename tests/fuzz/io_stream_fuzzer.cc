// File: tests/fuzz/io_stream_fuzzer.cc
// libFuzzer target for IOStream's read side over a real socketpair and a real IOLoop (epoll).
// The input decides everything through FuzzedDataProvider: the payload, the sizes of the
// pieces the peer writes it in (any size, one at a time, each consumed before the next is
// written), the read buffer limit, and a sequence of reads (read_until with short, long,
// multi-byte or self-overlapping delimiters and an optional max_bytes; read_bytes, partial or
// not; read_until_close; read_streaming with or without a byte count), started from the
// driver or from inside the previous read's callback, with pause/resume and a rejected second
// read mixed in. Then the peer sends EOF and a last read_until_close collects what is left.
//
// Besides the sanitizers' checks, it traps when:
//  - the bytes delivered to the callbacks, concatenated, are not the payload's prefix (lost,
//    duplicated or reordered bytes), or, on a clean EOF, not the whole payload;
//  - a completion breaks its mode's contract (read_bytes(n) without n bytes, read_until data
//    not ending at the first delimiter or longer than max_bytes, a streaming chunk empty or
//    past its count, read_until_close before EOF), runs twice or never, runs inside the call
//    that passed it, or out of order (a read refused at once for a bad delimiter aside: its
//    InvalidArgument may come after the next read's result);
//  - a rejected second read does not fail with FailedPrecondition;
//  - the stream stalls: data waits in the kernel with a read outstanding and nothing moves.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/socket.h"

namespace {

using ioloop::IOLoop;
using ioloop::net::IOStream;
using ioloop::net::IOStreamOptions;
using ioloop::net::Socket;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr size_t kMaxPayload = 64 * 1024;
constexpr int kMaxIdleSteps = 64;  // loop iterations without progress before "stalled"

int unread(int fd) {
  int n = 0;
  if (fd < 0 || ::ioctl(fd, FIONREAD, &n) != 0) return 0;
  return n;
}

class Driver {
 public:
  Driver(FuzzedDataProvider& fdp, IOLoop& loop) : fdp_(fdp), loop_(loop) {}

  void run() {
    auto pair = Socket::pair();
    check(pair.ok());
    peer_ = std::move(pair->second);
    IOStreamOptions options;
    if (fdp_.ConsumeBool()) options.max_buffer_size = fdp_.ConsumeIntegralInRange<size_t>(1, 8192);
    stream_ = IOStream::create(loop_, std::move(pair->first), options);
    stream_->set_close_callback([this](absl::Status) { ++closes_; });
    payload_ = fdp_.ConsumeBytesAsString(
        fdp_.ConsumeIntegralInRange<size_t>(0, std::min(kMaxPayload, fdp_.remaining_bytes())));

    int idle = 0;
    while (!(stream_->closed() && closes_ == 1 && !stream_->reading())) {
      const auto before = progress();
      if (!stream_->reading() && !stream_->closed()) start_read();
      if (stream_->reading_paused() && fdp_.ConsumeBool()) stream_->resume_reading();
      if (sent_ < payload_.size() && unread(stream_->fd()) == 0) send_piece();
      if (sent_ == payload_.size() && !eof_sent_ && unread(stream_->fd()) == 0) {
        ::shutdown(peer_.fd(), SHUT_WR);
        eof_sent_ = true;
      }
      step();
      if (progress() != before) {
        idle = 0;
        continue;
      }
      if (stream_->reading_paused()) {
        stream_->resume_reading();  // paused is not stalled
      } else {
        check(++idle <= kMaxIdleSteps);  // stalled
      }
    }
    // Collect what is still buffered: after a clean close a read_until_close completes with it.
    const bool clean = stream_->error().ok();
    // A completion may start the next read (pipelined), and a refused one completes one
    // iteration later, so the input can chain any number of them: bound the steps without a
    // completion, not the steps.
    start(Mode::kUntilClose, 0, "");
    for (int idle = 0; idle < kMaxIdleSteps && !pending_.empty();) {
      const uint64_t before = completions_;
      step();
      idle = completions_ == before ? idle + 1 : 0;
    }
    check(pending_.empty() && !stream_->reading());
    check(delivered_ == payload_.substr(0, delivered_.size()));
    if (clean) check(delivered_ == payload_);
    check(closes_ == 1);
  }

 private:
  enum class Mode { kUntil, kBytes, kPartial, kUntilClose, kStreaming };

  // Changes whenever the stream or the peer moved anything.
  std::tuple<size_t, uint64_t, size_t, bool, size_t, int> progress() const {
    return {delivered_.size(),           completions_,         sent_, stream_->closed(),
            stream_->read_buffer_size(), unread(stream_->fd())};
  }

  // One loop iteration: queued callbacks, a zero-timeout poll, its events.
  void step() {
    loop_.add_callback([this] { loop_.stop(); });
    loop_.start();
  }

  // The next piece: any size from 1 byte to the whole rest, as the input says.
  void send_piece() {
    const size_t left = payload_.size() - sent_;
    size_t n = fdp_.remaining_bytes() == 0 ? left : fdp_.ConsumeIntegralInRange<size_t>(1, left);
    const ssize_t r = ::send(peer_.fd(), payload_.data() + sent_, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r > 0) sent_ += static_cast<size_t>(r);
  }

  // Starts a read chosen by the input (read_until_close once the input is used up).
  void start_read() {
    if (fdp_.remaining_bytes() == 0) {
      start(Mode::kUntilClose, 0, "");
      return;
    }
    switch (fdp_.ConsumeIntegralInRange<int>(0, 5)) {
      case 0: {
        std::string delim;
        switch (fdp_.ConsumeIntegralInRange<int>(0, 3)) {
          case 0:
            delim = "\n";
            break;
          case 1:
            delim = "\r\n";
            break;
          case 2:
            delim = "aab";  // overlaps itself: in "aaab" it starts at 1
            break;
          default:
            // Any bytes: longer than 16 (kept on the heap), empty or over max_buffer_size
            // (refused with InvalidArgument).
            delim = fdp_.ConsumeRandomLengthString(40);
            break;
        }
        const size_t max_bytes =
            fdp_.ConsumeBool() ? fdp_.ConsumeIntegralInRange<size_t>(0, 300) : 0;
        start(Mode::kUntil, max_bytes, std::move(delim));
        break;
      }
      case 1:
        start(Mode::kBytes, fdp_.ConsumeIntegralInRange<size_t>(0, 600), "");
        break;
      case 2:
        start(Mode::kPartial, fdp_.ConsumeIntegralInRange<size_t>(1, 600), "");
        break;
      case 3:
        start(Mode::kUntilClose, 0, "");
        break;
      default:
        start(Mode::kStreaming, fdp_.ConsumeIntegralInRange<size_t>(0, 700), "");
        break;
    }
    if (fdp_.ConsumeIntegralInRange<int>(0, 7) == 0 && stream_->reading()) {
      // A second read while one is outstanding (not after a rejected read_until): rejected,
      // later, and without data.
      in_call_ = true;
      stream_->read_bytes(1, [this](absl::StatusOr<std::string> r) {
        check(!in_call_);
        check(r.status().code() == absl::StatusCode::kFailedPrecondition);
        ++completions_;
      });
      in_call_ = false;
    }
    if (fdp_.ConsumeIntegralInRange<int>(0, 7) == 0) stream_->pause_reading();
  }

  void start(Mode mode, size_t n, std::string delim) {
    const uint64_t id = ++reads_started_;
    pending_.insert(id);
    auto done = [this, mode, n, delim, id](absl::StatusOr<std::string> r) {
      check(!in_call_);
      check(pending_.erase(id) == 1);  // exactly once
      if (!accepted_.empty() && accepted_.front() == id) {
        accepted_.pop_front();  // accepted reads complete in the order they were started
      } else {
        check(r.status().code() == absl::StatusCode::kInvalidArgument);  // a bad delimiter
      }
      ++completions_;
      if (r.ok()) on_data(mode, n, delim, *r);
      if (!stream_->reading() && fdp_.remaining_bytes() > 0 && fdp_.ConsumeBool()) {
        start_read();  // pipelined: served by the running dispatch
      }
    };
    in_call_ = true;
    switch (mode) {
      case Mode::kUntil:
        stream_->read_until(delim, done, n);
        break;
      case Mode::kBytes:
        stream_->read_bytes(n, done);
        break;
      case Mode::kPartial:
        stream_->read_bytes(n, done, true);
        break;
      case Mode::kUntilClose:
        stream_->read_until_close(done);
        break;
      case Mode::kStreaming:
        streamed_ = 0;
        stream_->read_streaming(
            [this, n](absl::string_view chunk) {
              check(!in_call_);
              check(!chunk.empty() && chunk.size() <= 256 * 1024);
              streamed_ += chunk.size();
              if (n > 0) check(streamed_ <= n);
              deliver(chunk);
              if (fdp_.remaining_bytes() > 0 && fdp_.ConsumeIntegralInRange<int>(0, 15) == 0) {
                stream_->pause_reading();
              }
            },
            done, n);
        break;
    }
    in_call_ = false;
    if (stream_->reading()) accepted_.push_back(id);
  }

  void on_data(Mode mode, size_t n, const std::string& delim, const std::string& data) {
    switch (mode) {
      case Mode::kUntil: {
        check(data.size() >= delim.size());
        check(data.compare(data.size() - delim.size(), delim.size(), delim) == 0);
        check(data.find(delim) == data.size() - delim.size());  // the first occurrence
        if (n > 0) check(data.size() <= n);
        break;
      }
      case Mode::kBytes:
        check(data.size() == n);
        break;
      case Mode::kPartial:
        check(!data.empty() && data.size() <= n);
        break;
      case Mode::kUntilClose:
        check(eof_sent_);
        break;
      case Mode::kStreaming:
        check(data.empty());
        if (n > 0) check(streamed_ == n);
        break;
    }
    deliver(data);
  }

  // The next bytes of the payload, exactly: nothing lost, duplicated or reordered.
  void deliver(absl::string_view data) {
    check(data.size() <= payload_.size() - delivered_.size());
    check(absl::string_view(payload_).substr(delivered_.size(), data.size()) == data);
    absl::StrAppend(&delivered_, data);
  }

  FuzzedDataProvider& fdp_;
  IOLoop& loop_;
  Socket peer_;
  std::shared_ptr<IOStream> stream_;
  std::string payload_;
  std::string delivered_;
  size_t sent_ = 0;
  size_t streamed_ = 0;
  uint64_t reads_started_ = 0;
  std::set<uint64_t> pending_;     // started, not completed
  std::deque<uint64_t> accepted_;  // started and outstanding (not refused at once)
  uint64_t completions_ = 0;
  int closes_ = 0;
  bool eof_sent_ = false;
  bool in_call_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  IOLoop::Options options;
  options.poller = ioloop::PollerKind::kEpoll;
  auto loop = IOLoop::create(options);
  check(loop.ok());
  {
    Driver driver(fdp, **loop);
    driver.run();
  }
  return 0;
}
