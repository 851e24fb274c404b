#include "ioloop/net/tcp_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "ioloop/net/tcp_client.h"
#include "testing/loop_test_base.h"

namespace ioloop::net {
namespace {

class TCPServerTest : public ioloop::testing::LoopTestBase {};

// A handler that echoes each line back.
TCPServer::StreamHandler line_echo() {
  return [](std::shared_ptr<IOStream> stream, const SocketAddress&) {
    struct Echo {
      static void next(std::shared_ptr<IOStream> s) {
        s->read_until("\n", [s](absl::StatusOr<std::string> line) {
          if (!line.ok()) return;
          s->write(*line);
          next(s);
        });
      }
    };
    Echo::next(std::move(stream));
  };
}

TEST_F(TCPServerTest, ListenOnPortZeroAndEcho) {
  TCPServer server(loop(), line_echo());
  ASSERT_TRUE(server.listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(server.start().ok());
  ASSERT_NE(server.port(), 0);
  ASSERT_EQ(server.addresses().size(), 1u);
  EXPECT_EQ(server.addresses()[0].host(), "127.0.0.1");

  TCPClient client(loop());
  std::string reply;
  client.connect("127.0.0.1", server.port(), [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
    ASSERT_TRUE(s.ok()) << s.status();
    std::shared_ptr<IOStream> stream = *s;
    stream->write("hello\nworld\n");
    stream->read_bytes(12, [&, stream](absl::StatusOr<std::string> data) {
      ASSERT_TRUE(data.ok()) << data.status();
      reply = *data;
      done();
    });
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(reply, "hello\nworld\n");
}

TEST_F(TCPServerTest, StartValidatesArguments) {
  TCPServer server(loop(), line_echo());
  EXPECT_EQ(server.start(0).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(server.start(1).ok());
  EXPECT_EQ(server.start(1).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(TCPServerTest, ListenOnBusyPortNamesTheAddress) {
  TCPServer first(loop(), line_echo(), TCPServerOptions{.reuse_port = false});
  ASSERT_TRUE(first.listen(0, "127.0.0.1").ok());
  TCPServer second(loop(), line_echo(), TCPServerOptions{.reuse_port = false});
  absl::Status s = second.listen(first.port(), "127.0.0.1");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("127.0.0.1"), absl::string_view::npos) << s;
}

TEST_F(TCPServerTest, ThreadsNeedReusePortSockets) {
  absl::StatusOr<std::vector<Socket>> sockets = bind_sockets(0, "127.0.0.1");
  ASSERT_TRUE(sockets.ok());
  TCPServer server(loop(), line_echo());
  ASSERT_TRUE(server.add_sockets(*std::move(sockets)).ok());
  absl::Status s = server.start(2);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("SO_REUSEPORT"), absl::string_view::npos) << s;
}

TEST_F(TCPServerTest, FourThreadsSpreadConnectionsAndEachStreamStaysOnItsLoop) {
  absl::Mutex mu;
  std::set<std::thread::id> threads;
  int on_wrong_thread = 0;
  TCPServer server(loop(), [&](std::shared_ptr<IOStream> stream, const SocketAddress&) {
    {
      absl::MutexLock lock(&mu);
      threads.insert(std::this_thread::get_id());
      if (!stream->loop().in_loop_thread()) ++on_wrong_thread;
    }
    line_echo()(std::move(stream), SocketAddress());
  });
  ASSERT_TRUE(server.listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(server.start(4).ok());
  EXPECT_EQ(server.num_threads(), 4);

  constexpr int kClients = 64;
  TCPClient client(loop());
  std::vector<std::shared_ptr<IOStream>> streams;
  int answered = 0;
  for (int i = 0; i < kClients; ++i) {
    client.connect("127.0.0.1", server.port(), [&, i](absl::StatusOr<std::shared_ptr<IOStream>> s) {
      ASSERT_TRUE(s.ok()) << s.status();
      std::shared_ptr<IOStream> stream = *s;
      streams.push_back(stream);
      const std::string msg = "client " + std::to_string(i) + "\n";
      stream->write(msg);
      stream->read_until("\n", [&, msg](absl::StatusOr<std::string> line) {
        ASSERT_TRUE(line.ok()) << line.status();
        EXPECT_EQ(*line, msg);
        if (++answered == kClients) done();
      });
    });
  }
  ASSERT_TRUE(wait(absl::Seconds(30)));
  absl::MutexLock lock(&mu);
  // SO_REUSEPORT hashes the 4-tuple: with 64 clients every listener gets some
  // (the chance that one of four gets none is about 4e-8).
  EXPECT_EQ(threads.size(), 4u);
  EXPECT_EQ(on_wrong_thread, 0);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u) << "main loop must not accept";
}

TEST_F(TCPServerTest, StopClosesListenersAndOptionallyStreams) {
  TCPServer server(loop(), line_echo());
  ASSERT_TRUE(server.listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(server.start().ok());
  const uint16_t port = server.port();
  TCPClient client(loop());
  absl::Status read_status;
  client.connect("127.0.0.1", port, [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
    ASSERT_TRUE(s.ok()) << s.status();
    std::shared_ptr<IOStream> stream = *s;
    stream->write("ping\n");
    stream->read_until("\n", [&, stream](absl::StatusOr<std::string> line) {
      ASSERT_TRUE(line.ok());
      // Now the server has a stream open: stop and close it.
      server.stop(/*close_streams=*/true);
      stream->read_until_close([&, stream](absl::StatusOr<std::string> rest) {
        ASSERT_TRUE(rest.ok()) << rest.status();
        EXPECT_EQ(*rest, "");
        done();
      });
    });
  });
  ASSERT_TRUE(wait());
  // The listener is gone: a new connection is refused.
  absl::StatusOr<std::shared_ptr<IOStream>> second;
  client.connect("127.0.0.1", port, [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
    second = std::move(s);
    done();
  });
  ASSERT_TRUE(wait());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
}

}  // namespace
}  // namespace ioloop::net
