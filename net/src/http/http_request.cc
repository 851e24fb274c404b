// File: net/src/http/http_request.cc
#include "ioloop/net/http/http_request.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "http/http_ascii.h"

namespace ioloop::net {

HTTPMethod http_method_from_string(absl::string_view name) {
  struct Entry {
    absl::string_view name;
    HTTPMethod id;
  };
  static constexpr Entry kMethods[] = {
      {"GET", HTTPMethod::kGet},         {"HEAD", HTTPMethod::kHead},
      {"POST", HTTPMethod::kPost},       {"PUT", HTTPMethod::kPut},
      {"DELETE", HTTPMethod::kDelete},   {"CONNECT", HTTPMethod::kConnect},
      {"OPTIONS", HTTPMethod::kOptions}, {"TRACE", HTTPMethod::kTrace},
      {"PATCH", HTTPMethod::kPatch},
  };
  for (const Entry& e : kMethods) {
    if (e.name == name) return e.id;
  }
  return HTTPMethod::kOther;
}

void HTTPRequest::set_method(std::string method) {
  method_id_ = http_method_from_string(method);
  method_ = std::move(method);
}

void HTTPRequest::set_target(std::string target) { target_ = std::move(target); }

absl::string_view HTTPRequest::path() const {
  absl::string_view t = target_;
  if (t.empty() || t == "*") return t;
  if (t.front() != '/') {
    const std::optional<internal::AbsoluteForm> absolute = internal::split_absolute_form(t);
    if (!absolute) return t;  // authority-form: "host:port"
    if (absolute->rest.empty() || absolute->rest[0] != '/') return "/";
    t = absolute->rest;
  }
  return t.substr(0, t.find_first_of("?#"));
}

absl::string_view HTTPRequest::query() const {
  absl::string_view t = target_;
  size_t q = t.find('?');
  if (q == absl::string_view::npos) return {};
  t.remove_prefix(q + 1);
  return t.substr(0, t.find('#'));
}

void HTTPRequest::clear() {
  method_.clear();
  method_id_ = HTTPMethod::kOther;
  target_.clear();
  version_major_ = 1;
  version_minor_ = 1;
  headers_.clear();
  body_.clear();
}

std::string HTTPRequest::version_string() const {
  return absl::StrCat("HTTP/", version_major_, ".", version_minor_);
}

bool HTTPRequest::keep_alive() const {
  // One pass over the fields.
  internal::ConnectionTokens tokens;
  bool transfer_encoding = false;
  for (const HTTPHeaders::Field& f : headers_) {
    if (internal::equals_ignore_case(f.first, "Connection")) {
      internal::scan_connection_tokens(f.second, tokens);
    } else if (internal::equals_ignore_case(f.first, "Transfer-Encoding")) {
      transfer_encoding = true;
    }
  }
  return internal::keep_alive_rule(version_major_, version_minor_,
                                   method_id_ == HTTPMethod::kConnect, tokens, transfer_encoding);
}

bool HTTPRequest::expects_continue() const {
  if (version_major_ != 1 || version_minor_ < 1) return false;
  return headers_.has_token("Expect", "100-continue");
}

}  // namespace ioloop::net
