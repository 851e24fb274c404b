// File: tests/bench/http_server_benchmark.cc
// Cost per request of HTTPServer's connection logic, with the "per_request" counter (seconds,
// e.g. "450n" is 450 ns per request) as the number to compare:
//   BM_Core*       parse + handler + serialize, no I/O: HTTPConnectionCore::on_data(), which a
//                  connection runs on every read (single request, and 16 pipelined per read).
//   BM_CoreDeferred*  the same with a handler that defers and finishes inside itself (write,
//                  finish: a chunked body): what a deferred response costs over the fast path,
//                  minus any waiting.
//   BM_Socketpair* the whole server path over a socketpair on one loop: recv by the server's
//                  IOStream, the core, one send of the responses, and the client's recv of
//                  them (the client runs on the same loop; loop start/stop per round included).
//   BM_Send16*     the write strategy for 16 pipelined responses on loopback TCP: one
//                  sendmsg with 16 iovecs (what the server does) vs the source documents'
//                  TCP_CORK (cork, 16 send()s, uncork); the reader's recv cost is included in
//                  both.
// Measured on the 2-core development VM (loaded): BM_Send16_OneSendmsg ~420 ns per response,
// BM_Send16_TcpCork ~2,000 ns: corking costs two setsockopt()s plus a send() per response,
// so the server sends everything one read produced with one send/sendmsg and never corks.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "http/http_connection.h"
#include "http/http_server_state.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/http/http_response_stream.h"
#include "ioloop/net/http/http_server.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/socket.h"

