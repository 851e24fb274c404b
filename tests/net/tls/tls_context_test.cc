// TLSContext creation: sources (files, memory), the errors for every bad input, and the
// transports' factory preconditions.
#include "ioloop/net/tls/tls_context.h"

#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ioloop/net/tls/tls_transport.h"
#include "testing/socket_pair.h"
#include "testing/tls_certs.h"

namespace ioloop::net {
namespace {

using ::ioloop::testing::TempDir;
using ::ioloop::testing::test_pki;
using ::ioloop::testing::write_test_pki;
using ::testing::HasSubstr;

TEST(TLSContextTest, ServerFromFilesEcdsaAndRsa) {
  TempDir dir;
  const auto files = write_test_pki(dir);
  auto ecdsa = TLSContext::server(
      {.cert_chain_file = files.ecdsa_chain, .private_key_file = files.ecdsa_key});
  ASSERT_TRUE(ecdsa.ok()) << ecdsa.status();
  EXPECT_TRUE((*ecdsa)->is_server());
  auto rsa =
      TLSContext::server({.cert_chain_file = files.rsa_chain, .private_key_file = files.rsa_key});
  ASSERT_TRUE(rsa.ok()) << rsa.status();
}

TEST(TLSContextTest, ServerFromMemory) {
  auto ctx = TLSContext::server({.cert_chain_pem = test_pki().ecdsa_leaf.chain_pem,
                                 .private_key_pem = test_pki().ecdsa_leaf.key_pem,
                                 .alpn_protocols = {"h2", "http/1.1"}});
  ASSERT_TRUE(ctx.ok()) << ctx.status();
}

TEST(TLSContextTest, ServerWithoutCertificateIsInvalid) {
  auto ctx = TLSContext::server({});
  EXPECT_EQ(ctx.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ctx.status().message(), HasSubstr("a server needs a certificate chain"));
  auto no_key = TLSContext::server({.cert_chain_pem = test_pki().ecdsa_leaf.chain_pem});
  EXPECT_EQ(no_key.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TLSContextTest, FileAndMemoryTogetherIsInvalid) {
  TempDir dir;
  const auto files = write_test_pki(dir);
  auto ctx = TLSContext::server({.cert_chain_file = files.ecdsa_chain,
                                 .cert_chain_pem = test_pki().ecdsa_leaf.chain_pem,
                                 .private_key_file = files.ecdsa_key});
  EXPECT_EQ(ctx.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ctx.status().message(), HasSubstr("cert_chain_file or cert_chain_pem, not both"));
}

TEST(TLSContextTest, MissingFileNamesThePath) {
  TempDir dir;
  const auto files = write_test_pki(dir);
  const std::string missing = dir.path() + "/nope.pem";
  auto cert = TLSContext::server({.cert_chain_file = missing, .private_key_file = files.ecdsa_key});
  EXPECT_EQ(cert.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(cert.status().message(), HasSubstr("cannot read " + missing));
  EXPECT_THAT(cert.status().message(), HasSubstr("No such file or directory"));
  auto key =
      TLSContext::server({.cert_chain_file = files.ecdsa_chain, .private_key_file = missing});
  EXPECT_EQ(key.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(key.status().message(), HasSubstr(missing));
  auto ca = TLSContext::client({.ca_file = missing});
  EXPECT_EQ(ca.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ca.status().message(), HasSubstr(missing));
  // A CA directory too (OpenSSL looks into it only when it verifies: a missing one was
  // accepted), and a path cut short by a NUL (it was opened up to the NUL); both found by an
  // API probe.
  auto dir_missing = TLSContext::client({.ca_dir = missing});
  EXPECT_EQ(dir_missing.status().code(), absl::StatusCode::kNotFound) << dir_missing.status();
  EXPECT_THAT(dir_missing.status().message(), HasSubstr("CA directory " + missing));
  auto dir_file = TLSContext::client({.ca_dir = files.root_ca});
  EXPECT_EQ(dir_file.status(), absl::InvalidArgumentError("TLSContext: CA directory " +
                                                          files.root_ca + " is not a directory"));
  auto nul = TLSContext::client({.ca_file = files.root_ca + std::string("\0x", 2)});
  EXPECT_EQ(nul.status(), absl::InvalidArgumentError("TLSContext: ca_file holds a NUL"));
  // A directory where a file belongs: fopen() succeeds and reading fails with EISDIR, which
  // absl calls FailedPrecondition (found by a probe); the path is the caller's mistake.
  const absl::Status is_dir = absl::InvalidArgumentError(
      absl::StrCat("TLSContext: cannot read ", dir.path(), ": Is a directory"));
  EXPECT_EQ(TLSContext::server({.cert_chain_file = dir.path(), .private_key_file = files.ecdsa_key})
                .status(),
            is_dir);
  EXPECT_EQ(
      TLSContext::server({.cert_chain_file = files.ecdsa_chain, .private_key_file = dir.path()})
          .status(),
      is_dir);
  EXPECT_EQ(TLSContext::client({.ca_file = dir.path()}).status(), is_dir);
}

TEST(TLSContextTest, KeyNotMatchingTheCertificate) {
  TempDir dir;
  const auto files = write_test_pki(dir);
  // Same type (ECDSA key of another leaf) and another type (RSA key for an ECDSA leaf).
  for (const std::string& key :
       {dir.write("other.pem", test_pki().wrong_host.key_pem), files.rsa_key}) {
    auto ctx = TLSContext::server({.cert_chain_file = files.ecdsa_chain, .private_key_file = key});
    EXPECT_EQ(ctx.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ctx.status().message(),
                HasSubstr("private key does not match the certificate in " + files.ecdsa_chain));
  }
}

TEST(TLSContextTest, GarbagePem) {
  TempDir dir;
  const auto files = write_test_pki(dir);
  const std::string garbage = dir.write("garbage.pem", "this is not a certificate\n");
  auto cert = TLSContext::server({.cert_chain_file = garbage, .private_key_file = files.ecdsa_key});
  EXPECT_EQ(cert.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(cert.status().message(), HasSubstr("no certificate in " + garbage));
  EXPECT_THAT(cert.status().message(), HasSubstr("no start line"));

  auto key =
      TLSContext::server({.cert_chain_file = files.ecdsa_chain, .private_key_file = garbage});
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(key.status().message(), HasSubstr("no private key in " + garbage));

  auto ca = TLSContext::client({.ca_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n"});
  EXPECT_EQ(ca.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ca.status().message(), HasSubstr("no CA certificate in <ca_pem>"));
}

TEST(TLSContextTest, TruncatedChainCertificate) {
  std::string chain = test_pki().ecdsa_leaf.cert_pem;
  chain += test_pki().intermediate_pem.substr(0, test_pki().intermediate_pem.size() / 2);
  auto ctx = TLSContext::server(
      {.cert_chain_pem = chain, .private_key_pem = test_pki().ecdsa_leaf.key_pem});
  EXPECT_EQ(ctx.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ctx.status().message(), HasSubstr("bad chain certificate in <cert_chain_pem>"));
}

TEST(TLSContextTest, OptionsThatMakeNoSense) {
  const auto& leaf = test_pki().ecdsa_leaf;
  auto no_ca = TLSContext::server(
      {.cert_chain_pem = leaf.chain_pem, .private_key_pem = leaf.key_pem, .verify_client = true});
  EXPECT_EQ(no_ca.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_ca.status().message(), HasSubstr("verify_client needs client_ca_file"));

  auto ca_unused = TLSContext::server({.cert_chain_pem = leaf.chain_pem,
                                       .private_key_pem = leaf.key_pem,
                                       .client_ca_pem = test_pki().root_ca_pem});
  EXPECT_EQ(ca_unused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ca_unused.status().message(), HasSubstr("without verify_client"));

  auto alpn = TLSContext::client({.ca_pem = test_pki().root_ca_pem, .alpn_protocols = {""}});
  EXPECT_EQ(alpn.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(alpn.status().message(), HasSubstr("ALPN"));

  auto versions = TLSContext::client({.ca_pem = test_pki().root_ca_pem,
                                      .min_version = TLSVersion::kTLS1_3,
                                      .max_version = TLSVersion::kTLS1_2});
  EXPECT_EQ(versions.status().code(), absl::StatusCode::kInvalidArgument);

  auto half_client_cert =
      TLSContext::client({.ca_pem = test_pki().root_ca_pem, .cert_chain_pem = leaf.chain_pem});
  EXPECT_EQ(half_client_cert.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TLSContextTest, ClientSources) {
  TempDir dir;
  const auto files = write_test_pki(dir);
  EXPECT_TRUE(TLSContext::client({}).ok());  // the system store
  EXPECT_TRUE(TLSContext::client({.ca_file = files.root_ca}).ok());
  EXPECT_TRUE(TLSContext::client({.ca_dir = dir.path()}).ok());
  EXPECT_TRUE(
      TLSContext::client({.ca_file = files.root_ca, .ca_pem = test_pki().other_ca_pem}).ok());
  auto with_cert = TLSContext::client({.ca_file = files.root_ca,
                                       .cert_chain_file = files.client_chain,
                                       .private_key_file = files.client_key});
  EXPECT_TRUE(with_cert.ok()) << with_cert.status();
}

TEST(TLSContextTest, TransportFactoriesCheckTheSide) {
  ioloop::testing::SocketPair pair;
  auto server = TLSContext::server({.cert_chain_pem = test_pki().ecdsa_leaf.chain_pem,
                                    .private_key_pem = test_pki().ecdsa_leaf.key_pem});
  auto client = TLSContext::client({.ca_pem = test_pki().root_ca_pem});
  ASSERT_TRUE(server.ok() && client.ok());
  EXPECT_EQ((*server)->new_client_transport(pair.fd[0], "localhost", 443).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*client)->new_server_transport(pair.fd[1]).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*client)->new_client_transport(pair.fd[0], "", 443).status().code(),
            absl::StatusCode::kInvalidArgument);
  // OpenSSL takes C strings: "localhost\0.evil.example" was verified as "localhost" (found
  // by an API probe).
  EXPECT_EQ(
      (*client)
          ->new_client_transport(pair.fd[0], std::string_view("localhost\0.evil.example", 23), 443)
          .status(),
      absl::InvalidArgumentError("TLSContext: host name contains NUL"));
  EXPECT_TRUE((*client)->new_client_transport(pair.fd[0], "localhost", 443).ok());
  EXPECT_TRUE((*client)->new_client_transport(pair.fd[0], "127.0.0.1", 443).ok());
  EXPECT_TRUE((*server)->new_server_transport(pair.fd[1]).ok());
}

TEST(TLSContextTest, TransportOutlivesItsContext) {
  ioloop::testing::SocketPair pair;
  std::unique_ptr<TLSTransport> transport;
  {
    auto client = TLSContext::client({.ca_pem = test_pki().root_ca_pem});
    ASSERT_TRUE(client.ok());
    auto t = (*client)->new_client_transport(pair.fd[0], "localhost", 443);
    ASSERT_TRUE(t.ok());
    transport = std::move(*t);
  }
  // The context is gone from the caller; the transport still works (it starts a handshake).
  EXPECT_EQ(transport->handshake(pair.fd[0]).outcome, IOResult::kWantRead);
}

// Contexts are shared across threads: transports are created concurrently from one.
TEST(TLSContextTest, SharedAcrossThreads) {
  auto client = TLSContext::client({.ca_pem = test_pki().root_ca_pem});
  ASSERT_TRUE(client.ok());
  std::shared_ptr<const TLSContext> ctx = *client;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([ctx] {
      for (int j = 0; j < 50; ++j) {
        ioloop::testing::SocketPair pair;
        auto t = ctx->new_client_transport(pair.fd[0], "localhost", 443);
        EXPECT_TRUE(t.ok());
        if (t.ok()) {
          EXPECT_EQ((*t)->handshake(pair.fd[0]).outcome, IOResult::kWantRead);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
}

}  // namespace
}  // namespace ioloop::net
