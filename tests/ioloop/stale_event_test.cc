// Stale-event hunt (issue 7, point 13): per poller, a seeded random workload that opens,
// closes, re-registers and re-targets fds from inside handlers for thousands of iterations
// (pipes, eventfds and socketpairs; Linux hands out the lowest free fd number, so numbers are
// reused at once, often within the batch that still holds events for the old file). Every
// registration carries its own id; a handler fails the test if it is invoked
//  - for a registration that was removed (or replaced) before the event was dispatched,
//  - with an fd other than its own, or with events it did not ask for (ERROR aside),
//  - with READ while its file has nothing to read (an event computed for the previous file
//    behind the same fd number: the generation tag must have dropped it).
// And every event the loop dispatched must have reached a live registration's handler.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "io_loop_fixture.h"
#include "ioloop/events.h"
#include "ioloop/io_loop.h"
#include "testing/pollers.h"

namespace ioloop {
namespace {

using ::ioloop::testing::AllPollers;
using ::ioloop::testing::PollerName;

enum class Kind { kPipe, kEventfd, kSocketpair };

// The registered end is `rfd`; the test makes it readable by writing to `wfd` (the same fd
// for an eventfd).
struct Channel {
  Kind kind;
  int rfd;
  int wfd;
};

struct Registration {
  int fd;
  uint32_t interest;
  bool live;
};

class StaleEventHunt {
 public:
  StaleEventHunt(IOLoop& loop, uint32_t seed, size_t slots)
      : loop_(loop), rng_(seed), channels_(slots) {}

  void run(int iterations) {
    for (size_t slot = 0; slot < channels_.size(); ++slot) open(slot);
    iterations_left_ = iterations;
    loop_.add_callback([this] { drive(); });
    loop_.start();
    for (size_t slot = 0; slot < channels_.size(); ++slot) close(slot);
  }

  uint64_t events() const { return events_; }
  uint64_t reads() const { return reads_; }
  uint64_t registrations() const { return regs_.size(); }
  uint64_t same_iteration_reuses() const { return same_iteration_reuses_; }
  uint64_t failures() const { return failures_; }

 private:
  // One loop iteration: poke a few channels so there is always a batch of events.
  void drive() {
    if (--iterations_left_ <= 0) {
      loop_.stop();
      return;
    }
    for (int i = pick(1, 3); i > 0; --i) poke(random_slot());
    loop_.add_callback([this] { drive(); });
  }

  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  size_t random_slot() {
    return static_cast<size_t>(pick(0, static_cast<int>(channels_.size()) - 1));
  }

  void fail(const std::string& what) {
    if (++failures_ <= 5) ADD_FAILURE() << what;
  }

  uint32_t random_interest(Kind kind) {
    switch (pick(0, 5)) {
      case 0:  // a pipe's read end is never writable: WRITE alone only on the others
        return kind == Kind::kPipe ? READ : WRITE;
      case 1:
        return READ | WRITE;
      default:
        return READ;
    }
  }

  void open(size_t slot) {
    Channel ch{};
    int fds[2];
    switch (pick(0, 2)) {
      case 0:
        ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
        ch = {Kind::kPipe, fds[0], fds[1]};
        break;
      case 1: {
        const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        ASSERT_GE(fd, 0);
        ch = {Kind::kEventfd, fd, fd};
        break;
      }
      default:
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
        ch = {Kind::kSocketpair, fds[0], fds[1]};
        break;
    }
    channels_[slot] = ch;
    register_channel(slot);
  }

  void register_channel(size_t slot) {
    const Channel& ch = *channels_[slot];
    const uint64_t id = regs_.size();
    const uint32_t interest = random_interest(ch.kind);
    regs_.push_back(Registration{ch.rfd, interest, true});
    auto removed = removed_at_.find(ch.rfd);
    if (removed != removed_at_.end() && removed->second == loop_.stats().iterations) {
      ++same_iteration_reuses_;
    }
    absl::Status s = loop_.add_handler(
        ch.rfd, [this, id](int fd, uint32_t events) { on_event(id, fd, events); }, interest);
    ASSERT_TRUE(s.ok()) << s;
    current_[ch.rfd] = id;
  }

  void unregister(size_t slot) {
    const int fd = channels_[slot]->rfd;
    loop_.remove_handler(fd);
    regs_[current_.at(fd)].live = false;
    current_.erase(fd);
    removed_at_[fd] = loop_.stats().iterations;
  }

