// File: tests/net/http/response_parser_testing.h
// Helpers shared by the ResponseParser tests: a Sink that records events, and a driver that
// feeds a response in given pieces, or in every split, checking they all give the same events.
#ifndef IOLOOP_TESTS_NET_HTTP_RESPONSE_PARSER_TESTING_H_
#define IOLOOP_TESTS_NET_HTTP_RESPONSE_PARSER_TESTING_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ioloop/net/http/response_parser.h"

namespace ioloop::net::testing {

// What a parse gave: the events (consecutive body pieces merged into one "body:<bytes>"
// event, since their split may differ), the bytes consumed, the first error.
struct Outcome {
  std::vector<std::string> events;
  std::optional<HTTPResponseHead> head;
  std::string body;
  size_t consumed = 0;
  absl::Status status;
  bool complete = false;
  bool keep_alive = false;
  bool started = false;
};

class RecordingSink : public ResponseParser::Sink {
 public:
  explicit RecordingSink(Outcome& out) : out_(out) {}
  void on_head(HTTPResponseHead head) override {
    EXPECT_FALSE(out_.head.has_value()) << "second on_head";
    out_.events.push_back(absl::StrCat("head ", head.status, " ", head.reason));
    out_.head = std::move(head);
  }
  void on_body(absl::string_view data) override {
    EXPECT_FALSE(data.empty()) << "empty on_body";
    EXPECT_TRUE(out_.head.has_value()) << "on_body before on_head";
    if (out_.events.empty() || out_.events.back().rfind("body:", 0) != 0) {
      out_.events.push_back("body:");
    }
    out_.events.back().append(data.data(), data.size());
    out_.body.append(data.data(), data.size());
  }
  void on_complete() override { out_.events.push_back("complete"); }
  void on_interim(HTTPResponseHead head) override {
    EXPECT_FALSE(out_.head.has_value()) << "on_interim after the final head";
    std::string event = absl::StrCat("interim ", head.status, " ", head.reason);
    for (const auto& [name, value] : head.headers) absl::StrAppend(&event, " ", name, "=", value);
    out_.events.push_back(std::move(event));
  }

 private:
  Outcome& out_;
};

// Starts a parser for `method` and feeds `pieces` in order, stopping at completion or at an
// error; then, if `eof`, calls finish() (unless it failed or completed already).
inline Outcome run_pieces(HTTPMethod method, const std::vector<std::string>& pieces, bool eof,
                          ResponseParserOptions options = {}) {
  ResponseParser parser(options);
  Outcome out;
  RecordingSink sink(out);
  parser.start(method);
  for (const std::string& piece : pieces) {
    if (parser.complete() || !out.status.ok()) break;
    absl::StatusOr<size_t> n = parser.feed(piece, sink);
    if (!n.ok()) {
      out.status = n.status();
      break;
    }
    out.consumed += *n;
    if (*n < piece.size()) {
      EXPECT_TRUE(parser.complete()) << "stopped early without completing";
    }
  }
  if (eof && out.status.ok() && !parser.complete()) out.status = parser.finish(sink);
  out.complete = parser.complete();
  out.keep_alive = parser.keep_alive();
  out.started = parser.started_response();
  return out;
}

inline void expect_same(const Outcome& a, const Outcome& b, const std::string& where) {
  EXPECT_EQ(a.events, b.events) << where;
  EXPECT_EQ(a.head, b.head) << where;
  // Bytes consumed by the feeds before an error depend on the split; the error does not.
  if (a.status.ok() || b.status.ok()) {
    EXPECT_EQ(a.consumed, b.consumed) << where;
  }
  EXPECT_EQ(a.status, b.status) << where;
  EXPECT_EQ(a.complete, b.complete) << where;
  EXPECT_EQ(a.keep_alive, b.keep_alive) << where;
  EXPECT_EQ(a.started, b.started) << where;
}

// Feeds `input` whole, then in three pieces at every pair of split points (i <= j), then one
// byte at a time, expecting the same outcome each time; returns it.
inline Outcome run_every_split(HTTPMethod method, const std::string& input, bool eof,
                               ResponseParserOptions options = {}) {
  Outcome whole = run_pieces(method, {input}, eof, options);
  for (size_t i = 0; i <= input.size(); ++i) {
    for (size_t j = i; j <= input.size(); ++j) {
      Outcome split = run_pieces(
          method, {input.substr(0, i), input.substr(i, j - i), input.substr(j)}, eof, options);
      expect_same(split, whole, absl::StrCat("split at ", i, " and ", j));
      if (::testing::Test::HasFailure()) return whole;  // one report, not thousands
    }
  }
  std::vector<std::string> bytes;
  for (char c : input) bytes.emplace_back(1, c);
  expect_same(run_pieces(method, bytes, eof, options), whole, "one byte at a time");
  return whole;
}

}  // namespace ioloop::net::testing

#endif  // IOLOOP_TESTS_NET_HTTP_RESPONSE_PARSER_TESTING_H_
