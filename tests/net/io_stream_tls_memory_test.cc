// File: tests/net/io_stream_tls_memory_test.cc
// What a TLS server stream holds before its client speaks: the SSL object, not OpenSSL's
// record buffers (TLSTransport::handshake()'s first call on a server).
#include <cstdio>
#include <memory>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/tls/tls_transport.h"
#include "net/io_stream_testing.h"
#include "testing/heap.h"

namespace ioloop::net::stream_testing {
namespace {

class IOStreamTLSMemoryTest : public IOStreamTest {};

INSTANTIATE_TEST_SUITE_P(Streams, IOStreamTLSMemoryTest,
                         ::testing::Values(StreamCase{PollerKind::kEpoll, Wire::kTls}), CaseName);

// Found by a probe: 10,000 connections that never sent a byte held 420 MB of a TLS server
// until its handshake timeout, since the stream's first handshake() at registration ran
// SSL_do_handshake, which allocates OpenSSL's record buffers (about 47 KB) whether or not a
// ClientHello came. A server stream now waits for readability first: the SSL object alone
// (about 9 KB). And the ClientHello, when it comes, still starts the handshake.
TEST_P(IOStreamTLSMemoryTest, AServerWaitingForTheClientHelloHoldsNoRecordBuffers) {
  if (::ioloop::testing::heap_in_use() == 0) GTEST_SKIP() << "no heap count under a sanitizer";
  constexpr int kStreams = 32;
  auto ctx = testing::server_context(testing::test_pki().ecdsa_leaf);
  std::vector<Socket> peers;
  std::vector<std::shared_ptr<IOStream>> streams;
  const auto open = [&] {
    auto pair = Socket::pair();
    ASSERT_TRUE(pair.ok());
    auto server = ctx->new_server_transport(pair->first.fd());
    ASSERT_TRUE(server.ok());
    streams.push_back(IOStream::create(loop(), std::move(pair->first), {}, *std::move(server)));
    streams.back()->wait_for_handshake([](absl::Status) {});
    peers.push_back(std::move(pair->second));
  };
  open();  // OpenSSL's one-time allocations (per thread, per context) first
  spin(2);
  const size_t before = ::ioloop::testing::heap_in_use();
  for (int i = 0; i < kStreams; ++i) open();
  spin(2);
  const size_t per_stream = (::ioloop::testing::heap_in_use() - before) / kStreams;
  EXPECT_LT(per_stream, 16 * 1024) << "heap per silent TLS connection";
  std::printf("heap per TLS server stream waiting for its ClientHello: %zu B\n", per_stream);

  // A client then handshakes with the last of them.
  auto client =
      testing::client_context()->new_client_transport(peers.back().fd(), "localhost", 443);
  ASSERT_TRUE(client.ok());
  peer_ = std::make_unique<TLSPeer>(std::move(peers.back()), *std::move(client));
  stream_ = streams.back();
  complete_handshake(static_cast<TLSPeer&>(*peer_));
  EXPECT_TRUE(dynamic_cast<TLSTransport&>(stream_->transport()).handshake_done());
}

}  // namespace
}  // namespace ioloop::net::stream_testing
