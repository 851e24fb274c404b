// File: net/src/http/http_headers.cc
#include "ioloop/net/http/http_headers.h"

#include <functional>
#include <string>

#include "http/http_ascii.h"

namespace ioloop::net {

void HTTPHeaders::set(std::string name, std::string value) {
  remove(name);
  add(std::move(name), std::move(value));
}

namespace {

bool views_into(absl::string_view view, const std::string& s) {
  return std::less_equal<>()(s.data(), view.data()) &&
         std::less<>()(view.data(), s.data() + s.size());
}

}  // namespace

size_t HTTPHeaders::remove(absl::string_view name) {
  // A name viewing one of these fields (remove(h[i].first)) would change as the removal moves
  // fields over it: compare against a copy then.
  for (const Field& f : fields_) {
    if (!name.empty() && (views_into(name, f.first) || views_into(name, f.second))) {
      return remove(std::string(name));
    }
  }
  return remove_if([name](const Field& f) { return internal::equals_ignore_case(f.first, name); });
}

std::optional<absl::string_view> HTTPHeaders::get(absl::string_view name) const {
  for (const Field& f : fields_) {
    if (internal::equals_ignore_case(f.first, name)) return absl::string_view(f.second);
  }
  return std::nullopt;
}

std::vector<absl::string_view> HTTPHeaders::get_all(absl::string_view name) const {
  std::vector<absl::string_view> values;
  for (const Field& f : fields_) {
    if (internal::equals_ignore_case(f.first, name)) values.emplace_back(f.second);
  }
  return values;
}

size_t HTTPHeaders::count(absl::string_view name) const {
  return static_cast<size_t>(std::count_if(fields_.begin(), fields_.end(), [name](const Field& f) {
    return internal::equals_ignore_case(f.first, name);
  }));
}

bool HTTPHeaders::has_token(absl::string_view name, absl::string_view token) const {
  const bool token_list = internal::equals_ignore_case(name, "Connection");
  for (const Field& f : fields_) {
    if (!internal::equals_ignore_case(f.first, name)) continue;
    if (internal::any_element(f.second, token_list, [token](absl::string_view element) {
          return internal::equals_ignore_case(element, token);
        })) {
      return true;
    }
  }
  return false;
}

std::vector<absl::string_view> split_header_list(absl::string_view value) {
  std::vector<absl::string_view> elements;
  internal::any_list_element(value, [&elements](absl::string_view element) {
    elements.push_back(element);
    return false;
  });
  return elements;
}

}  // namespace ioloop::net
