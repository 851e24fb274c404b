/// @file ioloop/net/socket_address.h
/// SocketAddress: a value type holding an IPv4, IPv6 or Unix-domain socket address
/// (sockaddr_storage), with parsing of numeric hosts and printing for logs and errors.
/// Thread-compatible (a plain value).
#ifndef IOLOOP_NET_SOCKET_ADDRESS_H_
#define IOLOOP_NET_SOCKET_ADDRESS_H_

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ioloop::net {

/// An IPv4, IPv6 or Unix-domain socket address (sockaddr_storage): a plain value,
/// thread-compatible.
class SocketAddress {
 public:
  SocketAddress() = default;  ///< AF_UNSPEC
  /// Copies `len` bytes of `addr`; longer than sockaddr_storage is truncated.
  SocketAddress(const struct sockaddr* addr, socklen_t len);

  /// Parses a numeric IPv4 ("127.0.0.1") or IPv6 ("::1", "[::1]") host. No DNS.
  /// InvalidArgument naming the text if it is neither, or if it holds a NUL byte.
  static absl::StatusOr<SocketAddress> parse(absl::string_view host, uint16_t port);
  /// An absolute or relative filesystem path; InvalidArgument if too long for sun_path or if
  /// it holds a NUL byte.
  static absl::StatusOr<SocketAddress> unix_path(absl::string_view path);
  /// 127.0.0.1:`port`.
  static SocketAddress ipv4_loopback(uint16_t port);
  /// 0.0.0.0:`port` (every local IPv4 address).
  static SocketAddress ipv4_any(uint16_t port);

  /// AF_INET, AF_INET6, AF_UNIX or AF_UNSPEC.
  int family() const { return storage_.ss_family; }
  uint16_t port() const;  ///< 0 for non-IP families
  /// Sets the port of an IP address; ignored for other families.
  void set_port(uint16_t port);
  /// "127.0.0.1:80", "[::1]:80", "unix:/path".
  std::string to_string() const;
  /// Host part only: "127.0.0.1", "::1".
  std::string host() const;

  /// @{
  /// The address, for the socket calls (length() bytes of it are valid); owned by this object.
  const struct sockaddr* get() const { return reinterpret_cast<const struct sockaddr*>(&storage_); }
  struct sockaddr* mutable_get() {
    /// @}
    return reinterpret_cast<struct sockaddr*>(&storage_);
  }
  /// @{
  /// The valid length of get(); set_length() after a call such as accept() filled mutable_get().
  socklen_t length() const { return length_; }
  void set_length(socklen_t len) { length_ = len; }
  /// @}

 private:
  struct sockaddr_storage storage_ = {};
  socklen_t length_ = 0;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_SOCKET_ADDRESS_H_
