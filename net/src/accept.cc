#include "ioloop/net/accept.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "ioloop/logging.h"
#include "ioloop/rate_limiter.h"

namespace ioloop::net {
namespace {

int open_spare() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

// Errors after which the next accept() may well succeed. Linux reports network errors that
// hit a connection still in the queue through accept() (accept(2), "Error handling").
bool is_transient(int err) {
  switch (err) {
    case ECONNABORTED:
    case EINTR:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
    case ETIMEDOUT:
    case EPERM:  // a firewall rule refused the connection
      return true;
    default:
      return false;
  }
}

bool is_out_of_resources(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

}  // namespace

struct Acceptor::State {
  State(IOLoop& l, int fd, ConnectionCallback cb, AcceptOptions o, int spare)
      : loop(l), listen_fd(fd), options(o), spare_fd(spare), on_connection(std::move(cb)) {}

  // Registers the listener; the handler holds `self` weakly (see accept.h).
  static absl::Status start(const std::shared_ptr<State>& self);
  void stop();
  void on_readable(const std::shared_ptr<State>& self);
  // Accepts one waiting client into the spare fd's slot and closes it. False if none waited
  // or the slot could not be used.
  bool reject_one();
  void pause(const std::shared_ptr<State>& self, const char* why, int err);
  // Re-enables the listener after options.emfile_backoff (paused until then).
  void schedule_resume(const std::shared_ptr<State>& self);
  static void resume(const std::shared_ptr<State>& self);

