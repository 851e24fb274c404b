#include "ioloop/net/io_stream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "testing/loop_test_base.h"
#include "testing/pollers.h"

namespace ioloop::net {
namespace {

using ::ioloop::testing::LoopTestBase;

// Deterministic, position-dependent bytes, so a reordering or a lost chunk is visible.
std::string pattern(size_t offset, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    size_t p = offset + i;
    s[i] = static_cast<char>((p * 131 + (p >> 12) * 7) & 0xff);
  }
  return s;
}

// Bytes waiting in the kernel to be read from `fd`.
int unread(int fd) {
  int n = 0;
  ::ioctl(fd, FIONREAD, &n);
  return n;
}

// A connected loopback TCP pair (for RST and TCP options; socketpairs cannot reset).
std::pair<Socket, Socket> tcp_pair() {
  Socket listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::bind(listener.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::listen(listener.fd(), 1), 0);
  EXPECT_EQ(::getsockname(listener.fd(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  Socket client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(client.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  Socket server(::accept4(listener.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  EXPECT_TRUE(server.valid());
  return {std::move(server), std::move(client)};
}

class IOStreamTest : public LoopTestBase, public ::testing::WithParamInterface<PollerKind> {
 protected:
  IOStreamTest() : LoopTestBase(GetParam()) {}

  // stream_ over one end of a socketpair; peer_ is the raw other end (blocking off).
  void make_pair(IOStreamOptions options = {}) {
    auto pair = Socket::pair();
    ASSERT_TRUE(pair.ok()) << pair.status();
    peer_ = std::move(pair->second);
    stream_ = IOStream::create(loop(), std::move(pair->first), options);
  }

  void peer_write(const std::string& s) {
    ASSERT_EQ(::send(peer_.fd(), s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
  }

  // Reads everything the peer has right now (non-blocking).
  std::string peer_read_available() {
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(peer_.fd(), buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  // Runs `fn` on a later iteration once the stream has read everything the peer sent.
  void when_drained(std::function<void()> fn) {
    loop().add_callback([this, fn = std::move(fn)]() mutable {
      if (stream_->closed() || unread(stream_->fd()) == 0) {
        fn();
      } else {
        when_drained(std::move(fn));
      }
    });
  }

  // Runs the loop for `n` iterations.
  void spin(int n) {
    std::function<void(int)> step = [&](int left) {
      if (left == 0) {
        done();
        return;
      }
      loop().add_callback([&step, left] { step(left - 1); });
    };
    step(n);
    ASSERT_TRUE(wait());
  }

  Socket peer_;
  std::shared_ptr<IOStream> stream_;
};

INSTANTIATE_TEST_SUITE_P(Pollers, IOStreamTest, ioloop::testing::AllPollers(),
                         ioloop::testing::PollerName);

// --- Every read mode, with the message split at every byte boundary ------------------------

constexpr char kMessage[] = "GET /\r\n\r\nab\r\n\r\n";  // two "\r\n\r\n"-terminated parts

TEST_P(IOStreamTest, ReadUntilAtEverySplit) {
  const std::string msg = kMessage;
  for (size_t split = 0; split <= msg.size(); ++split) {
    SCOPED_TRACE(absl::StrCat("split=", split));
    make_pair();
    std::vector<std::string> got;
    std::function<void()> next = [&] {
      stream_->read_until("\r\n\r\n", [&](absl::StatusOr<std::string> r) {
        ASSERT_TRUE(r.ok()) << r.status();
        got.push_back(*r);
        if (got.size() == 2) {
          done();
        } else {
          next();
        }
      });
    };
    next();
    peer_write(msg.substr(0, split));
    when_drained([&, split] { peer_write(msg.substr(split)); });
    ASSERT_TRUE(wait());
    EXPECT_EQ(got, (std::vector<std::string>{"GET /\r\n\r\n", "ab\r\n\r\n"}));
  }
}

TEST_P(IOStreamTest, ReadBytesAtEverySplit) {
  const std::string msg = kMessage;
  for (size_t split = 0; split <= msg.size(); ++split) {
    SCOPED_TRACE(absl::StrCat("split=", split));
    make_pair();
    std::vector<std::string> got;
    stream_->read_bytes(5, [&](absl::StatusOr<std::string> r) {
      ASSERT_TRUE(r.ok()) << r.status();
      got.push_back(*r);
      stream_->read_bytes(msg.size() - 5, [&](absl::StatusOr<std::string> r2) {
        ASSERT_TRUE(r2.ok()) << r2.status();
        got.push_back(*r2);
        done();
      });
    });
    peer_write(msg.substr(0, split));
    when_drained([&, split] { peer_write(msg.substr(split)); });
    ASSERT_TRUE(wait());
    EXPECT_EQ(got, (std::vector<std::string>{msg.substr(0, 5), msg.substr(5)}));
  }
}

TEST_P(IOStreamTest, ReadBytesPartialAtEverySplit) {
  const std::string msg = kMessage;
  for (size_t split = 0; split <= msg.size(); ++split) {
    SCOPED_TRACE(absl::StrCat("split=", split));
    make_pair();
    std::string got;
    int calls = 0;
    std::function<void()> next = [&] {
      stream_->read_bytes(
          6,
          [&](absl::StatusOr<std::string> r) {
            ASSERT_TRUE(r.ok()) << r.status();
            ++calls;
            EXPECT_GE(r->size(), 1u);
            EXPECT_LE(r->size(), 6u);
            got += *r;
            if (got.size() == msg.size()) {
              done();
            } else {
              next();
            }
          },
          /*partial=*/true);
    };
    next();
    peer_write(msg.substr(0, split));
    when_drained([&, split] { peer_write(msg.substr(split)); });
    ASSERT_TRUE(wait());
    EXPECT_EQ(got, msg);
    EXPECT_GE(calls, 3);  // 16 bytes, at most 6 per call
  }
}

TEST_P(IOStreamTest, ReadUntilCloseAtEverySplit) {
  const std::string msg = kMessage;
  for (size_t split = 0; split <= msg.size(); ++split) {
    SCOPED_TRACE(absl::StrCat("split=", split));
    make_pair();
    absl::StatusOr<std::string> got;
    absl::Status closed = absl::UnknownError("not closed");
    stream_->set_close_callback([&](absl::Status s) {
      closed = s;
      done();
    });
    stream_->read_until_close([&](absl::StatusOr<std::string> r) { got = std::move(r); });
    peer_write(msg.substr(0, split));
    when_drained([&, split] {
      peer_write(msg.substr(split));
      ::shutdown(peer_.fd(), SHUT_WR);
    });
    ASSERT_TRUE(wait());
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, msg);
    EXPECT_TRUE(closed.ok()) << closed;
    EXPECT_TRUE(stream_->closed());
  }
}

TEST_P(IOStreamTest, ReadStreamingAtEverySplit) {
  const std::string msg = kMessage;
  for (size_t split = 0; split <= msg.size(); ++split) {
    SCOPED_TRACE(absl::StrCat("split=", split));
    make_pair();
    std::string got;
    int done_calls = 0;
    stream_->read_streaming(
        [&](std::string chunk) {
          EXPECT_FALSE(chunk.empty());
          got += chunk;
        },
        [&](absl::StatusOr<std::string> r) {
          ++done_calls;
          ASSERT_TRUE(r.ok()) << r.status();
          EXPECT_EQ(*r, "");
          done();
        });
    peer_write(msg.substr(0, split));
    when_drained([&, split] {
      peer_write(msg.substr(split));
      ::shutdown(peer_.fd(), SHUT_WR);
    });
    ASSERT_TRUE(wait());
    EXPECT_EQ(got, msg);
    EXPECT_EQ(done_calls, 1);
  }
}

TEST_P(IOStreamTest, ReadStreamingWithByteCountAtEverySplit) {
  const std::string msg = kMessage;
  for (size_t split = 0; split <= msg.size(); ++split) {
    SCOPED_TRACE(absl::StrCat("split=", split));
    make_pair();
    std::string body;
    std::string rest;
    stream_->read_streaming([&](std::string chunk) { body += chunk; },
                            [&](absl::StatusOr<std::string> r) {
                              ASSERT_TRUE(r.ok()) << r.status();
                              EXPECT_EQ(body, msg.substr(0, 7));
                              stream_->read_bytes(msg.size() - 7,
                                                  [&](absl::StatusOr<std::string> r2) {
                                                    ASSERT_TRUE(r2.ok()) << r2.status();
                                                    rest = *r2;
                                                    done();
                                                  });
                            },
                            /*total_bytes=*/7);
    peer_write(msg.substr(0, split));
    when_drained([&, split] { peer_write(msg.substr(split)); });
    ASSERT_TRUE(wait());
    EXPECT_EQ(body, msg.substr(0, 7));
    EXPECT_EQ(rest, msg.substr(7));
  }
}

TEST_P(IOStreamTest, ReadStartedWithDataBufferedCompletesLater) {
  make_pair();
  peer_write("one\ntwo\n");
  bool in_call = true;
  std::string first;
  stream_->read_until("\n", [&](absl::StatusOr<std::string> r) {
    ASSERT_TRUE(r.ok());
    first = *r;
    // "two\n" is already buffered: the second read must not complete inside read_until().
    loop().add_callback([&] {
      in_call = true;
      stream_->read_until("\n", [&](absl::StatusOr<std::string> r2) {
        EXPECT_FALSE(in_call);
        ASSERT_TRUE(r2.ok());
        EXPECT_EQ(*r2, "two\n");
        done();
      });
      in_call = false;
    });
  });
  in_call = false;
  ASSERT_TRUE(wait());
  EXPECT_EQ(first, "one\n");
}

TEST_P(IOStreamTest, PipelinedReadsFromCallbacksAllComplete) {
  make_pair();
  std::string data;
  for (int i = 0; i < 500; ++i) data += absl::StrCat("req", i, "\n");
  peer_write(data);
  int count = 0;
  std::function<void()> next = [&] {
    stream_->read_until("\n", [&](absl::StatusOr<std::string> r) {
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(*r, absl::StrCat("req", count, "\n"));
      if (++count == 500) {
        done();
      } else {
        next();  // served by the running dispatch, without recursion
      }
    });
  };
  next();
  ASSERT_TRUE(wait());
  EXPECT_EQ(count, 500);
}

TEST_P(IOStreamTest, BufferedDataDeliveredAfterPeerEof) {
  make_pair();
  peer_write("a\nb\n");
  ::shutdown(peer_.fd(), SHUT_WR);
  std::vector<absl::StatusOr<std::string>> got;
  stream_->read_until("\n", [&](absl::StatusOr<std::string> r) {
    got.push_back(r);
    loop().add_callback([&] {
      stream_->read_until("\n", [&](absl::StatusOr<std::string> r2) {
        got.push_back(r2);
        stream_->read_until("\n", [&](absl::StatusOr<std::string> r3) {
          got.push_back(r3);
          done();
        });
      });
    });
  });
  ASSERT_TRUE(wait());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(*got[0], "a\n");
  EXPECT_EQ(*got[1], "b\n");
  EXPECT_EQ(got[2].status().code(), absl::StatusCode::kUnavailable) << got[2].status();
  EXPECT_TRUE(stream_->closed());
  EXPECT_TRUE(stream_->error().ok());
}

// --- Errors -------------------------------------------------------------------------------------

TEST_P(IOStreamTest, SecondReadIsAnError) {
  make_pair();
  absl::Status second;
  std::string first;
  stream_->read_bytes(3, [&](absl::StatusOr<std::string> r) {
    ASSERT_TRUE(r.ok());
    first = *r;
    done();
  });
  stream_->read_until("\n", [&](absl::StatusOr<std::string> r) {
    second = r.status();
    peer_write("abc");
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(second.code(), absl::StatusCode::kFailedPrecondition) << second;
  EXPECT_EQ(first, "abc");
}

TEST_P(IOStreamTest, ReadUntilMaxBytesWithoutDelimiter) {
  make_pair();
  absl::Status read_status, close_status;
  stream_->set_close_callback([&](absl::Status s) {
    close_status = s;
    done();
  });
  stream_->read_until(
      "\n", [&](absl::StatusOr<std::string> r) { read_status = r.status(); }, 8);
  peer_write("0123456789");
  ASSERT_TRUE(wait());
  EXPECT_EQ(read_status.code(), absl::StatusCode::kResourceExhausted) << read_status;
  EXPECT_EQ(close_status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(read_status.message().find("max_bytes=8"), absl::string_view::npos);
}

TEST_P(IOStreamTest, ReadUntilMaxBytesDelimiterTooLate) {
  make_pair();
  absl::Status read_status;
  stream_->read_until(
      "\n",
      [&](absl::StatusOr<std::string> r) {
        read_status = r.status();
        done();
      },
      4);
  peer_write("abcd\n");  // 5 bytes with the delimiter
  ASSERT_TRUE(wait());
  EXPECT_EQ(read_status.code(), absl::StatusCode::kResourceExhausted) << read_status;
}

TEST_P(IOStreamTest, ReadUntilMaxBytesExactFitSucceeds) {
  make_pair();
  absl::StatusOr<std::string> got;
  stream_->read_until(
      "\n",
      [&](absl::StatusOr<std::string> r) {
        got = r;
        done();
      },
      5);
  peer_write("abcd\n");
  ASSERT_TRUE(wait());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "abcd\n");
}

TEST_P(IOStreamTest, MaxBufferSizeClosesWithResourceExhausted) {
  IOStreamOptions options;
  options.max_buffer_size = 1000;
  make_pair(options);
  absl::Status read_status, close_status;
  stream_->set_close_callback([&](absl::Status s) {
    close_status = s;
    done();
  });
  stream_->read_until_close([&](absl::StatusOr<std::string> r) { read_status = r.status(); });
  peer_write(std::string(5000, 'x'));
  ASSERT_TRUE(wait());
  EXPECT_EQ(read_status.code(), absl::StatusCode::kResourceExhausted) << read_status;
  EXPECT_EQ(close_status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(close_status.message().find("max_buffer_size=1000"), absl::string_view::npos)
      << close_status;
  EXPECT_EQ(stream_->error().code(), absl::StatusCode::kResourceExhausted);
}

TEST_P(IOStreamTest, EmptyDelimiterIsInvalid) {
  make_pair();
  absl::Status s;
  stream_->read_until("", [&](absl::StatusOr<std::string> r) {
    s = r.status();
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(stream_->reading());
}

TEST_P(IOStreamTest, ResetPeerReportsReset) {
  auto [server, client] = tcp_pair();
  stream_ = IOStream::create(loop(), std::move(server));
  absl::Status read_status, close_status;
  int closes = 0;
  stream_->set_close_callback([&](absl::Status s) {
    ++closes;
    close_status = s;
    done();
  });
  stream_->read_until("\n", [&](absl::StatusOr<std::string> r) { read_status = r.status(); });
  ASSERT_TRUE(client.set_linger_zero().ok());
  client.reset();  // RST
  ASSERT_TRUE(wait());
  EXPECT_EQ(closes, 1);
  EXPECT_FALSE(read_status.ok());
  EXPECT_NE(absl::AsciiStrToLower(close_status.message()).find("reset"), absl::string_view::npos)
      << close_status;
  EXPECT_EQ(read_status, close_status);
}

TEST_P(IOStreamTest, WriteToClosedPeerNeverRaisesSigpipe) {
  struct sigaction old_action, dfl = {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &dfl, &old_action);  // the default action would kill the process
  make_pair();
  peer_.reset();
  absl::Status first, second;
  stream_->write("hello", [&](absl::Status s) { first = s; });
  stream_->write("again", [&](absl::Status s) {
    second = s;
    done();
  });
  ASSERT_TRUE(wait());
  ::sigaction(SIGPIPE, &old_action, nullptr);
  EXPECT_FALSE(first.ok());
  EXPECT_FALSE(second.ok());
  EXPECT_TRUE(stream_->closed());
  EXPECT_NE(stream_->error().message().find("Broken pipe"), absl::string_view::npos)
      << stream_->error();
}

// --- Writes ----------------------------------------------------------------------------------

// Reads everything the peer end receives, through a loop handler, at most `per_event`
// bytes per event.
struct PeerReader {
  IOLoop& loop;
  int fd;
  size_t per_event;
  std::string received;
  bool eof = false;
  std::function<void()> on_data;
  std::string buf = {};
  void start() {
    buf.resize(per_event);
    ASSERT_TRUE(loop.add_handler(
                        fd,
                        [this](int, uint32_t) {
                          ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
                          if (n > 0) received.append(buf.data(), static_cast<size_t>(n));
                          if (n == 0) {
                            eof = true;
                            loop.remove_handler(fd);
                          }
                          if (on_data) on_data();
                        },
                        IOLoop::READ)
                    .ok());
  }
};

TEST_P(IOStreamTest, PartialWritesKeepOrderAndFlushCallbacksRunInOrder) {
  make_pair();
  ASSERT_TRUE(stream_->socket().set_send_buffer(4096).ok());
  ASSERT_TRUE(peer_.set_receive_buffer(4096).ok());
  const size_t total = 8 << 20;
  std::vector<int> flushed;
  size_t off = 0;
  int index = 0;
  while (off < total) {
    size_t n = std::min(total - off, static_cast<size_t>(1 + (index * 7919) % 65536));
    stream_->write(pattern(off, n), [&flushed, index](absl::Status s) {
      EXPECT_TRUE(s.ok()) << s;
      flushed.push_back(index);
    });
    off += n;
    ++index;
  }
  EXPECT_GT(stream_->write_buffer_size(), 0u);  // the small SO_SNDBUF forced partial writes
  PeerReader reader{loop(), peer_.fd(), 65536, {}, false, nullptr};
  reader.on_data = [&] {
    if (reader.received.size() == total) done();
  };
  reader.start();
  ASSERT_TRUE(wait(absl::Seconds(60)));
  loop().remove_handler(peer_.fd());
  ASSERT_EQ(reader.received.size(), total);
  EXPECT_TRUE(reader.received == pattern(0, total));
  spin(2);  // let the last flush callbacks run
  ASSERT_EQ(flushed.size(), static_cast<size_t>(index));
  for (int i = 0; i < index; ++i) ASSERT_EQ(flushed[i], i);
  EXPECT_EQ(stream_->write_buffer_size(), 0u);
}

TEST_P(IOStreamTest, WritevSendsAllBuffersInOrder) {
  make_pair();
  int calls = 0;
  stream_->writev({"HTTP/1.1 200 OK\r\n", "", "\r\n", "body"}, [&](absl::Status s) {
    EXPECT_TRUE(s.ok());
    ++calls;
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(peer_read_available(), "HTTP/1.1 200 OK\r\n\r\nbody");
  EXPECT_EQ(calls, 1);
}

TEST_P(IOStreamTest, WritevPartialOverTcp) {
  auto [server, client] = tcp_pair();
  stream_ = IOStream::create(loop(), std::move(server));
  ASSERT_TRUE(stream_->socket().set_send_buffer(4096).ok());
  std::vector<std::string> chunks;
  size_t total = 0;
  for (int i = 0; i < 200; ++i) {
    chunks.push_back(pattern(total, 10000));
    total += 10000;
  }
  bool flushed = false;
  stream_->writev(std::move(chunks), [&](absl::Status s) {
    EXPECT_TRUE(s.ok());
    flushed = true;
  });
  ASSERT_TRUE(client.valid());
  ::fcntl(client.fd(), F_SETFL, O_NONBLOCK);
  PeerReader reader{loop(), client.fd(), 65536, {}, false, nullptr};
  reader.on_data = [&] {
    if (reader.received.size() == total) done();
  };
  reader.start();
  ASSERT_TRUE(wait());
  loop().remove_handler(client.fd());
  EXPECT_TRUE(reader.received == pattern(0, total));
  spin(2);
  EXPECT_TRUE(flushed);
}

TEST_P(IOStreamTest, WatermarksFireOncePerCrossing) {
  make_pair();
  ASSERT_TRUE(stream_->socket().set_send_buffer(4096).ok());
  ASSERT_TRUE(peer_.set_receive_buffer(4096).ok());
  int highs = 0, lows = 0;
  stream_->set_write_watermarks(64 * 1024, 16 * 1024);
  stream_->set_high_watermark_callback([&] { ++highs; });
  stream_->set_low_watermark_callback([&] {
    ++lows;
    done();
  });
  for (int round = 1; round <= 2; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    for (int i = 0; i < 64; ++i) stream_->write(std::string(4096, 'x'));  // 256 KiB
    EXPECT_EQ(highs, round);
    EXPECT_EQ(lows, round - 1);
    PeerReader reader{loop(), peer_.fd(), 65536, {}, false, nullptr};
    reader.start();
    ASSERT_TRUE(wait());
    loop().remove_handler(peer_.fd());
    EXPECT_EQ(highs, round);
    EXPECT_EQ(lows, round);
    EXPECT_LE(stream_->write_buffer_size(), 16u * 1024);
    // Drain the rest so the next round starts from zero.
    reader.on_data = nullptr;
    while (stream_->write_buffer_size() > 0 || unread(peer_.fd()) > 0) {
      peer_read_available();
      spin(1);
    }
  }
}

// --- Closing ----------------------------------------------------------------------------------

TEST_P(IOStreamTest, CloseCallbackRunsExactlyOnce) {
  make_pair();
  int closes = 0;
  stream_->set_close_callback([&](absl::Status s) {
    ++closes;
    EXPECT_TRUE(s.ok()) << s;
  });
  stream_->read_bytes(1, [](absl::StatusOr<std::string>) {});
  stream_->close();
  stream_->close(absl::InternalError("second close is ignored"));
  peer_.reset();
  spin(3);
  EXPECT_EQ(closes, 1);
  EXPECT_TRUE(stream_->error().ok());
  EXPECT_EQ(stream_->fd(), -1);
}

TEST_P(IOStreamTest, IdleStreamWithCloseCallbackNoticesPeerClose) {
  make_pair();
  absl::Status closed = absl::UnknownError("not closed");
  stream_->set_close_callback([&](absl::Status s) {
    closed = s;
    done();
  });
  peer_.reset();
  ASSERT_TRUE(wait());
  EXPECT_TRUE(closed.ok()) << closed;
}

TEST_P(IOStreamTest, EveryCallbackRunsOnceWhenClosedWithWorkPending) {
  make_pair();
  ASSERT_TRUE(stream_->socket().set_send_buffer(4096).ok());
  std::vector<std::string> log;
  stream_->set_close_callback([&](absl::Status s) {
    log.push_back(absl::StrCat("close:", s.ok()));
    done();
  });
  stream_->read_until("\n", [&](absl::StatusOr<std::string> r) {
    log.push_back(absl::StrCat("read:", absl::StatusCodeToString(r.status().code())));
  });
  for (int i = 0; i < 5; ++i) {
    stream_->write(std::string(100000, 'x'), [&, i](absl::Status s) {
      log.push_back(absl::StrCat("write", i, ":", absl::StatusCodeToString(s.code())));
    });
  }
  ASSERT_GT(stream_->write_buffer_size(), 0u);
  stream_->close();
  // After close: completes with the close status too, after the close callback.
  stream_->write("late", [&](absl::Status s) {
    log.push_back(absl::StrCat("late:", absl::StatusCodeToString(s.code())));
  });
  ASSERT_TRUE(wait());
  spin(2);
  ASSERT_EQ(log.size(), 8u) << absl::StrJoin(log, " ");
  EXPECT_EQ(log[0], "read:CANCELLED");
  // The first write may have gone out whole on the fast path (OK); the others were queued.
  EXPECT_TRUE(log[1] == "write0:OK" || log[1] == "write0:CANCELLED") << log[1];
  for (int i = 1; i < 5; ++i) EXPECT_EQ(log[1 + i], absl::StrCat("write", i, ":CANCELLED"));
  EXPECT_EQ(log[6], "close:1");
  EXPECT_EQ(log[7], "late:CANCELLED");
}

TEST_P(IOStreamTest, CallsFromInsideCloseCallbackStillComplete) {
  make_pair();
  absl::Status read_status, write_status;
  int closes = 0;
  stream_->set_close_callback([&](absl::Status) {
    ++closes;
    stream_->read_bytes(1, [&](absl::StatusOr<std::string> r) { read_status = r.status(); });
    stream_->write("x", [&](absl::Status s) {
      write_status = s;
      done();
    });
  });
  stream_->close(absl::AbortedError("stop"));
  ASSERT_TRUE(wait());
  EXPECT_EQ(closes, 1);
  EXPECT_EQ(read_status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(write_status.code(), absl::StatusCode::kAborted);
}

TEST_P(IOStreamTest, WritesFromFlushCallbacksKeepOrder) {
  make_pair();
  ASSERT_TRUE(stream_->socket().set_send_buffer(4096).ok());
  const size_t block = 50000;
  int next = 0;
  std::function<void(absl::Status)> chain = [&](absl::Status s) {
    ASSERT_TRUE(s.ok()) << s;
    if (++next < 20) stream_->write(pattern(next * block, block), chain);
  };
  stream_->write(pattern(0, block), chain);
  PeerReader reader{loop(), peer_.fd(), 65536, {}, false, nullptr};
  reader.on_data = [&] {
    if (reader.received.size() == 20 * block) done();
  };
  reader.start();
  ASSERT_TRUE(wait());
  loop().remove_handler(peer_.fd());
  EXPECT_TRUE(reader.received == pattern(0, 20 * block));
}

TEST_P(IOStreamTest, CloseWithReasonIsReported) {
  make_pair();
  absl::Status read_status, close_status;
  stream_->set_close_callback([&](absl::Status s) {
    close_status = s;
    done();
  });
  stream_->read_bytes(10, [&](absl::StatusOr<std::string> r) { read_status = r.status(); });
  stream_->close(absl::DeadlineExceededError("idle timeout"));
  ASSERT_TRUE(wait());
  EXPECT_EQ(read_status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(close_status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(stream_->error().message(), "idle timeout");
}

TEST_P(IOStreamTest, StreamOutlivesDroppedPointerUntilClosed) {
  make_pair();
  std::weak_ptr<IOStream> weak = stream_;
  std::string got;
  stream_->read_until("\n", [&](absl::StatusOr<std::string> r) {
    got = *r;
    if (auto s = weak.lock()) s->close();
  });
  stream_.reset();
  ASSERT_FALSE(weak.expired());  // the loop holds it while a read is pending
  peer_write("hi\n");
  std::function<void()> check = [&] {
    if (weak.expired()) {
      done();
    } else {
      loop().add_callback([&] { check(); });
    }
  };
  check();
  ASSERT_TRUE(wait());
  EXPECT_EQ(got, "hi\n");
}

// --- Half-close -----------------------------------------------------------------------------

TEST_P(IOStreamTest, PeerHalfCloseStillFlushesQueuedWritesBeforeClosing) {
  make_pair();
  ASSERT_TRUE(stream_->socket().set_send_buffer(4096).ok());
  ASSERT_TRUE(peer_.set_receive_buffer(4096).ok());
  std::vector<std::string> log;
  const size_t total = 1 << 20;
  stream_->write(pattern(0, total), [&](absl::Status s) { log.push_back(s.ToString()); });
  ASSERT_GT(stream_->write_buffer_size(), 0u);
  stream_->set_close_callback([&](absl::Status s) {
    log.push_back(absl::StrCat("close ", s.ToString()));
    done();
  });
  stream_->read_until_close([&](absl::StatusOr<std::string> r) {
    ASSERT_TRUE(r.ok()) << r.status();
    log.push_back(absl::StrCat("read ", *r));
  });
  peer_write("request");
  ::shutdown(peer_.fd(), SHUT_WR);
  PeerReader reader{loop(), peer_.fd(), 65536, {}, false, nullptr};
  reader.start();
  ASSERT_TRUE(wait());
  // The peer still gets every byte, then EOF.
  while (!reader.eof) spin(1);
  EXPECT_TRUE(reader.received == pattern(0, total));
  EXPECT_EQ(log, (std::vector<std::string>{"read request", "OK", "close OK"}));
}

TEST_P(IOStreamTest, ShutdownWriteSendsEofAfterQueuedDataAndKeepsReading) {
  make_pair();
  ASSERT_TRUE(stream_->socket().set_send_buffer(4096).ok());
  const size_t total = 300000;
  stream_->write(pattern(0, total));
  stream_->shutdown_write();
  absl::Status late;
  stream_->write("late", [&](absl::Status s) { late = s; });
  PeerReader reader{loop(), peer_.fd(), 65536, {}, false, nullptr};
  reader.on_data = [&] {
    if (reader.eof) {
      peer_write("reply");
      done();
    }
  };
  reader.start();
  ASSERT_TRUE(wait());
  EXPECT_TRUE(reader.received == pattern(0, total));
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<std::string> got;
  stream_->read_bytes(5, [&](absl::StatusOr<std::string> r) {
    got = r;
    done();
  });
  ASSERT_TRUE(wait());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "reply");
  EXPECT_FALSE(stream_->closed());
}

TEST_P(IOStreamTest, AllowHalfOpenKeepsWritingAfterEof) {
  IOStreamOptions options;
  options.allow_half_open = true;
  make_pair(options);
  absl::StatusOr<std::string> got;
  stream_->read_until_close([&](absl::StatusOr<std::string> r) {
    got = r;
    done();
  });
  peer_write("question");
  ::shutdown(peer_.fd(), SHUT_WR);
  ASSERT_TRUE(wait());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "question");
  EXPECT_FALSE(stream_->closed());
  stream_->write("answer", [&](absl::Status s) {
    EXPECT_TRUE(s.ok());
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(peer_read_available(), "answer");
  stream_->close();
}

// --- Flow control and fairness -------------------------------------------------------------

TEST_P(IOStreamTest, PauseAndResumeReading) {
  make_pair();
  std::string got;
  stream_->pause_reading();
  stream_->read_bytes(
      100,
      [&](absl::StatusOr<std::string> r) {
        got = *r;
        done();
      },
      true);
  peer_write("paused data");
  spin(10);
  EXPECT_EQ(got, "");
  EXPECT_EQ(unread(stream_->fd()), 11);  // not even read from the socket
  stream_->resume_reading();
  ASSERT_TRUE(wait());
  EXPECT_EQ(got, "paused data");
}

TEST_P(IOStreamTest, PauseInsideStreamingCallbackStopsChunks) {
  make_pair();
  int chunks = 0;
  std::string got;
  stream_->read_streaming(
      [&](std::string chunk) {
        ++chunks;
        got += chunk;
        if (chunks == 1) stream_->pause_reading();
      },
      [&](absl::StatusOr<std::string>) { done(); });
  peer_write("first");
  while (chunks == 0) spin(1);
  peer_write("second");
  spin(10);
  EXPECT_EQ(chunks, 1);
  EXPECT_EQ(got, "first");
  stream_->resume_reading();
  ::shutdown(peer_.fd(), SHUT_WR);
  ASSERT_TRUE(wait());
  EXPECT_EQ(got, "firstsecond");
}

TEST_P(IOStreamTest, HugeWriteIsServedInSlicesBetweenTimers) {
  make_pair();
  // 64 MiB on the default poller; the others take the same path with less data (ASan time).
  const size_t total = GetParam() == PollerKind::kEpoll ? 64 << 20 : 8 << 20;
  bool flushed = false;
  stream_->write(std::string(total, 'z'), [&](absl::Status s) {
    EXPECT_TRUE(s.ok());
    flushed = true;
  });
  PeerReader reader{loop(), peer_.fd(), 256 * 1024, {}, false, nullptr};
  reader.on_data = [&] {
    if (reader.received.size() == total) done();
  };
  reader.start();
  // A zero-delay timer re-armed every time it runs: it must keep running while the write
  // is in flight, and each time see at most one slice (256 KiB) more of it written.
  int timer_runs_during_write = 0;
  size_t last_pending = stream_->write_buffer_size();
  size_t max_step = 0;
  std::function<void()> tick = [&] {
    size_t pending = stream_->write_buffer_size();
    if (pending > 0) ++timer_runs_during_write;
    max_step = std::max(max_step, last_pending - pending);
    last_pending = pending;
    if (pending > 0) loop().call_later(absl::ZeroDuration(), [&] { tick(); });
  };
  loop().call_later(absl::ZeroDuration(), [&] { tick(); });
  ASSERT_TRUE(wait(absl::Seconds(60)));
  loop().remove_handler(peer_.fd());
  EXPECT_EQ(reader.received.size(), total);
  EXPECT_GE(timer_runs_during_write, static_cast<int>(total >> 20));  // >= total / 1 MiB
  EXPECT_LE(max_step, 256u * 1024);
  spin(2);
  EXPECT_TRUE(flushed);
}

TEST_P(IOStreamTest, FastSenderIsReadInSlicesBetweenTimers) {
  make_pair();
  const size_t total = 16 << 20;
  size_t received = 0;
  size_t since_tick = 0, max_between_ticks = 0;
  stream_->read_streaming(
      [&](std::string chunk) {
        received += chunk.size();
        since_tick += chunk.size();
      },
      [&](absl::StatusOr<std::string> r) {
        EXPECT_TRUE(r.ok());
        done();
      });
  // The peer writes as fast as the socket takes it, from a WRITE handler.
  size_t sent = 0;
  std::string block(64 * 1024, 'q');
  ASSERT_TRUE(loop()
                  .add_handler(
                      peer_.fd(),
                      [&](int fd, uint32_t) {
                        for (int i = 0; i < 64 && sent < total; ++i) {
                          ssize_t n = ::send(fd, block.data(), std::min(block.size(), total - sent),
                                             MSG_NOSIGNAL);
                          if (n <= 0) break;
                          sent += static_cast<size_t>(n);
                        }
                        if (sent == total) {
                          loop().remove_handler(fd);
                          ::shutdown(fd, SHUT_WR);
                        }
                      },
                      IOLoop::WRITE)
                  .ok());
  int ticks = 0;
  std::function<void()> tick = [&] {
    ++ticks;
    max_between_ticks = std::max(max_between_ticks, since_tick);
    since_tick = 0;
    if (!stream_->closed()) loop().call_later(absl::ZeroDuration(), [&] { tick(); });
  };
  loop().call_later(absl::ZeroDuration(), [&] { tick(); });
  ASSERT_TRUE(wait(absl::Seconds(60)));
  EXPECT_EQ(received, total);
  EXPECT_GE(ticks, 16);
  EXPECT_LE(max_between_ticks, 256u * 1024);
}

TEST_P(IOStreamTest, AccessorsAndNodelay) {
  auto [server, client] = tcp_pair();
  stream_ = IOStream::create(loop(), std::move(server));
  EXPECT_TRUE(stream_->set_nodelay(true).ok());
  auto peer = stream_->peer_address();
  ASSERT_TRUE(peer.ok());
  EXPECT_EQ(peer->host(), "127.0.0.1");
  EXPECT_EQ(stream_->fd(), stream_->socket().fd());
  EXPECT_FALSE(stream_->reading());
  EXPECT_FALSE(stream_->writing());
  EXPECT_EQ(&stream_->loop(), &loop());
  stream_->close();
}

// A read callback that owns its stream is a cycle. If the loop is destroyed first (the stream
// still registered, or closed with its completions still queued), the loop's references drop
// the pending callbacks, so the stream is freed rather than leaked.
TEST(IOStreamLifetimeTest, DestroyingTheLoopFreesStreamsOwnedByTheirCallbacks) {
  for (bool close_first : {false, true}) {
    std::weak_ptr<IOStream> weak;
    int calls = 0;
    {
      auto loop = IOLoop::create();
      ASSERT_TRUE(loop.ok());
      auto pair = Socket::pair();
      ASSERT_TRUE(pair.ok());
      std::shared_ptr<IOStream> stream = IOStream::create(**loop, std::move(pair->first));
      weak = stream;
      stream->read_until("\n", [stream, &calls](absl::StatusOr<std::string>) { ++calls; });
      if (close_first) stream->close();
      stream.reset();
      EXPECT_FALSE(weak.expired()) << "the loop holds the stream while it has work";
    }
    EXPECT_TRUE(weak.expired()) << "close_first=" << close_first;
    EXPECT_EQ(calls, 0) << "dropped callbacks never run";
  }
}

}  // namespace
}  // namespace ioloop::net
