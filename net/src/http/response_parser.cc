// File: net/src/http/response_parser.cc
// Placeholder so that code written against response_parser.h compiles; the implementation
// follows.
#include "ioloop/net/http/response_parser.h"

namespace ioloop::net {

bool HTTPResponseHead::keep_alive() const {
  if (headers.has_token("Connection", "close")) return false;
  if (version_minor >= 1) return true;
  return headers.has_token("Connection", "keep-alive");
}

class ResponseParser::Impl {};

ResponseParser::ResponseParser(ResponseParserOptions) : impl_(std::make_unique<Impl>()) {}
ResponseParser::~ResponseParser() = default;
ResponseParser::ResponseParser(ResponseParser&&) noexcept = default;
ResponseParser& ResponseParser::operator=(ResponseParser&&) noexcept = default;

void ResponseParser::start(HTTPMethod) {}
absl::StatusOr<size_t> ResponseParser::feed(absl::string_view, Sink&) {
  return absl::UnimplementedError("ResponseParser: not implemented yet");
}
absl::Status ResponseParser::finish(Sink&) {
  return absl::UnimplementedError("ResponseParser: not implemented yet");
}
bool ResponseParser::started_response() const { return false; }
bool ResponseParser::complete() const { return false; }
bool ResponseParser::keep_alive() const { return false; }

}  // namespace ioloop::net
