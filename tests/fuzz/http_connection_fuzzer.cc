// File: tests/fuzz/http_connection_fuzzer.cc
// libFuzzer target for the HTTP server's connection logic (HTTPConnectionCore: parser,
// handler dispatch, keep-alive, pipelining, error responses), without sockets. The first
// input byte picks the options, the next ones the sizes of the pieces the rest is fed in.
// Besides the sanitizers' checks, it traps when:
//  - feeding in those pieces and feeding the whole stream at once give different response
//    bytes (Date lines and interim 100 Continue responses aside: a server sends 100 only while
//    the body has not arrived, which depends on the split; RFC 9110 §10.1.1) or a different
//    decision to close;
//  - more 100 Continue responses than requests (plus the incomplete last one);
//  - output does not start with a status line, or bytes come after the connection finished;
//  - the handler ran for more requests than were parsed;
//  - the output, read by the client's ResponseParser response after response, is malformed
//    (a chunk size, a missing last-chunk, a Content-Length the body does not match, a body
//    after a bodiless head) or ends inside a response, fewer final responses than handled
//    requests. Only for inputs without HEAD or CONNECT, whose responses have no body
//    whatever their fields say: the harness does not know which request each answers.
// The handler throws on one path, so the 500 path is fuzzed too. Other paths defer the
// response (HTTPResponseWriter::defer): finished inside the handler (/defer), finished after
// on_data() returned, with later requests waiting in the backlog (/late, /late-cl with a
// Content-Length, /short: finished short of it), or dropped unfinished (/drop).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "http/http_connection.h"
#include "http/http_server_state.h"
#include "ioloop/net/http/http_response_stream.h"
#include "ioloop/net/http/response_parser.h"

