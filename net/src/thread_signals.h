// File: net/src/thread_signals.h (private)
// The signal mask for the threads the library starts (TCPServer's workers, Resolver's lookup
// threads): set on the starting thread for the time it starts them, since a thread inherits
// its creator's mask.
#ifndef IOLOOP_NET_SRC_THREAD_SIGNALS_H_
#define IOLOOP_NET_SRC_THREAD_SIGNALS_H_

#include <pthread.h>
#include <signal.h>

namespace ioloop::net::internal {

// Blocks, in the calling thread until destroyed, every signal but those the kernel sends to the
// thread that faults. A process-directed signal (SIGINT, SIGTERM, SIGCHLD, ...) then never
// lands on a library thread: it waits for the thread whose loop reads it through a signalfd.
// A fault signal cannot wait: one raised while blocked kills the process at once, bypassing its
// crash handler (a sanitizer's report, a core dump handler), so those stay as they were.
class ScopedLibraryThreadMask {
 public:
  ScopedLibraryThreadMask() {
    sigset_t mask;
    sigfillset(&mask);
    for (int signo : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS}) sigdelset(&mask, signo);
    pthread_sigmask(SIG_BLOCK, &mask, &old_);
  }
  ~ScopedLibraryThreadMask() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  ScopedLibraryThreadMask(const ScopedLibraryThreadMask&) = delete;
  ScopedLibraryThreadMask& operator=(const ScopedLibraryThreadMask&) = delete;

 private:
  sigset_t old_;
};

}  // namespace ioloop::net::internal

#endif  // IOLOOP_NET_SRC_THREAD_SIGNALS_H_
