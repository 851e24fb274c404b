// File: net/src/http/request_error.cc
// RequestError's status codes and names (request_parser.h).
#include "absl/strings/string_view.h"
#include "ioloop/net/http/request_parser.h"

namespace ioloop::net {

int error_status(RequestError error) {
  switch (error) {
    case RequestError::kMalformed:
    case RequestError::kInvalidContentLength:
    case RequestError::kContentLengthWithTransferEncoding:
    case RequestError::kInvalidTransferEncoding:
    case RequestError::kBadHost:
      return 400;
    case RequestError::kHeaderTooLarge:
      return 431;
    case RequestError::kBodyTooLarge:
      return 413;
    case RequestError::kUriTooLong:
      return 414;
    case RequestError::kUnsupportedTransferEncoding:
    case RequestError::kUnknownMethod:
      return 501;
    case RequestError::kUnsupportedVersion:
      return 505;
  }
  return 400;
}

absl::string_view error_name(RequestError error) {
  switch (error) {
    case RequestError::kMalformed:
      return "malformed request";
    case RequestError::kInvalidContentLength:
      return "invalid Content-Length";
    case RequestError::kContentLengthWithTransferEncoding:
      return "both Content-Length and Transfer-Encoding";
    case RequestError::kInvalidTransferEncoding:
      return "invalid Transfer-Encoding";
    case RequestError::kBadHost:
      return "missing or repeated Host";
    case RequestError::kHeaderTooLarge:
      return "header section too large";
    case RequestError::kBodyTooLarge:
      return "body too large";
    case RequestError::kUriTooLong:
      return "request line too long";
    case RequestError::kUnsupportedTransferEncoding:
      return "unsupported Transfer-Encoding";
    case RequestError::kUnsupportedVersion:
      return "unsupported HTTP version";
    case RequestError::kUnknownMethod:
      return "unknown method";
  }
  return "unknown error";
}

}  // namespace ioloop::net
