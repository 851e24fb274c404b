// libuv_server: the libuv 1.x peer of tests/load/compare/run.sh (issue 10).
//
//   libuv_server http|echo PORT [ADDRESS]   (PORT 0: the kernel picks one)
//
// One uv_loop (the default), a uv_tcp_t per connection. Reads go into one buffer shared by all
// connections (the alloc callback hands it out; each read is consumed before the next), so an
// idle connection holds no buffer, as in the floor. Answers are sent with uv_try_write, and only
// what the socket does not take is copied for a uv_write (libuv's own fast path, as node does).
// http answers with the scanner of scanner.h; echo writes back what it read. Prints
// "listening on ADDRESS:PORT" (flushed); SIGINT or SIGTERM stops the loop with status 0.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "scanner.h"

enum { kBufSize = 64 * 1024, kMaxPending = 16 * 1024 };

struct conn {
  uv_tcp_t tcp;  // first: a uv_handle_t* to it is a struct conn*
  char* in;      // http: a partial request kept from the last read (NULL if none)
  size_t in_len;
  int close_after_write;
};

struct pending_write {
  uv_write_t req;  // first: a uv_write_t* to it is a struct pending_write*
  char data[];
};

static int echo_mode;
static char read_buf[kBufSize];
static char scan_buf[kMaxPending + kBufSize];
static char out_buf[(kMaxPending + kBufSize) / 4 * kHelloCloseLen];

static void on_closed(uv_handle_t* handle) {
  struct conn* c = (struct conn*)handle;
  free(c->in);
  free(c);
}

static void conn_close(struct conn* c) {
  if (!uv_is_closing((uv_handle_t*)&c->tcp)) uv_close((uv_handle_t*)&c->tcp, on_closed);
}

static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) {
  (void)handle;
  (void)suggested;
  *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_written(uv_write_t* req, int status) {
  struct conn* c = (struct conn*)req->handle;
  free(req);
  if (status < 0 || (c->close_after_write && c->tcp.write_queue_size == 0)) conn_close(c);
}

static void conn_send(struct conn* c, const char* data, size_t len) {
  uv_buf_t buf = uv_buf_init((char*)data, (unsigned)len);
  int n = uv_try_write((uv_stream_t*)&c->tcp, &buf, 1);
  if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;  // ENOSYS: writes are queued already
  if (n < 0) {
    conn_close(c);
    return;
  }
  if ((size_t)n == len) {
    if (c->close_after_write) conn_close(c);
    return;
  }
  struct pending_write* w = malloc(sizeof *w + (len - (size_t)n));
  if (w == NULL) {
    conn_close(c);
    return;
  }
  memcpy(w->data, data + n, len - (size_t)n);
  buf = uv_buf_init(w->data, (unsigned)(len - (size_t)n));
  if (uv_write(&w->req, (uv_stream_t*)&c->tcp, &buf, 1, on_written) != 0) {
    free(w);
    conn_close(c);
  }
}

static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  (void)buf;
  struct conn* c = (struct conn*)stream;
  if (nread < 0) {
    conn_close(c);  // UV_EOF or an error
    return;
  }
  if (nread == 0) return;  // EAGAIN
  if (echo_mode) {
    conn_send(c, read_buf, (size_t)nread);
    return;
  }
  const char* data = read_buf;
  size_t have = (size_t)nread;
  if (c->in != NULL) {  // complete a kept partial request
    memcpy(scan_buf, c->in, c->in_len);
    memcpy(scan_buf + c->in_len, read_buf, have);
    have += c->in_len;
    data = scan_buf;
    free(c->in);
    c->in = NULL;
    c->in_len = 0;
  }
  size_t count;
  int close_requested;
  size_t used = scanner_scan(data, have, &count, &close_requested);
  if (!close_requested && used < have) {
    if (have - used > kMaxPending) {  // a head this large is not one of ours
      conn_close(c);
      return;
    }
    c->in_len = have - used;
    c->in = malloc(c->in_len);
    if (c->in == NULL) {
      conn_close(c);
      return;
    }
    memcpy(c->in, data + used, c->in_len);
  }
  if (count == 0) return;
  if (close_requested) {
    c->close_after_write = 1;
    uv_read_stop(stream);
  }
  conn_send(c, out_buf, scanner_responses(out_buf, count, close_requested));
}

static void on_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  struct conn* c = calloc(1, sizeof *c);
  if (c == NULL) return;
  uv_tcp_init(server->loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t*)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t*)&c->tcp, on_alloc, on_read);
}

static void on_signal(uv_signal_t* handle, int signum) {
  (void)signum;
  uv_stop(handle->loop);
}

int main(int argc, char** argv) {
  if (argc < 3 || (strcmp(argv[1], "http") != 0 && strcmp(argv[1], "echo") != 0)) {
    fprintf(stderr, "usage: %s http|echo PORT [ADDRESS]\n", argv[0]);
    return 2;
  }
  echo_mode = strcmp(argv[1], "echo") == 0;
  const char* address = argc > 3 ? argv[3] : "127.0.0.1";
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t* loop = uv_default_loop();
  uv_tcp_t server;
  struct sockaddr_in addr;
  uv_tcp_init(loop, &server);
  int err = uv_ip4_addr(address, atoi(argv[2]), &addr);
  if (err == 0) err = uv_tcp_bind(&server, (const struct sockaddr*)&addr, 0);
  if (err == 0) err = uv_listen((uv_stream_t*)&server, 4096, on_connection);
  if (err != 0) {
    fprintf(stderr, "libuv_server: %s\n", uv_strerror(err));
    return 1;
  }
  int len = sizeof addr;
  uv_tcp_getsockname(&server, (struct sockaddr*)&addr, &len);
  uv_signal_t sigint, sigterm;
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  printf("listening on %s:%d\n", address, ntohs(addr.sin_port));
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
