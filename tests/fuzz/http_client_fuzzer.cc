// File: tests/fuzz/http_client_fuzzer.cc
// libFuzzer target for HTTPClient (ioloop/net/http/http_client.h) against a server that says
// whatever the input says: a TCPServer on 127.0.0.1 on the fuzzer's own loop, whose accepted
// connections the input writes to, byte by byte or with canned responses (framed by length,
// chunked, close-delimited, 1xx, 204, 304, a redirect, a 408, a large body), closes or resets.
// The loop runs on a ManualClock, so every timeout (connect, request, response, queue, idle) is
// deterministic. HTTP_SERVER_FUZZER_DEBUG=1 traces a reproducer.
//
// Input: 2 bytes of client options (max_connections_per_host 1..3, idle_timeout), then
// operations: start a fetch (method GET/HEAD/POST/PUT, a body or a body_producer, redirects,
// max_body_size, timeouts, a streaming callback that may pause), send raw bytes or a canned
// response (whole or cut in two reads) on a server connection, close or reset one, advance the
// clock, cancel a fetch, resume one, write to or finish a body_producer's body. At the end time
// runs out every timeout, then the client is destroyed.
//
// Besides the sanitizers' checks (crashes, leaks, UB), it traps when:
//  - a fetch's callback runs twice, or inside fetch(), or not inside cancel() of a pending
//    fetch, or has not run once the client is destroyed;
//  - a response to a HEAD, or a 204 or 304, has a body; a body exceeds max_body_size; a
//    streamed fetch's response holds a body (it went to the streaming callback);
//  - the client holds more connections than max_connections_per_host;
//  - an error has a code the header does not list (for this client: no TLS, no name lookup);
//  - the loop does not settle (a busy loop).
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "http_fuzz_harness.h"
#include "ioloop/io_loop.h"
#include "ioloop/logging.h"
#include "ioloop/net/http/http_client.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/tcp_server.h"
#include "ioloop/time.h"

namespace {

using ioloop::IOLoop;
using ioloop::ManualClock;
using ioloop::net::HTTPClient;
using ioloop::net::HTTPClientBodyWriter;
using ioloop::net::HTTPClientRequest;
using ioloop::net::HTTPClientResponse;
using ioloop::net::IOStream;
using ioloop::net::TCPServer;
using ioloop_fuzz::debug;
using ioloop_fuzz::Input;

constexpr int kMaxOps = 200;

// What the harness knows of one fetch.
struct Fetch {
  uint64_t id = 0;
  int completions = 0;
  bool in_fetch = false;  // inside fetch(), which never runs the callback
  bool head = false;
  bool streaming = false;
  size_t max_body = 0;
  HTTPClientBodyWriter writer;  // a body_producer's, once it asked
};

class Harness {
 public:
  explicit Harness(uint8_t a, uint8_t b) : loop_(options(clock_)) {
    max_per_host_ = 1 + a % 3;
    idle_timeout_ = (b & 1) ? absl::Seconds(b >> 1) : absl::Seconds(60);
  }

  bool setup() {
    server_ = std::make_unique<TCPServer>(
        loop_, [this](std::shared_ptr<IOStream> s, const ioloop::net::SocketAddress&) {
          // What the client sends is read and dropped: the harness answers by the input.
          s->read_streaming([](absl::string_view) {}, [](absl::StatusOr<std::string>) {});
          conns_.push_back(std::move(s));
        });
    if (!server_->listen(0, "127.0.0.1").ok() || !server_->start().ok()) return false;
    ioloop::net::HTTPClientOptions o;
    o.max_connections_per_host = max_per_host_;
    o.idle_timeout = idle_timeout_;
    client_ = std::make_unique<HTTPClient>(loop_, o);
    return true;
  }

