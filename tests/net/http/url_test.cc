// File: tests/net/http/url_test.cc
// URL::parse() on tables of valid and invalid inputs (exact fields and exact messages), and
// URL::resolve() on the RFC 3986 §5.4 examples that apply to http, plus redirect cases.
#include "ioloop/net/http/url.h"

#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "http/http_client_core.h"
#include "http/url_internal.h"

namespace ioloop::net {
namespace {

struct Valid {
  const char* input;
  const char* scheme;
  const char* host;
  uint16_t port;
  const char* target;
  const char* authority;
  const char* text;  // to_string()
};

TEST(URLTest, ParsesValidURLs) {
  const Valid cases[] = {
      {"http://example.com", "http", "example.com", 80, "/", "example.com", "http://example.com/"},
      {"http://example.com/", "http", "example.com", 80, "/", "example.com", "http://example.com/"},
      {"https://example.com/a/b?x=1&y=2", "https", "example.com", 443, "/a/b?x=1&y=2",
       "example.com", "https://example.com/a/b?x=1&y=2"},
      {"HTTP://Example.COM:8080/Path?Q", "http", "example.com", 8080, "/Path?Q", "example.com:8080",
       "http://example.com:8080/Path?Q"},
      {"http://h:80/", "http", "h", 80, "/", "h", "http://h/"},
      {"http://h:443/", "http", "h", 443, "/", "h:443", "http://h:443/"},
      {"https://h:443", "https", "h", 443, "/", "h", "https://h/"},
      {"https://h:80", "https", "h", 80, "/", "h:80", "https://h:80/"},
      {"http://h:/x", "http", "h", 80, "/x", "h", "http://h/x"},  // empty port: the default
      {"http://h:65535", "http", "h", 65535, "/", "h:65535", "http://h:65535/"},
      // RFC 3986 §3.2.3: port = *DIGIT, so leading zeros are allowed (curl and WHATWG agree).
      {"http://h:08080/", "http", "h", 8080, "/", "h:8080", "http://h:8080/"},
      {"http://h:0000000000000000000080/", "http", "h", 80, "/", "h", "http://h/"},
      {"http://h?q=1", "http", "h", 80, "/?q=1", "h", "http://h/?q=1"},
      {"http://h/p#frag", "http", "h", 80, "/p", "h", "http://h/p"},
      {"http://h#frag", "http", "h", 80, "/", "h", "http://h/"},
      {"http://h/p?#", "http", "h", 80, "/p?", "h", "http://h/p?"},
      {"http://127.0.0.1:8000/x", "http", "127.0.0.1", 8000, "/x", "127.0.0.1:8000",
       "http://127.0.0.1:8000/x"},
      {"http://[::1]:8080/a", "http", "::1", 8080, "/a", "[::1]:8080", "http://[::1]:8080/a"},
      {"http://[::FFFF:1.2.3.4]/", "http", "::ffff:1.2.3.4", 80, "/", "[::ffff:1.2.3.4]",
       "http://[::ffff:1.2.3.4]/"},
      {"http://h/a%20b/%7e?x=%2F", "http", "h", 80, "/a%20b/%7e?x=%2F", "h",
       "http://h/a%20b/%7e?x=%2F"},
      {"http://h/./a/../b", "http", "h", 80, "/./a/../b", "h", "http://h/./a/../b"},  // as given
      {"http://my-host_1.example~/", "http", "my-host_1.example~", 80, "/", "my-host_1.example~",
       "http://my-host_1.example~/"},
  };
  for (const Valid& c : cases) {
    SCOPED_TRACE(c.input);
    absl::StatusOr<URL> url = URL::parse(c.input);
    ASSERT_TRUE(url.ok()) << url.status();
    EXPECT_EQ(url->scheme, c.scheme);
    EXPECT_EQ(url->host, c.host);
    EXPECT_EQ(url->port, c.port);
    EXPECT_EQ(url->target, c.target);
    EXPECT_EQ(url->authority(), c.authority);
    EXPECT_EQ(url->to_string(), c.text);
    // to_string() parses back to the same URL.
    absl::StatusOr<URL> again = URL::parse(url->to_string());
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(*again, *url);
  }
}

struct Invalid {
  std::string input;
  const char* message;
};

TEST(URLTest, RejectsInvalidURLsSayingWhy) {
  const Invalid cases[] = {
      {"", "URL: missing scheme in ''"},
      {"foo", "URL: missing scheme in 'foo'"},
      {"/path", "URL: missing scheme in '/path'"},
      {"//h/p", "URL: missing scheme in '//h/p'"},
      {"1http://h/", "URL: missing scheme in '1http://h/'"},
      {"ftp://h/", "URL: unsupported scheme 'ftp'"},
      {"FTP://h/", "URL: unsupported scheme 'ftp'"},
      {"localhost:8080/x", "URL: unsupported scheme 'localhost'"},
      {"http:h/p", "URL: expected '//' after 'http:' in 'http:h/p'"},
      {"http:/h/p", "URL: expected '//' after 'http:' in 'http:/h/p'"},
      {"http://", "URL: empty host"},
      {"http:///p", "URL: empty host"},
      {"http://:80/", "URL: empty host"},
      {"http://h:99999/", "URL: port 99999 out of range"},
      {"http://h:65536/", "URL: port 65536 out of range"},
      {"http://h:0/", "URL: port 0 out of range"},
      {"http://h:000/", "URL: port 000 out of range"},
      {"http://h:0065536/", "URL: port 0065536 out of range"},
      {"http://h:123456789012345678901234567890/",
       "URL: port 123456789012345678901234567890 out of range"},
      {"http://h:8a/", "URL: invalid port '8a'"},
      {"http://h:-1/", "URL: invalid port '-1'"},
      {"http://user@h/", "URL: userinfo not supported"},
      {"http://user:pass@h/", "URL: userinfo not supported"},
      {"http://h p/", "URL: invalid character ' ' at 8 in 'http://h p/'"},
      {"http://h/a b", "URL: invalid character ' ' at 10 in 'http://h/a b'"},
      {"http://h/\r\nX: y", "URL: invalid character '\\r' at 9 in 'http://h/\\r\\nX: y'"},
      {std::string("http://h/\0", 10), "URL: invalid character '\\x00' at 9 in 'http://h/\\x00'"},
      {"http://h/\x7f", "URL: invalid character '\\x7f' at 9 in 'http://h/\\x7f'"},
      {"http://h/caf\xc3\xa9", "URL: invalid character '\\xc3' at 12 in 'http://h/caf\\xc3\\xa9'"},
      {"http://h\t/", "URL: invalid character '\\t' at 8 in 'http://h\\t/'"},
      {"http://h<x>/", "URL: invalid character '<' in host 'h<x>'"},
      {"http://h\\x/", "URL: invalid character '\\\\' in host 'h\\\\x'"},
      {"http://[::1/", "URL: unterminated IPv6 literal in 'http://[::1/'"},
      {"http://[::1]x/", "URL: unexpected 'x' after the IPv6 literal in 'http://[::1]x/'"},
      {"http://[not-ip]/", "URL: invalid IPv6 literal 'not-ip'"},
      {"http://[fe80::1%25eth0]/", "URL: invalid IPv6 literal 'fe80::1%25eth0'"},
      {"http://[v1.x]/", "URL: invalid IPv6 literal 'v1.x'"},
      {"http://[]/", "URL: invalid IPv6 literal ''"},
      {"http://h%zz/", "URL: invalid percent-encoding in host 'h%zz'"},
      {"http://h/a%2", "URL: invalid percent-encoding '%2' in 'http://h/a%2'"},
      {"http://h/?q=%G0", "URL: invalid percent-encoding '%G0' in 'http://h/?q=%G0'"},
  };
  for (const Invalid& c : cases) {
    SCOPED_TRACE(c.input);
    absl::StatusOr<URL> url = URL::parse(c.input);
    ASSERT_FALSE(url.ok()) << url->to_string();
    EXPECT_EQ(url.status(), absl::InvalidArgumentError(c.message));
  }
}

// check_target() is parse()'s rule for a target: it fails exactly when parse() of a URL ending
// in that target does, with a message that quotes nothing (http_proxy sends it to the client).
TEST(URLTest, CheckTargetRejectsWhatParseRejectsInATarget) {
  const std::pair<std::string, std::string> cases[] = {
      {"/", ""},
      {"/a%2Fb?q=%41&r=%25zz", ""},
      {"/{}|^`<>[]\"\\;", ""},
      {"/a%zz", "invalid percent-encoding in the target"},
      {"/?q=%zz", "invalid percent-encoding in the target"},
      {"/a%", "invalid percent-encoding in the target"},
      {"/a%2", "invalid percent-encoding in the target"},
      {"/\xc3\xa9", "invalid character in the target"},
      {"/a%zz\xc3", "invalid character in the target"},  // parse() also says this first
      {"/a b", "invalid character in the target"},
      {std::string("/\0", 2), "invalid character in the target"},
      {"/\x7f", "invalid character in the target"},
  };
  for (const auto& [target, message] : cases) {
    SCOPED_TRACE(target);
    const absl::Status checked = URL::check_target(target);
    EXPECT_EQ(checked, message.empty() ? absl::OkStatus() : absl::InvalidArgumentError(message));
    const absl::StatusOr<URL> parsed = URL::parse("http://h:8080" + target);
    EXPECT_EQ(parsed.ok(), checked.ok()) << parsed.status();
    if (!parsed.ok()) {  // the same problem: "URL: invalid character '\\xc3' at ..."
      const std::string problem = message.substr(0, message.find(" in the target"));
      EXPECT_TRUE(absl::StartsWith(parsed.status().message(), "URL: " + problem + " '"))
          << parsed.status();
    }
  }
}

// RFC 3986 §5.4.1 and §5.4.2, base "http://a/b/c/d;p?q". The results are the RFC's except
// that the fragment is dropped and an empty path is "/".
TEST(URLTest, ResolvesRfc3986Examples) {
  absl::StatusOr<URL> base = URL::parse("http://a/b/c/d;p?q");
  ASSERT_TRUE(base.ok());
  const std::pair<const char*, const char*> cases[] = {
      // §5.4.1 normal examples
      {"g", "http://a/b/c/g"},
      {"./g", "http://a/b/c/g"},
      {"g/", "http://a/b/c/g/"},
      {"/g", "http://a/g"},
      {"//g", "http://g/"},
      {"?y", "http://a/b/c/d;p?y"},
      {"g?y", "http://a/b/c/g?y"},
      {"#s", "http://a/b/c/d;p?q"},
      {"g#s", "http://a/b/c/g"},
      {"g?y#s", "http://a/b/c/g?y"},
      {";x", "http://a/b/c/;x"},
      {"g;x", "http://a/b/c/g;x"},
      {"g;x?y#s", "http://a/b/c/g;x?y"},
      {"", "http://a/b/c/d;p?q"},
      {".", "http://a/b/c/"},
      {"./", "http://a/b/c/"},
      {"..", "http://a/b/"},
      {"../", "http://a/b/"},
      {"../g", "http://a/b/g"},
      {"../..", "http://a/"},
      {"../../", "http://a/"},
      {"../../g", "http://a/g"},
      // §5.4.2 abnormal examples
      {"../../../g", "http://a/g"},
      {"../../../../g", "http://a/g"},
      {"/./g", "http://a/g"},
      {"/../g", "http://a/g"},
      {"g.", "http://a/b/c/g."},
      {".g", "http://a/b/c/.g"},
      {"g..", "http://a/b/c/g.."},
      {"..g", "http://a/b/c/..g"},
      {"./../g", "http://a/b/g"},
      {"./g/.", "http://a/b/c/g/"},
      {"g/./h", "http://a/b/c/g/h"},
      {"g/../h", "http://a/b/c/h"},
      {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
      {"g;x=1/../y", "http://a/b/c/y"},
      {"g?y/./x", "http://a/b/c/g?y/./x"},
      {"g?y/../x", "http://a/b/c/g?y/../x"},
      {"g#s/./x", "http://a/b/c/g"},
      {"g#s/../x", "http://a/b/c/g"},
      // Absolute references (the scheme may change: an https redirect).
      {"https://other:8443/x?y", "https://other:8443/x?y"},
      {"HTTP://A/b/../c", "http://a/c"},
      {"//other:81", "http://other:81/"},
  };
  for (const auto& [reference, expected] : cases) {
    SCOPED_TRACE(reference);
    absl::StatusOr<URL> url = base->resolve(reference);
    ASSERT_TRUE(url.ok()) << url.status();
    EXPECT_EQ(url->to_string(), expected);
  }
}

// to_string_equals(text) is to_string() == text, without building the string: true for
// canonical spellings only.
TEST(URLTest, ToStringEqualsMatchesToStringExactly) {
  const char* inputs[] = {
      "http://h/",       "http://h:8080/a?b",    "https://h:443/",
      "HTTP://H/",       "http://h:80/",         "http://h",
      "http://h:08080/", "http://[::1]:8080/a",  "http://[::1]/",
      "http://h/a#frag", "https://h:8443/x?y=1", "http://h:65535/",
      "http://h?q",      "http://127.0.0.1:5/",
  };
  for (const char* input : inputs) {
    SCOPED_TRACE(input);
    absl::StatusOr<URL> url = URL::parse(input);
    ASSERT_TRUE(url.ok()) << url.status();
    EXPECT_TRUE(url->to_string_equals(url->to_string()));
    EXPECT_EQ(url->to_string_equals(input), url->to_string() == input);
    for (const std::string& other :
         {url->to_string() + "x", url->to_string().substr(0, url->to_string().size() - 1),
          std::string("http://other/"), std::string()}) {
      EXPECT_EQ(url->to_string_equals(other), url->to_string() == other) << other;
    }
  }
  EXPECT_TRUE(URL::parse("http://h:8080/a?b")->to_string_equals("http://h:8080/a?b"));
  EXPECT_FALSE(URL::parse("http://h:8080/")->to_string_equals("http://h:08080/"));
  EXPECT_FALSE(URL::parse("http://h:8080/")->to_string_equals("http://h:8081/"));
  EXPECT_FALSE(URL::parse("HTTP://H/")->to_string_equals("HTTP://H/"));
  EXPECT_FALSE(URL::parse("http://h:80/")->to_string_equals("http://h:80/"));
  // Found by a probe: ten digits or more overflowed an int (UBSan stopped the process), and a
  // URL built by hand with port 0 did not equal its own to_string().
  EXPECT_FALSE(URL::parse("http://h:8080/")->to_string_equals("http://h:99999999999/"));
  EXPECT_FALSE(
      URL::parse("http://h:8080/")->to_string_equals("http://h:" + std::string(40, '9') + "8080/"));
  URL port0;
  port0.scheme = "http";
  port0.host = "h";
  port0.port = 0;
  port0.target = "/";
  EXPECT_EQ(port0.to_string(), "http://h:0/");
  EXPECT_TRUE(port0.to_string_equals("http://h:0/"));
  EXPECT_FALSE(port0.to_string_equals("http://h:00/"));
}

// Every rest that can follow an origin: valid targets and each error parse() reports after
// the authority.
const std::string kRests[] = {
    "",        "/",        "/a/b?x=1&y=2", "?q",    "#frag",
    "/a#b?c",  "/a?b#c",   "/%41",         "/a b",  "/a%2",
    "/?q=%G0", "/\x7f",    "/caf\xc3\xa9", "/\r\n", std::string("/\0x", 3),
    "/./../x", "//double", "/a:b@c",       "?",     "#",
    "#\x01",
};

TEST(URLTest, ParseOnAKnownOriginGivesWhatParseGives) {
  for (const char* base : {"http://h", "https://example.com:8443", "http://127.0.0.1:5000",
                           "http://[::1]:8080", "https://[2001:db8::1]"}) {
    absl::StatusOr<URL> origin = URL::parse(base);
    ASSERT_TRUE(origin.ok()) << origin.status();
    const std::string text = origin->origin();
    ASSERT_EQ(text, base);
    for (const std::string& rest : kRests) {
      const std::string url = text + rest;
      SCOPED_TRACE(url);
      absl::StatusOr<URL> expected = URL::parse(url);
      absl::StatusOr<URL> got = internal::parse_url_on_origin(url, *origin, text.size());
      ASSERT_EQ(got.status(), expected.status());
      if (expected.ok()) {
        EXPECT_EQ(*got, *expected);
      }
    }
  }
}

TEST(URLTest, LastOriginParsesEachURLAsParseDoesAndKeysItsPool) {
  // In order; the valid ones of port 80 on host "h" share a pool whatever their spelling.
  const struct {
    const char* url;
    const char* pool;  // nullptr: invalid
  } cases[] = {
      {"http://h/a", "h"},          {"http://h/b?c", "h"}, {"http://h", "h"},
      {"http://h:80/d", "h"},       {"HTTP://H/e", "h"},   {"http://h:8080/f", "h:8080"},
      {"http://h/a b", nullptr},    {"http://h/g", "h"},   {"https://h/", "https h"},
      {"ftp://h/", nullptr},        {"http://h/h", "h"},   {"http://hx/", "hx"},
      {"http://h#frag", "h"},       {"http://h?q", "h"},   {"http://h:080/", "h"},
      {"http://h:8080/", "h:8080"},
  };
  LastOrigin last;
  std::map<std::string, std::string> key_of_pool;
  std::set<std::string> keys;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.url);
    absl::StatusOr<URL> expected = URL::parse(c.url);
    absl::StatusOr<URL> got = last.parse(c.url);
    ASSERT_EQ(got.status(), expected.status());
    ASSERT_EQ(got.ok(), c.pool != nullptr);
    if (!got.ok()) continue;
    EXPECT_EQ(*got, *expected);
    // `canonical` never claims a URL that is not its own canonical text (it may miss one).
    if (last.canonical) {
      EXPECT_EQ(got->to_string(), c.url);
    }
    EXPECT_EQ(last.key, pool_key(*expected));
    auto [it, added] = key_of_pool.emplace(c.pool, last.key);
    EXPECT_EQ(it->second, last.key);
    keys.insert(last.key);
  }
  EXPECT_EQ(keys.size(), 4u);  // h, h:8080, https h, hx: each its own
}

TEST(URLTest, LastOriginKnowsWhenAURLIsItsCanonicalText) {
  LastOrigin last;
  const struct {
    const char* url;
    bool canonical;
  } cases[] = {
      {"http://h/a", false},  // parsed whole: not known
      {"http://h/b?c", true}, {"http://h/", true},      {"http://h", false},
      {"http://h#f", false},  {"http://h/x#f", false},  {"http://h?q", false},
      {"http://h/%41", true}, {"http://h:80/d", false},  // parsed whole
      {"http://h/e", true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.url);
    absl::StatusOr<URL> got = last.parse(c.url);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(last.canonical, c.canonical);
    if (c.canonical) {
      EXPECT_EQ(got->to_string(), c.url);
    }
  }
}

TEST(URLTest, ResolveKeepsTheBasePortAndScheme) {
  absl::StatusOr<URL> base = URL::parse("https://[::1]:8443/dir/page?x");
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(base->resolve("next")->to_string(), "https://[::1]:8443/dir/next");
  EXPECT_EQ(base->resolve("/top")->to_string(), "https://[::1]:8443/top");
  EXPECT_EQ(base->resolve("//h/p")->to_string(), "https://h/p");
  absl::StatusOr<URL> root = URL::parse("http://h");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->resolve("g")->to_string(), "http://h/g");
  EXPECT_EQ(root->resolve("?q")->to_string(), "http://h/?q");
}

