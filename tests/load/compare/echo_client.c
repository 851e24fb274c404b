// echo_client: the echo load and the idle-connection probe of tests/load/compare/run.sh
// (issue 10).
//
//   echo_client load PORT CONNECTIONS SIZE SECONDS
//     CONNECTIONS connections to 127.0.0.1:PORT, each a ping-pong: send a SIZE-byte message,
//     wait until all SIZE bytes came back, check every byte, send the next. Prints
//     "messages bytes seconds" (messages echoed in SECONDS; bytes = messages * SIZE).
//   echo_client idle PORT CONNECTIONS http|echo SERVER_PID [HOLD_SECONDS]
//     opens CONNECTIONS connections, then sends one request each (GET / for http, 64 bytes for
//     echo), waits for every answer and leaves the connections open and idle. Prints
//     "rss_before rss_connected rss_after server_fds" (VmRSS of SERVER_PID in bytes: before
//     connecting, with all connected, after every answer; then its open fds), then keeps the
//     connections open HOLD_SECONDS (0) longer before exiting (tests/load/profile_misses.sh
//     looks at the server's heap meanwhile).
//
// Exits 1 with a message on any error: a wrong byte, a short or extra answer, a closed
// connection. Single-threaded, level-triggered epoll; the expected bytes of message m on
// connection c are a window into a fixed random pattern that moves with c and m, so a byte
// echoed from the wrong message or the wrong connection is caught, at the cost of a memcmp.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kMaxEvents = 256, kPatternPeriod = 4093 };  // a prime: windows of c, m rarely repeat

struct conn {
  int fd;
  uint64_t message;  // index of the message in flight
  size_t sent, received;
};

static char* pattern;  // kPatternPeriod + size bytes
static size_t size;

static void die(const char* what) {
  fprintf(stderr, "echo_client: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
  exit(1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// The bytes message c->message of connection number `index` must carry.
static const char* expected(const struct conn* c, size_t index) {
  return pattern + (index * 131 + c->message * 7) % kPatternPeriod;
}

static int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) die("connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static long rss_bytes(const char* pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%s/status", pid);
  FILE* f = fopen(path, "r");
  if (f == NULL) die("cannot read the server's /proc status");
  long kb = -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  }
  fclose(f);
  return kb * 1024;
}

static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static int run_load(int port, int connections, double seconds) {
  struct conn* conns = calloc((size_t)connections, sizeof *conns);
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (conns == NULL || epfd < 0) die("setup");
  for (int i = 0; i < connections; ++i) {
    conns[i].fd = connect_to(port);
    if (fcntl(conns[i].fd, F_SETFL, O_NONBLOCK) != 0) die("fcntl");
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, conns[i].fd, &ev) != 0) die("epoll_ctl");
  }
  char* buf = malloc(size + 1);
  if (buf == NULL) die("malloc");
  uint64_t messages = 0;
  const double start = now(), end = start + seconds;
  struct epoll_event events[kMaxEvents];
  double t = start;
  while (t < end) {
    int n = epoll_wait(epfd, events, kMaxEvents, 100);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int e = 0; e < n; ++e) {
      const uint32_t i = events[e].data.u32;
      struct conn* c = &conns[i];
      if (events[e].events & EPOLLOUT) {
        ssize_t w = send(c->fd, expected(c, i) + c->sent, size - c->sent, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) die("send");
        if (w > 0) c->sent += (size_t)w;
        if (c->sent == size) {
          struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
          epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        }
      }
      if (!(events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      ssize_t r = recv(c->fd, buf, size + 1, 0);  // +1: an extra byte is an error, not a wait
      if (r < 0 && errno == EAGAIN) continue;
      if (r <= 0) die(r == 0 ? "the server closed a connection" : "recv");
      if (c->received + (size_t)r > c->sent) {
        errno = 0;
        die("more bytes came back than were sent");
      }
      if (memcmp(buf, expected(c, i) + c->received, (size_t)r) != 0) {
        errno = 0;
        die("an echoed byte differs from the one sent");
      }
      c->received += (size_t)r;
      if (c->received < size) continue;
      ++messages;  // complete: the next message
      ++c->message;
      c->sent = c->received = 0;
      ssize_t w = send(c->fd, expected(c, i), size, MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN) die("send");
      if (w > 0) c->sent = (size_t)w;
      if (c->sent < size) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = i};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
      }
    }
    t = now();
  }
  printf("%llu %llu %.3f\n", (unsigned long long)messages, (unsigned long long)(messages * size),
         t - start);
  return 0;
}

