// TLSTransport handshakes driven by hand over socket pairs: what is negotiated, and every
// way a handshake fails (with the reason each side reports).
#include "ioloop/net/tls/tls_transport.h"

#include <openssl/ssl.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/tls_fixture.h"

namespace ioloop::net {
namespace {

using ::ioloop::testing::client_context;
using ::ioloop::testing::HandshakeResults;
using ::ioloop::testing::PairKind;
using ::ioloop::testing::server_context;
using ::ioloop::testing::test_pki;
using ::ioloop::testing::TestCert;
using ::ioloop::testing::TLSPair;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class TLSHandshakeTest : public ::testing::TestWithParam<PairKind> {};

std::string PairName(const ::testing::TestParamInfo<PairKind>& param_info) {
  return param_info.param == PairKind::kUnix ? "Unix" : "Tcp";
}

TEST_P(TLSHandshakeTest, Tls13ByDefault) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context(), "localhost", GetParam());
  p.connect();
  EXPECT_TRUE(p.client->handshake_done());
  EXPECT_EQ(p.client->protocol_version(), "TLSv1.3");
  EXPECT_EQ(p.server->protocol_version(), "TLSv1.3");
  EXPECT_EQ(p.client->cipher(), p.server->cipher());
  EXPECT_EQ(p.client->alpn_protocol(), "");
  EXPECT_THAT(p.client->peer_subject(), HasSubstr("CN=localhost"));
  EXPECT_EQ(p.server->peer_subject(), "");  // no client certificate asked for
  EXPECT_FALSE(p.client->session_resumed());
  EXPECT_FALSE(p.server->session_resumed());
}

INSTANTIATE_TEST_SUITE_P(Sockets, TLSHandshakeTest,
                         ::testing::Values(PairKind::kUnix, PairKind::kTcp), PairName);

TEST(TLSTransportTest, AlpnServerPicksItsFirstTheClientOffers) {
  TLSPair p(server_context(test_pki().ecdsa_leaf, {"http/1.1", "h2"}),
            client_context({.alpn_protocols = {"h2", "http/1.1"}}));
  p.connect();
  EXPECT_EQ(p.client->alpn_protocol(), "http/1.1");
  EXPECT_EQ(p.server->alpn_protocol(), "http/1.1");
}

// RFC 7301 §3.2: a server that supports none of the protocols the client offers SHALL answer
// with a fatal no_application_protocol alert (as nginx does): the client would otherwise speak
// a protocol the server does not (h2 to an HTTP/1.1 server).
TEST(TLSTransportTest, AlpnWithoutOverlapFailsTheHandshakeOnBothSides) {
  TLSPair p(server_context(test_pki().ecdsa_leaf, {"http/1.1"}),
            client_context({.alpn_protocols = {"h2"}}));
  HandshakeResults r = p.handshake();
  ASSERT_EQ(r.server.outcome, IOResult::kError);
  EXPECT_EQ(r.server.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.server.status.message(), HasSubstr("no application protocol"));
  ASSERT_EQ(r.client.outcome, IOResult::kError);
  EXPECT_EQ(r.client.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.client.status.message(), HasSubstr("no application protocol"));
}

// A client that offers no ALPN at all (curl --no-alpn, most non-HTTP clients) is served, without
// a protocol: only an offer the server cannot meet is refused.
TEST(TLSTransportTest, AlpnNotOfferedGoesOnWithoutProtocol) {
  TLSPair p(server_context(test_pki().ecdsa_leaf, {"http/1.1"}), client_context());
  p.connect();
  EXPECT_EQ(p.client->alpn_protocol(), "");
  EXPECT_EQ(p.server->alpn_protocol(), "");
}

TEST(TLSTransportTest, RsaAndEcdsaCertificatesOnBothVersions) {
  for (const TestCert* cert : {&test_pki().ecdsa_leaf, &test_pki().rsa_leaf()}) {
    for (TLSVersion v : {TLSVersion::kTLS1_2, TLSVersion::kTLS1_3}) {
      TLSPair p(server_context(*cert), client_context({.max_version = v}));
      p.connect();
      EXPECT_EQ(p.client->protocol_version(), v == TLSVersion::kTLS1_3 ? "TLSv1.3" : "TLSv1.2");
      if (v == TLSVersion::kTLS1_2) {
        EXPECT_THAT(p.client->cipher(),
                    StartsWith(cert == &test_pki().rsa_leaf() ? "ECDHE-RSA-" : "ECDHE-ECDSA-"));
      }
    }
  }
}

TEST(TLSTransportTest, IpAddressVerifiedAgainstIpSan) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context(), "127.0.0.1");
  p.connect();
}