namespace {

using ioloop::net::HTTPConnectionCore;
using ioloop::net::HTTPMethod;
using ioloop::net::HTTPOutput;
using ioloop::net::HTTPRequest;
using ioloop::net::HTTPResponseHead;
using ioloop::net::HTTPResponseStream;
using ioloop::net::HTTPResponseWriter;
using ioloop::net::HTTPServerOptions;
using ioloop::net::HTTPServerState;
using ioloop::net::ResponseParser;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Outcome {
  std::string bytes;  // all output, Date lines and 100 Continue responses removed
  bool closed = false;
  size_t requests = 0;
};

constexpr absl::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// `s` without its Date lines and interim responses; counts the latter in `continues`. (The
// handler's bodies never contain the interim response's bytes; a body without a line end runs
// into the next response, so they are looked for anywhere, not at line starts.)
std::string comparable(const std::string& s, size_t& continues) {
  std::string in;
  for (size_t pos = 0; pos < s.size();) {
    const size_t at = s.find(kContinue.data(), pos, kContinue.size());
    in.append(s, pos, at == std::string::npos ? std::string::npos : at - pos);
    if (at == std::string::npos) break;
    ++continues;
    pos = at + kContinue.size();
  }
  std::string out;
  size_t pos = 0;
  while (pos < in.size()) {
    size_t eol = in.find("\r\n", pos);
    size_t end = eol == std::string::npos ? in.size() : eol + 2;
    if (in.compare(pos, 6, "Date: ") != 0) out.append(in, pos, end - pos);
    pos = end;
  }
  return out;
}

// Reads `raw` as a client would (see the file comment); `closed`: the server closed after it;
// `cut`: a handler finished short of its Content-Length, so the connection closed inside that
// response (the documented end for a handler error once bytes are out).
void check_framing(absl::string_view raw, bool closed, bool cut, size_t handled) {
  struct Counts : ResponseParser::Sink {
    size_t finals = 0;
    size_t interims = 0;
    void on_head(HTTPResponseHead) override { ++finals; }
    void on_body(absl::string_view) override {}
    void on_complete() override {}
    void on_interim(HTTPResponseHead) override { ++interims; }
  } counts;
  ResponseParser parser;
  while (!raw.empty()) {
    parser.start(HTTPMethod::kGet);
    const size_t finals = counts.finals, interims = counts.interims;
    absl::StatusOr<size_t> n = parser.feed(raw, counts);
    check(n.ok());
    if (!parser.complete()) {
      check(*n == raw.size());
      if (counts.finals == finals) {
        // Only 100 Continues: the body they invite has not come (yet).
        check(raw.size() == (counts.interims - interims) * kContinue.size());
      } else {
        // A close-delimited body, or the response cut short.
        check(closed && (parser.finish(counts).ok() || cut));
      }
    }
    raw.remove_prefix(*n);
  }
  check(counts.finals >= handled);
}

Outcome run(const HTTPServerOptions& options, absl::string_view input,
            const std::vector<size_t>& sizes, bool framing) {
  size_t handled = 0;
  std::shared_ptr<HTTPResponseStream> late;
  bool late_short = false;
  bool cut = false;  // a response finished short of its Content-Length
  auto shared = std::make_shared<HTTPServerState>(
      [&handled, &late, &late_short](const HTTPRequest& request, HTTPResponseWriter& writer) {
        ++handled;
        if (request.path() == "/throw") throw std::runtime_error("fuzz");
        if (request.path() == "/defer") {
          std::shared_ptr<HTTPResponseStream> s = writer.defer();
          check(s->write("d").ok() && s->finish().ok());
          return;
        }
        if (request.path() == "/drop") {
          writer.defer();
          return;
        }
        if (request.path().substr(0, 5) == "/late" || request.path() == "/short") {
          if (request.path() != "/late") writer.set_header("Content-Length", "4");
          late_short = request.path() == "/short";
          late = writer.defer();
          return;
        }
        writer.set_status(request.path() == "/404" ? 404 : 200);
        writer.set_header("Content-Type", "text/plain");
        writer.set_body(std::string(request.body().size() % 7, 'x') + "ok");
      },
      options);
  HTTPConnectionCore core(shared);
  Outcome out;
  std::string raw;
  const auto take = [&](HTTPOutput& o) {
    for (const std::string& c : o.chunks) raw += c;
    raw += o.head;
    out.closed = out.closed || o.close;
    o = HTTPOutput();
  };
  // Feeds `data`, then completes any response left pending ("late") and resumes the backlog
  // behind it, as the stream glue does.
  const auto feed = [&](absl::string_view data) {
    HTTPOutput o;
    const bool was_finished = core.finished();
    out.requests += core.on_data(data, o);
    if (was_finished) check(o.empty());
    take(o);
    while (late != nullptr) {
      check(core.response_pending());
      // "/short" finishes 1 byte short of its Content-Length: a handler error (not for HEAD,
      // which has no body).
      const bool is_short = late_short && !late->head_request();
      const bool ok = late->write(is_short ? "abc" : "late").ok() && late->finish().ok();
      check(ok != is_short);
      cut = cut || is_short;
      late.reset();
      take(core.pending_output());
      if (core.finished() || !core.has_backlog()) break;
      HTTPOutput more;
      out.requests += core.on_data({}, more);
      take(more);
    }
  };
  size_t i = 0;
  while (!input.empty()) {
    size_t n = sizes.empty() ? input.size() : sizes[i++ % sizes.size()];
    n = std::min(n, input.size());
    feed(input.substr(0, n));
    input.remove_prefix(n);
  }
  if (!raw.empty()) check(raw.compare(0, 7, "HTTP/1.") == 0);
  // Every parsed request is counted; the handler runs for those before the connection ends.
  check(handled <= out.requests);
  if (framing) check_framing(raw, out.closed, cut, handled);
  size_t continues = 0;
  out.bytes = comparable(raw, continues);
  check(continues <= out.requests + 1);  // one per request; the last may be incomplete
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t mode = data[0];
  HTTPServerOptions options;
  if (mode & 1) options.max_header_size = 256;
  if (mode & 2) options.max_body_size = 64;
  options.discard_body = (mode & 4) != 0;
  const size_t nsizes = (mode >> 4) % 4;
  if (size < 1 + nsizes) return 0;
  std::vector<size_t> sizes;
  for (size_t k = 0; k < nsizes; ++k) sizes.push_back(1 + data[1 + k] % 64);
  const absl::string_view stream(reinterpret_cast<const char*>(data) + 1 + nsizes,
                                 size - 1 - nsizes);

  const bool framing = stream.find("HEAD") == absl::string_view::npos &&
                       stream.find("CONNECT") == absl::string_view::npos;
  const Outcome whole = run(options, stream, {}, framing);
  const Outcome split =
      run(options, stream, sizes.empty() ? std::vector<size_t>{1} : sizes, framing);
  if (std::getenv("HTTP_CONNECTION_FUZZER_DEBUG") != nullptr) {  // for reproducers
    std::fprintf(stderr, "whole (closed %d):\n%s\n--- split (closed %d):\n%s\n", whole.closed,
                 whole.bytes.c_str(), split.closed, split.bytes.c_str());
  }
  check(whole.bytes == split.bytes);
  check(whole.closed == split.closed);
  return 0;
}
