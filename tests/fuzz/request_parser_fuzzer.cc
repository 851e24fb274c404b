// File: tests/fuzz/request_parser_fuzzer.cc
// libFuzzer target for RequestParser. The input's first bytes choose the parser options and
// the sizes of the pieces the rest is fed in; the rest is the byte stream. Besides the
// sanitizers' checks, it traps when:
//  - feeding in those pieces, or one byte at a time, gives other requests, another error or
//    another final state, version or HEAD flag (what an error response is written from) than
//    one feed() of the whole stream (split independence);
//  - an error's status is not one of 400/413/414/431/501/505;
//  - a body exceeds max_body_size, or is kept although discard_body is set;
//  - a request other than the last one of the stream does not keep the connection alive;
//  - feed() after an error returns requests.
// Then it drives the streaming mode (stop_at_headers; stream_body() for every request with a
// body, or for none; sinks that return false after every piece when the control byte says so),
// whole, in the pieces and byte at a time, and traps when:
//  - the requests (a streamed body being its sink's bytes), error, final state, bytes consumed
//    (unless there is an error) and the sink's bytes (also those before an error) differ
//    between the three feedings;
//  - streaming every body differs from the buffered parse with no body limit, or streaming none
//    differs from the buffered parse with the same options;
//  - a stop at a header section leaves no byte to feed or shows another request than the one
//    that completes; a sink stop consumes nothing; a sink gets an empty piece.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "ioloop/net/http/request_parser.h"