  IOLoop& loop;
  const int listen_fd;
  const AcceptOptions options;
  int spare_fd;
  bool stopped = false;
  bool paused = false;
  TimeoutHandle resume_timer;
  ConnectionCallback on_connection;
  Stats stats;
  LogRateLimiter log_limiter{5, std::chrono::seconds(1)};
};

Acceptor::Acceptor(IOLoop& loop, int listen_fd, ConnectionCallback on_connection,
                   AcceptOptions options, int spare_fd)
    : state_(
          std::make_shared<State>(loop, listen_fd, std::move(on_connection), options, spare_fd)) {}

Acceptor::~Acceptor() {
  state_->stop();
  if (state_->spare_fd >= 0) ::close(state_->spare_fd);
  state_->spare_fd = -1;
}

void Acceptor::stop() { state_->stop(); }
bool Acceptor::accepting() const { return !state_->stopped; }
bool Acceptor::paused() const { return state_->paused; }
int Acceptor::listen_fd() const { return state_->listen_fd; }
const Acceptor::Stats& Acceptor::stats() const { return state_->stats; }

absl::Status Acceptor::State::start(const std::shared_ptr<State>& self) {
  return self->loop.add_handler(
      self->listen_fd,
      [weak = std::weak_ptr<State>(self)](int, uint32_t) {
        if (std::shared_ptr<State> state = weak.lock()) state->on_readable(state);
      },
      IOLoop::READ);
}

void Acceptor::State::stop() {
  if (stopped) return;
  stopped = true;
  if (paused) {
    loop.remove_timeout(resume_timer);
    paused = false;
  } else {
    loop.remove_handler(listen_fd);
  }
}

// `self` is the handler's lock: it keeps this State, on_connection included, alive even if
// on_connection destroys the Acceptor (`stopped` then says to touch nothing more); the State
// goes when the handler returns. One lock per wake-up, no allocation, nothing per connection.
void Acceptor::State::on_readable(const std::shared_ptr<State>& self) {
  ++stats.wakeups;
  for (int i = 0; i < options.max_accepts_per_wakeup; ++i) {
    SocketAddress peer;
    socklen_t len = sizeof(struct sockaddr_storage);
    int fd = ::accept4(listen_fd, peer.mutable_get(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;  // drained
      if (is_transient(err)) {
        ++stats.transient_errors;
        continue;
      }
      if (is_out_of_resources(err)) {
        ++stats.emfile_events;
        // Close every client waiting now (each costs one trip through the spare slot), so
        // none hangs until we have fds again; then stop looking for a while.
        while (i < options.max_accepts_per_wakeup && reject_one()) ++i;
        pause(self, "out of file descriptors", err);
        return;
      }
      ++stats.other_errors;
      pause(self, "accept failed", err);
      return;
    }
    peer.set_length(len);
    ++stats.accepted;
    // A throwing callback costs only its own connection (the Socket is destroyed, so the fd
    // is closed, as the exception unwinds); the loop logs and counts it, and the batch goes
    // on.
    loop.invoke_guarded("Acceptor connection callback", [&] { on_connection(Socket(fd), peer); })
        .IgnoreError();
    if (stopped) return;
  }
}

bool Acceptor::State::reject_one() {
  if (spare_fd < 0) spare_fd = open_spare();  // a previous reopen failed; try again
  if (spare_fd < 0) return false;
  ::close(spare_fd);
  spare_fd = -1;
  int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  const int err = errno;
  if (fd >= 0) {
    ::close(fd);
    ++stats.rejected;
  }
  // Another thread may take the slot in between; then we simply have no spare until later.
  spare_fd = open_spare();
  if (fd >= 0) return spare_fd >= 0;
  return is_transient(err) && spare_fd >= 0;  // e.g. ECONNABORTED: look at the next one
}

void Acceptor::State::pause(const std::shared_ptr<State>& self, const char* why, int err) {
  uint64_t suppressed = 0;
  if (log_limiter.allow(loop.time(), &suppressed)) {
    logger().warn(
        "accept on fd {}: {}; closed {} waiting client(s) so far, listener paused for {}"
        "{}",
        // "why: strerror text", thread-safely (std::strerror may share a buffer across threads).
        listen_fd, std::string(absl::ErrnoToStatus(err, why).message()), stats.rejected,
        absl::FormatDuration(options.emfile_backoff), suppressed_note(suppressed));
  }
  ++stats.paused;
  // Removing the handler (rather than clearing READ) also silences ERROR, so no backend
  // can report the listener while it is off.
  loop.remove_handler(listen_fd);
  schedule_resume(self);
}

void Acceptor::State::schedule_resume(const std::shared_ptr<State>& self) {
  paused = true;
  resume_timer = loop.call_later(options.emfile_backoff, [weak = std::weak_ptr<State>(self)] {
    if (std::shared_ptr<State> state = weak.lock()) resume(state);
  });
}

void Acceptor::State::resume(const std::shared_ptr<State>& self) {
  State& s = *self;
  s.paused = false;
  s.resume_timer = TimeoutHandle();
  if (s.stopped) return;
  ++s.stats.resumed;
  // A spare lost in reject_one() (another thread took its slot) comes back once fds are free.
  if (s.spare_fd < 0) s.spare_fd = open_spare();
  if (absl::Status status = start(self); !status.ok()) {
    // The poller's table may be full (epoll's max_user_watches: ENOSPC) or memory short, for
    // now: try again after another back-off rather than stop accepting for good.
    uint64_t suppressed = 0;
    if (s.log_limiter.allow(s.loop.time(), &suppressed)) {
      logger().warn("accept on fd {}: cannot re-enable the listener: {}; retrying in {}{}",
                    s.listen_fd, std::string(status.message()),
                    absl::FormatDuration(s.options.emfile_backoff), suppressed_note(suppressed));
    }
    ++s.stats.paused;
    s.schedule_resume(self);
  }
}

absl::StatusOr<std::unique_ptr<Acceptor>> add_accept_handler(
    IOLoop& loop, int listen_fd, Acceptor::ConnectionCallback on_connection,
    AcceptOptions options) {
  if (!on_connection) return absl::InvalidArgumentError("add_accept_handler: empty callback");
  if (options.max_accepts_per_wakeup <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("add_accept_handler: max_accepts_per_wakeup must be positive, got ",
                     options.max_accepts_per_wakeup));
  }
  // Zero would re-enable the listener at once while accept() still fails: the very spin
  // the back-off exists to prevent. Infinity would never resume.
  if (options.emfile_backoff <= absl::ZeroDuration() ||
      options.emfile_backoff == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("add_accept_handler: emfile_backoff must be positive and finite, got ",
                     absl::FormatDuration(options.emfile_backoff)));
  }
  int spare = open_spare();
  if (spare < 0) {
    return absl::ErrnoToStatus(errno, "add_accept_handler: opening the spare fd /dev/null");
  }
  auto acceptor =
      std::make_unique<Acceptor>(loop, listen_fd, std::move(on_connection), options, spare);
  if (absl::Status s = Acceptor::State::start(acceptor->state_); !s.ok()) {
    acceptor->state_->stopped = true;  // nothing registered: the destructor must not remove it
    return s;
  }
  return acceptor;
}

}  // namespace ioloop::net
