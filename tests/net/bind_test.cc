#include "ioloop/net/bind.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ioloop::net {
namespace {

using ::testing::HasSubstr;

bool is_listening(const Socket& s) {
  absl::StatusOr<int> v = s.get_option(SOL_SOCKET, SO_ACCEPTCONN, "SO_ACCEPTCONN");
  return v.ok() && *v == 1;
}

// A blocking connect to `addr`; true once the handshake completed.
bool connect_to(const SocketAddress& addr) {
  int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = ::connect(fd, addr.get(), addr.length()) == 0;
  ::close(fd);
  return ok;
}

bool host_has_ipv6() {
  absl::StatusOr<std::vector<Socket>> s = bind_sockets(0, "::1", AF_INET6);
  return s.ok();
}

TEST(BindSocketsTest, LoopbackV4EphemeralPort) {
  absl::StatusOr<std::vector<Socket>> sockets = bind_sockets(0, "127.0.0.1");
  ASSERT_TRUE(sockets.ok()) << sockets.status();
  ASSERT_EQ(sockets->size(), 1u);
  const Socket& s = (*sockets)[0];
  EXPECT_TRUE(is_listening(s));
  EXPECT_NE(::fcntl(s.fd(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(::fcntl(s.fd(), F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_EQ(*s.get_option(SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR"), 1);
  EXPECT_EQ(*s.get_option(SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT"), 0);
  absl::StatusOr<SocketAddress> local = s.local_address();
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->host(), "127.0.0.1");
  EXPECT_NE(local->port(), 0);
  EXPECT_TRUE(connect_to(*local));
}

TEST(BindSocketsTest, AllAddressesShareOneEphemeralPort) {
  absl::StatusOr<std::vector<Socket>> sockets = bind_sockets(0, "");
  ASSERT_TRUE(sockets.ok()) << sockets.status();
  ASSERT_GE(sockets->size(), 1u);
  EXPECT_EQ((*sockets)[0].local_address()->family(), AF_INET);  // IPv4 first
  EXPECT_EQ((*sockets)[0].local_address()->host(), "0.0.0.0");
  const uint16_t port = (*sockets)[0].local_address()->port();
  ASSERT_NE(port, 0);
  if (!host_has_ipv6()) GTEST_SKIP() << "no IPv6 on this host";
  ASSERT_EQ(sockets->size(), 2u);
  const Socket& v6 = (*sockets)[1];
  EXPECT_EQ(v6.local_address()->family(), AF_INET6);
  EXPECT_EQ(v6.local_address()->host(), "::");
  EXPECT_EQ(v6.local_address()->port(), port);
  EXPECT_EQ(*v6.get_option(IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY"), 1);
  EXPECT_TRUE(connect_to(SocketAddress::ipv4_loopback(port)));
  EXPECT_TRUE(connect_to(*SocketAddress::parse("::1", port)));
}

TEST(BindSocketsTest, V4AndV6BindTheSameExplicitPort) {
  if (!host_has_ipv6()) GTEST_SKIP() << "no IPv6 on this host";
  // Find a free port, release it, then ask for both families on it.
  uint16_t port;
  {
    absl::StatusOr<std::vector<Socket>> probe = bind_sockets(0, "", AF_UNSPEC);
    ASSERT_TRUE(probe.ok()) << probe.status();
    port = (*probe)[0].local_address()->port();
  }
  absl::StatusOr<std::vector<Socket>> sockets = bind_sockets(port, "");
  ASSERT_TRUE(sockets.ok()) << sockets.status();
  ASSERT_EQ(sockets->size(), 2u);
  EXPECT_EQ((*sockets)[0].local_address()->port(), port);
  EXPECT_EQ((*sockets)[1].local_address()->port(), port);
}

TEST(BindSocketsTest, FamilyRestrictsTheResult) {
  absl::StatusOr<std::vector<Socket>> v4 = bind_sockets(0, "", AF_INET);
  ASSERT_TRUE(v4.ok()) << v4.status();
  ASSERT_EQ(v4->size(), 1u);
  EXPECT_EQ((*v4)[0].local_address()->family(), AF_INET);
  if (!host_has_ipv6()) GTEST_SKIP() << "no IPv6 on this host";
  absl::StatusOr<std::vector<Socket>> v6 = bind_sockets(0, "", AF_INET6);
  ASSERT_TRUE(v6.ok()) << v6.status();
  ASSERT_EQ(v6->size(), 1u);
  EXPECT_EQ((*v6)[0].local_address()->family(), AF_INET6);
}

TEST(BindSocketsTest, AddressInUseNamesAddressAndErrno) {
  absl::StatusOr<std::vector<Socket>> first = bind_sockets(0, "127.0.0.1");
  ASSERT_TRUE(first.ok()) << first.status();
  const uint16_t port = (*first)[0].local_address()->port();
  absl::StatusOr<std::vector<Socket>> second = bind_sockets(port, "127.0.0.1");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(),
            "bind 127.0.0.1:" + std::to_string(port) + ": Address already in use");
}

TEST(BindSocketsTest, ReusePortLetsTwoListenersShareAPort) {
  BindOptions options;
  options.family = AF_INET;
  options.reuse_port = true;
  absl::StatusOr<std::vector<Socket>> first = bind_sockets(0, "127.0.0.1", options);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*(*first)[0].get_option(SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT"), 1);
  const uint16_t port = (*first)[0].local_address()->port();
  // The positional form, too.
  absl::StatusOr<std::vector<Socket>> second =
      bind_sockets(port, "127.0.0.1", AF_INET, kDefaultBacklog, /*reuse_port=*/true);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)[0].local_address()->port(), port);
}

TEST(BindSocketsTest, NonLocalAddressFailsWithErrnoText) {
  // 192.0.2.0/24 is TEST-NET-1: numeric (no DNS), never assigned to this host.
  absl::StatusOr<std::vector<Socket>> s = bind_sockets(0, "192.0.2.1");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), "bind 192.0.2.1:0: Cannot assign requested address");
}

TEST(BindSocketsTest, AddressOfTheWrongFamilyIsInvalidArgument) {
  absl::StatusOr<std::vector<Socket>> s = bind_sockets(0, "::1", AF_INET);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("getaddrinfo(host='::1', port=0, family=AF_INET)"));
}

TEST(BindSocketsTest, UnresolvableNameIsInvalidArgument) {
  absl::StatusOr<std::vector<Socket>> s = bind_sockets(0, "no-such-host.invalid");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("'no-such-host.invalid'"));
}

TEST(BindSocketsTest, BadPortAndFamilyAreRejected) {
  EXPECT_EQ(bind_sockets(65536, "127.0.0.1").status().message(),
            "bind_sockets: port 65536 is outside 0..65535");
  EXPECT_EQ(bind_sockets(-1, "127.0.0.1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bind_sockets(0, "127.0.0.1", AF_UNIX).status().message(),
            "bind_sockets: AF_UNIX is not AF_UNSPEC, AF_INET or AF_INET6");
}

class UnixSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ioloop_bind_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/sock";
  }
  void TearDown() override {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  std::string dir_;
  std::string path_;
};

TEST_F(UnixSocketTest, BindsWithModeAndAcceptsConnections) {
  absl::StatusOr<Socket> s = bind_unix_socket(path_, 0640);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(is_listening(*s));
  struct stat st;
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(s->local_address()->to_string(), "unix:" + path_);
  EXPECT_TRUE(connect_to(*SocketAddress::unix_path(path_)));
}

TEST_F(UnixSocketTest, RemovesAStaleSocketFile) {
  {
    absl::StatusOr<Socket> old = bind_unix_socket(path_);
    ASSERT_TRUE(old.ok()) << old.status();
  }  // closed, but the file stays behind
  struct stat st;
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  absl::StatusOr<Socket> s = bind_unix_socket(path_);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(connect_to(*SocketAddress::unix_path(path_)));
}

TEST_F(UnixSocketTest, RefusesToRemoveARegularFile) {
  FILE* f = std::fopen(path_.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("precious", f);
  std::fclose(f);
  absl::StatusOr<Socket> s = bind_unix_socket(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(s.status().message(), "bind_unix_socket: '" + path_ + "' exists and is not a socket");
  struct stat st;
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 8);
}

TEST_F(UnixSocketTest, MissingDirectoryNamesThePath) {
  const std::string path = dir_ + "/no/such/dir/sock";
  absl::StatusOr<Socket> s = bind_unix_socket(path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), "bind unix:" + path + ": No such file or directory");
}

TEST_F(UnixSocketTest, TooLongPathIsInvalidArgument) {
  absl::StatusOr<Socket> s = bind_unix_socket(std::string(200, 'x'));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ioloop::net
