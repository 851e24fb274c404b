// IOLoop's signal registration (add_signal_handler, remove_signal_handler) and the mask it
// gives back, kept apart from io_loop.cc (which dispatches: handle_signals()). See
// io_loop_signals.h for the state.
#include "io_loop_signals.h"

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ioloop/io_loop.h"

namespace ioloop {

namespace {

// Signal masks are per thread, and several loops of one thread (run in turn) may handle the same
// signal: per thread, how many loops hold each signal, and which of them the thread had blocked
// before the first of those took it.
struct ThreadSignals {
  std::array<int, _NSIG> holders{};
  sigset_t blocked_before;
  ThreadSignals() { sigemptyset(&blocked_before); }
};
thread_local ThreadSignals t_signals;

}  // namespace

int IOLoop::SignalState::hold(int signo) {
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  sigset_t old;
  // Block first: a signal arriving between this and the signalfd then waits in the signalfd.
  if (int err = ::pthread_sigmask(SIG_BLOCK, &one, &old); err != 0) return err;
  if (holder_thread == nullptr) holder_thread = &t_signals;
  if (t_signals.holders[signo]++ == 0) {
    if (sigismember(&old, signo) == 1) {
      sigaddset(&t_signals.blocked_before, signo);
    } else {
      sigdelset(&t_signals.blocked_before, signo);
    }
  }
  return 0;
}

void IOLoop::SignalState::release(int signo) {
  // Taken on another thread (a loop destroyed elsewhere), whose mask this thread cannot undo.
  if (holder_thread != &t_signals) return;
  if (t_signals.holders[signo] == 0 || --t_signals.holders[signo] > 0) return;
  if (sigismember(&t_signals.blocked_before, signo) == 1) return;
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  const struct timespec zero = {0, 0};
  // Still blocked here, so sigtimedwait() takes pending instances (thread- or process-
  // directed) without running any handler; EAGAIN once none is left.
  while (::sigtimedwait(&one, nullptr, &zero) == signo) {
  }
  ::pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
}

void IOLoop::SignalState::release_all() {
  for (int signo = 1; signo < _NSIG; ++signo) {
    if (sigismember(&mask, signo) == 1) release(signo);
  }
  sigemptyset(&mask);
}

absl::Status IOLoop::add_signal_handler(int signo, SignalHandler handler) {
  if (signo <= 0 || signo >= _NSIG || signo == SIGKILL || signo == SIGSTOP) {
    return absl::InvalidArgumentError(
        absl::StrCat("add_signal_handler: cannot handle signal ", signo));
  }
  // glibc's pthread_sigmask() silently leaves these out (SIGCANCEL, SIGSETXID): the signal would
  // never be blocked, so never reach the signalfd, and its default action would kill.
  if (signo >= 32 && signo < SIGRTMIN) {
    return absl::InvalidArgumentError(absl::StrCat("add_signal_handler: cannot handle signal ",
                                                   signo,
                                                   " (reserved by the C library for its threads)"));
  }
  if (!handler) return absl::InvalidArgumentError("add_signal_handler: empty handler");
  if (!signals_) signals_ = std::make_unique<SignalState>();
  const bool handled = signals_->handlers[signo] != nullptr;
  if (!handled) {
    if (int err = signals_->hold(signo); err != 0) {
      return absl::ErrnoToStatus(err, "pthread_sigmask");
    }
  }
  // On failure below, give the signal back as it was (unless an earlier handler holds it).
  auto undo = [&] {
    if (!handled) signals_->release(signo);
  };
  sigset_t mask = signals_->mask;
  sigaddset(&mask, signo);
  int fd = ::signalfd(signals_->fd, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    undo();
    return absl::ErrnoToStatus(err, "signalfd");
  }
  if (signals_->fd < 0) {
    signals_->fd = fd;
    // dispatch() calls handle_signals() for this fd without timing it as a handler.
    absl::Status s = add_handler(
        fd, [this](int, uint32_t) { handle_signals(); }, READ);
    if (!s.ok()) {
      ::close(fd);
      signals_->fd = -1;
      undo();
      return s;
    }
  }
  signals_->mask = mask;
  signals_->retire(std::exchange(signals_->handlers[signo],
                                 std::make_unique<SignalHandler>(std::move(handler))));
  return absl::OkStatus();
}

void IOLoop::remove_signal_handler(int signo) {
  if (!signals_ || signo <= 0 || signo >= _NSIG || !signals_->handlers[signo]) return;
  std::unique_ptr<SignalHandler> removed = std::move(signals_->handlers[signo]);
  sigdelset(&signals_->mask, signo);
  ::signalfd(signals_->fd, &signals_->mask, SFD_NONBLOCK | SFD_CLOEXEC);
  signals_->release(signo);
  // Last: destroyed here when no dispatch runs, and its captures' destructors may add a handler
  // for the same signal, which the lines above would otherwise undo.
  signals_->retire(std::move(removed));
}

}  // namespace ioloop
