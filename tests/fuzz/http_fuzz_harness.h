// File: tests/fuzz/http_fuzz_harness.h
// What http_server_fuzzer and http_body_stream_fuzzer share: the input reader, the options
// decoding, the split points of a canned request, the FUZZ_CHECK() macro and the checks on the
// response stream the client received.
// Header-only, included by exactly one fuzzer source each (so the definitions are inline).
#ifndef IOLOOP_TESTS_FUZZ_HTTP_FUZZ_HARNESS_H_
#define IOLOOP_TESTS_FUZZ_HTTP_FUZZ_HARNESS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "http/http_server_state.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/http/http_server.h"

namespace ioloop_fuzz {

// HTTP_SERVER_FUZZER_DEBUG=1 prints what a failing input did (for reproducers).
inline bool debug() {
  static const bool on = std::getenv("HTTP_SERVER_FUZZER_DEBUG") != nullptr;
  return on;
}

#define FUZZ_CHECK(ok)                                                       \
  do {                                                                       \
    if (!(ok)) {                                                             \
      if (::ioloop_fuzz::debug())                                            \
        std::fprintf(stderr, "check failed: %s (line %d)\n", #ok, __LINE__); \
      __builtin_trap();                                                      \
    }                                                                        \
  } while (0)

inline constexpr size_t kMaxBody = 70000;  // response bodies

// Reads the input front to back; past the end, every read is 0.
struct Input {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;
  bool done() const { return pos >= size; }
  uint8_t byte() { return pos < size ? data[pos++] : 0; }
  absl::string_view bytes(size_t n) {
    n = std::min(n, size - std::min(pos, size));
    absl::string_view s(reinterpret_cast<const char*>(data) + pos, n);
    pos += n;
    return s;
  }
};

// A request the fuzzer's handler answered (or will answer: deferred), in order.
struct Seen {
  bool head;
  std::string target;
  bool threw;              // answered with 500 and Connection: close
  bool cancelled = false;  // deferred, and the connection closed before it finished
};

// The body size a request asks for: the digits after the first '/', capped.
inline size_t wanted_size(absl::string_view path) {
  size_t n = 0;
  for (size_t i = 1; i < path.size() && i < 7 && path[i] >= '0' && path[i] <= '9'; ++i) {
    n = n * 10 + static_cast<size_t>(path[i] - '0');
  }
  return std::min(n, kMaxBody);
}

// Where `split` cuts request `r` into reads: near the end of its head (bit 7 clear) or of the
// request (set: the last chunk and the final CRLF), bits 0-2 the first cut's offset from 4
// bytes before that end, bits 3-6 the distance to a second cut (0: none); no cut for 0. The
// head's last CR and LF in reads of their own is how a pipelined request once became the
// previous one's body.
inline std::vector<size_t> split_points(absl::string_view r, uint8_t split) {
  if (split == 0) return {};
  const size_t head_end = r.find("\r\n\r\n") + 4;
  const size_t end = (split & 0x80) ? r.size() : head_end;
  const size_t first = std::clamp<size_t>(end - 4 + (split & 7), 1, r.size() - 1);
  const size_t second = first + ((split >> 3) & 15);
  if (second == first || second >= r.size()) return {first};
  return {first, second};
}

// Sends `r` in the pieces split_points(r, split) cuts it into, calling `settle()` between them
// (the server reads what came so far on its own).
template <typename Send, typename Settle>
void send_split(absl::string_view r, uint8_t split, Send&& send, Settle&& settle) {
  size_t at = 0;
  for (const size_t point : split_points(r, split)) {
    send(r.substr(at, point - at));
    settle();
    at = point;
  }
  send(r.substr(at));
}

// Runs one iteration of `loop` that does not block; true if it did nothing (no event, callback
// or timer): what a fuzzer's settle() repeats until it holds, or traps as a busy loop.
inline bool quiet_iteration(ioloop::IOLoop& loop) {
  const ioloop::IOLoop::Stats before = loop.stats();
  loop.stop();
  loop.start();
  const ioloop::IOLoop::Stats after = loop.stats();
  return after.events_dispatched == before.events_dispatched &&
         after.callbacks_run == before.callbacks_run && after.timers_fired == before.timers_fired;
}

// Starts an input: drops the connection cores the last input left in this thread's cache (a
// crash must reproduce from its input alone), then reads the options from its first 4 bytes.
inline ioloop::net::HTTPServerOptions decode_options(Input& in) {
  ioloop::net::discard_idle_connection_cores();
  static constexpr size_t kPending[] = {256, 1024, 4096, 16384, 65536, 1 << 20};
  static constexpr size_t kHeader[] = {64, 256, 1024, 64 * 1024};
  static constexpr size_t kBody[] = {16, 1024, 64 * 1024};
  const uint8_t a = in.byte(), b = in.byte(), c = in.byte(), d = in.byte();
  ioloop::net::HTTPServerOptions o;
  o.max_pending_output = kPending[a % 6];
  o.discard_body = (a & 0x40) != 0;
  o.header_timeout = absl::Seconds(b & 15);         // 0: off
  o.request_timeout = absl::Seconds((b >> 4) * 3);  // 0: off
  o.idle_timeout = absl::Seconds((c & 15) * 5);     // 0: off
  o.min_body_rate = (c >> 4) * 64;                  // 0: off
  o.body_rate_window = absl::Seconds(1 + (a >> 7) * 3);
  o.max_header_size = kHeader[d & 3];
  o.max_body_size = kBody[(d >> 2) % 3];
  o.linger_timeout = absl::Seconds(d >> 4);  // 0: 2 s
  return o;
}

// The invariants on the whole response stream `received`, given what the handler answered
// (`seen`, in order), whether the server closed on a timeout, whether the client saw EOF:
// well-formed HTTP/1.x responses (100 Continue only as an interim response), the handler's
// answers in order (each body starts with its target and '|'; a handler that threw gets 500
// with Connection: close), then at most one error response (400/408/413/414/431/501/505, closing),
// nothing after Connection: close, EOF after it, no response cut short unless a timeout closed
// the connection, and at most one request timeout (a 408 means exactly one).
inline void check_responses(absl::string_view received, const std::vector<Seen>& seen,
                            bool closed_by_timer, bool eof,
                            const ioloop::net::HTTPServer::Stats& stats) {
  absl::string_view in = received;
  size_t next = 0;      // index into seen
  bool closed = false;  // a "Connection: close" response was complete
  bool truncated = false;
  bool saw_408 = false;
  while (!in.empty()) {
    FUZZ_CHECK(!closed);  // nothing after Connection: close
    const size_t end = in.find("\r\n\r\n");
    if (end == absl::string_view::npos) {
      truncated = true;
      break;
    }
    const absl::string_view head = in.substr(0, end + 2);
    FUZZ_CHECK(head.substr(0, 9) == "HTTP/1.1 " || head.substr(0, 9) == "HTTP/1.0 ");
    int status = 0;
    FUZZ_CHECK(head.size() > 13 && absl::SimpleAtoi(head.substr(9, 3), &status));
    FUZZ_CHECK(head[12] == ' ');
    if (status == 100) {
      FUZZ_CHECK(head == "HTTP/1.1 100 Continue\r\n");
      in.remove_prefix(end + 4);
      continue;
    }
    size_t length = 0;
    bool has_length = false;
    bool close = false;
    size_t line_start = head.find("\r\n") + 2;
    while (line_start < head.size()) {
      const size_t eol = head.find("\r\n", line_start);
      const absl::string_view line = head.substr(line_start, eol - line_start);
      const size_t colon = line.find(": ");
      FUZZ_CHECK(colon != absl::string_view::npos && colon > 0);
      if (line.substr(0, colon) == "Content-Length") {
        FUZZ_CHECK(!has_length && absl::SimpleAtoi(line.substr(colon + 2), &length));
        has_length = true;
      }
      if (line == "Connection: close") close = true;
      line_start = eol + 2;
    }
    FUZZ_CHECK(has_length);  // the handler never answers 204/304; nor do errors
    const bool handler_response =
        next < seen.size() && (status == 200 || (status == 500 && seen[next].threw));
    const bool head_request = handler_response && seen[next].head;
    // An error response to a HEAD has no body (RFC 9110 §9.3.2). Which request failed is not
    // known here, but an error response is the connection's last: its body is whole or absent.
    const bool error_without_body = !handler_response && in.size() == end + 4;
    const size_t body_size = head_request || error_without_body ? 0 : length;
    if (in.size() < end + 4 + body_size) {
      truncated = true;
      break;
    }
    const absl::string_view body = in.substr(end + 4, body_size);
    if (handler_response) {
      if (status == 200) {
        FUZZ_CHECK(!seen[next].threw);
        if (!head_request)
          FUZZ_CHECK(body.substr(0, seen[next].target.size() + 1) ==
                     absl::StrCat(seen[next].target, "|"));
      } else {
        FUZZ_CHECK(close);  // 500 closes
      }
      ++next;
    } else {
      // Not the handler's: an error response, the connection's last.
      FUZZ_CHECK(status == 400 || status == 408 || status == 413 || status == 414 ||
                 status == 431 || status == 501 || status == 505);
      FUZZ_CHECK(close);
      if (status == 408) saw_408 = true;
    }
    closed = closed || close;
    in.remove_prefix(end + 4 + body_size);
  }
  // Only a connection the server closed on a timeout may lose queued output.
  if (truncated) FUZZ_CHECK(closed_by_timer);
  // Every answered request's response arrived, unless a timeout cut the connection short
  // (which may happen between two responses too).
  // (A deferred response the client's leaving cancelled has none: the last one.)
  if (!closed_by_timer) {
    FUZZ_CHECK(next == seen.size() || (next + 1 == seen.size() && seen.back().cancelled));
  }
  // After a complete close response the server shut its side: the client saw EOF.
  if (closed && !truncated) FUZZ_CHECK(eof);
  // A 408 is counted as a timeout.
  const uint64_t timeouts =
      stats.header_timeouts + stats.request_timeouts + stats.body_rate_timeouts;
  if (saw_408) FUZZ_CHECK(timeouts == 1);
  FUZZ_CHECK(timeouts <= 1);
}

}  // namespace ioloop_fuzz

#endif  // IOLOOP_TESTS_FUZZ_HTTP_FUZZ_HARNESS_H_
