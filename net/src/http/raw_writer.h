// File: net/src/http/raw_writer.h (private)
// RawWriter: writes the pieces of a message head into storage sized beforehand.
#ifndef IOLOOP_NET_SRC_HTTP_RAW_WRITER_H_
#define IOLOOP_NET_SRC_HTTP_RAW_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "absl/strings/string_view.h"

namespace ioloop::net::internal {

// Writes pieces into storage sized beforehand (the caller bounds what it writes, resizes a
// string to that bound, writes, then trims it to end()): a head is built with one allocation
// and no capacity check, strlen or reallocation per piece.
class RawWriter {
 public:
  explicit RawWriter(char* p) : p_(p) {}
  template <size_t N>
  void literal(const char (&s)[N]) {  // a string literal: its size is known here
    std::memcpy(p_, s, N - 1);
    p_ += N - 1;
  }
  void put(absl::string_view s) {
    if (s.empty()) return;  // data() may be null, which memcpy must not see
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void put(char c) { *p_++ = c; }
  void decimal(uint64_t n) {
    char digits[20];
    char* d = digits + sizeof digits;
    do {
      *--d = static_cast<char>('0' + n % 10);
      n /= 10;
    } while (n != 0);
    put(absl::string_view(d, static_cast<size_t>(digits + sizeof digits - d)));
  }
  char* end() const { return p_; }

 private:
  char* p_;
};

}  // namespace ioloop::net::internal

#endif  // IOLOOP_NET_SRC_HTTP_RAW_WRITER_H_
