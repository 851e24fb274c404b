// File: integration/proxy_testing.h
// Shared by the http_proxy integration tests: starting the Python upstream
// (proxy_upstream.py) and the proxy, reading a process's memory from /proc, and the fixture
// with a proxy in front of the Python upstream.
#ifndef IOLOOP_TESTS_INTEGRATION_PROXY_TESTING_H_
#define IOLOOP_TESTS_INTEGRATION_PROXY_TESTING_H_

#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "integration/command.h"
#include "integration/proc_stats.h"
#include "integration/server_process.h"
#include "ioloop/net/socket.h"
#include "ioloop/net/socket_address.h"
#include "testing/sanitizers.h"

#if !defined(HTTP_PROXY_PATH) || !defined(PROXY_UPSTREAM_PY)
#error "HTTP_PROXY_PATH and PROXY_UPSTREAM_PY must be defined (CMakeLists.txt)"
#endif

namespace ioloop::testing {

#if IOLOOP_TESTING_ASAN || IOLOOP_TESTING_TSAN
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

// Starts the Python upstream; null (and the test skips) without python3.
inline std::unique_ptr<ServerProcess> start_python_upstream() {
  if (!have("python3")) return nullptr;
  auto server = ServerProcess::start("/usr/bin/env", {"python3", PROXY_UPSTREAM_PY});
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

inline std::unique_ptr<ServerProcess> start_proxy(uint16_t upstream_port,
                                                  std::vector<std::string> extra = {},
                                                  const std::string& stderr_path = "") {
  std::vector<std::string> args = {"--port=0", "--address=127.0.0.1", "--log_level=warn",
                                   absl::StrCat("--upstream=http://127.0.0.1:", upstream_port)};
  args.insert(args.end(), extra.begin(), extra.end());
  auto server = ServerProcess::start(HTTP_PROXY_PATH, args, absl::Seconds(20), stderr_path);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

// Everything the peer sends on `fd` until it closes.
inline std::string read_all(int fd) {
  std::string out;
  char buf[16384];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

// Sends `requests` on a fresh blocking connection to 127.0.0.1:port and returns everything
// the peer sends until it closes.
inline std::string exchange_on_one_connection(uint16_t port, const std::string& requests) {
  net::Socket sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(sock.valid());
  absl::StatusOr<net::SocketAddress> addr = net::SocketAddress::parse("127.0.0.1", port);
  EXPECT_TRUE(addr.ok());
  if (!sock.valid() || !addr.ok()) return "";
  EXPECT_EQ(::connect(sock.fd(), addr->get(), addr->length()), 0);
  EXPECT_EQ(::send(sock.fd(), requests.data(), requests.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(requests.size()));
  return read_all(sock.fd());
}

// A proxy in front of the Python upstream; url_ is the proxy's http://127.0.0.1:PORT, and
// log() what it wrote to stderr so far (warnings and errors).
class ProxyToPythonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = start_python_upstream();
    if (upstream_ == nullptr) GTEST_SKIP() << "python3 not installed";
    if (!have("curl")) GTEST_SKIP() << "curl not installed";
    log_path_ = absl::StrCat(::testing::TempDir(), "/proxy_", ::getpid(), ".log");
    proxy_ = start_proxy(upstream_->port(), {}, log_path_);
    ASSERT_NE(proxy_, nullptr);
    url_ = absl::StrCat("http://127.0.0.1:", proxy_->port());
  }
  void TearDown() override {
    if (!log_path_.empty()) ::unlink(log_path_.c_str());
  }
  std::string log() const { return read_file(log_path_); }

  std::unique_ptr<ServerProcess> upstream_;
  std::unique_ptr<ServerProcess> proxy_;
  std::string url_;
  std::string log_path_;
};

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_INTEGRATION_PROXY_TESTING_H_
