// File: net/src/http/http_forwarding.cc
#include "ioloop/net/http/http_forwarding.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ioloop::net {
namespace {

// Joins every `name` field's value, in order, with `item` after them, into one field.
void append_list_item(HTTPHeaders& headers, absl::string_view name, absl::string_view item) {
  std::vector<absl::string_view> values = headers.get_all(name);
  std::string combined;
  for (absl::string_view v : values) {
    for (absl::string_view element : split_header_list(v)) {
      absl::StrAppend(&combined, combined.empty() ? "" : ", ", element);
    }
  }
  absl::StrAppend(&combined, combined.empty() ? "" : ", ", item);
  headers.set(std::string(name), std::move(combined));
}

}  // namespace

size_t remove_hop_by_hop_fields(HTTPHeaders& headers) {
  // The fields Connection names first: removing Connection loses them.
  std::vector<std::string> named;
  for (absl::string_view value : headers.get_all("Connection")) {
    for (absl::string_view token : split_header_list(value)) named.emplace_back(token);
  }
  size_t removed = 0;
  for (const std::string& name : named) removed += headers.remove(name);
  for (absl::string_view name :
       {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding",
        "Upgrade", "Proxy-Authenticate", "Proxy-Authorization"}) {
    removed += headers.remove(name);
  }
  return removed;
}

void append_forwarded_for(HTTPHeaders& headers, absl::string_view client) {
  append_list_item(headers, "X-Forwarded-For", client);
}

void append_via(HTTPHeaders& headers, int received_minor, absl::string_view pseudonym) {
  append_list_item(headers, "Via", absl::StrCat(received_minor == 0 ? "1.0 " : "1.1 ", pseudonym));
}

}  // namespace ioloop::net
