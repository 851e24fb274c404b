/// @file ioloop/net/tls/tls_context.h
/// TLSContext: the configuration every TLS connection of one side shares (OpenSSL 3's
/// SSL_CTX): certificates, keys, trust anchors, ALPN, protocol versions, session caches.
///
/// ```
///   auto server = TLSContext::server({.cert_chain_file = "chain.pem",
///                                     .private_key_file = "key.pem",
///                                     .alpn_protocols = {"http/1.1"}});
///   if (!server.ok()) return server.status();
///   auto transport = (*server)->new_server_transport(accepted_fd);  // hand to IOStream
/// ```
///
/// Fixed policy (not options): TLS 1.2 is the lowest version ever negotiated; TLS 1.3 is
/// negotiated whenever the peer offers it (unless max_version says 1.2); renegotiation is
/// refused; OpenSSL releases its read/write buffers while a connection is idle
/// (SSL_MODE_RELEASE_BUFFERS); partial writes and moving write buffers are enabled (the
/// Transport retry rule relies on both).
///
/// Errors: creation fails with an absl::Status and never logs:
///   - InvalidArgument for an option set that makes no sense (a server without a
///     certificate, a source given both as a file and in memory, verify_client without a CA
///     or a client CA without verify_client,
///     an ALPN name of 0 or more than 255 bytes, min_version above max_version), and for
///     content OpenSSL refuses: "TLSContext: no certificate in <file>: <reason>",
///     "TLSContext: private key does not match the certificate in <file>", ...
///   - NotFound / PermissionDenied / InvalidArgument naming the path for a file that cannot be
///     read (InvalidArgument for a directory), or a ca_dir that is not a directory (the errno
///     text is included); InvalidArgument for a path holding a NUL.
///   OpenSSL's reasons (its per-thread error queue, drained) are appended after the file
///   name. Sources given in memory are named "<cert_chain_pem>", "<private_key_pem>", ...
///
/// Threading: a TLSContext is immutable once created and is shared as
/// std::shared_ptr<const TLSContext>; every method may be called from any thread. The one
/// mutable part, the client session cache, is guarded by a mutex.
/// Lifetime: each transport holds a reference to its context, so a context may be dropped
/// while its connections live on.
/// Header hygiene: no OpenSSL header is included here; OpenSSL types are forward-declared.
#ifndef IOLOOP_NET_TLS_TLS_CONTEXT_H_
#define IOLOOP_NET_TLS_TLS_CONTEXT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ioloop/net/transport.h"

struct ssl_ctx_st;

