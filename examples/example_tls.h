// File: examples/example_tls.h
// TLS set-up shared by the examples that speak it (header-only, like example_support.h):
// the --tls_cert/--tls_key pair of a server and the --ca_file of a client.
#ifndef IOLOOP_EXAMPLES_EXAMPLE_TLS_H_
#define IOLOOP_EXAMPLES_EXAMPLE_TLS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ioloop/net/tls/tls_context.h"

namespace ioloop::examples {

// A server context from --tls_cert (the chain: leaf first, then intermediates) and --tls_key.
// Null (and OK) when neither flag is given: the server speaks plain TCP. One without the
// other is InvalidArgument; unreadable or mismatched files are TLSContext's errors, which
// name the file.
inline absl::StatusOr<std::shared_ptr<const net::TLSContext>> server_tls_context(
    const std::string& cert_file, const std::string& key_file,
    std::vector<std::string> alpn_protocols = {}) {
  if (cert_file.empty() && key_file.empty()) return std::shared_ptr<const net::TLSContext>();
  if (cert_file.empty() || key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  net::TLSServerOptions options;
  options.cert_chain_file = cert_file;
  options.private_key_file = key_file;
  options.alpn_protocols = std::move(alpn_protocols);
  return net::TLSContext::server(options);
}

// A client context that trusts only `ca_file` when it is given, else the system store.
inline absl::StatusOr<std::shared_ptr<const net::TLSContext>> client_tls_context(
    const std::string& ca_file, std::vector<std::string> alpn_protocols = {}) {
  net::TLSClientOptions options;
  options.ca_file = ca_file;
  options.alpn_protocols = std::move(alpn_protocols);
  return net::TLSContext::client(options);
}

}  // namespace ioloop::examples

#endif  // IOLOOP_EXAMPLES_EXAMPLE_TLS_H_
