// floor: the hand-written lower bound of tests/load/compare/run.sh (issue 10).
//
//   floor http|echo PORT [ADDRESS]      (PORT 0: the kernel picks one; ADDRESS 127.0.0.1)
//
// Single-threaded, level-triggered epoll. It prints "listening on ADDRESS:PORT" (flushed) once
// it listens; SIGINT or SIGTERM stops it with status 0.
//  - http: the scanner of scanner.h (keep-alive, every complete request of a read answered in
//    one write, so pipelining costs one read + one write per batch; "Connection: close" honoured
//    after its response is written);
//  - echo: every byte read is written back.
// Why it is shaped this way (the cheapest a server on the same kernel can do, so that the others
// are measured against the syscalls and memory any server must pay):
//  - ONE read per readiness event (level-triggered: anything left is reported again), into a
//    buffer shared by all connections; a write straight after it;
//  - no per-connection buffer while idle: a connection is an fd and a few words. Only a partial
//    request or a partial write is copied to the heap, and freed once complete, so the RSS per
//    idle connection is the kernel's socket plus this struct;
//  - backpressure: while output is pending, EPOLLIN is off and EPOLLOUT on;
//  - a closed connection is freed after the current epoll batch (later events of the batch may
//    still point at it).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "scanner.h"

enum { kBufSize = 64 * 1024, kMaxEvents = 256, kMaxPending = 16 * 1024 };

struct conn {
  int fd;
  int closed;
  int close_after_write;  // http: the last request asked for Connection: close
  char* in;               // http: a partial request kept from the last read (NULL if none)
  size_t in_len;
  char* out;  // bytes not yet written (NULL if none)
  size_t out_off, out_len;
  struct conn* next_dead;
};

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static int epfd;
static int echo_mode;
static struct conn* dead;
static char in_buf[kMaxPending + kBufSize];  // a kept partial request, then one read
// The answers to a full in_buf of the shortest requests ("\r\n\r\n").
static char out_buf[(kMaxPending + kBufSize) / 4 * kHelloCloseLen];

static void conn_close(struct conn* c) {
  if (c->closed) return;
  c->closed = 1;
  close(c->fd);  // also removes it from the epoll set
  c->next_dead = dead;
  dead = c;
}

static void set_events(struct conn* c, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) conn_close(c);
}

// Writes data[0, len); keeps what the socket does not take and switches to EPOLLOUT.
static void conn_send(struct conn* c, const char* data, size_t len) {
  ssize_t n = write(c->fd, data, len);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) {
      conn_close(c);
      return;
    }
    n = 0;
  }
  if ((size_t)n == len) {
    if (c->close_after_write) conn_close(c);
    return;
  }
  c->out_len = len - (size_t)n;
  c->out_off = 0;
  c->out = malloc(c->out_len);
  if (c->out == NULL) {
    conn_close(c);
    return;
  }
  memcpy(c->out, data + n, c->out_len);
  set_events(c, EPOLLOUT);
}

static void on_writable(struct conn* c) {
  ssize_t n = write(c->fd, c->out + c->out_off, c->out_len);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) conn_close(c);
    return;
  }
  c->out_off += (size_t)n;
  c->out_len -= (size_t)n;
  if (c->out_len > 0) return;
  free(c->out);
  c->out = NULL;
  if (c->close_after_write) {
    conn_close(c);
    return;
  }
  set_events(c, EPOLLIN);
}

static void on_readable(struct conn* c) {
  // A kept partial request is completed in place: the new bytes go right after it.
  size_t have = c->in_len;
  if (have > 0) memcpy(in_buf, c->in, have);
  ssize_t n = read(c->fd, in_buf + have, kBufSize);
  if (n <= 0) {
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) conn_close(c);
    return;
  }
  if (echo_mode) {
    conn_send(c, in_buf, (size_t)n);
    return;
  }
  have += (size_t)n;
  size_t count;
  int close_requested;
  size_t used = scanner_scan(in_buf, have, &count, &close_requested);
  free(c->in);
  c->in = NULL;
  c->in_len = 0;
  if (!close_requested && used < have) {
    if (have - used > kMaxPending) {  // a head this large is not one of ours: drop the client
      conn_close(c);
      return;
    }
    c->in_len = have - used;
    c->in = malloc(c->in_len);
    if (c->in == NULL) {
      conn_close(c);
      return;
    }
    memcpy(c->in, in_buf + used, c->in_len);
  }
  if (count == 0) return;
  c->close_after_write = close_requested;
  conn_send(c, out_buf, scanner_responses(out_buf, count, close_requested));
}

static void on_accept(int listen_fd) {
  for (;;) {  // drain the backlog: level-triggered, but one wakeup per client would be waste
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN) perror("accept4");
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn* c = calloc(1, sizeof *c);
    if (c == NULL) {
      close(fd);
      continue;
    }
    c->fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      free(c);
    }
  }
}

int main(int argc, char** argv) {
  if (argc < 3 || (strcmp(argv[1], "http") != 0 && strcmp(argv[1], "echo") != 0)) {
    fprintf(stderr, "usage: %s http|echo PORT [ADDRESS]\n", argv[0]);
    return 2;
  }
  echo_mode = strcmp(argv[1], "echo") == 0;
  const char* address = argc > 3 ? argv[3] : "127.0.0.1";
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  if (inet_pton(AF_INET, address, &addr.sin_addr) != 1) {
    fprintf(stderr, "floor: bad address %s\n", address);
    return 2;
  }
  socklen_t len = sizeof addr;
  if (bind(lfd, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(lfd, 4096) != 0 ||
      getsockname(lfd, (struct sockaddr*)&addr, &len) != 0) {
    perror("floor: bind/listen");
    return 1;
  }
  epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};  // NULL: the listener
  if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) != 0) {
    perror("floor: epoll");
    return 1;
  }
  printf("listening on %s:%d\n", address, ntohs(addr.sin_port));
  fflush(stdout);

  struct epoll_event events[kMaxEvents];
  while (!stop_requested) {
    int n = epoll_wait(epfd, events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      struct conn* c = events[i].data.ptr;
      if (c == NULL) {
        on_accept(lfd);
        continue;
      }
      if (c->closed) continue;
      if (events[i].events & EPOLLOUT) {
        on_writable(c);
      } else if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        on_readable(c);  // a read reports the error or the EOF
      }
    }
    while (dead != NULL) {
      struct conn* next = dead->next_dead;
      free(dead->in);
      free(dead->out);
      free(dead);
      dead = next;
    }
  }
  return 0;
}
