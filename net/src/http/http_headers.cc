// File: net/src/http/http_headers.cc
#include "ioloop/net/http/http_headers.h"

#include "http/http_ascii.h"

namespace ioloop::net {

void HTTPHeaders::set(std::string name, std::string value) {
  remove(name);
  add(std::move(name), std::move(value));
}

size_t HTTPHeaders::remove(absl::string_view name) {
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
  for (const Field& f : fields_) {
    if (!internal::equals_ignore_case(f.first, name)) continue;
    if (internal::any_list_element(f.second, [token](absl::string_view element) {
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
