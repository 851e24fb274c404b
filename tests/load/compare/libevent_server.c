// libevent_server: the libevent 2.1 peer of tests/load/compare/run.sh (issue 10).
//
//   libevent_server http|echo PORT [ADDRESS]   (PORT 0: the kernel picks one)
//
// One event_base (epoll), an evconnlistener and a bufferevent per connection: the way a
// libevent user writes a server. http answers with the scanner of scanner.h (pipelined requests
// of one read in one evbuffer_add; "Connection: close" closes once the output drained); echo
// moves the input evbuffer to the output one. Prints "listening on ADDRESS:PORT" (flushed);
// SIGINT or SIGTERM ends the loop with status 0.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "scanner.h"

static int echo_mode;
static char out_buf[64 * 1024 / 4 * kHelloCloseLen];

static void on_write(struct bufferevent* bev, void* arg) {
  (void)arg;
  // Only armed (by a low watermark of 0, libevent's default) once a close was requested.
  bufferevent_free(bev);
}

static void on_event(struct bufferevent* bev, short what, void* arg) {
  (void)arg;
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) bufferevent_free(bev);
}

static void on_read(struct bufferevent* bev, void* arg) {
  (void)arg;
  struct evbuffer* in = bufferevent_get_input(bev);
  struct evbuffer* out = bufferevent_get_output(bev);
  if (echo_mode) {
    evbuffer_add_buffer(out, in);
    return;
  }
  size_t len = evbuffer_get_length(in);
  // The scanner needs contiguous bytes; bufferevent reads at most 4 KiB chunks by default, so
  // this is usually one chunk already and pullup does not copy.
  const char* data = (const char*)evbuffer_pullup(in, -1);
  size_t count;
  int close_requested;
  size_t used = scanner_scan(data, len, &count, &close_requested);
  if (count > sizeof out_buf / kHelloCloseLen) {  // more than a client of ours ever sends
    bufferevent_free(bev);
    return;
  }
  evbuffer_drain(in, used);
  if (count > 0) evbuffer_add(out, out_buf, scanner_responses(out_buf, count, close_requested));
  if (close_requested) {
    bufferevent_disable(bev, EV_READ);
    bufferevent_setcb(bev, NULL, on_write, on_event, NULL);
  } else if (evbuffer_get_length(in) > 16 * 1024) {
    bufferevent_free(bev);  // a head this large is not one of ours
  }
}

static void on_accept(struct evconnlistener* listener, evutil_socket_t fd, struct sockaddr* sa,
                      int socklen, void* arg) {
  (void)listener;
  (void)sa;
  (void)socklen;
  struct event_base* base = arg;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct bufferevent* bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
  if (bev == NULL) {
    evutil_closesocket(fd);
    return;
  }
  bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void on_signal(evutil_socket_t sig, short what, void* arg) {
  (void)sig;
  (void)what;
  event_base_loopbreak(arg);
}

int main(int argc, char** argv) {
  if (argc < 3 || (strcmp(argv[1], "http") != 0 && strcmp(argv[1], "echo") != 0)) {
    fprintf(stderr, "usage: %s http|echo PORT [ADDRESS]\n", argv[0]);
    return 2;
  }
  echo_mode = strcmp(argv[1], "echo") == 0;
  const char* address = argc > 3 ? argv[3] : "127.0.0.1";
  signal(SIGPIPE, SIG_IGN);
  struct event_base* base = event_base_new();
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  if (base == NULL || inet_pton(AF_INET, address, &addr.sin_addr) != 1) {
    fprintf(stderr, "libevent_server: no event base or bad address %s\n", address);
    return 2;
  }
  struct evconnlistener* listener =
      evconnlistener_new_bind(base, on_accept, base, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                              4096, (struct sockaddr*)&addr, sizeof addr);
  if (listener == NULL) {
    perror("libevent_server: bind/listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  getsockname(evconnlistener_get_fd(listener), (struct sockaddr*)&addr, &len);
  struct event* sigint = evsignal_new(base, SIGINT, on_signal, base);
  struct event* sigterm = evsignal_new(base, SIGTERM, on_signal, base);
  event_add(sigint, NULL);
  event_add(sigterm, NULL);
  printf("listening on %s:%d\n", address, ntohs(addr.sin_port));
  fflush(stdout);
  event_base_dispatch(base);
  event_free(sigint);
  event_free(sigterm);
  evconnlistener_free(listener);
  event_base_free(base);
  return 0;
}
