// TCPServer::start(N) when a worker thread cannot be created (EAGAIN: the process's thread or
// memory limit). pthread_create is interposed here, as testing/single_thread_guard.cc does, and
// fails once `g_threads_allowed` more threads have started; the sanitizers interpose it
// themselves, so this suite is built only without them (tests/CMakeLists.txt).
#include <dlfcn.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/tcp_server.h"

namespace {

// -1: no limit; n >= 0: n more threads may start, then EAGAIN.
std::atomic<int> g_threads_allowed{-1};

}  // namespace

extern "C" int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                              void* arg) {
  using Real = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
  static const Real real = reinterpret_cast<Real>(::dlsym(RTLD_NEXT, "pthread_create"));
  int allowed = g_threads_allowed.load();
  while (allowed >= 0) {
    if (allowed == 0) return EAGAIN;
    if (g_threads_allowed.compare_exchange_weak(allowed, allowed - 1)) break;
  }
  return real(thread, attr, start, arg);
}

namespace ioloop::net {
namespace {

using ::testing::HasSubstr;

// Found by a review: std::thread's std::system_error escaped start(), and the process
// terminated (SIGABRT). It is ResourceExhausted; the workers already started are stopped and
// joined, and every listener is closed: nothing accepts and nothing runs afterwards.
TEST(TCPServerThreadFailureTest, AWorkerThreadThatCannotStartIsResourceExhausted) {
  IOLoop loop;
  TCPServer server(loop, [](std::shared_ptr<IOStream>, const SocketAddress&) {});
  ASSERT_TRUE(server.listen(0, "127.0.0.1").ok());
  const SocketAddress address = server.addresses().at(0);
  g_threads_allowed = 2;  // the third of four worker threads fails
  absl::Status s = server.start(4);
  const int left = g_threads_allowed.exchange(-1);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(s.message(),
              HasSubstr("TCPServer::start: cannot start worker thread 3 of 4: Resource temporarily "
                        "unavailable"));
  EXPECT_EQ(left, 0);
  EXPECT_FALSE(server.started());
  EXPECT_TRUE(server.addresses().empty());
  // The port is no longer listened on.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  EXPECT_NE(::connect(fd, address.get(), address.length()), 0);
  EXPECT_EQ(errno, ECONNREFUSED);
  ::close(fd);
}

}  // namespace
}  // namespace ioloop::net
