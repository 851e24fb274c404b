// File: tests/bench/dispatch_scaling.cc
// Dispatch scaling in libevent's test/bench.c method (issue 10, point 2): how the cost of one
// dispatched event grows with the number of watched fds, for ioloop's three backends and for
// a hand-written loop on raw epoll_wait (the floor: no library at all), and, when built with
// it, libevent 2.1 on epoll (-b libevent).
//
//   dispatch_scaling [-b select|poll|epoll|raw|libevent] [-n N] [-a ACTIVE] [-w WRITES]
//                    [-r RUNS] [-t wall|cpu]
//
// defaults: -b epoll -n 100 -a 1 -w 100 -r 25 (libevent's bench.c defaults) -t wall.
//
// Method. N AF_UNIX stream socketpairs, non-blocking, each read end watched for READ by a
// persistent handler (level-triggered). A run writes one byte into ACTIVE pairs, pair
// (i * max(1, N / ACTIVE)) % N for i < ACTIVE (spaced N/ACTIVE apart; with ACTIVE > N every
// pair gets about ACTIVE/N bytes), then runs the loop. Each callback reads one byte and, while
// writes remain (WRITES per run), writes one byte to the next pair (idx + 1) % N: the chain of
// libevent's read_cb. A run ends when every byte written (ACTIVE + WRITES) has been read. As in
// bench.c the initial ACTIVE writes are made before the clock starts; the clock covers the loop
// only: every wait, dispatch, read and chained write of the run. The clock is the steady
// (monotonic) one, as bench.c's, unless -t cpu: then this thread's CPU time (user + kernel),
// which leaves out the time spent waiting for a CPU on a busy machine.
//
// Output: exactly one line on stdout, exit status 0:
//   RESULT backend=B n=N a=A w=W median_us_run=X median_us_event=Y loops_per_run=Z
// medians over RUNS runs; median_us_event = median_us_run / (ACTIVE + WRITES); loops_per_run
// = the median number of loop iterations (waits) per run: IOLoop::stats().iterations for
// ioloop, the raw loop's own count for raw.
// Exit 4 with one line `SKIP reason=... ` when the backend cannot watch that many fds (select:
// a read fd at or above FD_SETSIZE; any backend: more fds than RLIMIT_NOFILE's hard limit
// allows, 2 per pair). Exit 2 with a message on stderr for bad arguments; exit 1 if the
// machinery fails (a syscall error, a lost byte).
//
// The read ends are kept dense and low (each write end is moved above them with
// F_DUPFD_CLOEXEC), so select can watch up to about 1000 pairs, as in io_loop_benchmark.cc.
#include <fcntl.h>
#include <getopt.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "ioloop/io_loop.h"
#include "ioloop/poller.h"

#ifdef IOLOOP_DISPATCH_SCALING_LIBEVENT
#include <event2/event.h>
#endif

namespace ioloop {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitSkip = 4;

// Write ends start this far above N, leaving room for the read ends and the loop's own fds.
constexpr int kWriteEndGap = 64;

struct Args {
  std::string backend = "epoll";
  int64_t n = 100;
  int64_t active = 1;
  int64_t writes = 100;
  int64_t runs = 25;
  clockid_t clock = CLOCK_MONOTONIC;  // -t wall; -t cpu: CLOCK_THREAD_CPUTIME_ID
};

constexpr char kUsage[] =
    "usage: dispatch_scaling [-b select|poll|epoll|raw|libevent] [-n N] [-a ACTIVE] "
    "[-w WRITES] [-r RUNS] [-t wall|cpu]\n"
    "  (-b libevent only when built with libevent)\n"
    "  N >= 1 socketpairs, ACTIVE >= 1 bytes in flight, WRITES >= 0 chained writes per run,\n"
    "  RUNS >= 1, runs timed on the steady clock (wall) or the thread's CPU time (cpu);\n"
    "  defaults -b epoll -n 100 -a 1 -w 100 -r 25 -t wall\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "dispatch_scaling: %s\n%s", message.c_str(), kUsage);
  std::exit(kExitUsage);
}

#ifdef IOLOOP_DISPATCH_SCALING_LIBEVENT
constexpr char kBackends[] = "select, poll, epoll, raw or libevent";
#else
constexpr char kBackends[] = "select, poll, epoll or raw";
#endif

