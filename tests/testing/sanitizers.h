// IOLOOP_TESTING_ASAN / IOLOOP_TESTING_TSAN: 1 when the test is built with AddressSanitizer /
// ThreadSanitizer, by either compiler (g++ defines __SANITIZE_ADDRESS__, clang answers
// __has_feature(address_sanitizer)); tests that bound RSS or time scale or skip by them.
#ifndef IOLOOP_TESTING_SANITIZERS_H_
#define IOLOOP_TESTING_SANITIZERS_H_

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IOLOOP_TESTING_CLANG_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define IOLOOP_TESTING_CLANG_TSAN 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(IOLOOP_TESTING_CLANG_ASAN)
#define IOLOOP_TESTING_ASAN 1
#else
#define IOLOOP_TESTING_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__) || defined(IOLOOP_TESTING_CLANG_TSAN)
#define IOLOOP_TESTING_TSAN 1
#else
#define IOLOOP_TESTING_TSAN 0
#endif

#endif  // IOLOOP_TESTING_SANITIZERS_H_
