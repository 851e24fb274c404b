// File: tests/fuzz/request_parser_fuzzer.cc
// libFuzzer target for RequestParser. The input's first bytes choose the parser options and
// the sizes of the pieces the rest is fed in; the rest is the byte stream. Besides the
// sanitizers' checks, it traps when:
//  - feeding in those pieces, or one byte at a time, gives other requests, another error or
//    another final state than one feed() of the whole stream (split independence);
//  - an error's status is not one of 400/413/431/501/505;
//  - a body exceeds max_body_size, or is kept although discard_body is set;
//  - a request other than the last one of the stream does not keep the connection alive;
//  - feed() after an error returns requests.
#include <cstddef>
#include <cstdint>
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
  if (out.error) {
    // Sticky: more input changes nothing.
    RequestParser::Result again = parser.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    check(again.requests.empty() && again.error == out.error);
    check(parser.state() == RequestParser::State::kError);
  }
  return out;
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
  if (control & 8) {  // small limits, so that 431 and 413 are reachable
    options.max_header_size = 200;
    options.max_body_size = 64;
  }
  options.discard_body = (control & 16) != 0;

  Outcome whole = run(options, input, {});
  Outcome split = run(options, input, sizes);
  Outcome bytes = run(options, input, {1});
  check(split.requests == whole.requests && split.error == whole.error &&
        split.state == whole.state);
  check(bytes.requests == whole.requests && bytes.error == whole.error &&
        bytes.state == whole.state);

  if (whole.error) {
    int status = ioloop::net::error_status(*whole.error);
    check(status == 400 || status == 413 || status == 431 || status == 501 || status == 505);
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
  return 0;
}
