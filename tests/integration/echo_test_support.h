// File: integration/echo_test_support.h
// Blocking-client helpers and /proc readers shared by the echo server integration tests and
// the echo_load tool. Header-only; every function is for the test's own thread.
#ifndef IOLOOP_TESTS_INTEGRATION_ECHO_TEST_SUPPORT_H_
#define IOLOOP_TESTS_INTEGRATION_ECHO_TEST_SUPPORT_H_

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "integration/command.h"
#include "integration/proc_stats.h"
#include "ioloop/net/socket.h"
#include "ioloop/net/socket_address.h"
#include "testing/sanitizers.h"

// Sanitizer builds, for the few bounds an instrumented build cannot meet or affords only at a
// smaller size: IOLOOP_UNDER_ASAN (ASan's quarantine keeps freed memory resident, so RSS
// bounds do not apply) and IOLOOP_SANITIZED (ASan or TSan: several times slower).
#if IOLOOP_TESTING_ASAN
#define IOLOOP_UNDER_ASAN 1
#else
#define IOLOOP_UNDER_ASAN 0
#endif
#if IOLOOP_TESTING_ASAN || IOLOOP_TESTING_TSAN
#define IOLOOP_SANITIZED 1
#else
#define IOLOOP_SANITIZED 0
#endif

namespace ioloop::testing {

// A blocking client with a 20 s receive timeout, so a broken server fails a test instead of
// hanging it. Invalid Socket (and errno set) if the connection fails.
inline net::Socket connect_blocking(const net::SocketAddress& addr) {
  net::Socket s(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return s;
  timeval tv = {20, 0};
  ::setsockopt(s.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(s.fd(), addr.get(), addr.length()) != 0) {
    const int saved = errno;
    s.reset();
    errno = saved;
  }
  return s;
}

// Sends all of `data` on a blocking socket. False (errno set) on error.
inline bool send_all_blocking(int fd, const char* data, size_t n) {
  size_t sent = 0;
  while (sent < n) {
    ssize_t r = ::send(fd, data + sent, n - sent, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    sent += static_cast<size_t>(r);
  }
  return true;
}

// Reads exactly `n` bytes (fewer only on EOF, error or timeout).
inline std::string read_exactly(int fd, size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd, out.data() + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return out;
}

// Reads until EOF. `*clean_eof` tells whether it ended with recv() == 0.
inline std::string read_to_eof(int fd, bool* clean_eof) {
  std::string out;
  char buf[64 * 1024];
  while (true) {
    ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r > 0) {
      out.append(buf, static_cast<size_t>(r));
      continue;
    }
    *clean_eof = r == 0;
    return out;
  }
}

// Byte `i` of an endless pseudo-random stream in which every byte value occurs and equal
// windows do not repeat at any buffer-size period, so a dropped, duplicated or reordered
// chunk is caught by comparing against it.
inline char pattern_byte(uint64_t i) {
  uint64_t x = (i >> 3) * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 32;
  return static_cast<char>(x >> (8 * (i & 7)));
}

inline std::string pattern(size_t n, uint64_t offset = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = pattern_byte(offset + i);
  return s;
}

// Raises this process's soft RLIMIT_NOFILE to its hard limit; returns the new soft limit.
inline rlim_t raise_own_fd_limit() {
  rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_INTEGRATION_ECHO_TEST_SUPPORT_H_