  // a: bits 0-1 method (GET, HEAD, POST, PUT), 2 body_producer (POST/PUT), 3 follow
  // redirects, 4-5 max_redirects; b: bits 0-1 max_body_size, 2 streaming, 3 a request_timeout,
  // 4 a response_timeout, 5 a queue_timeout, 6 pause in the streaming callback.
  void start_fetch(uint8_t a, uint8_t b) {
    static constexpr const char* kMethods[] = {"GET", "HEAD", "POST", "PUT"};
    static constexpr size_t kMaxBody[] = {16, 1000, 64 * 1024, 1 << 20};
    const size_t k = fetches_.size();
    fetches_.push_back(std::make_shared<Fetch>());
    std::shared_ptr<Fetch> f = fetches_.back();
    HTTPClientRequest r;
    r.method = kMethods[a & 3];
    r.url = absl::StrCat("http://127.0.0.1:", server_->port(), "/f", k);
    f->head = (a & 3) == 1;
    if ((a & 3) >= 2) {
      if (a & 4) {
        r.body_producer = [f](HTTPClientBodyWriter& w) { f->writer = w; };
      } else {
        r.body = "hello";
      }
    }
    r.follow_redirects = (a & 8) != 0;
    r.max_redirects = (a >> 4) & 3;
    r.max_body_size = kMaxBody[b & 3];
    f->max_body = r.max_body_size;
    r.connect_timeout = absl::Seconds(5);
    r.request_timeout = (b & 8) ? absl::Seconds(30) : absl::InfiniteDuration();
    r.response_timeout = (b & 16) ? absl::Seconds(10) : absl::ZeroDuration();
    r.queue_timeout = (b & 32) ? absl::Seconds(20) : absl::ZeroDuration();
    if (b & 4) {
      f->streaming = true;
      const bool pause = (b & 64) != 0;
      r.streaming_callback = [this, f, pause](absl::string_view chunk) {
        FUZZ_CHECK(!chunk.empty() && f->completions == 0);
        if (pause) client_->pause_reading(f->id);
      };
    }
    f->in_fetch = true;
    f->id =
        client_->fetch(std::move(r), [f](absl::StatusOr<HTTPClientResponse> r) { on_done(*f, r); });
    f->in_fetch = false;
    FUZZ_CHECK(f->id != 0);
  }

  static void on_done(Fetch& f, const absl::StatusOr<HTTPClientResponse>& r) {
    if (debug()) std::fprintf(stderr, "fetch %lu: %s\n", f.id, r.status().ToString().c_str());
    FUZZ_CHECK(f.completions == 0 && !f.in_fetch);
    ++f.completions;
    if (!r.ok()) {
      switch (r.status().code()) {
        case absl::StatusCode::kInvalidArgument:  // the parser's reason
        case absl::StatusCode::kUnavailable:
        case absl::StatusCode::kDeadlineExceeded:
        case absl::StatusCode::kDataLoss:
        case absl::StatusCode::kResourceExhausted:
        case absl::StatusCode::kAborted:
        case absl::StatusCode::kCancelled:
          return;
        default:
          FUZZ_CHECK(false);
      }
    }
    FUZZ_CHECK(r->status >= 200 && r->status <= 999);
    if (f.head || r->status == 204 || r->status == 304 || f.streaming) {
      FUZZ_CHECK(r->body.empty());
    }
    FUZZ_CHECK(r->body.size() <= f.max_body);
  }

  IOStream* conn(uint8_t k) { return conns_.empty() ? nullptr : conns_[k % conns_.size()].get(); }

  void send(uint8_t k, absl::string_view bytes) {
    if (IOStream* c = conn(k); c != nullptr && !c->closed()) c->write(std::string(bytes));
  }

  // c: bits 0-3 which response, 4-7 where it is cut (0: whole).
  void send_canned(uint8_t k, uint8_t c) {
    static const std::string kBig =
        absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n", std::string(20000, 'b'));
    static const std::string kResponses[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 302 Found\r\nLocation: /r\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.0 200 OK\r\n\r\nclose-delimited",
        kBig,
        "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: /t\r\nContent-Length: 0\r\n\r\n",
    };
    const std::string& r = kResponses[(c & 15) % (sizeof kResponses / sizeof kResponses[0])];
    const size_t cut = std::min<size_t>(c >> 4, r.size());
    if (cut == 0) return send(k, r);
    send(k, absl::string_view(r).substr(0, r.size() - cut));
    settle();
    send(k, absl::string_view(r).substr(r.size() - cut));
  }