namespace {

using ioloop::net::HTTPRequest;
using ioloop::net::RequestError;
using ioloop::net::RequestParser;

struct Outcome {
  std::vector<HTTPRequest> requests;
  std::optional<RequestError> error;
  RequestParser::State state;
  // What an error or timeout response is written from: its version, and whether it has a body.
  std::optional<int> version_minor;
  bool head_request;
  bool same_as(const Outcome& o) const {
    return requests == o.requests && error == o.error && state == o.state &&
           version_minor == o.version_minor && head_request == o.head_request;
  }
};

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Feeds `input` in pieces of the given sizes (cycled; each at least 1 byte).
Outcome run(const RequestParser::Options& options, absl::string_view input,
            const std::vector<size_t>& sizes) {
  RequestParser parser(options);
  Outcome out;
  RequestParser::Result result;
  size_t i = 0;
  while (!input.empty()) {
    size_t n = sizes.empty() ? input.size() : sizes[i++ % sizes.size()];
    n = std::min(n, input.size());
    parser.feed(input.substr(0, n), result);
    input.remove_prefix(n);
    if (result.error) check(*result.error == *parser.error());
  }
  out.requests = std::move(result.requests);
  out.error = parser.error();
  out.state = parser.state();
  out.version_minor = parser.version_minor();
  out.head_request = parser.head_request();
  if (out.error) {
    // Sticky: more input changes nothing.
    RequestParser::Result again = parser.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    check(again.requests.empty() && again.error == out.error);
    check(parser.state() == RequestParser::State::kError);
  }
  return out;
}

struct StreamOutcome {
  std::vector<HTTPRequest> requests;  // streamed bodies put back from their sinks
  std::vector<size_t> streamed;
  std::string sunk;  // every byte any sink received, errors included
  std::optional<RequestError> error;
  RequestParser::State state;
  size_t consumed = 0;
};

// Feeds `input` in pieces as run() does, with stop_at_headers, re-feeding after each stop.
StreamOutcome run_stream(const RequestParser::Options& options, absl::string_view input,
                         const std::vector<size_t>& sizes, bool stream, bool pause) {
  RequestParser parser(options);
  RequestParser::Result result;
  StreamOutcome out;
  std::vector<HTTPRequest> heads;
  std::vector<std::string> bodies;
  size_t i = 0;
  while (!input.empty()) {
    size_t n = sizes.empty() ? input.size() : sizes[i++ % sizes.size()];
    n = std::min(n, input.size());
    absl::string_view rest = input.substr(0, n);
    input.remove_prefix(n);
    for (;;) {
      result.at_headers = false;
      result.sink_paused = false;
      const size_t used = parser.feed(rest, result, {.stop_at_headers = true});
      check(used <= rest.size());
      out.consumed += used;
      rest.remove_prefix(used);
      if (result.at_headers) {
        check(!rest.empty() && parser.state() == RequestParser::State::kBody);
        check(parser.pending_request() != nullptr && parser.pending_request()->body().empty());
        check(!result.sink_paused);
        if (stream) {
          heads.push_back(*parser.pending_request());
          bodies.emplace_back();
          check(parser
                    .stream_body([&out, &bodies, pause](absl::string_view chunk) {
                      check(!chunk.empty());
                      out.sunk.append(chunk.data(), chunk.size());
                      bodies.back().append(chunk.data(), chunk.size());
                      return !pause;
                    })
                    .ok());
        }
        continue;
      }
      if (result.sink_paused) {
        check(used > 0);
        continue;
      }
      break;
    }
  }
  if (!stream) check(result.streamed.empty());
  check(result.streamed.size() <= heads.size());
  for (size_t k = 0; k < result.streamed.size(); ++k) {
    HTTPRequest& r = result.requests.at(result.streamed[k]);
    check(r.body().empty());
    r.set_body(bodies[k]);
    heads[k].set_body(bodies[k]);
    check(heads[k] == r);
    if (k > 0) check(result.streamed[k] > result.streamed[k - 1]);
  }
  out.requests = std::move(result.requests);
  out.streamed = std::move(result.streamed);
  out.error = parser.error();
  check(result.error == out.error);
  out.state = parser.state();
  return out;
}

// The bytes consumed are compared without an error only: an error found in a field name by
// this wrapper (not by libhttp_parser) is found when libhttp_parser hands the name over, which
// depends on the split (buffered or streamed alike); the error itself does not.
bool same(const StreamOutcome& a, const StreamOutcome& b) {
  return a.requests == b.requests && a.streamed == b.streamed && a.sunk == b.sunk &&
         a.error == b.error && a.state == b.state && (a.error || a.consumed == b.consumed);
}

// The bytes one plain feed() of `input` consumes (up to an error or a closing request).
size_t consumed(const RequestParser::Options& options, absl::string_view input) {
  RequestParser parser(options);
  RequestParser::Result result;
  return parser.feed(input, result, SIZE_MAX);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t control = data[0];
  size_t split_count = std::min<size_t>(control & 7, size - 1);
  std::vector<size_t> sizes;
  for (size_t i = 0; i < split_count; ++i) sizes.push_back(size_t{data[1 + i]} + 1);
  absl::string_view input(reinterpret_cast<const char*>(data) + 1 + split_count,
                          size - 1 - split_count);

  RequestParser::Options options;
  if (control & 8) {  // small limits, so that 431, 414 and 413 are reachable
    options.max_header_size = 200;
    options.max_body_size = 64;
  }
  options.discard_body = (control & 16) != 0;

  Outcome whole = run(options, input, {});
  Outcome split = run(options, input, sizes);
  Outcome bytes = run(options, input, {1});
  check(split.same_as(whole) && bytes.same_as(whole));

  if (whole.error) {
    int status = ioloop::net::error_status(*whole.error);
    check(status == 400 || status == 413 || status == 414 || status == 431 || status == 501 ||
          status == 505);
  }
  for (size_t i = 0; i < whole.requests.size(); ++i) {
    const HTTPRequest& r = whole.requests[i];
    check(r.body().size() <= options.max_body_size);
    if (options.discard_body) check(r.body().empty());
    if (i + 1 < whole.requests.size()) check(r.keep_alive());
    check(r.version_major() == 1);
  }
  if (!whole.requests.empty() && !whole.requests.back().keep_alive()) {
    check(whole.state == RequestParser::State::kClosed);
  }

  // Streaming: every body (compared with no body limit) or none (compared with `options`).
  const bool stream = (control & 64) == 0;
  const bool pause = (control & 32) != 0;
  RequestParser::Options reference = options;
  if (stream) {
    reference.max_body_size = SIZE_MAX;
    reference.discard_body = false;
  }
  Outcome want = stream ? run(reference, input, {}) : whole;
  StreamOutcome s_whole = run_stream(options, input, {}, stream, pause);
  StreamOutcome s_split = run_stream(options, input, sizes, stream, pause);
  StreamOutcome s_bytes = run_stream(options, input, {1}, stream, pause);
  check(same(s_whole, s_split) && same(s_whole, s_bytes));
  check(s_whole.requests == want.requests && s_whole.error == want.error &&
        s_whole.state == want.state);
  if (!s_whole.error) check(s_whole.consumed == consumed(reference, input));
  return 0;
}
