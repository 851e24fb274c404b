// File: net/src/http/url.cc
// Placeholder so that code written against url.h compiles; the implementation follows.
#include "ioloop/net/http/url.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ioloop::net {

std::string URL::authority() const {
  std::string h = host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host;
  bool default_port = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
  return default_port ? h : absl::StrCat(h, ":", port);
}

std::string URL::to_string() const { return absl::StrCat(scheme, "://", authority(), target); }

absl::StatusOr<URL> URL::parse(absl::string_view) {
  return absl::UnimplementedError("URL::parse: not implemented yet");
}

absl::StatusOr<URL> URL::resolve(absl::string_view) const {
  return absl::UnimplementedError("URL::resolve: not implemented yet");
}

}  // namespace ioloop::net
