// Fault injection for the net layer (issue 7, point 12), on every poller: running out of fds
// on accept (ENFILE injected, compared with EMFILE), EINTR from every syscall the library
// retries (injected) and from real signals delivered thousands of times during a transfer.
// The stream faults (reset, EPIPE, self-close) are in fault_injection_stream_test.cc.
//
// Injection: this binary is linked with -Wl,--wrap=<syscall> for accept4, recv, recvmsg,
// send, sendmsg and the pollers' waits (tests/CMakeLists.txt), so the library's own calls go
// through the __wrap_ functions below. They pass through unless a test switches a fault on.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ioloop/net/accept.h"
#include "ioloop/net/bind.h"
#include "ioloop/net/io_stream.h"
#include "testing/loop_test_base.h"
#include "testing/pollers.h"

namespace fault {

// Counts /proc/self/fd entries (the directory's own fd included, the same way each time).
int open_fd_count() {
  int n = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (struct dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n;
}

// EINTR injection: while on, every other call of each wrapped syscall fails with EINTR
// without doing anything, so the retry (or the next iteration) is what does the work.
std::atomic<bool> eintr_on{false};
struct Counter {
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> injected{0};
};
Counter accept4_calls, recv_calls, recvmsg_calls, send_calls, sendmsg_calls, wait_calls;

bool inject_eintr(Counter& c) {
  if (!eintr_on.load(std::memory_order_relaxed)) return false;
  if (c.calls.fetch_add(1) % 2 != 0) return false;
  c.injected.fetch_add(1);
  errno = EINTR;
  return true;
}

// Out-of-fds injection for accept4: the "fd table" is full while the process holds at least
// `fd_limit` fds, as it did when the fault was switched on. Closing one fd (the acceptor's
// spare) therefore makes room for exactly one accept, as with a real EMFILE or ENFILE.
int accept_errno = 0;
int fd_limit = 0;
uint64_t accept_injected = 0;

}  // namespace fault

extern "C" {
int __real_accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags);
ssize_t __real_recv(int fd, void* buf, size_t n, int flags);
ssize_t __real_recvmsg(int fd, struct msghdr* msg, int flags);
ssize_t __real_send(int fd, const void* buf, size_t n, int flags);
ssize_t __real_sendmsg(int fd, const struct msghdr* msg, int flags);
int __real_epoll_wait(int epfd, struct epoll_event* events, int max, int timeout);
int __real_epoll_pwait2(int epfd, struct epoll_event* events, int max,
                        const struct timespec* timeout, const sigset_t* mask);
int __real_ppoll(struct pollfd* fds, nfds_t n, const struct timespec* timeout,
                 const sigset_t* mask);
int __real_pselect(int n, fd_set* r, fd_set* w, fd_set* e, const struct timespec* timeout,
                   const sigset_t* mask);

int __wrap_accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags) {
  if (fault::inject_eintr(fault::accept4_calls)) return -1;
  if (fault::accept_errno != 0 && fault::open_fd_count() >= fault::fd_limit) {
    ++fault::accept_injected;
    errno = fault::accept_errno;
    return -1;
  }
  return __real_accept4(fd, addr, len, flags);
}
ssize_t __wrap_recv(int fd, void* buf, size_t n, int flags) {
  if (fault::inject_eintr(fault::recv_calls)) return -1;
  return __real_recv(fd, buf, n, flags);
}
ssize_t __wrap_recvmsg(int fd, struct msghdr* msg, int flags) {
  if (fault::inject_eintr(fault::recvmsg_calls)) return -1;
  return __real_recvmsg(fd, msg, flags);
}
ssize_t __wrap_send(int fd, const void* buf, size_t n, int flags) {
  if (fault::inject_eintr(fault::send_calls)) return -1;
  return __real_send(fd, buf, n, flags);
}
ssize_t __wrap_sendmsg(int fd, const struct msghdr* msg, int flags) {
  if (fault::inject_eintr(fault::sendmsg_calls)) return -1;
  return __real_sendmsg(fd, msg, flags);
}
int __wrap_epoll_wait(int epfd, struct epoll_event* events, int max, int timeout) {
  if (fault::inject_eintr(fault::wait_calls)) return -1;
  return __real_epoll_wait(epfd, events, max, timeout);
}
int __wrap_epoll_pwait2(int epfd, struct epoll_event* events, int max,
                        const struct timespec* timeout, const sigset_t* mask) {
  if (fault::inject_eintr(fault::wait_calls)) return -1;
  return __real_epoll_pwait2(epfd, events, max, timeout, mask);
}
int __wrap_ppoll(struct pollfd* fds, nfds_t n, const struct timespec* timeout,
                 const sigset_t* mask) {
  if (fault::inject_eintr(fault::wait_calls)) return -1;
  return __real_ppoll(fds, n, timeout, mask);
}
int __wrap_pselect(int n, fd_set* r, fd_set* w, fd_set* e, const struct timespec* timeout,
                   const sigset_t* mask) {
  if (fault::inject_eintr(fault::wait_calls)) return -1;
  return __real_pselect(n, r, w, e, timeout, mask);
}
}  // extern "C"

