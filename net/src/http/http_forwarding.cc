// File: net/src/http/http_forwarding.cc
#include "ioloop/net/http/http_forwarding.h"

#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "http/http_ascii.h"

namespace ioloop::net {
namespace {

using internal::equals_ignore_case;

// Joins every `name` field's elements, in order, with `item` after them, into one field at the
// end. A single field is extended in place of its old copy; nothing allocates beyond the value.
void append_list_item(HTTPHeaders& headers, absl::string_view name, absl::string_view item) {
  size_t fields = 0;
  for (const HTTPHeaders::Field& f : headers) fields += equals_ignore_case(f.first, name) ? 1 : 0;
  if (fields == 0) {  // the common case: the first hop to add one
    headers.add(name, item);
    return;
  }
  std::string combined;
  for (const HTTPHeaders::Field& f : headers) {
    if (!equals_ignore_case(f.first, name)) continue;
    internal::any_list_element(f.second, [&combined](absl::string_view element) {
      if (!combined.empty()) combined += ", ";
      combined.append(element.data(), element.size());
      return false;
    });
  }
  if (!combined.empty()) combined += ", ";
  combined.append(item.data(), item.size());
  headers.remove(name);
  headers.add(name, std::move(combined));
}

// RFC 9110 §7.6.1's fixed hop-by-hop fields (and the obsolete Proxy-Connection), by length
// first so that most names are rejected without a comparison.
bool is_fixed_hop_by_hop(absl::string_view name) {
  switch (name.size()) {
    case 2:
      return equals_ignore_case(name, "TE");
    case 7:
      return equals_ignore_case(name, "Trailer") || equals_ignore_case(name, "Upgrade");
    case 10:
      return equals_ignore_case(name, "Connection") || equals_ignore_case(name, "Keep-Alive");
    case 16:
      return equals_ignore_case(name, "Proxy-Connection");
    case 17:
      return equals_ignore_case(name, "Transfer-Encoding");
    case 18:
      return equals_ignore_case(name, "Proxy-Authenticate");
    case 19:
      return equals_ignore_case(name, "Proxy-Authorization");
    default:
      return false;
  }
}

// The field names a message's Connection fields list (views into `headers`), but "Host". Host
// is end-to-end and every HTTP/1.1 request must carry it (RFC 9112 §3.2), so RFC 9110 §7.6.1
// forbids a sender to list it; a forwarder that obeyed the token would leave the next hop to
// pick a Host (HTTPClient writes the upstream's own authority), letting a client choose the
// upstream's virtual host. nginx and HAProxy ignore the token too. Other end-to-end fields a
// client lists are removed as asked: without them the next hop learns less, and framing
// (Content-Length) is the forwarder's to redo anyway.
using ConnectionTokens = absl::InlinedVector<absl::string_view, 4>;

ConnectionTokens connection_tokens(const HTTPHeaders& headers) {
  ConnectionTokens named;
  for (const HTTPHeaders::Field& f : headers) {
    if (!equals_ignore_case(f.first, "Connection")) continue;
    internal::any_token(f.second, [&named](absl::string_view token) {
      if (!equals_ignore_case(token, "Host")) named.push_back(token);
      return false;
    });
  }
  return named;
}

bool is_hop_by_hop(absl::string_view name, const ConnectionTokens& named) {
  if (is_fixed_hop_by_hop(name)) return true;
  for (absl::string_view n : named) {
    if (equals_ignore_case(name, n)) return true;
  }
  return false;
}

}  // namespace

size_t remove_hop_by_hop_fields(HTTPHeaders& headers) {
  // The tokens are copied first: the removal below moves the Connection fields they view.
  absl::InlinedVector<std::string, 4> named;
  for (absl::string_view token : connection_tokens(headers)) named.emplace_back(token);
  ConnectionTokens views(named.begin(), named.end());
  return headers.remove_if(
      [&views](const HTTPHeaders::Field& f) { return is_hop_by_hop(f.first, views); });
}

size_t copy_end_to_end_fields(const HTTPHeaders& from, HTTPHeaders& to, size_t room,
                              absl::string_view also_skip) {
  const ConnectionTokens named = connection_tokens(from);
  to.reserve(to.size() + from.size() + room);
  size_t skipped = 0;
  for (const HTTPHeaders::Field& f : from) {
    if (is_hop_by_hop(f.first, named) ||
        (!also_skip.empty() && equals_ignore_case(f.first, also_skip))) {
      ++skipped;
    } else {
      to.add(f.first, f.second);
    }
  }
  return skipped;
}

void append_forwarded_for(HTTPHeaders& headers, absl::string_view client) {
  append_list_item(headers, "X-Forwarded-For", client);
}

void append_via(HTTPHeaders& headers, int received_minor, absl::string_view pseudonym) {
  std::string item(received_minor == 0 ? "1.0 " : "1.1 ");
  item.append(pseudonym.data(), pseudonym.size());
  append_list_item(headers, "Via", item);
}

}  // namespace ioloop::net
