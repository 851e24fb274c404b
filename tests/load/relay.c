// relay: the floor for the reverse proxy comparison (tests/load/proxy_compare.sh, issue 8).
//
//   relay LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT     (LISTEN_PORT 0: the kernel picks one)
//
// A plain 1:1 TCP byte relay on epoll, single-threaded: each accepted client gets its own
// upstream connection, and bytes are copied both ways as they come. No parsing, no pooling,
// no timers. It prints "listening on 127.0.0.1:PORT" (flushed) once it listens, and SIGINT or
// SIGTERM stops it with status 0.
//
// Why it is shaped this way (it is the cheapest thing a proxy can do per request, so every
// syscall it makes is one any proxy must make too):
//  - level-triggered epoll and ONE read per readiness event (no read-until-EAGAIN, which costs
//    an extra read returning EAGAIN per event); a write straight after the read, so a request
//    costs read + write on each side plus a share of epoll_wait;
//  - backpressure: if the peer takes less than was read, the rest stays in this side's buffer,
//    this side stops being read (EPOLLIN off) and the peer is watched for EPOLLOUT; once the
//    buffer drained, reading resumes. Memory is bounded at two kBufSize buffers per pair;
//  - TCP_NODELAY on both sockets (nginx and HAProxy set it too), so small responses are not
//    held back by Nagle;
//  - the upstream connect is blocking: the upstream is on loopback, where connect completes at
//    once, and with keep-alive clients it happens once per client connection, not per request;
//  - EOF or an error on either side closes both (no half-close: HTTP keep-alive does not need
//    it). A closed pair is freed after the current epoll batch, because later events of the
//    same batch may still point at it.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { kBufSize = 64 * 1024, kMaxEvents = 256 };

struct side {
  int fd;
  int closed;
  unsigned events;  // what epoll watches now
  struct side* peer;
  struct side* next_dead;
  size_t off, len;  // buf[off, off+len) was read from fd and not yet written to peer
  char buf[kBufSize];
};

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static int epfd;
static struct side* dead;  // closed sides, freed after the batch

static void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// EPOLLIN while this side's buffer is empty, EPOLLOUT while the peer has bytes for it.
static void update(struct side* s) {
  if (s->closed) return;
  unsigned want = (s->len == 0 ? EPOLLIN : 0) | (s->peer->len != 0 ? EPOLLOUT : 0);
  if (want == s->events) return;
  struct epoll_event ev = {.events = want, .data.ptr = s};
  epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev);
  s->events = want;
}

static void close_pair(struct side* s) {
  if (s->closed) return;
  struct side* pair[2] = {s, s->peer};
  for (int i = 0; i < 2; ++i) {
    close(pair[i]->fd);  // also removes it from the epoll set
    pair[i]->closed = 1;
    pair[i]->next_dead = dead;
    dead = pair[i];
  }
}

// Writes what `s` holds to its peer. Returns 0 when the pair was closed.
static int flush_to_peer(struct side* s) {
  while (s->len > 0) {
    ssize_t n = write(s->peer->fd, s->buf + s->off, s->len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      close_pair(s);
      return 0;
    }
    s->off += (size_t)n;
    s->len -= (size_t)n;
  }
  if (s->len == 0) s->off = 0;
  return 1;
}

static void on_readable(struct side* s, unsigned e) {
  if (s->len != 0) {
    // Backpressure: not reading until the peer took the last bytes. A hang-up or an error is
    // reported even with EPOLLIN off and would be reported again at once: give up the pair.
    if (e & (EPOLLHUP | EPOLLERR)) close_pair(s);
    return;
  }
  ssize_t n = read(s->fd, s->buf, kBufSize);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    close_pair(s);  // EOF or error
    return;
  }
  s->len = (size_t)n;
  if (!flush_to_peer(s)) return;
  update(s);
  update(s->peer);
}

static void on_writable(struct side* s) {
  struct side* from = s->peer;
  if (!flush_to_peer(from)) return;
  update(s);
  update(from);
}

static struct side* new_side(int fd) {
  struct side* s = calloc(1, sizeof *s);
  if (s == NULL) {
    perror("relay: calloc");
    exit(1);
  }
  s->fd = fd;
  return s;
}

static void on_accept(int listener, const struct sockaddr_storage* upstream, socklen_t up_len) {
  for (;;) {
    int c = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) return;  // EAGAIN, or a transient error: level-triggered, we are called again
    int u = socket(upstream->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (u < 0 || connect(u, (const struct sockaddr*)upstream, up_len) < 0) {
      perror("relay: upstream connect");
      if (u >= 0) close(u);
      close(c);
      continue;
    }
    fcntl(u, F_SETFL, O_NONBLOCK);
    set_nodelay(c);
    set_nodelay(u);
    struct side* a = new_side(c);
    struct side* b = new_side(u);
    a->peer = b;
    b->peer = a;
    a->events = b->events = EPOLLIN;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = a};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c, &ev);
    ev.data.ptr = b;
    epoll_ctl(epfd, EPOLL_CTL_ADD, u, &ev);
  }
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: relay LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT\n");
    return 2;
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  struct addrinfo* res;
  int rc = getaddrinfo(argv[2], argv[3], &hints, &res);
  if (rc != 0) {
    fprintf(stderr, "relay: %s:%s: %s\n", argv[2], argv[3], gai_strerror(rc));
    return 2;
  }
  struct sockaddr_storage upstream;
  socklen_t up_len = res->ai_addrlen;
  memcpy(&upstream, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);

  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (struct sockaddr*)&addr, sizeof addr) < 0 || listen(listener, 1024) < 0) {
    perror("relay: listen");
    return 1;
  }
  socklen_t addr_len = sizeof addr;
  getsockname(listener, (struct sockaddr*)&addr, &addr_len);
  printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
  fflush(stdout);

  epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};  // NULL: the listener
  epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev);

  struct epoll_event events[kMaxEvents];
  while (!stop_requested) {
    int n = epoll_wait(epfd, events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("relay: epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      struct side* s = events[i].data.ptr;
      if (s == NULL) {
        on_accept(listener, &upstream, up_len);
        continue;
      }
      if (s->closed) continue;
      unsigned e = events[i].events;
      if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(s, e);
      if (!s->closed && (e & EPOLLOUT)) on_writable(s);
    }
    while (dead != NULL) {
      struct side* next = dead->next_dead;
      free(dead);
      dead = next;
    }
  }
  return 0;
}