TEST(URLTest, ResolveRejectsWhatParseRejects) {
  absl::StatusOr<URL> base = URL::parse("http://a/b/c/d;p?q");
  ASSERT_TRUE(base.ok());
  const std::pair<const char*, const char*> cases[] = {
      {"g:h", "URL: unsupported scheme 'g'"},
      {"ftp://h/", "URL: unsupported scheme 'ftp'"},
      // §5.4.2: strict parsers resolve "http:g" to "http:g", which is not a usable http URL.
      {"http:g", "URL: expected '//' after 'http:' in 'http:g'"},
      {"//user@h/", "URL: userinfo not supported"},
      {"//h:99999/", "URL: port 99999 out of range"},
      {"///p", "URL: empty host"},
      {"/a b", "URL: invalid character ' ' at 2 in '/a b'"},
      {"/a\r\nSet-Cookie: x", "URL: invalid character '\\r' at 2 in '/a\\r\\nSet-Cookie: x'"},
      {"/%zz", "URL: invalid percent-encoding '%zz' in 'http://a/%zz'"},
  };
  for (const auto& [reference, message] : cases) {
    SCOPED_TRACE(reference);
    absl::StatusOr<URL> url = base->resolve(reference);
    ASSERT_FALSE(url.ok()) << url->to_string();
    EXPECT_EQ(url.status(), absl::InvalidArgumentError(message));
  }
}

}  // namespace
}  // namespace ioloop::net