static int run_idle(int port, int connections, int http, const char* pid, unsigned hold) {
  static const char kGet[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  static const char kBody[] = "Hello, world!";
  int* fds = calloc((size_t)connections, sizeof *fds);
  size_t* got = calloc((size_t)connections, sizeof *got);
  char(*tail)[16] = calloc((size_t)connections, sizeof *tail);  // http: last bytes of the answer
  if (fds == NULL || got == NULL || tail == NULL) die("malloc");
  const long before = rss_bytes(pid);
  for (int i = 0; i < connections; ++i) fds[i] = connect_to(port);
  usleep(200 * 1000);  // lets the server accept the last of them
  const long connected = rss_bytes(pid);
  size = 64;
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  for (int i = 0; i < connections; ++i) {
    const char* msg = http ? kGet : pattern + i % kPatternPeriod;
    const size_t len = http ? sizeof kGet - 1 : size;
    if (send(fds[i], msg, len, MSG_NOSIGNAL) != (ssize_t)len) die("send");
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &ev) != 0) die("epoll_ctl");
  }
  int pending = connections;
  struct epoll_event events[kMaxEvents];
  char buf[4096];
  const double deadline = now() + 60;
  while (pending > 0) {
    if (now() > deadline) {
      errno = 0;
      die("answers missing after 60 s");
    }
    int n = epoll_wait(epfd, events, kMaxEvents, 1000);
    for (int e = 0; e < n; ++e) {
      const uint32_t i = events[e].data.u32;
      ssize_t r = recv(fds[i], buf, sizeof buf, MSG_DONTWAIT);
      if (r <= 0) die(r == 0 ? "the server closed a connection" : "recv");
      int done;
      if (http) {  // complete once it ends with the body (every server answers Content-Length 13)
        for (ssize_t k = 0; k < r; ++k) {
          memmove(tail[i], tail[i] + 1, sizeof tail[i] - 1);
          tail[i][sizeof tail[i] - 1] = buf[k];
        }
        done = memcmp(tail[i] + sizeof tail[i] - (sizeof kBody - 1), kBody, sizeof kBody - 1) == 0;
      } else {
        if (got[i] + (size_t)r > size ||
            memcmp(buf, pattern + i % kPatternPeriod + got[i], (size_t)r)) {
          errno = 0;
          die("a wrong echo");
        }
        done = got[i] + (size_t)r == size;
      }
      got[i] += (size_t)r;
      if (done) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, fds[i], NULL);
        --pending;
      }
    }
  }
  usleep(200 * 1000);  // lets the server finish whatever it does after answering
  // The server's open fds prove it holds the connections (a server short of fds would leave
  // them in the backlog and its RSS would not show them).
  char path[64];
  snprintf(path, sizeof path, "/proc/%s/fd", pid);
  DIR* dir = opendir(path);
  if (dir == NULL) die("cannot list the server's fds");
  int fds_open = 0;
  while (readdir(dir) != NULL) ++fds_open;
  closedir(dir);
  printf("%ld %ld %ld %d\n", before, connected, rss_bytes(pid), fds_open - 2);
  fflush(stdout);
  while (hold > 0) hold = sleep(hold);  // a signal ends it early
  return 0;                             // the connections close with the process
}

int main(int argc, char** argv) {
  const int known = argc >= 2 && (strcmp(argv[1], "load") == 0 || strcmp(argv[1], "idle") == 0);
  if (!known || (argc != 6 && !(argc == 7 && strcmp(argv[1], "idle") == 0))) {
    fprintf(stderr,
            "usage: %s load PORT CONNECTIONS SIZE SECONDS\n"
            "       %s idle PORT CONNECTIONS http|echo SERVER_PID [HOLD_SECONDS]\n",
            argv[0], argv[0]);
    return 2;
  }
  raise_fd_limit();
  const int port = atoi(argv[2]), connections = atoi(argv[3]);
  const int idle = strcmp(argv[1], "idle") == 0;
  size = idle ? 64 : (size_t)atol(argv[4]);
  if (connections < 1 || size < 1) {
    fprintf(stderr, "echo_client: CONNECTIONS and SIZE must be positive\n");
    return 2;
  }
  pattern = malloc(kPatternPeriod + size);
  if (pattern == NULL) die("malloc");
  srand(10);
  for (size_t k = 0; k < kPatternPeriod + size; ++k) pattern[k] = (char)(rand() & 0xff);
  if (idle) {
    const unsigned hold = argc == 7 ? (unsigned)atoi(argv[6]) : 0;
    return run_idle(port, connections, strcmp(argv[4], "http") == 0, argv[5], hold);
  }
  return run_load(port, connections, atof(argv[5]));
}