bool is_backend(const std::string& b) {
#ifdef IOLOOP_DISPATCH_SCALING_LIBEVENT
  if (b == "libevent") return true;
#endif
  return b == "select" || b == "poll" || b == "epoll" || b == "raw";
}

// Exits with status 2 on anything but a well-formed argument list.
Args parse_args(int argc, char** argv) {
  Args args;
  auto number = [](char flag, const char* text, int64_t min, int64_t max) {
    int64_t v;
    if (!absl::SimpleAtoi(text, &v)) {
      usage_error(std::string("-") + flag + ": not an integer: '" + text + "'");
    }
    if (v < min || v > max) {
      usage_error(std::string("-") + flag + ": " + text + " is out of range [" +
                  std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    return v;
  };
  opterr = 0;  // our own messages
  int c;
  while ((c = ::getopt(argc, argv, ":b:n:a:w:r:t:h")) != -1) {
    switch (c) {
      case 'b':
        args.backend = optarg;
        if (!is_backend(args.backend)) {
          usage_error("-b: unknown backend '" + args.backend + "': expected " + kBackends);
        }
        break;
      case 'n':
        args.n = number('n', optarg, 1, 1'000'000);
        break;
      case 'a':
        args.active = number('a', optarg, 1, 1'000'000);
        break;
      case 'w':
        args.writes = number('w', optarg, 0, 1'000'000'000);
        break;
      case 'r':
        args.runs = number('r', optarg, 1, 1'000'000);
        break;
      case 't':
        if (std::strcmp(optarg, "wall") == 0) {
          args.clock = CLOCK_MONOTONIC;
        } else if (std::strcmp(optarg, "cpu") == 0) {
          args.clock = CLOCK_THREAD_CPUTIME_ID;
        } else {
          usage_error(std::string("-t: unknown clock '") + optarg + "': expected wall or cpu");
        }
        break;
      case 'h':
        std::fputs(kUsage, stdout);
        std::exit(0);
      case ':':
        usage_error(std::string("-") + static_cast<char>(optopt) + " needs a value");
      default:
        usage_error(std::string("unknown option -") + static_cast<char>(optopt));
    }
  }
  if (optind < argc) usage_error(std::string("unexpected argument '") + argv[optind] + "'");
  return args;
}

[[noreturn]] void skip(const std::string& reason) {
  std::printf("SKIP reason=%s\n", reason.c_str());
  std::exit(kExitSkip);
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "dispatch_scaling: %s\n", what.c_str());
  std::exit(kExitFailure);
}

std::string errno_text(const char* call) { return std::string(call) + ": " + strerror(errno); }

// N socketpairs: read ends dense from the lowest free fd, write ends at N + kWriteEndGap and
// above. Closed by the process's exit.
struct Pairs {
  std::vector<int> read_fds;
  std::vector<int> write_fds;
};

// Raises the soft fd limit to the hard one, then SKIPs unless every fd fits under it.
void ensure_fd_room(int64_t n) {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) fail(errno_text("getrlimit"));
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) fail(errno_text("setrlimit"));
  }
  // The highest fd is the last write end, about n + kWriteEndGap + n.
  const uint64_t need = 2 * static_cast<uint64_t>(n) + kWriteEndGap + 1;
  if (rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur) {
    skip("fd_limit need=" + std::to_string(need) + " limit=" + std::to_string(rl.rlim_cur));
  }
}

Pairs open_pairs(int64_t n) {
  Pairs p;
  p.read_fds.reserve(n);
  p.write_fds.reserve(n);
  const int high = static_cast<int>(n) + kWriteEndGap;
  for (int64_t i = 0; i < n; ++i) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
      if (errno == EMFILE || errno == ENFILE) skip("fd_limit " + errno_text("socketpair"));
      fail(errno_text("socketpair"));
    }
    const int w = ::fcntl(sv[1], F_DUPFD_CLOEXEC, high);
    if (w < 0) {
      if (errno == EMFILE || errno == EINVAL) skip("fd_limit " + errno_text("F_DUPFD_CLOEXEC"));
      fail(errno_text("fcntl(F_DUPFD_CLOEXEC)"));
    }
    ::close(sv[1]);
    p.read_fds.push_back(sv[0]);
    p.write_fds.push_back(w);
  }
  return p;
}

// The work every backend's callback does, shared so that all of them do exactly the same.
class Chain {
 public:
  Chain(const Pairs& pairs, int64_t active, int64_t writes)
      : pairs_(pairs), n_(pairs.read_fds.size()), active_(active), writes_(writes) {}

