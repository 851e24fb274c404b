// File: net/src/http/http_headers.cc
#include "ioloop/net/http/http_headers.h"

#include <algorithm>

#include "absl/strings/match.h"

namespace ioloop::net {
namespace {

absl::string_view trim_ows(absl::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

void HTTPHeaders::set(std::string name, std::string value) {
  remove(name);
  add(std::move(name), std::move(value));
}

size_t HTTPHeaders::remove(absl::string_view name) {
  auto it = std::remove_if(fields_.begin(), fields_.end(), [name](const Field& f) {
    return absl::EqualsIgnoreCase(f.first, name);
  });
  size_t removed = static_cast<size_t>(fields_.end() - it);
  fields_.erase(it, fields_.end());
  return removed;
}

std::optional<absl::string_view> HTTPHeaders::get(absl::string_view name) const {
  for (const Field& f : fields_) {
    if (absl::EqualsIgnoreCase(f.first, name)) return absl::string_view(f.second);
  }
  return std::nullopt;
}

std::vector<absl::string_view> HTTPHeaders::get_all(absl::string_view name) const {
  std::vector<absl::string_view> values;
  for (const Field& f : fields_) {
    if (absl::EqualsIgnoreCase(f.first, name)) values.emplace_back(f.second);
  }
  return values;
}

size_t HTTPHeaders::count(absl::string_view name) const {
  return static_cast<size_t>(std::count_if(fields_.begin(), fields_.end(), [name](const Field& f) {
    return absl::EqualsIgnoreCase(f.first, name);
  }));
}

bool HTTPHeaders::has_token(absl::string_view name, absl::string_view token) const {
  for (const Field& f : fields_) {
    if (!absl::EqualsIgnoreCase(f.first, name)) continue;
    for (absl::string_view element : split_header_list(f.second)) {
      if (absl::EqualsIgnoreCase(element, token)) return true;
    }
  }
  return false;
}

std::vector<absl::string_view> split_header_list(absl::string_view value) {
  std::vector<absl::string_view> elements;
  while (true) {
    size_t comma = value.find(',');
    absl::string_view element = trim_ows(value.substr(0, comma));
    if (!element.empty()) elements.push_back(element);
    if (comma == absl::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return elements;
}

}  // namespace ioloop::net
