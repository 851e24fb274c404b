// File: net/src/http/url_internal.h (private)
// What HTTPClient needs of url.cc beyond the public URL: parsing the URLs of one server
// without parsing their common origin each time.
#ifndef IOLOOP_NET_SRC_HTTP_URL_INTERNAL_H_
#define IOLOOP_NET_SRC_HTTP_URL_INTERNAL_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ioloop/net/http/url.h"

namespace ioloop::net::internal {

// URL::parse(url) for a `url` whose first `origin_size` characters are origin.origin() (of a
// URL that parse() accepted) and whose next one, if any, is '/', '?' or '#'. Returns exactly
// what parse(url) would, errors included, and parses only the rest.
absl::StatusOr<URL> parse_url_on_origin(absl::string_view url, const URL& origin,
                                        size_t origin_size);

}  // namespace ioloop::net::internal

#endif  // IOLOOP_NET_SRC_HTTP_URL_INTERNAL_H_
