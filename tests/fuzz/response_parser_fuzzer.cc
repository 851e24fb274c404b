// File: tests/fuzz/response_parser_fuzzer.cc
// libFuzzer target for ResponseParser. The input's first byte chooses the request method, the
// header limit and whether the stream ends with EOF (finish()); the next bytes the sizes of the
// pieces the rest is fed in; the rest is the byte stream of a connection, read as responses
// back to back (start() again after each one that keeps the connection alive). Besides the
// sanitizers' checks, it traps when:
//  - feeding in those pieces, or one byte at a time, gives other events (body bytes compared
//    as one string per response), other consumed byte counts, another error or another final
//    state than one feed() of the whole stream (split independence);
//  - an error is not DataLoss or ResourceExhausted, or is not sticky;
//  - a reported head is a 1xx, or its status is outside 100..599, or a body is reported for
//    HEAD, 204, 304 or a 2xx to CONNECT, or a Content-Length body completes with another size;
//  - events come out of order (body before head, anything after complete).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "ioloop/net/http/response_parser.h"

namespace {

using ioloop::net::HTTPMethod;
using ioloop::net::HTTPResponseHead;
using ioloop::net::ResponseParser;
using ioloop::net::ResponseParserOptions;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Outcome {
  std::vector<std::string> events;
  absl::Status status;
  bool complete = false;
  bool keep_alive = false;
  bool started = false;
  friend bool operator==(const Outcome&, const Outcome&) = default;
};

class Sink : public ResponseParser::Sink {
 public:
  Sink(Outcome& out, HTTPMethod method) : out_(out), method_(method) {}

  void new_response() {
    head_.reset();
    body_.clear();
    done_ = false;
  }

  void on_head(HTTPResponseHead head) override {
    check(!head_ && !done_);
    check(head.status >= 200 && head.status <= 599 && head.status != 101);
    std::string text = absl::StrCat("head ", head.version_minor, " ", head.status, " ", head.reason,
                                    " ka=", head.keep_alive());
    for (const auto& [name, value] : head.headers) absl::StrAppend(&text, "|", name, ":", value);
    out_.events.push_back(std::move(text));
    head_ = std::move(head);
  }

  void on_body(absl::string_view data) override {
    check(head_ && !done_ && !data.empty());
    check(method_ != HTTPMethod::kHead && head_->status != 204 && head_->status != 304);
    check(!(method_ == HTTPMethod::kConnect && head_->status < 300));
    if (body_.empty()) {  // one event per response, whatever the pieces
      body_event_ = out_.events.size();
      out_.events.emplace_back("body ");
    }
    out_.events[body_event_].append(data.data(), data.size());
    body_.append(data.data(), data.size());
  }

  void on_complete() override {
    check(head_ && !done_);
    done_ = true;
    out_.events.emplace_back("complete");
    uint64_t length = 0;
    std::optional<absl::string_view> field = head_->headers.get("Content-Length");
    const bool no_body = method_ == HTTPMethod::kHead || head_->status == 204 ||
                         head_->status == 304 ||
                         (method_ == HTTPMethod::kConnect && head_->status < 300);
    if (field && !head_->headers.contains("Transfer-Encoding") && !no_body &&
        absl::SimpleAtoi(*field, &length)) {
      check(body_.size() == length);
    }
  }

 private:
  Outcome& out_;
  HTTPMethod method_;
  std::optional<HTTPResponseHead> head_;
  std::string body_;
  size_t body_event_ = 0;
  bool done_ = false;
};

// Feeds `input` in pieces of the given sizes (cycled; each at least 1 byte), starting a new
// response after each completed one that keeps the connection alive.
Outcome run(HTTPMethod method, const ResponseParserOptions& options, absl::string_view input,
            const std::vector<size_t>& sizes, bool eof) {
  ResponseParser parser(options);
  Outcome out;
  Sink sink(out, method);
  parser.start(method);
  size_t i = 0;
  bool stopped = false;
  while (!input.empty() && !stopped) {
    size_t n = sizes.empty() ? input.size() : sizes[i++ % sizes.size()];
    absl::string_view piece = input.substr(0, std::min(n, input.size()));
    input.remove_prefix(piece.size());
    while (!piece.empty()) {
      if (parser.complete()) {
        if (!parser.keep_alive()) {
          stopped = true;  // the rest of the stream is not read
          break;
        }
        out.events.emplace_back("next");
        parser.start(method);
        sink.new_response();
      }
      absl::StatusOr<size_t> used = parser.feed(piece, sink);
      if (!used.ok()) {
        out.status = used.status();
        stopped = true;
        break;
      }
      check(*used == piece.size() || parser.complete());
      out.events.push_back(absl::StrCat("used ", *used));
      piece.remove_prefix(*used);
    }
  }
  if (eof && out.status.ok() && !parser.complete()) out.status = parser.finish(sink);
  out.complete = parser.complete();
  out.keep_alive = parser.keep_alive();
  out.started = parser.started_response();
  if (!out.status.ok()) {
    check(out.status.code() == absl::StatusCode::kDataLoss ||
          out.status.code() == absl::StatusCode::kResourceExhausted);
    check(parser.feed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", sink).status() == out.status);
    check(parser.finish(sink) == out.status);
    check(!out.complete && !out.keep_alive);
  }
  return out;
}

// Consecutive "used N" entries depend on the split: sum them.
void merge_used(Outcome& out) {
  std::vector<std::string> merged;
  uint64_t used = 0;
  bool pending = false;
  for (std::string& e : out.events) {
    uint64_t n = 0;
    if (absl::StartsWith(e, "used ") && absl::SimpleAtoi(absl::string_view(e).substr(5), &n)) {
      used += n;
      pending = true;
      continue;
    }
    if (pending && e == "next") {
      merged.push_back(absl::StrCat("used ", used));
      used = 0;
      pending = false;
    }
    merged.push_back(std::move(e));
  }
  // Body pieces are already one event per response; the bytes consumed by a failed stream
  // depend on the split, so they are compared only when there is no error.
  if (pending && out.status.ok()) merged.push_back(absl::StrCat("used ", used));
  out.events = std::move(merged);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t control = data[0];
  size_t split_count = std::min<size_t>(control & 3, size - 1);
  std::vector<size_t> sizes;
  for (size_t i = 0; i < split_count; ++i) sizes.push_back(size_t{data[1 + i]} + 1);
  absl::string_view input(reinterpret_cast<const char*>(data) + 1 + split_count,
                          size - 1 - split_count);

  static constexpr HTTPMethod kMethods[] = {HTTPMethod::kGet, HTTPMethod::kHead, HTTPMethod::kPost,
                                            HTTPMethod::kConnect};
  const HTTPMethod method = kMethods[(control >> 2) & 3];
  ResponseParserOptions options;
  if (control & 16) options.max_header_size = 100;  // so that the limit is reachable
  const bool eof = (control & 32) != 0;

  Outcome whole = run(method, options, input, {}, eof);
  Outcome split = run(method, options, input, sizes, eof);
  Outcome bytes = run(method, options, input, {1}, eof);
  merge_used(whole);
  merge_used(split);
  merge_used(bytes);
  check(split == whole);
  check(bytes == whole);
  return 0;
}
