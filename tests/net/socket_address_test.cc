#include "ioloop/net/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace ioloop::net {
namespace {

TEST(SocketAddressTest, DefaultIsUnspecified) {
  SocketAddress a;
  EXPECT_EQ(a.family(), AF_UNSPEC);
  EXPECT_EQ(a.length(), 0u);
  EXPECT_EQ(a.port(), 0);
  EXPECT_EQ(a.host(), "");
  EXPECT_EQ(a.to_string(), "(unspecified)");
}

TEST(SocketAddressTest, ParsesIpv4) {
  absl::StatusOr<SocketAddress> a = SocketAddress::parse("10.1.2.3", 8080);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_EQ(a->length(), sizeof(sockaddr_in));
  EXPECT_EQ(a->port(), 8080);
  EXPECT_EQ(a->host(), "10.1.2.3");
  EXPECT_EQ(a->to_string(), "10.1.2.3:8080");
  const auto* in = reinterpret_cast<const sockaddr_in*>(a->get());
  EXPECT_EQ(ntohs(in->sin_port), 8080);
  EXPECT_EQ(ntohl(in->sin_addr.s_addr), 0x0A010203u);
}

TEST(SocketAddressTest, ParsesIpv6WithAndWithoutBrackets) {
  for (const char* text : {"::1", "[::1]"}) {
    absl::StatusOr<SocketAddress> a = SocketAddress::parse(text, 443);
    ASSERT_TRUE(a.ok()) << text << ": " << a.status();
    EXPECT_EQ(a->family(), AF_INET6);
    EXPECT_EQ(a->length(), sizeof(sockaddr_in6));
    EXPECT_EQ(a->port(), 443);
    EXPECT_EQ(a->host(), "::1");
    EXPECT_EQ(a->to_string(), "[::1]:443");
  }
  EXPECT_EQ(SocketAddress::parse("2001:DB8::0:1", 1)->host(), "2001:db8::1");  // canonical form
}

TEST(SocketAddressTest, RejectsNonNumericHosts) {
  for (const char* text : {"localhost", "1.2.3", "256.0.0.1", "", "[::1", "::g"}) {
    absl::StatusOr<SocketAddress> a = SocketAddress::parse(text, 1);
    ASSERT_FALSE(a.ok()) << text;
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(a.status().message(),
              "'" + std::string(text) + "' is not a numeric IPv4 or IPv6 address");
  }
}

// inet_pton and the kernel read C strings: the text after a NUL would be ignored silently.
TEST(SocketAddressTest, EmbeddedNulIsInvalidArgument) {
  using namespace std::string_literals;
  for (const std::string& text : {"1.2.3.4\0junk"s, "::1\0evil.example"s, "\0"s}) {
    absl::StatusOr<SocketAddress> a = SocketAddress::parse(text, 80);
    ASSERT_FALSE(a.ok()) << a->to_string();
    EXPECT_EQ(a.status(), absl::InvalidArgumentError("address contains a NUL byte"));
  }
  absl::StatusOr<SocketAddress> path = SocketAddress::unix_path("/tmp/a\0b"s);
  EXPECT_EQ(path.status(), absl::InvalidArgumentError("unix socket path contains a NUL byte"));
}

TEST(SocketAddressTest, SetPortChangesOnlyIpFamilies) {
  SocketAddress v4 = SocketAddress::ipv4_loopback(1);
  v4.set_port(65535);
  EXPECT_EQ(v4.to_string(), "127.0.0.1:65535");
  SocketAddress v6 = *SocketAddress::parse("::", 0);
  v6.set_port(9);
  EXPECT_EQ(v6.to_string(), "[::]:9");
  SocketAddress un = *SocketAddress::unix_path("/tmp/x");
  un.set_port(5);
  EXPECT_EQ(un.port(), 0);
  EXPECT_EQ(un.to_string(), "unix:/tmp/x");
}

TEST(SocketAddressTest, WellKnownAddresses) {
  EXPECT_EQ(SocketAddress::ipv4_loopback(5000).to_string(), "127.0.0.1:5000");
  EXPECT_EQ(SocketAddress::ipv4_any(0).to_string(), "0.0.0.0:0");
}

TEST(SocketAddressTest, UnixPath) {
  absl::StatusOr<SocketAddress> a = SocketAddress::unix_path("/run/echo.sock");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->family(), AF_UNIX);
  EXPECT_EQ(a->host(), "/run/echo.sock");
  EXPECT_EQ(a->length(), offsetof(sockaddr_un, sun_path) + 15);  // path and its NUL
  const std::string longest(sizeof(sockaddr_un::sun_path) - 1, 'p');
  EXPECT_TRUE(SocketAddress::unix_path(longest).ok());
  absl::StatusOr<SocketAddress> too_long = SocketAddress::unix_path(longest + "p");
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SocketAddress::unix_path("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SocketAddressTest, CopiesFromSockaddr) {
  sockaddr_in in = {};
  in.sin_family = AF_INET;
  in.sin_port = htons(77);
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  SocketAddress a(reinterpret_cast<const sockaddr*>(&in), sizeof in);
  EXPECT_EQ(a.to_string(), "127.0.0.1:77");
  EXPECT_EQ(a.length(), sizeof in);
  // Longer than sockaddr_storage: truncated, never overrun.
  char big[sizeof(sockaddr_storage) + 16] = {};
  std::memcpy(big, &in, sizeof in);
  SocketAddress b(reinterpret_cast<const sockaddr*>(big), sizeof big);
  EXPECT_EQ(b.length(), sizeof(sockaddr_storage));
  EXPECT_EQ(b.to_string(), "127.0.0.1:77");
}

}  // namespace
}  // namespace ioloop::net
