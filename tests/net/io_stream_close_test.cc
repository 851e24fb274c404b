// IOStream closing: close order, exactly-once callbacks, half-close, lifetime.
// The fixture (tests/net/io_stream_testing.h) runs each test over every poller and over both
// transports (plain socket, TLS); IOStreamPlainTest's tests are about the socket itself.
#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "ioloop/net/io_stream.h"
#include "net/io_stream_testing.h"

namespace ioloop::net::stream_testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Streams, IOStreamTest, AllCases(), CaseName);
INSTANTIATE_TEST_SUITE_P(Streams, IOStreamPlainTest, PlainCases(), CaseName);

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
  peer_->close();
  spin(3);
  EXPECT_EQ(closes, 1);
  EXPECT_TRUE(stream_->error().ok());
  EXPECT_EQ(stream_->fd(), -1);
}

TEST_P(IOStreamTest, IdleStreamWithCloseCallbackNoticesPeerClose) {
  make_pair();
  absl::Status closed = absl::UnknownError("not closed");
  done_on_close(closed);
  peer_->close();
  ASSERT_TRUE(wait());
  EXPECT_TRUE(closed.ok()) << closed;
}

// Regression (io_stream_fuzzer, issue 9's redesign): a read started after the stream closed
// and its close callback ran was never served: the deferred dispatch skipped the reads of a
// closed stream, so the callback never ran (the completion rule says it runs once, on a later
// iteration, with what the close leaves).
TEST_P(IOStreamTest, ReadsStartedAfterTheCloseStillComplete) {
  make_pair();
  stream_->set_close_callback([&](absl::Status) { done(); });
  peer_->close();
  ASSERT_TRUE(wait());
  ASSERT_TRUE(stream_->closed());
  std::vector<std::string> results;
  stream_->read_until_close([&](absl::StatusOr<std::string> r) {
    results.push_back(r.ok() ? "ok:" + *r : r.status().ToString());
    stream_->read_bytes(1, [&](absl::StatusOr<std::string> r2) {
      results.push_back(r2.ok() ? "ok:" + *r2 : r2.status().ToString());
      done();
    });
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(results, (std::vector<std::string>{
                         "ok:", "UNAVAILABLE: IOStream: stream closed by peer (EOF)"}));
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
  PeerReader reader{loop(), *peer_, 65536};
  reader.on_data = [&] {
    if (reader.received.size() == 20 * block) done();
  };
  reader.start();
  ASSERT_TRUE(wait());
  loop().remove_handler(peer_->fd());
  EXPECT_TRUE(reader.received == pattern(0, 20 * block));
}

TEST_P(IOStreamTest, CloseWithReasonIsReported) {
  make_pair();
  absl::Status read_status, close_status;
  done_on_close(close_status);
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
  ASSERT_TRUE(peer_->socket().set_receive_buffer(4096).ok());
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
  peer_->shutdown_write();
  PeerReader reader{loop(), *peer_, 65536};
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
  PeerReader reader{loop(), *peer_, 65536};
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
  peer_->shutdown_write();
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

// A read callback that owns its stream is a cycle. If the loop is destroyed first (the stream
// still registered, or closed with its completions still queued), the loop's references drop
// the pending callbacks, so the stream is freed rather than leaked. Found by a probe: a stream
// paused before its first read was never registered (it wanted no events), so nothing but its
// callback held it, and it leaked with its socket.
TEST(IOStreamLifetimeTest, DestroyingTheLoopFreesStreamsOwnedByTheirCallbacks) {
  enum class Before { kNothing, kClose, kPause };
  for (Before before : {Before::kNothing, Before::kClose, Before::kPause}) {
    SCOPED_TRACE(static_cast<int>(before));
    std::weak_ptr<IOStream> weak;
    int calls = 0;
    {
      auto loop = IOLoop::create();
      ASSERT_TRUE(loop.ok());
      auto pair = Socket::pair();
      ASSERT_TRUE(pair.ok());
      std::shared_ptr<IOStream> stream = IOStream::create(**loop, std::move(pair->first));
      weak = stream;
      if (before == Before::kPause) stream->pause_reading();
      stream->read_until("\n", [stream, &calls](absl::StatusOr<std::string>) { ++calls; });
      if (before == Before::kClose) stream->close();
      stream.reset();
      EXPECT_FALSE(weak.expired()) << "the loop holds the stream while it has work";
    }
    EXPECT_TRUE(weak.expired());
    EXPECT_EQ(calls, 0) << "dropped callbacks never run";
  }
}

// A reset ends a paused stream at once on epoll and poll (it is reported whatever is watched).
// select cannot watch for it (a paused stream watches neither READ nor WRITE, and select has no
// error set), so there the reset is found when reading resumes, as io_stream.h says; it must
// be found then, with the reset's status. Found by a probe of the pollers: io_stream.h named
// only the hang-up as waiting for resume_reading() on select.
TEST_P(IOStreamPlainTest, APausedStreamEndsAtAResetAtOnceOrWhenResumedOnSelect) {
  auto [server, client] = tcp_pair();
  stream_ = IOStream::create(loop(), std::move(server));
  absl::Status read_status = absl::UnknownError("read not completed");
  absl::Status close_status = absl::UnknownError("close callback not run");
  stream_->set_close_callback([&](absl::Status s) { close_status = s; });
  stream_->pause_reading();
  stream_->read_bytes(3, [&](absl::StatusOr<std::string> r) { read_status = r.status(); });
  ASSERT_TRUE(client.set_linger_zero().ok());
  client.reset();  // RST
  run_turns(5);
  const uint64_t events = loop().stats().events_dispatched;
  run_turns(20);
  EXPECT_EQ(loop().stats().events_dispatched, events) << "the reset keeps waking the loop";
  if (GetParam().poller == PollerKind::kSelect) {
    EXPECT_FALSE(stream_->closed());
    EXPECT_EQ(read_status.code(), absl::StatusCode::kUnknown) << read_status;
    stream_->resume_reading();
    run_turns(5);
  }
  EXPECT_TRUE(stream_->closed());
  EXPECT_EQ(close_status.code(), absl::StatusCode::kUnavailable) << close_status;
  EXPECT_NE(absl::AsciiStrToLower(close_status.message()).find("reset"), absl::string_view::npos)
      << close_status;
  EXPECT_EQ(read_status, close_status);
}

// A plain stream has no goodbye of its own to withhold, so a message that only the
// connection's end delimits (an HTTP/1.0 body without a length) and that is cut short ends with
// a reset: a FIN would pass it off as whole. Found by a probe of http_proxy, whose HTTP/1.0
// clients read a body cut by a dead upstream as complete. Each way of ending the stream, with
// the message in progress (a reset after the bytes) and complete again (the FIN).
TEST_P(IOStreamPlainTest, AMessageInProgressEndsWithAResetAfterItsBytes) {
  for (const bool complete : {false, true}) {
    for (const bool by_close : {false, true}) {
      SCOPED_TRACE(absl::StrCat(complete ? "complete" : "in progress", ", ",
                                by_close ? "close()" : "shutdown_write()"));
      auto [server, client] = tcp_pair();
      stream_ = IOStream::create(loop(), std::move(server));
      stream_->set_message_complete(false);
      if (complete) stream_->set_message_complete(true);
      stream_->write("part", [&](absl::Status) {  // once in the kernel
        if (by_close) stream_->close();
      });
      if (!by_close) stream_->shutdown_write();
      run_turns(5);
      const ReadEnd end = read_until_end(client.fd());
      EXPECT_EQ(end.bytes, "part");
      EXPECT_EQ(end.error, complete ? 0 : ECONNRESET) << std::strerror(end.error);
      stream_->close();
    }
  }
}

// A Unix-domain socket has no reset to say "cut short" (its peer reads EOF after one too), so
// a message in progress there ends as any other: shutdown_write() half-closes and the stream
// stays open for reading. Found by a review: it closed the stream, for nothing.
TEST_P(IOStreamPlainTest, OnAUnixSocketAMessageInProgressEndsAsUsual) {
  auto pair = Socket::pair();
  ASSERT_TRUE(pair.ok()) << pair.status();
  Socket client = std::move(pair->second);
  ASSERT_EQ(::fcntl(client.fd(), F_SETFL, 0), 0);  // blocking reads below
  stream_ = IOStream::create(loop(), std::move(pair->first));
  stream_->set_message_complete(false);
  stream_->write("part");
  stream_->shutdown_write();
  run_turns(5);
  EXPECT_FALSE(stream_->closed());
  const ReadEnd end = read_until_end(client.fd());
  EXPECT_EQ(end.bytes, "part");
  EXPECT_EQ(end.error, 0) << std::strerror(end.error);
  stream_->close();
}

}  // namespace
}  // namespace ioloop::net::stream_testing