namespace ioloop::net {

class TLSTransport;
class TLSClientSessionCache;

/// A TLS protocol version; TLS 1.2 is the lowest this library negotiates.
enum class TLSVersion : uint8_t { kTLS1_2, kTLS1_3 };

/// A server's configuration. Each PEM source is given either as a file path (`*_file`) or in
/// memory (`*_pem`), never both.
struct TLSServerOptions {
  /// @{
  /// The certificate chain: the leaf first, then its intermediates (not the root), in one
  /// PEM. RSA and ECDSA leaves are accepted.
  std::string cert_chain_file{};
  std::string cert_chain_pem{};
  /// @}
  /// @{
  /// The leaf's private key (PEM, unencrypted: PKCS#8, traditional RSA or EC).
  std::string private_key_file{};
  std::string private_key_pem{};
  /// @}
  /// @{
  /// Require a client certificate that verifies against client_ca (file or memory); the
  /// server's handshake fails without one. Under TLS 1.2 the client's handshake fails too.
  /// Under TLS 1.3 the client finished its handshake before the server checked, so the client
  /// learns it at its first read (Unavailable "TLS: read: tlsv13 alert certificate required"),
  /// after its first write went out (RFC 8446 §4.4.2.4): an HTTPClient fetch fails "waiting
  /// for the response", not "connecting", and is not retried.
  bool verify_client = false;
  std::string client_ca_file{};
  std::string client_ca_pem{};
  /// @}
  /// Application protocols the server accepts, in its order of preference: the server picks
  /// the first of this list the client offers. A client offering only others fails its
  /// handshake with the fatal no_application_protocol alert (RFC 7301 §3.2; the server's
  /// handshake error says "no application protocol"); one offering no ALPN at all is served
  /// without a protocol (TLSTransport::alpn_protocol() is empty). Empty: ALPN is ignored.
  std::vector<std::string> alpn_protocols{};
  /// Session resumption (a server-side session cache for TLS 1.2, session tickets for both
  /// versions). On by default.
  bool session_resumption = true;
  /// Sessions the server-side cache holds (OpenSSL evicts the oldest beyond it).
  size_t session_cache_size = 20000;
  /// TLS 1.3 session tickets sent after a full handshake (with session_resumption). One,
  /// where OpenSSL sends two: each ticket is a session serialized, encrypted and sent, on
  /// every full handshake, and a client resuming one connection at a time (HTTPClient's pool
  /// connects one by one; a resumed handshake brings a fresh ticket) needs only one.
  /// Go's crypto/tls sends one too. Raise it for clients that open connections in parallel.
  size_t tls13_tickets = 1;
  /// @{
  /// The range of protocol versions negotiated (min_version <= max_version, else
  /// InvalidArgument).
  TLSVersion min_version = TLSVersion::kTLS1_2;
  TLSVersion max_version = TLSVersion::kTLS1_3;
  /// @}
};

/// A client's configuration.
struct TLSClientOptions {
  /// @{
  /// Trust anchors: a PEM file, a hashed directory (c_rehash), PEM in memory, any
  /// combination. None of them given: the system store (OpenSSL's default paths).
  std::string ca_file{};
  std::string ca_dir{};
  std::string ca_pem{};
  /// @}
  /// Verify the server's certificate chain and that it was issued for the host name passed
  /// to new_client_transport(): a host name is matched against the DNS subjectAltNames only,
  /// never the subject's CN (RFC 9525 §6.3), with no partial wildcards ("w*.example"); an IP
  /// literal against IP SANs. Turning it off accepts any server: only for tests and debugging.
  bool verify_peer = true;
  /// Protocols offered with ALPN, most preferred first. Empty: no ALPN extension.
  std::vector<std::string> alpn_protocols{};
  /// @{
  /// Optional client certificate (for servers with verify_client), as for the server.
  std::string cert_chain_file{};
  std::string cert_chain_pem{};
  std::string private_key_file{};
  std::string private_key_pem{};
  /// @}
  /// @{
  /// Resume sessions: the context keeps the latest resumable session per "host:port" (at
  /// most session_cache_size entries) and offers it on the next connection to that peer.
  bool session_resumption = true;
  size_t session_cache_size = 256;
  /// @}
  /// @{
  /// The range of protocol versions negotiated (min_version <= max_version, else
  /// InvalidArgument).
  TLSVersion min_version = TLSVersion::kTLS1_2;
  TLSVersion max_version = TLSVersion::kTLS1_3;
  /// @}
};

/// A TLSContext is the TransportFactory a TCPServer (TCPServerOptions::tls), a TCPClient
/// (ConnectOptions::tls) or an HTTP server/client takes: server contexts make server
/// transports, client contexts client ones.
class TLSContext : public TransportFactory, public std::enable_shared_from_this<TLSContext> {
 public:
  /// A server context, shared (any thread may use it); the errors are in the file comment.
  static absl::StatusOr<std::shared_ptr<const TLSContext>> server(const TLSServerOptions& options);
  /// A client context, shared (any thread may use it); the errors are in the file comment.
  static absl::StatusOr<std::shared_ptr<const TLSContext>> client(const TLSClientOptions& options);

  ~TLSContext() override;
  TLSContext(const TLSContext&) = delete;
  TLSContext& operator=(const TLSContext&) = delete;

  /// True for a context made by server().
  bool is_server() const { return is_server_; }

  /// A transport for an accepted socket (server contexts only; FailedPrecondition on a client
  /// context). The fd is not owned and must stay open while the transport is used; it should
  /// be non-blocking. Internal if OpenSSL cannot allocate the connection.
  absl::StatusOr<std::unique_ptr<TLSTransport>> new_server_transport(int fd) const;
  /// A transport for a connected (or connecting) socket to `hostname`:`port` (client
  /// contexts only). `hostname` is sent as SNI (unless it is an IP literal), is what the
  /// certificate is verified against, and with `port` keys the session cache. An empty
  /// hostname is InvalidArgument while verify_peer is on, and one holding a NUL always is.
  absl::StatusOr<std::unique_ptr<TLSTransport>> new_client_transport(int fd,
                                                                     std::string_view hostname,
                                                                     uint16_t port) const;

  /// TransportFactory: new_server_transport() / new_client_transport() as a Transport.
  absl::StatusOr<std::unique_ptr<Transport>> server_transport(int fd) const override;
  absl::StatusOr<std::unique_ptr<Transport>> client_transport(int fd, absl::string_view host,
                                                              uint16_t port) const override;

  /// Client contexts: sessions held for resumption (for tests and diagnostics).
  size_t cached_client_sessions() const;

  /// The OpenSSL context (SSL_CTX*), for what this interface does not offer. Changing it
  /// after creation breaks the immutability the threading contract relies on.
  ssl_ctx_st* native_handle() const { return ctx_; }

 private:
  friend class TLSTransport;
  TLSContext(ssl_ctx_st* ctx, bool is_server);

  ssl_ctx_st* const ctx_;
  const bool is_server_;
  /// Server ALPN preference list in wire format (length-prefixed names).
  std::string alpn_wire_{};
  /// Client contexts with session_resumption only; null otherwise.
  std::unique_ptr<TLSClientSessionCache> session_cache_;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_TLS_TLS_CONTEXT_H_
