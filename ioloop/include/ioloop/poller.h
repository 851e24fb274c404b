/// @file ioloop/poller.h
/// The readiness backend behind an IOLoop: epoll (default), poll or select. Users pick one
/// through IOLoop::Options and otherwise never touch this interface; it is public so that
/// tests and benchmarks can drive a backend directly.
///
/// A Poller is not thread-safe: the owning IOLoop calls it from its own thread only.
/// It does not own the fds registered with it.
#ifndef IOLOOP_POLLER_H_
#define IOLOOP_POLLER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ioloop {

/// A readiness backend: epoll (Linux's, the default), poll() or select().
enum class PollerKind { kEpoll, kPoll, kSelect };

/// "epoll" | "poll" | "select". Parse errors are InvalidArgument naming the accepted values.
absl::StatusOr<PollerKind> parse_poller_kind(absl::string_view name);
/// The name parse_poller_kind() accepts for `kind`: "epoll", "poll" or "select".
absl::string_view poller_kind_name(PollerKind kind);

/// The interface of the readiness backends (see the file comment of ioloop/poller.h): one
/// thread only; registered fds are not owned.
class Poller {
 public:
  /// One readiness report. `tag` is the value given at add()/modify(): IOLoop stores a
  /// generation number there so that an event computed for an fd's previous registration
  /// is recognised and dropped after the fd number is reused.
  struct Event {
    int fd;           ///< the ready fd
    uint32_t events;  ///< READ | WRITE | ERROR bits
    uint32_t tag;     ///< as given at add()/modify()
  };

  /// Creates a backend. Fails with the errno text if the kernel object cannot be made.
  /// epoll probes epoll_pwait2 here, once, and uses epoll_wait if the probe fails.
  static absl::StatusOr<std::unique_ptr<Poller>> create(PollerKind kind);

  virtual ~Poller() = default;
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  /// Which backend this is.
  virtual PollerKind kind() const = 0;

  /// Starts watching `fd` for `events` (READ|WRITE, optional EDGE). ERROR is always watched,
  /// except by select, which has no error set (see ERROR in events.h).
  /// InvalidArgument: negative or closed fd ("fd N is not open"), EDGE on a level-only backend,
  /// fd >= FD_SETSIZE for select.
  /// AlreadyExists: fd already registered. Other failures carry the errno text.
  virtual absl::Status add(int fd, uint32_t events, uint32_t tag) = 0;
  /// Changes the interest of a registered fd. NotFound if it is not registered, except that an
  /// fd add() would refuse (negative, closed, past FD_SETSIZE on select, or EDGE asked of a
  /// level-only backend) may be InvalidArgument first, as add() words it. IOLoop checks
  /// registration itself, so update_handler() is NotFound for every unregistered fd.
  virtual absl::Status modify(int fd, uint32_t events, uint32_t tag) = 0;
  /// Stops watching `fd`. A no-op for an unknown fd. Safe after the fd was closed, with one
  /// exception on epoll: a closed fd whose open file lives on in a dup() stays in the kernel's
  /// set (epoll_ctl needs the closed number), and its readiness is still reported. IOLoop
  /// notices (the event matches no handler in two waits running) and replaces its poller with
  /// a fresh one holding its handlers. Remove before closing.
  virtual void remove(int fd) = 0;

  /// Waits until at least one fd is ready or `timeout` passes (nullopt: no limit; zero: do not
  /// block) and appends the ready fds to `out`. The timeout has nanosecond resolution where
  /// the kernel allows (epoll_pwait2, ppoll, pselect); it is never rounded down.
  /// Returns the number of events appended; EINTR is reported as 0 events, not an error.
  /// A registered fd found closed (poll: POLLNVAL; select: EBADF) is reported once, as ERROR,
  /// and then muted until modify() or remove(); epoll never sees one (close() removes it).
  /// Any other failure is returned as a Status; IOLoop counts it and backs off.
  virtual absl::StatusOr<int> poll(std::optional<absl::Duration> timeout,
                                   std::vector<Event>* out) = 0;

 protected:
  Poller() = default;
};

}  // namespace ioloop

#endif  // IOLOOP_POLLER_H_