namespace ioloop::net {
namespace {

Socket listen_v4() {
  absl::StatusOr<std::vector<Socket>> s = bind_sockets(0, "127.0.0.1", AF_INET);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move((*s)[0]) : Socket();
}

// A blocking connect: when it returns, the connection waits in the listener's accept queue.
Socket connect_blocking(const SocketAddress& addr) {
  Socket s(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(s.fd(), addr.get(), addr.length()), 0) << std::strerror(errno);
  return s;
}

// True once the server closed this client's connection (EOF or reset), without blocking.
bool closed_by_server(const Socket& client) {
  char c;
  const ssize_t n = ::recv(client.fd(), &c, 1, MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

// FNV-1a over a byte stream, in order.
struct Checksum {
  uint64_t h = 1469598103934665603ull;
  uint64_t bytes = 0;
  void update(const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 1099511628211ull;
    bytes += n;
  }
  bool operator==(const Checksum&) const = default;
};

// Deterministic pseudo-random bytes: block `index` of a stream.
void fill_block(std::string* block, uint64_t index) {
  uint64_t x = index * 0x9E3779B97F4A7C15ull + 1;
  for (char& c : *block) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
}

class FaultInjectionTest : public testing::LoopTestBase,
                           public ::testing::WithParamInterface<PollerKind> {
 public:
  FaultInjectionTest() : LoopTestBase(GetParam()) {}
  ~FaultInjectionTest() override {
    fault::eintr_on = false;
    fault::accept_errno = 0;
  }

  // Runs the loop until pred() holds, checking every millisecond (a timer, not a sleep);
  // fails after 10 s.
  bool run_until(const std::function<bool()>& pred) {
    TimeoutHandle next;
    std::function<void()> check = [&] {
      if (pred()) {
        done();
      } else {
        next = loop().call_later(absl::Milliseconds(1), [&] { check(); });
      }
    };
    loop().add_callback([&] { check(); });
    const bool ok = wait();
    loop().remove_timeout(next);
    return ok;
  }
};

// --- ENFILE on accept, injected, against EMFILE ---------------------------------------------

struct BackoffTrace {
  Acceptor::Stats paused_once, paused_twice, recovered;
  uint64_t injected = 0;
};

bool same(const Acceptor::Stats& a, const Acceptor::Stats& b) {
  return a.wakeups == b.wakeups && a.accepted == b.accepted &&
         a.transient_errors == b.transient_errors && a.emfile_events == b.emfile_events &&
         a.rejected == b.rejected && a.paused == b.paused && a.resumed == b.resumed &&
         a.other_errors == b.other_errors;
}

std::string describe(const Acceptor::Stats& s) {
  return absl::StrCat("wakeups=", s.wakeups, " accepted=", s.accepted,
                      " transient=", s.transient_errors, " emfile=", s.emfile_events,
                      " rejected=", s.rejected, " paused=", s.paused, " resumed=", s.resumed,
                      " other=", s.other_errors);
}

// Three clients wait; the fd table is "full" (accept4 fails with `err`): they are accepted
// into the spare slot and closed, and the listener is switched off. A fourth arrives while
// the table is still full: the same again after the back-off. Then fds are free: the fifth
// is accepted.
void run_out_of_fds(FaultInjectionTest* test, IOLoop& loop, int err, BackoffTrace* trace) {
  Socket listener = listen_v4();
  const SocketAddress addr = *listener.local_address();
  AcceptOptions options;
  options.emfile_backoff = absl::Milliseconds(2);
  std::vector<Socket> accepted;
  std::vector<std::string> peers;
  absl::StatusOr<std::unique_ptr<Acceptor>> created = add_accept_handler(
      loop, listener.fd(),
      [&](Socket conn, SocketAddress peer) {
        accepted.push_back(std::move(conn));
        peers.push_back(peer.to_string());
      },
      options);
  ASSERT_TRUE(created.ok()) << created.status();
  Acceptor& acceptor = **created;
  std::vector<Socket> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(connect_blocking(addr));

  fault::accept_injected = 0;
  fault::fd_limit = fault::open_fd_count();
  fault::accept_errno = err;
  // Each snapshot is taken inside the predicate, at the check that first sees the state, so
  // that a back-off timer running later in that iteration cannot change it.
  bool watched_while_paused = true;
  ASSERT_TRUE(test->run_until([&] {
    if (!acceptor.paused() || !closed_by_server(clients[0]) || !closed_by_server(clients[1]) ||
        !closed_by_server(clients[2])) {
      return false;
    }
    trace->paused_once = acceptor.stats();
    watched_while_paused = loop.has_handler(listener.fd());
    return true;
  }));
  EXPECT_FALSE(watched_while_paused);  // off: nothing to spin on

  // The client lives on another machine: its fd is not in our table.
  clients.push_back(connect_blocking(addr));
  ++fault::fd_limit;
  ASSERT_TRUE(test->run_until([&] {
    if (acceptor.stats().paused < 2 || !acceptor.paused() || !closed_by_server(clients[3])) {
      return false;
    }
    trace->paused_twice = acceptor.stats();
    watched_while_paused = loop.has_handler(listener.fd());
    return true;
  }));
  EXPECT_FALSE(watched_while_paused);

  fault::accept_errno = 0;
  clients.push_back(connect_blocking(addr));
  ASSERT_TRUE(test->run_until([&] {
    if (accepted.size() != 1) return false;
    trace->recovered = acceptor.stats();
    return true;
  }));
  trace->injected = fault::accept_injected;
  EXPECT_EQ(peers[0], clients[4].local_address()->to_string());
  EXPECT_TRUE(acceptor.accepting());
  EXPECT_FALSE(acceptor.paused());
  EXPECT_TRUE(loop.has_handler(listener.fd()));
}

TEST_P(FaultInjectionTest, EnfileOnAcceptBacksOffExactlyAsEmfileAndRecovers) {
  BackoffTrace emfile, enfile;
  run_out_of_fds(this, loop(), EMFILE, &emfile);
  ASSERT_FALSE(HasFatalFailure());
  run_out_of_fds(this, loop(), ENFILE, &enfile);
  ASSERT_FALSE(HasFatalFailure());

  // One failing accept per wake-up; every waiting client closed through the spare slot.
  Acceptor::Stats expected;
  expected.wakeups = 1;
  expected.emfile_events = 1;
  expected.rejected = 3;
  expected.paused = 1;
  EXPECT_TRUE(same(enfile.paused_once, expected)) << describe(enfile.paused_once);
  expected.wakeups = 2;
  expected.emfile_events = 2;
  expected.rejected = 4;
  expected.paused = 2;
  expected.resumed = 1;
  EXPECT_TRUE(same(enfile.paused_twice, expected)) << describe(enfile.paused_twice);
  expected.wakeups = 3;
  expected.accepted = 1;
  expected.resumed = 2;
  EXPECT_TRUE(same(enfile.recovered, expected)) << describe(enfile.recovered);
  EXPECT_EQ(enfile.injected, 2u);

  EXPECT_TRUE(same(enfile.paused_once, emfile.paused_once)) << describe(emfile.paused_once);
  EXPECT_TRUE(same(enfile.paused_twice, emfile.paused_twice)) << describe(emfile.paused_twice);
  EXPECT_TRUE(same(enfile.recovered, emfile.recovered)) << describe(emfile.recovered);
  EXPECT_EQ(enfile.injected, emfile.injected);
}

// --- EINTR, injected into every syscall the library retries ---------------------------------

// Four clients connect through an Acceptor and send 1 MiB each through IOStreams to an echo
// server on the same loop, which sends it back, while every other accept4, recv, recvmsg,
// send, sendmsg and poller wait fails with EINTR. Every byte must come back, no error surface, and
// each of those syscalls must really have been interrupted.
TEST_P(FaultInjectionTest, EintrFromEverySyscallIsRetriedAndLosesNothing) {
  constexpr int kClients = 4;
  constexpr size_t kBytes = 1 << 20;
  Socket listener = listen_v4();
  const SocketAddress addr = *listener.local_address();
  std::vector<std::shared_ptr<IOStream>> servers;
  int errors = 0;
  absl::StatusOr<std::unique_ptr<Acceptor>> acceptor =
      add_accept_handler(loop(), listener.fd(), [&](Socket conn, SocketAddress) {
        std::shared_ptr<IOStream> s = IOStream::create(loop(), std::move(conn));
        IOStream* raw = s.get();
        s->read_streaming(
            [raw, &errors](absl::string_view chunk) {
              raw->write_copy(chunk, [&errors](absl::Status st) { errors += !st.ok(); });
            },
            [&errors](absl::StatusOr<std::string> r) { errors += !r.ok(); });
        servers.push_back(std::move(s));
      });
  ASSERT_TRUE(acceptor.ok()) << acceptor.status();

  std::vector<Socket> sockets;
  for (int i = 0; i < kClients; ++i) sockets.push_back(connect_blocking(addr));
  for (fault::Counter* c : {&fault::accept4_calls, &fault::recv_calls, &fault::recvmsg_calls,
                            &fault::send_calls, &fault::sendmsg_calls, &fault::wait_calls}) {
    c->calls = 0;
    c->injected = 0;
  }
  fault::eintr_on = true;

  std::vector<std::shared_ptr<IOStream>> clients;
  std::vector<std::string> sent(kClients), received(kClients);
  int finished = 0;
  for (int i = 0; i < kClients; ++i) {
    std::shared_ptr<IOStream> c = IOStream::create(loop(), std::move(sockets[i]));
    sent[i].resize(kBytes);
    fill_block(&sent[i], i);
    // A small write (the direct send() path), then the rest as several buffers (sendmsg).
    c->write(sent[i].substr(0, 100), [&errors](absl::Status st) { errors += !st.ok(); });
    std::vector<std::string> rest;
    for (size_t off = 100; off < kBytes; off += 300000) rest.push_back(sent[i].substr(off, 300000));
    c->writev(std::move(rest), [&errors](absl::Status st) { errors += !st.ok(); });
    c->read_bytes(kBytes, [&, i](absl::StatusOr<std::string> data) {
      if (data.ok()) {
        received[i] = *std::move(data);
      } else {
        ++errors;
      }
      if (++finished == kClients) done();
    });
    clients.push_back(std::move(c));
  }
  ASSERT_TRUE(wait(absl::Seconds(60)));
  fault::eintr_on = false;

  EXPECT_EQ(errors, 0);
  for (int i = 0; i < kClients; ++i) EXPECT_TRUE(received[i] == sent[i]) << "client " << i;
  EXPECT_GT(fault::accept4_calls.injected.load(), 0u);
  EXPECT_EQ((*acceptor)->stats().transient_errors, fault::accept4_calls.injected.load());
  EXPECT_EQ((*acceptor)->stats().accepted, static_cast<uint64_t>(kClients));
  EXPECT_GT(fault::recv_calls.injected.load(), 0u);
  EXPECT_GT(fault::recvmsg_calls.injected.load(), 0u);
  EXPECT_GT(fault::send_calls.injected.load(), 0u);
  EXPECT_GT(fault::sendmsg_calls.injected.load(), 0u);
  EXPECT_GT(fault::wait_calls.injected.load(), 0u) << "the poller's wait was not interrupted";
  EXPECT_EQ(loop().stats().poll_failures, 0u);  // an interrupted wait is not a failure
  for (auto& s : servers) s->close();
  for (auto& c : clients) c->close();
}

// --- EINTR from real signals ----------------------------------------------------------------

std::atomic<int> g_sigusr1{0};
void count_sigusr1(int) { g_sigusr1.fetch_add(1, std::memory_order_relaxed); }

// Installs a no-op SIGUSR1 handler WITHOUT SA_RESTART (so interrupted syscalls fail with
// EINTR instead of restarting) and unblocks it in this thread; restores both at the end.
class ScopedSigusr1 {
 public:
  ScopedSigusr1() {
    struct sigaction sa = {};
    sa.sa_handler = count_sigusr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    EXPECT_EQ(::sigaction(SIGUSR1, &sa, &old_action_), 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    EXPECT_EQ(::pthread_sigmask(SIG_UNBLOCK, &set, &old_mask_), 0);
  }
  ~ScopedSigusr1() {
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    ::sigaction(SIGUSR1, &old_action_, nullptr);
  }

 private:
  struct sigaction old_action_;
  sigset_t old_mask_;
};

// Writes all of `data` to a blocking fd; false on error.
bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// The loop thread echoes a stream through an IOStream (with watermark backpressure) while a
// writer thread sends pseudo-random blocks into it and a reader thread checksums the echo.
// A third thread pthread_kill()s the loop thread with SIGUSR1 3,000 times, waiting for each
// delivery, and the writer keeps sending until the last signal is in, so every signal lands
// during the transfer (in the poller's wait, in a read or write, or between them).
TEST_P(FaultInjectionTest, SignalStormDuringABidirectionalTransferLosesNothing) {
  constexpr int kSignals = 3000;
  constexpr uint64_t kMinBytes = 4 << 20;
  ScopedSigusr1 handler;
  g_sigusr1 = 0;
  absl::StatusOr<std::pair<Socket, Socket>> pair = Socket::pair();
  ASSERT_TRUE(pair.ok());
  const int peer = pair->second.fd();
  ASSERT_EQ(::fcntl(peer, F_SETFL, ::fcntl(peer, F_GETFL) & ~O_NONBLOCK), 0);

  std::shared_ptr<IOStream> stream = IOStream::create(loop(), std::move(pair->first));
  IOStream* s = stream.get();
  int errors = 0;
  uint64_t echoed = 0;
  absl::Status read_status = absl::UnknownError("not finished");
  absl::Status close_status = absl::UnknownError("not closed");
  ASSERT_TRUE(s->set_write_watermarks(1 << 20, 256 << 10).ok());
  s->set_high_watermark_callback([s] { s->pause_reading(); });
  s->set_low_watermark_callback([s] { s->resume_reading(); });
  s->read_streaming(
      [s, &errors, &echoed](absl::string_view chunk) {
        echoed += chunk.size();
        s->write_copy(chunk, [&errors](absl::Status st) { errors += !st.ok(); });
      },
      [&](absl::StatusOr<std::string> r) { read_status = r.status(); });
  // After the writer's EOF the stream flushes the echo, then closes itself.
  s->set_close_callback([&](absl::Status st) {
    close_status = st;
    done();
  });
  stream.reset();  // the loop holds it while it is open

  const pthread_t loop_thread = ::pthread_self();
  std::atomic<bool> signals_done{false};
  std::thread signaller([&] {
    for (int i = 0; i < kSignals; ++i) {
      const int before = g_sigusr1.load();
      ::pthread_kill(loop_thread, SIGUSR1);
      while (g_sigusr1.load() == before) sched_yield();
    }
    signals_done = true;
  });
  Checksum written;
  bool write_ok = true;
  std::thread writer([&] {
    std::string block(64 << 10, '\0');
    for (uint64_t i = 0; written.bytes < kMinBytes || !signals_done.load(); ++i) {
      fill_block(&block, i);
      if (!write_all(peer, block.data(), block.size())) {
        write_ok = false;
        break;
      }
      written.update(block.data(), block.size());
    }
    ::shutdown(peer, SHUT_WR);
  });
  Checksum read_back;
  int read_errno = 0;
  std::thread reader([&] {
    std::string buf(64 << 10, '\0');
    for (;;) {
      const ssize_t n = ::read(peer, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) read_errno = errno;
      if (n <= 0) break;
      read_back.update(buf.data(), static_cast<size_t>(n));
    }
  });
  const bool finished = wait(absl::Seconds(120));
  if (!finished) ::shutdown(peer, SHUT_RDWR);  // unblock the threads
  signaller.join();
  writer.join();
  reader.join();
  ASSERT_TRUE(finished);

  EXPECT_EQ(g_sigusr1.load(), kSignals);
  EXPECT_TRUE(write_ok);
  EXPECT_EQ(read_errno, 0) << std::strerror(read_errno);
  EXPECT_GE(written.bytes, kMinBytes);
  EXPECT_EQ(echoed, written.bytes);
  EXPECT_EQ(read_back.bytes, written.bytes);
  EXPECT_TRUE(read_back == written) << "the echo differs from what was sent";
  EXPECT_EQ(errors, 0);
  EXPECT_TRUE(read_status.ok()) << read_status;
  EXPECT_TRUE(close_status.ok()) << close_status;
  EXPECT_EQ(loop().stats().poll_failures, 0u);  // an interrupted wait is not a failure
}

INSTANTIATE_TEST_SUITE_P(Pollers, FaultInjectionTest, ioloop::testing::AllPollers(),
                         ioloop::testing::PollerName);

}  // namespace
}  // namespace ioloop::net