namespace {

using ioloop::IOLoop;
using ioloop::net::HTTPConnectionCore;
using ioloop::net::HTTPOutput;
using ioloop::net::HTTPRequest;
using ioloop::net::HTTPResponseWriter;
using ioloop::net::HTTPServer;
using ioloop::net::HTTPServerOptions;
using ioloop::net::HTTPServerState;

// What curl 7.88 sends for `curl http://127.0.0.1:8080/`.
const char kCurlRequest[] =
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";

void hello(const HTTPRequest&, HTTPResponseWriter& w) {
  w.add_header("Content-Type", "text/plain");
  w.set_body("Hello, world!");
}

void set_per_request(benchmark::State& state, int per_round) {
  state.SetItemsProcessed(state.iterations() * per_round);
  state.counters["per_request"] =
      benchmark::Counter(static_cast<double>(state.iterations() * per_round),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_Core(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::string input;
  for (int i = 0; i < n; ++i) input += kCurlRequest;
  auto shared = std::make_shared<HTTPServerState>(hello, HTTPServerOptions{});
  HTTPConnectionCore core(shared);
  HTTPOutput out;
  for (auto _ : state) {
    out.head.clear();
    if (core.on_data(input, out) != static_cast<size_t>(n) || out.close) {
      state.SkipWithError("unexpected result");
      break;
    }
    benchmark::DoNotOptimize(out.head.data());
  }
  set_per_request(state, n);
}
BENCHMARK(BM_Core)->Arg(1)->Arg(16);

void hello_deferred(const HTTPRequest&, HTTPResponseWriter& w) {
  w.add_header("Content-Type", "text/plain");
  std::shared_ptr<ioloop::net::HTTPResponseStream> s = w.defer();
  if (!s->write("Hello, world!").ok() || !s->finish().ok()) std::abort();
}

void BM_CoreDeferred(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::string input;
  for (int i = 0; i < n; ++i) input += kCurlRequest;
  auto shared = std::make_shared<HTTPServerState>(hello_deferred, HTTPServerOptions{});
  HTTPConnectionCore core(shared);
  HTTPOutput out;
  for (auto _ : state) {
    out.head.clear();
    if (core.on_data(input, out) != static_cast<size_t>(n) || out.close) {
      state.SkipWithError("unexpected result");
      break;
    }
    benchmark::DoNotOptimize(out.head.data());
  }
  set_per_request(state, n);
}
BENCHMARK(BM_CoreDeferred)->Arg(1)->Arg(16);

size_t one_response_size() {
  auto shared = std::make_shared<HTTPServerState>(hello, HTTPServerOptions{});
  HTTPConnectionCore core(shared);
  HTTPOutput out;
  core.on_data(kCurlRequest, out);
  return out.head.size();
}

void BM_Socketpair(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::string input;
  for (int i = 0; i < n; ++i) input += kCurlRequest;
  IOLoop loop;
  HTTPServer server(loop, hello);
  auto pair = ioloop::net::Socket::pair();
  if (!pair.ok()) {
    state.SkipWithError("socketpair");
    return;
  }
  if (!server.serve(ioloop::net::IOStream::create(loop, std::move(pair->first))).ok()) {
    state.SkipWithError("serve");
    return;
  }
  const int client = pair->second.fd();
  // Every response to kCurlRequest has the same length.
  const size_t expected = static_cast<size_t>(n) * one_response_size();
  size_t got = 0;
  char buf[64 * 1024];
  (void)loop.add_handler(
      client,
      [&](int fd, uint32_t) {
        ssize_t r;
        while ((r = ::recv(fd, buf, sizeof buf, 0)) > 0) got += static_cast<size_t>(r);
        if (got >= expected) loop.stop();
      },
      IOLoop::READ);
  for (auto _ : state) {
    got = 0;
    ::send(client, input.data(), input.size(), MSG_NOSIGNAL);
    loop.start();
  }
  loop.remove_handler(client);
  set_per_request(state, n);
  state.counters["writes_per_request"] =
      static_cast<double>(server.stats().writes) / static_cast<double>(server.stats().responses);
}
BENCHMARK(BM_Socketpair)->Arg(1)->Arg(16);

// A connected loopback TCP pair (TCP_CORK needs TCP), both blocking.
bool tcp_pair(int* a, int* b) {
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listener);
    return false;
  }
  *a = ::socket(AF_INET, SOCK_STREAM, 0);
  const bool ok = ::connect(*a, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  (*b = ::accept(listener, nullptr, nullptr)) >= 0;
  ::close(listener);
  int one = 1;
  ::setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // as the server's sockets
  return ok;
}

std::vector<std::string> sixteen_responses() {
  auto shared = std::make_shared<HTTPServerState>(hello, HTTPServerOptions{});
  HTTPConnectionCore core(shared);
  std::vector<std::string> responses;
  for (int i = 0; i < 16; ++i) {
    HTTPOutput out;
    core.on_data(kCurlRequest, out);
    responses.push_back(out.head);
  }
  return responses;
}

void drain(benchmark::State& state, int fd, size_t bytes) {
  char buf[16 * 1024];
  while (bytes > 0) {
    ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r <= 0) {
      state.SkipWithError("recv");
      return;
    }
    bytes -= static_cast<size_t>(r);
  }
}

void BM_Send16_OneSendmsg(benchmark::State& state) {
  int a, b;
  if (!tcp_pair(&a, &b)) return state.SkipWithError("tcp pair");
  const std::vector<std::string> responses = sixteen_responses();
  size_t total = 0;
  std::vector<iovec> iov;
  for (const std::string& r : responses) {
    iov.push_back({const_cast<char*>(r.data()), r.size()});
    total += r.size();
  }
  for (auto _ : state) {
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    if (::sendmsg(a, &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(total)) {
      state.SkipWithError("short sendmsg");
      break;
    }
    drain(state, b, total);
  }
  ::close(a);
  ::close(b);
  set_per_request(state, 16);
}
BENCHMARK(BM_Send16_OneSendmsg);

void BM_Send16_TcpCork(benchmark::State& state) {
  int a, b;
  if (!tcp_pair(&a, &b)) return state.SkipWithError("tcp pair");
  const std::vector<std::string> responses = sixteen_responses();
  size_t total = 0;
  for (const std::string& r : responses) total += r.size();
  for (auto _ : state) {
    int on = 1, off = 0;
    ::setsockopt(a, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
    for (const std::string& r : responses) ::send(a, r.data(), r.size(), MSG_NOSIGNAL);
    ::setsockopt(a, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
    drain(state, b, total);
  }
  ::close(a);
  ::close(b);
  set_per_request(state, 16);
}
BENCHMARK(BM_Send16_TcpCork);

}  // namespace

BENCHMARK_MAIN();