  void close(size_t slot) {
    if (!channels_[slot]) return;
    unregister(slot);
    const Channel ch = *channels_[slot];
    ::close(ch.rfd);
    if (ch.wfd != ch.rfd) ::close(ch.wfd);
    channels_[slot].reset();
  }

  void poke(size_t slot) {
    if (!channels_[slot]) return;
    const Channel& ch = *channels_[slot];
    if (ch.kind == Kind::kEventfd) {
      const uint64_t one = 1;
      ASSERT_EQ(::write(ch.wfd, &one, sizeof one), static_cast<ssize_t>(sizeof one));
    } else {
      ASSERT_EQ(::write(ch.wfd, "x", 1), 1);
    }
  }

  void on_event(uint64_t id, int fd, uint32_t events) {
    ++events_;
    const Registration& reg = regs_[id];
    auto cur = current_.find(fd);
    if (!reg.live || cur == current_.end() || cur->second != id) {
      fail("handler of removed registration " + std::to_string(id) + " invoked for fd " +
           std::to_string(fd) + " with " + events_to_string(events));
      return;
    }
    if (fd != reg.fd) {
      fail("registration for fd " + std::to_string(reg.fd) + " invoked with fd " +
           std::to_string(fd));
      return;
    }
    if ((events & ~(reg.interest | ERROR)) != 0) {
      fail("fd " + std::to_string(fd) + " asked for " + events_to_string(reg.interest) + ", got " +
           events_to_string(events));
    }
    size_t slot = 0;
    while (!channels_[slot] || channels_[slot]->rfd != fd) ++slot;
    if (events & READ) {
      char buf[64];
      const ssize_t n = ::read(fd, buf, channels_[slot]->kind == Kind::kEventfd ? 8 : 16);
      if (n < 0 && errno == EAGAIN) {
        fail("READ for fd " + std::to_string(fd) + " (registration " + std::to_string(id) +
             ") with nothing to read: a stale event");
      } else if (n <= 0) {
        fail("read on fd " + std::to_string(fd) + " returned " + std::to_string(n));
      } else {
        ++reads_;
      }
    }
    // What user code does from a handler: its own fd or any other.
    for (int i = pick(0, 2); i > 0; --i) {
      const size_t target = pick(0, 3) == 0 ? slot : random_slot();
      switch (pick(0, 5)) {
        case 0:  // close and open: the new file usually gets the number just freed
          close(target);
          open(target);
          break;
        case 1:  // same fd, new registration
          if (channels_[target]) {
            unregister(target);
            register_channel(target);
          }
          break;
        case 2:
          if (channels_[target]) {
            const int tfd = channels_[target]->rfd;
            const uint32_t interest = random_interest(channels_[target]->kind);
            ASSERT_TRUE(loop_.update_handler(tfd, interest).ok());
            regs_[current_.at(tfd)].interest = interest;
          }
          break;
        default:
          poke(target);
          break;
      }
    }
  }

  IOLoop& loop_;
  std::mt19937 rng_;
  std::vector<std::optional<Channel>> channels_;
  std::vector<Registration> regs_;      // by id
  std::map<int, uint64_t> current_;     // fd -> live registration
  std::map<int, uint64_t> removed_at_;  // fd -> iteration its last registration was removed
  int iterations_left_ = 0;
  uint64_t events_ = 0;
  uint64_t reads_ = 0;
  uint64_t same_iteration_reuses_ = 0;
  uint64_t failures_ = 0;
};

using StaleEventTest = ::ioloop::testing::IOLoopParamTest;

TEST_P(StaleEventTest, NoHandlerSeesAnEventForARegistrationItDidNotMake) {
  for (uint32_t seed : {1u, 2u, 3u, 4u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const IOLoop::Stats before = loop().stats();
    StaleEventHunt hunt(loop(), seed, 24);
    hunt.run(3000);
    EXPECT_EQ(hunt.failures(), 0u);
    // Every event the loop dispatched reached a live registration (no wake-ups happen: the
    // loop never sleeps, and no other thread posts).
    EXPECT_EQ(loop().stats().events_dispatched - before.events_dispatched, hunt.events());
    // Not vacuous: plenty of traffic, registrations, and fd numbers reused within the
    // iteration that freed them.
    EXPECT_GT(hunt.reads(), 5000u);
    EXPECT_GT(hunt.registrations(), 2000u);
    EXPECT_GT(hunt.same_iteration_reuses(), 500u);
  }
  EXPECT_EQ(loop().stats().handlers, 1u);  // only the loop's own waker is left
}

INSTANTIATE_TEST_SUITE_P(Pollers, StaleEventTest, AllPollers(), PollerName);

}  // namespace
}  // namespace ioloop
