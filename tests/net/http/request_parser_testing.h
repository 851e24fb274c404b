// File: tests/net/http/request_parser_testing.h
// Helpers shared by the RequestParser tests: feed a request in given pieces, or in every split
// (and a byte at a time), checking they all give the same requests, error and state.
#ifndef IOLOOP_TESTS_NET_HTTP_REQUEST_PARSER_TESTING_H_
#define IOLOOP_TESTS_NET_HTTP_REQUEST_PARSER_TESTING_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "ioloop/net/http/request_parser.h"

namespace ioloop::net::testing {

// What a parse gave: the requests, the first error and the parser's state after it.
struct RequestOutcome {
  std::vector<HTTPRequest> requests;
  std::optional<RequestError> error;
  RequestParser::State state = RequestParser::State::kIdle;
};

inline RequestOutcome parse_pieces(const std::vector<std::string>& pieces,
                                   RequestParser::Options options = {}) {
  RequestParser parser(options);
  RequestOutcome out;
  for (const std::string& piece : pieces) {
    RequestParser::Result r = parser.feed(piece);
    for (HTTPRequest& req : r.requests) out.requests.push_back(std::move(req));
    if (r.error) out.error = r.error;
  }
  out.state = parser.state();
  EXPECT_EQ(out.error, parser.error());
  return out;
}

inline RequestOutcome parse(const std::string& input, RequestParser::Options options = {}) {
  return parse_pieces({input}, options);
}

// Asserts that feeding `input` split in two at every position, and one byte at a time, gives
// what one feed gives; returns that.
inline RequestOutcome parse_every_split(const std::string& input,
                                        RequestParser::Options options = {}) {
  RequestOutcome whole = parse(input, options);
  for (size_t k = 0; k <= input.size(); ++k) {
    RequestOutcome split = parse_pieces({input.substr(0, k), input.substr(k)}, options);
    EXPECT_EQ(split.requests, whole.requests) << "split at " << k;
    EXPECT_EQ(split.error, whole.error) << "split at " << k;
    EXPECT_EQ(split.state, whole.state) << "split at " << k;
  }
  std::vector<std::string> bytes;
  for (char c : input) bytes.emplace_back(1, c);
  RequestOutcome byte_at_a_time = parse_pieces(bytes, options);
  EXPECT_EQ(byte_at_a_time.requests, whole.requests);
  EXPECT_EQ(byte_at_a_time.error, whole.error);
  EXPECT_EQ(byte_at_a_time.state, whole.state);
  return whole;
}

}  // namespace ioloop::net::testing

#endif  // IOLOOP_TESTS_NET_HTTP_REQUEST_PARSER_TESTING_H_