TEST(TLSTransportTest, ChainWithoutIntermediateDoesNotVerify) {
  TestCert leaf_only = test_pki().ecdsa_leaf;
  leaf_only.chain_pem = leaf_only.cert_pem;
  TLSPair p(server_context(leaf_only), client_context());
  const absl::Status s = p.client_error();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(s.message(),
            "TLS handshake failed: certificate verify failed: unable to get local issuer "
            "certificate");
}

TEST(TLSTransportTest, UnknownCaFailsOnBothSides) {
  TLSPair p(server_context(test_pki().other_leaf), client_context());
  HandshakeResults r = p.handshake();
  ASSERT_EQ(r.client.outcome, IOResult::kError);
  EXPECT_EQ(r.client.status.message(),
            "TLS handshake failed: certificate verify failed: unable to get local issuer "
            "certificate");
  ASSERT_EQ(r.server.outcome, IOResult::kError);
  EXPECT_EQ(r.server.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.server.status.message(), HasSubstr("unknown ca"));
}

TEST(TLSTransportTest, HostnameMismatch) {
  const char kMismatch[] = "TLS handshake failed: certificate verify failed: hostname mismatch";
  TLSPair wrong_cert(server_context(test_pki().wrong_host), client_context());
  EXPECT_EQ(wrong_cert.client_error().message(), kMismatch);
  TLSPair wrong_name(server_context(test_pki().ecdsa_leaf), client_context(), "example.org");
  EXPECT_EQ(wrong_name.client_error().message(), kMismatch);
  TLSPair wrong_ip(server_context(test_pki().ecdsa_leaf), client_context(), "127.0.0.2");
  EXPECT_THAT(std::string(wrong_ip.client_error().message()), HasSubstr("IP address mismatch"));
}

// RFC 9525 §6.3: a client must not match the host against the subject's CN. OpenSSL does
// when the certificate has no DNS subjectAltName (browsers and Go do not).
TEST(TLSTransportTest, TheCommonNameIsNotAHostName) {
  TLSPair p(server_context(test_pki().cn_only), client_context());
  EXPECT_EQ(p.client_error().message(),
            "TLS handshake failed: certificate verify failed: hostname mismatch");
}

TEST(TLSTransportTest, ExpiredCertificate) {
  TLSPair p(server_context(test_pki().expired), client_context());
  EXPECT_EQ(p.client_error().message(),
            "TLS handshake failed: certificate verify failed: certificate has expired");
}

TEST(TLSTransportTest, VerifyPeerOffAcceptsAnyServer) {
  TLSPair p(server_context(test_pki().other_leaf), client_context({.verify_peer = false}),
            "whatever.example");
  p.connect();
}

TEST(TLSTransportTest, Tls11ClientIsRefused) {
  auto client = client_context();
  // Reach under the options (they never go below TLS 1.2) to build an old client.
  SSL_CTX* raw = client->native_handle();
  SSL_CTX_set_security_level(raw, 0);
  ASSERT_EQ(SSL_CTX_set_cipher_list(raw, "DEFAULT:@SECLEVEL=0"), 1);
  ASSERT_EQ(SSL_CTX_set_min_proto_version(raw, TLS1_VERSION), 1);
  ASSERT_EQ(SSL_CTX_set_max_proto_version(raw, TLS1_1_VERSION), 1);
  TLSPair p(server_context(test_pki().ecdsa_leaf), client);
  HandshakeResults r = p.handshake();
  ASSERT_EQ(r.server.outcome, IOResult::kError);
  EXPECT_EQ(r.server.status.message(), "TLS handshake failed: unsupported protocol");
  ASSERT_EQ(r.client.outcome, IOResult::kError);
  EXPECT_THAT(r.client.status.message(), HasSubstr("protocol version"));
}

// Reads what the server sent to a raw (non-TLS) client until EOF.
std::string drain_raw(int fd) {
  std::string got;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EAGAIN) {
      return got;
    } else {
      pollfd pfd = {fd, POLLIN, 0};
      if (::poll(&pfd, 1, ioloop::testing::kPollMs) <= 0) return got;
    }
  }
}

// Drives the server's handshake alone until it ends.
IOResult server_handshake(TLSTransport& server, int fd) {
  for (;;) {
    IOResult r = server.handshake(fd);
    if (r.outcome == IOResult::kDone || r.outcome == IOResult::kError) return r;
    pollfd pfd = {fd, ioloop::testing::events_for(r), 0};
    if (::poll(&pfd, 1, ioloop::testing::kPollMs) <= 0) return r;
  }
}

