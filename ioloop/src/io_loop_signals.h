// File: io_loop_signals.h (private)
// IOLoop's signal state: one signalfd for every handled signal, the handlers, and what the
// loop must give back when it stops handling a signal (the thread's mask as it found it).
// Loop thread only, like the rest of IOLoop.
#ifndef IOLOOP_SRC_IO_LOOP_SIGNALS_H_
#define IOLOOP_SRC_IO_LOOP_SIGNALS_H_

#include <signal.h>

#include <array>
#include <memory>
#include <utility>
#include <vector>

#include "ioloop/io_loop.h"

namespace ioloop {

struct IOLoop::SignalState {
  int fd = -1;
  sigset_t mask;  // the signals handled (the signalfd's mask)
  // Boxed, so that removing or replacing a handler moves the box, never the callable: the
  // running one may be the one removed, and a callable held inline by AnyInvocable would be
  // moved out from under it, captures and all.
  std::array<std::unique_ptr<SignalHandler>, _NSIG> handlers;
  // Handlers removed or replaced while handle_signals() runs: one of them may be the running
  // handler, so they are destroyed only once the dispatch is over.
  std::vector<std::unique_ptr<SignalHandler>> retired;
  bool dispatching = false;
  // The thread whose mask the holds were taken in (its ThreadSignals), set at the first.
  // Only that thread can give them back: another's counts are another loop's.
  const void* holder_thread = nullptr;

  SignalState() { sigemptyset(&mask); }
  void retire(std::unique_ptr<SignalHandler> h) {
    if (dispatching && h) retired.push_back(std::move(h));
  }
  // Blocks `signo` in the calling thread for this loop (which did not hold it yet): the
  // thread's count of loops holding it goes up (see release()). Returns pthread_sigmask's error.
  int hold(int signo);
  // Gives `signo` back to the calling thread, if it is the one that took it (else nothing
  // changes: the holding thread's mask cannot be undone from here, and the calling thread's
  // counts belong to its own loops). While another loop of the thread still holds it,
  // nothing changes (its signals are that loop's now). The last one to let it go, unless the
  // thread had it blocked before the first took it (the application's own choice, left
  // blocked), discards what is pending of it (meant for handlers that are gone; its default
  // action could kill the process) and unblocks it.
  void release(int signo);
  // release() for every handled signal (~IOLoop).
  void release_all();
};

}  // namespace ioloop

#endif  // IOLOOP_SRC_IO_LOOP_SIGNALS_H_
