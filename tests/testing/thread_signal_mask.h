// File: testing/thread_signal_mask.h
// What a thread the library starts must block (net/src/thread_signals.h): tests call
// open_signals() on such a thread and compare with kFaultSignals.
#ifndef IOLOOP_TESTS_TESTING_THREAD_SIGNAL_MASK_H_
#define IOLOOP_TESTS_TESTING_THREAD_SIGNAL_MASK_H_

#include <pthread.h>
#include <signal.h>

#include <vector>

namespace ioloop::testing {

// The signals the kernel sends to the thread that faults, in the order open_signals() lists
// them: the only ones a library thread leaves unblocked.
inline const std::vector<int> kFaultSignals = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};

// Of a few process-directed signals and the fault signals, those the calling thread does not
// block.
inline std::vector<int> open_signals() {
  sigset_t mask;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  std::vector<int> open;
  for (int signo :
       {SIGINT, SIGTERM, SIGUSR1, SIGCHLD, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS}) {
    if (sigismember(&mask, signo) == 0) open.push_back(signo);
  }
  return open;
}

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_TESTING_THREAD_SIGNAL_MASK_H_