  // Starts a run: writes the ACTIVE initial bytes. Not timed (as in bench.c).
  void begin_run() {
    writes_left_ = writes_;
    consumed_ = 0;
    expected_ = active_ + writes_;
    const size_t space = std::max<size_t>(1, n_ / static_cast<size_t>(active_));
    for (int64_t i = 0; i < active_; ++i) send((static_cast<size_t>(i) * space) % n_);
  }

  // Pair `idx` is readable: read one byte and pass one on while writes remain. True once every
  // byte of the run has been read, i.e. the run is over.
  bool on_readable(size_t idx) {
    char c;
    if (::read(pairs_.read_fds[idx], &c, 1) != 1) return done();  // spurious: nothing to pass on
    ++consumed_;
    if (writes_left_ > 0) {
      --writes_left_;
      send(idx + 1 == n_ ? 0 : idx + 1);
    }
    return consumed_ >= expected_;
  }

  bool done() const { return consumed_ >= expected_; }
  uint64_t failures() const { return failures_; }

 private:
  void send(size_t idx) {
    if (::write(pairs_.write_fds[idx], "e", 1) != 1) {
      ++failures_;
      --expected_;  // a byte never sent is never read: the run still ends
    }
  }

  const Pairs& pairs_;
  const size_t n_;
  const int64_t active_;
  const int64_t writes_;
  int64_t writes_left_ = 0;
  int64_t consumed_ = 0;
  int64_t expected_ = 0;
  uint64_t failures_ = 0;
};

struct RunSample {
  double us;
  uint64_t loops;
};

// Microseconds on `clock` (CLOCK_MONOTONIC or CLOCK_THREAD_CPUTIME_ID).
double now_us(clockid_t clock) {
  struct timespec ts;
  ::clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

// ioloop with the chosen poller: one persistent READ handler per pair; the callback that reads
// the last byte stops the loop.
std::vector<RunSample> run_ioloop(PollerKind kind, const Pairs& pairs, Chain& chain, int64_t runs,
                                  clockid_t clock) {
  IOLoop::Options options;
  options.poller = kind;
  absl::StatusOr<std::unique_ptr<IOLoop>> created = IOLoop::create(options);
  if (!created.ok()) fail("IOLoop::create: " + created.status().ToString());
  IOLoop& loop = **created;
  for (size_t i = 0; i < pairs.read_fds.size(); ++i) {
    absl::Status s = loop.add_handler(
        pairs.read_fds[i],
        [&chain, &loop, i](int, uint32_t) {
          if (chain.on_readable(i)) loop.stop();
        },
        IOLoop::READ);
    if (!s.ok()) fail("add_handler: " + s.ToString());
  }
  std::vector<RunSample> samples;
  for (int64_t r = 0; r < runs; ++r) {
    chain.begin_run();
    if (chain.done()) fail("every initial write failed");
    const uint64_t iterations = loop.stats().iterations;
    const double t0 = now_us(clock);
    loop.start();
    samples.push_back({now_us(clock) - t0, loop.stats().iterations - iterations});
  }
  for (int fd : pairs.read_fds) loop.remove_handler(fd);
  return samples;
}

// The floor: the same chain on a hand-written level-triggered epoll loop, the pair's index in
// epoll_event.data, nothing between epoll_wait and the callback.
std::vector<RunSample> run_raw(const Pairs& pairs, Chain& chain, int64_t runs, clockid_t clock) {
  const int epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) fail(errno_text("epoll_create1"));
  for (size_t i = 0; i < pairs.read_fds.size(); ++i) {
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, pairs.read_fds[i], &ev) != 0) {
      fail(errno_text("epoll_ctl"));
    }
  }
  std::vector<struct epoll_event> ready(1024);
  std::vector<RunSample> samples;
  for (int64_t r = 0; r < runs; ++r) {
    chain.begin_run();
    if (chain.done()) fail("every initial write failed");
    uint64_t loops = 0;
    const double t0 = now_us(clock);
    while (!chain.done()) {
      const int n = ::epoll_wait(epfd, ready.data(), static_cast<int>(ready.size()), -1);
      ++loops;
      if (n < 0) {
        if (errno == EINTR) continue;
        fail(errno_text("epoll_wait"));
      }
      for (int i = 0; i < n; ++i) chain.on_readable(static_cast<size_t>(ready[i].data.u64));
    }
    samples.push_back({now_us(clock) - t0, loops});
  }
  ::close(epfd);
  return samples;
}

