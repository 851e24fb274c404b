// Linked into the test programs listed in IOLOOP_SINGLE_THREADED_TESTS (tests/CMakeLists.txt),
// in the preset without sanitizers only. Those suites are not built under ThreadSanitizer,
// on the claim that their process never starts a thread; this definition of pthread_create
// takes the place of libc's for the whole process (std::thread included: an executable's
// symbol interposes on the shared libraries' references), so the first thread makes the
// test abort with a message that says what to do, instead of the claim going stale silently.
#include <errno.h>  // program_invocation_short_name
#include <pthread.h>

#include <cstdio>
#include <cstdlib>

extern "C" int pthread_create(pthread_t* /*thread*/, const pthread_attr_t* /*attr*/,
                              void* (* /*start*/)(void*), void* /*arg*/) {
  std::fprintf(stderr,
               "%s is listed in IOLOOP_SINGLE_THREADED_TESTS (tests/CMakeLists.txt), so it is "
               "not run under ThreadSanitizer, but it started a thread: take it off the list\n",
               program_invocation_short_name);
  std::abort();
}