TEST(TLSTransportTest, PlaintextHttpClientGetsNoApplicationData) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context());
  const std::string request = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  ASSERT_EQ(::write(p.cfd(), request.data(), request.size()), static_cast<ssize_t>(request.size()));
  IOResult r = server_handshake(*p.server, p.sfd());
  ASSERT_EQ(r.outcome, IOResult::kError);
  EXPECT_THAT(r.status.message(),
              AnyOf(HasSubstr("http request"), HasSubstr("wrong version number")));
  EXPECT_THAT(std::string(r.status.message()), StartsWith("TLS handshake failed: "));
  // What the raw client gets: nothing, or alert records only (content type 21).
  ::shutdown(p.sfd(), SHUT_RDWR);
  const std::string got = drain_raw(p.cfd());
  for (size_t i = 0; i + 5 <= got.size();) {
    EXPECT_EQ(got[i], 21) << "record type at " << i;
    i += 5 +
         ((static_cast<unsigned char>(got[i + 3]) << 8) | static_cast<unsigned char>(got[i + 4]));
  }
  EXPECT_EQ(got.find("HTTP"), std::string::npos);
}

TEST(TLSTransportTest, GarbageClientFails) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context());
  std::string garbage(300, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 131 + 7);
  garbage[0] = 0x16;  // looks like a handshake record, then nonsense
  ASSERT_EQ(::write(p.cfd(), garbage.data(), garbage.size()), static_cast<ssize_t>(garbage.size()));
  IOResult r = server_handshake(*p.server, p.sfd());
  ASSERT_EQ(r.outcome, IOResult::kError);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status.message()), StartsWith("TLS handshake failed: "));
}

TEST(TLSTransportTest, PeerClosesMidHandshake) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context());
  ASSERT_EQ(p.client->handshake(p.cfd()).outcome, IOResult::kWantRead);  // ClientHello out
  ::shutdown(p.cfd(), SHUT_WR);
  IOResult r = server_handshake(*p.server, p.sfd());
  ASSERT_EQ(r.outcome, IOResult::kError);
  EXPECT_EQ(r.status.message(), "TLS handshake failed: peer closed the connection");
}

// Found by a probe: a server whose flight could not be sent (the client gone after its
// ClientHello) failed with "TLS: send: Broken pipe", without the prefix every handshake failure
// has, and with absl's FailedPrecondition for EPIPE.
TEST(TLSTransportTest, AServerFlightThatCannotBeSentIsAHandshakeFailure) {
  TLSPair p(server_context(test_pki().ecdsa_leaf), client_context());
  ASSERT_EQ(p.client->handshake(p.cfd()).outcome, IOResult::kWantRead);  // ClientHello out
  ::close(std::exchange(p.sockets.fd[0], -1));  // the hello stays readable; sends get EPIPE
  IOResult r = p.server->handshake(p.sfd());
  ASSERT_EQ(r.outcome, IOResult::kError);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable) << r.status;
  EXPECT_EQ(r.status.message(), "TLS handshake failed: Broken pipe");
}

TEST(TLSTransportTest, ClientCertificateVerifiedByServer) {
  const auto& pki = test_pki();
  auto server =
      ioloop::testing::must(TLSContext::server({.cert_chain_pem = pki.ecdsa_leaf.chain_pem,
                                                .private_key_pem = pki.ecdsa_leaf.key_pem,
                                                .verify_client = true,
                                                .client_ca_pem = pki.root_ca_pem}));
  TLSPair with_cert(server, client_context({.cert_chain_pem = pki.client.chain_pem,
                                            .private_key_pem = pki.client.key_pem}));
  with_cert.connect();
  EXPECT_THAT(with_cert.server->peer_subject(), HasSubstr("CN=ioloop test client"));

  TLSPair without_cert(server, client_context());
  HandshakeResults r = without_cert.handshake();
  ASSERT_EQ(r.server.outcome, IOResult::kError);
  EXPECT_THAT(r.server.status.message(), HasSubstr("peer did not return a certificate"));
}

// A server sends the chain its PEM holds and nothing from its trust store (nginx sets
// SSL_MODE_NO_AUTO_CHAIN too): building a chain from the store costs a certificate
// verification on every handshake, and sends certificates nobody configured to send.
TEST(TLSTransportTest, ServerSendsItsPemChainAndNothingFromItsStore) {
  const auto& pki = test_pki();
  const std::string issuers = pki.root_ca_pem + pki.intermediate_pem;
  // The store (the client CA list) holds the leaf's issuers; the PEM holds the leaf alone.
  auto server = ioloop::testing::must(TLSContext::server({.cert_chain_pem = pki.ecdsa_leaf.cert_pem,
                                                          .private_key_pem = pki.ecdsa_leaf.key_pem,
                                                          .verify_client = true,
                                                          .client_ca_pem = issuers}));
  // The client trusts the intermediate itself, so the leaf alone verifies.
  TLSPair p(server, client_context({.ca_pem = issuers,
                                    .cert_chain_pem = pki.client.chain_pem,
                                    .private_key_pem = pki.client.key_pem}));
  p.connect();
  STACK_OF(X509)* sent = SSL_get_peer_cert_chain(p.client->native_handle());
  ASSERT_NE(sent, nullptr);
  EXPECT_EQ(sk_X509_num(sent), 1);
}

}  // namespace
}  // namespace ioloop::net