  void close(uint8_t k, bool reset) {
    IOStream* c = conn(k);
    if (c == nullptr || c->closed()) return;
    if (reset) {
      const struct linger l = {1, 0};
      ::setsockopt(c->fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    c->close();
  }

  Fetch* fetch(uint8_t j) {
    return fetches_.empty() ? nullptr : fetches_[j % fetches_.size()].get();
  }

  void cancel(uint8_t j) {
    Fetch* f = fetch(j);
    if (f == nullptr) return;
    const int before = f->completions;
    const bool pending = client_->cancel(f->id);
    FUZZ_CHECK(pending == (before == 0));
    FUZZ_CHECK(f->completions == 1);  // inside cancel(), if it was pending
  }

  void resume(uint8_t j) {
    if (Fetch* f = fetch(j)) client_->resume_reading(f->id);
  }

  void producer(uint8_t j, uint8_t what) {
    Fetch* f = fetch(j);
    if (f == nullptr || !f->writer.active()) return;
    if (what & 1) {
      f->writer.finish();
    } else {
      f->writer.write(std::string(1 + what, 'p'));
    }
  }

  void advance(absl::Duration d) {
    clock_.advance(d);
    settle();
  }

  // Runs one-iteration passes until one does nothing, without letting the clock jump; traps
  // on a loop that never settles.
  void settle() {
    for (int i = 0; i < 20000; ++i) {
      if (ioloop_fuzz::quiet_iteration(loop_)) {
        if (client_) FUZZ_CHECK(client_->stats().open_connections <= max_per_host_);
        return;
      }
    }
    FUZZ_CHECK(false);  // a busy loop
  }

  // Time runs out every timeout, then the client goes: every fetch has completed once.
  void finish() {
    for (int round = 0; round < 8; ++round) {
      for (const auto& f : fetches_) {
        if (f->completions == 0) client_->resume_reading(f->id);
      }
      advance(absl::Seconds(100));
    }
    client_.reset();
    settle();
    for (const auto& f : fetches_) FUZZ_CHECK(f->completions == 1);
  }

  ManualClock clock_;
  IOLoop loop_;
  size_t max_per_host_ = 1;
  absl::Duration idle_timeout_;
  std::unique_ptr<TCPServer> server_;
  std::vector<std::shared_ptr<IOStream>> conns_;
  std::vector<std::shared_ptr<Fetch>> fetches_;
  std::unique_ptr<HTTPClient> client_;

 private:
  static IOLoop::Options options(ManualClock& clock) {
    IOLoop::Options o;
    o.clock = &clock;
    return o;
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ioloop::set_log_level("off").IgnoreError();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  const uint8_t a = in.byte();
  Harness h(a, in.byte());
  if (!h.setup()) return 0;
  for (int ops = 0; ops < kMaxOps && !in.done(); ++ops) {
    const uint8_t op = in.byte();
    if (debug()) std::fprintf(stderr, "op %d at %zu\n", op % 10, in.pos - 1);
    switch (op % 10) {
      case 0: {
        const uint8_t x = in.byte();
        h.start_fetch(x, in.byte());
        break;
      }
      case 1:
      case 2: {
        const uint8_t k = in.byte();
        h.send(k, in.bytes(1 + in.byte()));  // 1..256 bytes, exactly as the input has them
        break;
      }
      case 3: {
        const uint8_t k = in.byte();
        h.send_canned(k, in.byte());
        break;
      }
      case 4: {
        const uint8_t k = in.byte();
        h.close(k, (k & 0x80) != 0);
        break;
      }
      case 5: {
        const uint8_t t = in.byte();  // up to 127 s, in 10 ms or 1 s steps
        h.advance(absl::Milliseconds((t & 0x7f) * ((t & 0x80) ? 1000 : 10)));
        continue;
      }
      case 6:
        h.cancel(in.byte());
        break;
      case 7:
        h.resume(in.byte());
        break;
      default: {
        const uint8_t j = in.byte();
        h.producer(j, in.byte());
        break;
      }
    }
    h.settle();
  }
  h.finish();
  return 0;
}
