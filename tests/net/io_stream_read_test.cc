// IOStream reads: every read mode at every split point, and read errors.
// The fixture (tests/net/io_stream_testing.h) runs each test over every poller and over both
// transports (plain socket, TLS); IOStreamPlainTest's tests are about the socket itself.
#include <signal.h>
#include <sys/socket.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "ioloop/net/io_stream.h"
#include "net/io_stream_testing.h"

namespace ioloop::net::stream_testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Streams, IOStreamTest, AllCases(), CaseName);
INSTANTIATE_TEST_SUITE_P(Streams, IOStreamPlainTest, PlainCases(), CaseName);

// --- Every read mode, with the message split at every byte boundary ------------------------

constexpr char kMessage[] = "GET /\r\n\r\nab\r\n\r\n";  // two "\r\n\r\n"-terminated parts

TEST_P(IOStreamTest, ReadUntilAtEverySplit) {
  const std::string msg = kMessage;
  for (size_t split = 0; split <= msg.size(); ++split) {
    SCOPED_TRACE(absl::StrCat("split=", split));
    make_pair();
    std::vector<std::string> got;
    read_messages(*stream_, "\r\n\r\n", 2, got);
    peer_write_split(msg, split);
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
    peer_write_split(msg, split);
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
    peer_write_split(msg, split);
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
    done_on_close(closed);
    stream_->read_until_close([&](absl::StatusOr<std::string> r) { got = std::move(r); });
    peer_write_split(msg, split, /*end=*/true);
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
        [&](absl::string_view chunk) {
          EXPECT_FALSE(chunk.empty());
          absl::StrAppend(&got, chunk);
        },
        [&](absl::StatusOr<std::string> r) {
          ++done_calls;
          ASSERT_TRUE(r.ok()) << r.status();
          EXPECT_EQ(*r, "");
          done();
        });
    peer_write_split(msg, split, /*end=*/true);
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
    stream_->read_streaming([&](absl::string_view chunk) { absl::StrAppend(&body, chunk); },
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
    peer_write_split(msg, split);
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
  std::vector<std::string> got;
  // Each read after the first starts in the previous one's callback: the running dispatch
  // serves it, without recursion.
  read_messages(*stream_, "\n", 500, got);
  ASSERT_TRUE(wait());
  ASSERT_EQ(got.size(), 500u);
  for (int i = 0; i < 500; ++i) EXPECT_EQ(got[i], absl::StrCat("req", i, "\n"));
}

TEST_P(IOStreamTest, BufferedDataDeliveredAfterPeerEof) {
  make_pair();
  peer_write("a\nb\n");
  peer_->shutdown_write();
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

// A socketpair's peer closing reports a hang-up (EPOLLHUP, POLLHUP): the connection is gone
// both ways. Like a reset, it ends even a paused stream at once, so that its owner hears of
// it, and the read gets what came before it. select reports no hang-up: there the end waits
// for resume_reading(), as behind a FIN. Neither wakes the loop again and again.
TEST_P(IOStreamTest, PausedStreamEndsAtThePeersHangUp) {
  make_pair();
  std::vector<absl::StatusOr<std::string>> got;
  absl::Status closed_with = absl::UnknownError("close callback not run");
  stream_->set_close_callback([&](absl::Status s) { closed_with = s; });
  stream_->pause_reading();
  stream_->read_bytes(3, [&](absl::StatusOr<std::string> r) { got.push_back(std::move(r)); });
  peer_write("abc");
  peer_->close();
  run_turns(5);  // the hang-up is dispatched
  const uint64_t events = loop().stats().events_dispatched;
  run_turns(20);
  EXPECT_EQ(loop().stats().events_dispatched, events) << "the hang-up keeps waking the loop";
  if (GetParam().poller == PollerKind::kSelect) {
    EXPECT_TRUE(got.empty());
    EXPECT_FALSE(stream_->closed());
    stream_->resume_reading();
    run_turns(5);
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value_or("<error>"), "abc") << got[0].status();
  EXPECT_TRUE(stream_->closed());
  EXPECT_TRUE(closed_with.ok()) << closed_with;
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
  done_on_close(close_status);
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
  done_on_close(close_status);
  stream_->read_until_close([&](absl::StatusOr<std::string> r) { read_status = r.status(); });
  peer_write(std::string(5000, 'x'));
  ASSERT_TRUE(wait());
  EXPECT_EQ(read_status.code(), absl::StatusCode::kResourceExhausted) << read_status;
  EXPECT_EQ(close_status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(close_status.message().find("max_buffer_size=1000"), absl::string_view::npos)
      << close_status;
  EXPECT_EQ(stream_->error().code(), absl::StatusCode::kResourceExhausted);
}

// Found by a probe: with no read pending, the stream read ahead one byte past
// max_buffer_size and closed with ResourceExhausted, losing what the peer sent, though no read
// ever asked for more than 4 bytes (a reader that issues each read one loop hop later).
TEST_P(IOStreamTest, ReadAheadBetweenReadsStopsAtMaxBufferSize) {
  IOStreamOptions options;
  options.max_buffer_size = 16;
  make_pair(options);
  const std::string sent = pattern(0, 64);
  std::string got;
  absl::Status failed;
  std::function<void()> next = [&] {
    stream_->read_bytes(4, [&](absl::StatusOr<std::string> r) {
      if (!r.ok()) {
        failed = r.status();
        return done();
      }
      got += *r;
      if (got.size() == sent.size()) return done();
      loop().add_callback([&] { next(); });
    });
  };
  next();
  peer_write(sent);
  ASSERT_TRUE(wait());
  EXPECT_TRUE(failed.ok()) << failed;
  EXPECT_EQ(got, sent);
  EXPECT_FALSE(stream_->closed());
  EXPECT_LE(stream_->read_buffer_size(), 16u);
}

// Found by a probe: read_bytes(n) over max_buffer_size waited for ever when the peer sent
// less (it failed only once more than max_buffer_size had arrived).
TEST_P(IOStreamTest, ReadBytesOverMaxBufferSizeFailsAtOnce) {
  IOStreamOptions options;
  options.max_buffer_size = 16;
  make_pair(options);
  absl::Status read_status, close_status;
  done_on_close(close_status);
  peer_write("0123456789");
  stream_->read_bytes(17, [&](absl::StatusOr<std::string> r) { read_status = r.status(); });
  ASSERT_TRUE(wait());
  const absl::Status expected =
      absl::ResourceExhaustedError("IOStream::read_bytes: 17 bytes cannot fit max_buffer_size=16");
  EXPECT_EQ(read_status, expected);
  EXPECT_EQ(close_status, expected);
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

TEST_P(IOStreamPlainTest, ResetPeerReportsReset) {
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
  peer_->close();
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

// Plain reads lend the thread's spill area (Buffer lending): bytes that a read left unconsumed
// at the end of a dispatch must survive another stream's reads through that area, and each
// streamed chunk must be intact for its callback.
TEST_P(IOStreamPlainTest, LeftoverBytesSurviveAnotherStreamsReads) {
  make_pair();
  auto pair = Socket::pair();
  ASSERT_TRUE(pair.ok()) << pair.status();
  Socket other_peer = std::move(pair->second);
  std::shared_ptr<IOStream> other = IOStream::create(loop(), std::move(pair->first));
  std::string line;
  stream_->read_until("\n", [&](absl::StatusOr<std::string> r) {
    ASSERT_TRUE(r.ok()) << r.status();
    line = *r;
    done();
  });
  std::string streamed;
  other->read_streaming([&](absl::string_view chunk) { absl::StrAppend(&streamed, chunk); },
                        [](absl::StatusOr<std::string>) {});
  peer_write("abc");  // no delimiter: the bytes stay in stream_'s buffer
  while (stream_->read_buffer_size() < 3) spin(1);
  std::string bulk(48 * 1024, ' ');
  for (size_t i = 0; i < bulk.size(); ++i) bulk[i] = static_cast<char>('a' + i % 26);
  ASSERT_EQ(::send(other_peer.fd(), bulk.data(), bulk.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bulk.size()));
  while (streamed.size() < bulk.size()) spin(1);
  EXPECT_EQ(streamed, bulk);
  peer_write("def\n");
  ASSERT_TRUE(wait());
  EXPECT_EQ(line, "abcdef\n");
  other->close();
}

// The chunk a streaming callback gets stays valid through the whole callback, whatever the
// callback does to its stream meanwhile (a write, a close).
TEST_P(IOStreamTest, StreamedChunkStaysValidThroughItsCallback) {
  make_pair();
  std::string seen;
  stream_->read_streaming(
      [&](absl::string_view chunk) {
        stream_->write("reply");
        stream_->close();
        seen = std::string(chunk);
        done();
      },
      [](absl::StatusOr<std::string>) {});
  peer_write("payload");
  ASSERT_TRUE(wait());
  EXPECT_EQ(seen, "payload");
}

}  // namespace
}  // namespace ioloop::net::stream_testing
