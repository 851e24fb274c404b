#include "ioloop/net/accept.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ioloop/logging.h"

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

struct Acceptor::Shared {
  ConnectionCallback on_connection;
  bool alive = true;
  int refs = 1;  // the Acceptor's own, plus one per running on_readable()

  static void unref(Shared* s) {
    if (--s->refs == 0) delete s;
  }
};

Acceptor::Acceptor(IOLoop& loop, int listen_fd, ConnectionCallback on_connection,
                   AcceptOptions options, int spare_fd)
    : loop_(loop),
      listen_fd_(listen_fd),
      options_(options),
      spare_fd_(spare_fd),
      shared_(new Shared{std::move(on_connection), true, 1}) {}

Acceptor::~Acceptor() {
  shared_->alive = false;
  Shared::unref(shared_);
  stop();
  if (spare_fd_ >= 0) ::close(spare_fd_);
}

absl::Status Acceptor::start() {
  return loop_.add_handler(
      listen_fd_, [this](int, uint32_t) { on_readable(); }, IOLoop::READ);
}

void Acceptor::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (paused_) {
    loop_.remove_timeout(resume_timer_);
    paused_ = false;
  } else {
    loop_.remove_handler(listen_fd_);
  }
}

void Acceptor::on_readable() {
  ++stats_.wakeups;
  // on_connection may destroy this Acceptor: hold the callable and the liveness flag.
  Shared* const shared = shared_;
  ++shared->refs;
  struct Unref {
    Shared* s;
    ~Unref() { Shared::unref(s); }
  } unref_at_exit{shared};
  for (int i = 0; i < options_.max_accepts_per_wakeup; ++i) {
    SocketAddress peer;
    socklen_t len = sizeof(struct sockaddr_storage);
    int fd = ::accept4(listen_fd_, peer.mutable_get(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;  // drained
      if (is_transient(err)) {
        ++stats_.transient_errors;
        continue;
      }
      if (is_out_of_resources(err)) {
        ++stats_.emfile_events;
        // Close every client waiting now (each costs one trip through the spare slot), so
        // none hangs until we have fds again; then stop looking for a while.
        while (i < options_.max_accepts_per_wakeup && reject_one()) ++i;
        pause("out of file descriptors", err);
        return;
      }
      ++stats_.other_errors;
      pause("accept failed", err);
      return;
    }
    peer.set_length(len);
    ++stats_.accepted;
    // A throwing callback costs only its own connection (the Socket is destroyed, so the fd
    // is closed, as the exception unwinds); the loop logs and counts it, and the batch goes
    // on. `loop` is read first: the callback may destroy this Acceptor.
    IOLoop& loop = loop_;
    loop.invoke_guarded("Acceptor connection callback",
                        [&] { shared->on_connection(Socket(fd), peer); })
        .IgnoreError();
    if (!shared->alive || stopped_) return;
  }
}

bool Acceptor::reject_one() {
  if (spare_fd_ < 0) spare_fd_ = open_spare();  // a previous reopen failed; try again
  if (spare_fd_ < 0) return false;
  ::close(spare_fd_);
  spare_fd_ = -1;
  int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  const int err = errno;
  if (fd >= 0) {
    ::close(fd);
    ++stats_.rejected;
  }
  // Another thread may take the slot in between; then we simply have no spare until later.
  spare_fd_ = open_spare();
  if (fd >= 0) return spare_fd_ >= 0;
  return is_transient(err) && spare_fd_ >= 0;  // e.g. ECONNABORTED: look at the next one
}

void Acceptor::pause(const char* why, int err) {
  uint64_t suppressed = 0;
  if (log_limiter_.allow(loop_.time(), &suppressed)) {
    logger().warn(
        "accept on fd {}: {}: {}; closed {} waiting client(s) so far, listener paused for {}"
        "{}",
        listen_fd_, why, std::strerror(err), stats_.rejected,
        absl::FormatDuration(options_.emfile_backoff),
        suppressed ? absl::StrCat(" (", suppressed, " similar lines suppressed)") : "");
  }
  ++stats_.paused;
  paused_ = true;
  // Removing the handler (rather than clearing READ) also silences ERROR, so no backend
  // can report the listener while it is off.
  loop_.remove_handler(listen_fd_);
  resume_timer_ = loop_.call_later(options_.emfile_backoff, [this] { resume(); });
}

void Acceptor::resume() {
  paused_ = false;
  resume_timer_ = TimeoutHandle();
  if (stopped_) return;
  ++stats_.resumed;
  if (absl::Status s = start(); !s.ok()) {
    logger().error("accept on fd {}: cannot re-enable the listener: {}", listen_fd_,
                   std::string(s.message()));
    stopped_ = true;
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
  if (absl::Status s = acceptor->start(); !s.ok()) {
    acceptor->stopped_ = true;  // nothing registered: the destructor must not remove it
    return s;
  }
  return acceptor;
}

}  // namespace ioloop::net
