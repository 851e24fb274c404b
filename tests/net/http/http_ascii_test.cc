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

TEST(HTTPAsciiTest, LineByteCheckFindsCrLfAndNulAtEveryLengthAndPosition) {
  for (size_t n = 0; n <= 24; ++n) {
    std::string s(n, 'a');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i);  // no false positives
    EXPECT_FALSE(has_cr_lf_nul(s)) << n;
    for (size_t i = 0; i < n; ++i) {
      for (int c = 0; c < 256; ++c) {
        std::string t = s;
        t[i] = static_cast<char>(c);
        const bool line = c == '\r' || c == '\n';
        ASSERT_EQ(has_cr_lf_nul(t), line || c == 0) << "n=" << n << " i=" << i << " c=" << c;
      }
    }
  }
}

}  // namespace
}  // namespace ioloop::net::internal