#ifdef IOLOOP_DISPATCH_SCALING_LIBEVENT
// libevent 2.1 on its epoll backend (the peer of issue 10's figure), driven as its own
// test/bench.c drives it: one persistent EV_READ event per pair, event_base_loop(EVLOOP_ONCE)
// until the run's last byte is read. Built only when CMake finds libevent (tests/CMakeLists.txt).
std::vector<RunSample> run_libevent(const Pairs& pairs, Chain& chain, int64_t runs,
                                    clockid_t clock) {
  struct Slot {
    Chain* chain;
    size_t idx;
  };
  event_config* config = event_config_new();
  event_config_avoid_method(config, "select");
  event_config_avoid_method(config, "poll");
  event_base* base = event_base_new_with_config(config);
  event_config_free(config);
  if (base == nullptr) fail("libevent: event_base_new_with_config failed");
  if (std::strcmp(event_base_get_method(base), "epoll") != 0) {
    fail(std::string("libevent: method ") + event_base_get_method(base) + ", not epoll");
  }
  std::vector<Slot> slots(pairs.read_fds.size());
  std::vector<event*> events;
  for (size_t i = 0; i < slots.size(); ++i) {
    slots[i] = {&chain, i};
    event* ev = event_new(
        base, pairs.read_fds[i], EV_READ | EV_PERSIST,
        [](evutil_socket_t, short, void* arg) {  // NOLINT(runtime/int): libevent's signature
          Slot* slot = static_cast<Slot*>(arg);
          slot->chain->on_readable(slot->idx);
        },
        &slots[i]);
    if (ev == nullptr || event_add(ev, nullptr) != 0) fail("libevent: event_new/event_add");
    events.push_back(ev);
  }
  std::vector<RunSample> samples;
  for (int64_t r = 0; r < runs; ++r) {
    chain.begin_run();
    if (chain.done()) fail("every initial write failed");
    uint64_t loops = 0;
    const double t0 = now_us(clock);
    while (!chain.done()) {
      if (event_base_loop(base, EVLOOP_ONCE) < 0) fail("libevent: event_base_loop failed");
      ++loops;
    }
    samples.push_back({now_us(clock) - t0, loops});
  }
  for (event* ev : events) event_free(ev);
  event_base_free(base);
  return samples;
}
#endif

template <typename T>
T median(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

int run(const Args& args) {
  ensure_fd_room(args.n);
  const Pairs pairs = open_pairs(args.n);
  if (args.backend == "select" && pairs.read_fds.back() >= FD_SETSIZE) {
    skip("fd_setsize max_fd=" + std::to_string(pairs.read_fds.back()) +
         " FD_SETSIZE=" + std::to_string(FD_SETSIZE));
  }
  Chain chain(pairs, args.active, args.writes);
  std::vector<RunSample> samples;
  if (args.backend == "raw") {
    samples = run_raw(pairs, chain, args.runs, args.clock);
#ifdef IOLOOP_DISPATCH_SCALING_LIBEVENT
  } else if (args.backend == "libevent") {
    samples = run_libevent(pairs, chain, args.runs, args.clock);
#endif
  } else {
    absl::StatusOr<PollerKind> kind = parse_poller_kind(args.backend);
    if (!kind.ok()) fail(kind.status().ToString());
    samples = run_ioloop(*kind, pairs, chain, args.runs, args.clock);
  }
  if (chain.failures() > 0) fail(std::to_string(chain.failures()) + " writes failed");
  std::vector<double> us;
  std::vector<double> loops;
  for (const RunSample& s : samples) {
    us.push_back(s.us);
    loops.push_back(static_cast<double>(s.loops));
  }
  const double median_us_run = median(us);
  std::printf(
      "RESULT backend=%s n=%lld a=%lld w=%lld median_us_run=%.1f median_us_event=%.4f "
      "loops_per_run=%.1f\n",
      args.backend.c_str(), static_cast<long long>(args.n), static_cast<long long>(args.active),
      static_cast<long long>(args.writes), median_us_run,
      median_us_run / static_cast<double>(args.active + args.writes), median(loops));
  return 0;
}

}  // namespace
}  // namespace ioloop

int main(int argc, char** argv) { return ioloop::run(ioloop::parse_args(argc, argv)); }
