// The HTTP layer's inline ASCII helpers (net/src/http/http_ascii.h), against plain per-byte
// definitions.
#include "http/http_ascii.h"

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace ioloop::net::internal {
namespace {

TEST(HTTPAsciiTest, Lower8LowersExactlyTheUppercaseLettersOfEveryByte) {
  for (int c = 0; c < 256; ++c) {
    // The byte in every position of the word, next to neighbours that could carry into it.
    for (int pos = 0; pos < 8; ++pos) {
      char bytes[8] = {'\xff', 'Z', '@', '[', '\0', 'A', '\x7f', '\x80'};
      bytes[pos] = static_cast<char>(c);
      const uint64_t lowered = ascii_lower8(load8(bytes));
      char out[8];
      std::memcpy(out, &lowered, sizeof out);
      for (int i = 0; i < 8; ++i) {
        ASSERT_EQ(out[i], ascii_lower(bytes[i])) << "byte " << c << " at " << pos << ", i=" << i;
      }
    }
  }
}

TEST(HTTPAsciiTest, EqualsIgnoreCaseAgreesWithAbslAtEveryLengthAndPosition) {
  const std::string base = "Content-Length:Transfer-Encoding";
  for (size_t n = 0; n <= base.size(); ++n) {
    const std::string a = base.substr(0, n);
    EXPECT_TRUE(equals_ignore_case(a, absl::AsciiStrToUpper(a))) << a;
    EXPECT_TRUE(equals_ignore_case(absl::AsciiStrToLower(a), a)) << a;
    EXPECT_FALSE(equals_ignore_case(a, a + "x")) << a;
    for (size_t i = 0; i < n; ++i) {
      // One byte changed, to each value: equal exactly when absl says so.
      for (int c = 0; c < 256; ++c) {
        std::string b = a;
        b[i] = static_cast<char>(c);
        ASSERT_EQ(equals_ignore_case(a, b), absl::EqualsIgnoreCase(a, b))
            << "n=" << n << " i=" << i << " c=" << c;
      }
    }
  }
}

TEST(HTTPAsciiTest, FieldValueCheckFindsEveryControlByteButHtabAtEveryLengthAndPosition) {
  for (size_t n = 0; n <= 24; ++n) {
    std::string s(n, 'a');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i);  // no false positives
    EXPECT_TRUE(is_field_value(s)) << n;
    for (size_t i = 0; i < n; ++i) {
      for (int c = 0; c < 256; ++c) {
        std::string t = s;
        t[i] = static_cast<char>(c);
        // RFC 9110 §5.5: HTAB, SP, visible bytes and obs-text (0x80..0xFF) only.
        const bool control = (c < 0x20 && c != '\t') || c == 0x7f;
        ASSERT_EQ(is_field_value(t), !control) << "n=" << n << " i=" << i << " c=" << c;
      }
    }
  }
  // Neighbours of the boundaries in every byte of a word at once (the word-at-a-time check
  // must not let a borrow or carry from one byte decide another's).
  for (int c : {0x00, 0x08, 0x09, 0x0a, 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0xff}) {
    const std::string t(16, static_cast<char>(c));
    EXPECT_EQ(is_field_value(t), (c >= 0x20 && c != 0x7f) || c == 0x09) << c;
  }
}

}  // namespace
}  // namespace ioloop::net::internal
