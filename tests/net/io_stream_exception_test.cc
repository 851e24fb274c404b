// IOStream and exceptions from user callbacks (io_stream.h, "Exceptions"): whatever callback
// throws, the exception is logged and counted by the loop, the stream closes with Internal
// "exception in IOStream <kind> callback: <what()>", every other pending completion of that
// stream runs exactly once with that status, and other streams go on. On all three pollers.
#include <sys/socket.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "ioloop/net/io_stream.h"
#include "testing/loop_test_base.h"
#include "testing/pollers.h"

namespace ioloop::net {
namespace {

using ::ioloop::testing::LoopTestBase;

// "code:message" of a status, for one-line comparisons.
std::string str(const absl::Status& s) {
  return absl::StrCat(absl::StatusCodeToString(s.code()), ":", s.message());
}

const std::string kRead = "INTERNAL:exception in IOStream read callback: boom";
const std::string kStreaming = "INTERNAL:exception in IOStream streaming callback: boom";
const std::string kWrite = "INTERNAL:exception in IOStream write callback: boom";

class IOStreamExceptionTest : public LoopTestBase,
                              public ::testing::WithParamInterface<PollerKind> {
 protected:
  IOStreamExceptionTest() : LoopTestBase(GetParam()) {}

  struct Pair {
    std::shared_ptr<IOStream> stream;
    Socket peer;
  };
  Pair make_pair() {
    auto pair = Socket::pair();
    EXPECT_TRUE(pair.ok()) << pair.status();
    Pair p{IOStream::create(loop(), std::move(pair->first)), std::move(pair->second)};
    p.stream->set_close_callback([this](absl::Status s) { log_.push_back("close:" + str(s)); });
    return p;
  }

  static void send(const Socket& peer, const std::string& s) {
    ASSERT_EQ(::send(peer.fd(), s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
  }

  // Runs the loop until `pred` holds or `max_iterations` iterations passed. Each iteration
  // queues the next check, so the loop never blocks: bounded by count, not by the clock.
  bool run_until(const std::function<bool()>& pred, int max_iterations = 1000) {
    int left = max_iterations;
    std::function<void()> step = [&] {
      if (pred() || --left <= 0) {
        done();
        return;
      }
      loop().add_callback([&step] { step(); });
    };
    loop().add_callback([&step] { step(); });
    EXPECT_TRUE(wait());
    return pred();
  }
  bool logged(const std::string& entry) const {
    return std::find(log_.begin(), log_.end(), entry) != log_.end();
  }
  // Read completion that records its result under `name`.
  IOStream::ReadCallback record(const std::string& name) {
    return [this, name](absl::StatusOr<std::string> r) {
      log_.push_back(name + ":" + (r.ok() ? "OK:" + *r : str(r.status())));
    };
  }
  IOStream::WriteCallback record_write(const std::string& name) {
    return [this, name](absl::Status s) { log_.push_back(name + ":" + str(s)); };
  }
  std::string log() const { return absl::StrJoin(log_, " | "); }

  std::vector<std::string> log_;
};

INSTANTIATE_TEST_SUITE_P(Pollers, IOStreamExceptionTest, ioloop::testing::AllPollers(),
                         ioloop::testing::PollerName);

// --- Streaming chunks (the original crash) ----------------------------------------------------

// Before the fix the throw left the stream streaming with a moved-from callback, and the
// next chunk called through it (SIGSEGV).
TEST_P(IOStreamExceptionTest, ThrowingChunkCallbackClosesTheStreamAndFailsTheRead) {
  Pair a = make_pair();
  Pair b = make_pair();  // an innocent neighbour on the same loop
  int a_chunks = 0;
  std::string b_got;
  a.stream->read_streaming(
      [&](absl::string_view) {
        ++a_chunks;
        throw std::runtime_error("boom");
      },
      record("a.done"));
  b.stream->read_streaming([&](absl::string_view chunk) { absl::StrAppend(&b_got, chunk); },
                           record("b.done"));
  send(a.peer, "first");
  send(b.peer, "one ");
  EXPECT_TRUE(run_until([&] { return logged("close:" + kStreaming) && b_got == "one "; })) << log();
  // More data for both: the thrower must not be called again; the neighbour keeps streaming.
  ::send(a.peer.fd(), "second", 6, MSG_NOSIGNAL);  // may fail with EPIPE: the stream is closed
  send(b.peer, "two");
  EXPECT_TRUE(run_until([&] { return b_got == "one two"; }));
  EXPECT_EQ(a_chunks, 1);
  EXPECT_EQ(log(), "a.done:" + kStreaming + " | close:" + kStreaming);
  EXPECT_EQ(str(a.stream->error()), kStreaming);
  EXPECT_TRUE(a.stream->closed());
  EXPECT_FALSE(b.stream->closed());
  EXPECT_EQ(loop().stats().exceptions, 1u);
}

// The last chunk of a counted read throws: the read fails (it must not report success), and
// the bytes after it are dropped with the stream.
TEST_P(IOStreamExceptionTest, ThrowingLastChunkFailsTheCountedRead) {
  Pair a = make_pair();
  std::string chunks;
  a.stream->read_streaming(
      [&](absl::string_view chunk) {
        absl::StrAppend(&chunks, chunk);
        throw std::runtime_error("boom");
      },
      record("done"), 2);
  send(a.peer, "abc");
  EXPECT_TRUE(run_until([&] { return logged("close:" + kStreaming); })) << log();
  EXPECT_EQ(chunks, "ab");
  EXPECT_EQ(log(), "done:" + kStreaming + " | close:" + kStreaming);
  EXPECT_EQ(a.stream->read_buffer_size(), 0u);
  EXPECT_EQ(loop().stats().exceptions, 1u);
}

// --- Read completions of every mode -------------------------------------------------------------

struct ReadCase {
  const char* name;
  std::function<void(IOStream&, IOStream::ReadCallback)> start;
  std::string input;  // the peer sends it, then (for read_until_close) shuts down
};

TEST_P(IOStreamExceptionTest, ThrowingReadCallbackOfEveryModeClosesTheStream) {
  const std::vector<ReadCase> cases = {
      {"until", [](IOStream& s, auto cb) { s.read_until("\n", std::move(cb)); }, "ab\nc"},
      {"bytes", [](IOStream& s, auto cb) { s.read_bytes(2, std::move(cb)); }, "abc"},
      {"partial", [](IOStream& s, auto cb) { s.read_bytes(9, std::move(cb), true); }, "abc"},
      {"until_close", [](IOStream& s, auto cb) { s.read_until_close(std::move(cb)); }, ""},
      {"streaming_done",
       [](IOStream& s, auto cb) { s.read_streaming([](absl::string_view) {}, std::move(cb), 2); },
       "abc"},
  };
  uint64_t exceptions = 0;
  for (const ReadCase& c : cases) {
    SCOPED_TRACE(c.name);
    log_.clear();
    Pair p = make_pair();
    c.start(*p.stream, [&, s = p.stream.get()](absl::StatusOr<std::string> r) {
      log_.push_back(absl::StrCat("read:", r.ok()));
      // A read started by the thrower before it throws still completes, with the status.
      s->read_bytes(1, record("next"));
      throw std::runtime_error("boom");
    });
    send(p.peer, c.input.empty() ? "abc" : c.input);
    if (c.input.empty()) ::shutdown(p.peer.fd(), SHUT_WR);
    EXPECT_TRUE(run_until([&] { return log_.size() >= 3; })) << log();
    EXPECT_EQ(log(), "read:1 | next:" + kRead + " | close:" + kRead);
    EXPECT_EQ(loop().stats().exceptions, ++exceptions);
  }
}

TEST_P(IOStreamExceptionTest, ThrowingCallbackOfARejectedReadClosesTheStream) {
  Pair p = make_pair();
  p.stream->read_until("\n", record("outstanding"));
  p.stream->read_bytes(1, [](absl::StatusOr<std::string> r) {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
    throw std::runtime_error("boom");
  });
  EXPECT_TRUE(run_until([&] { return log_.size() >= 2; })) << log();
  EXPECT_EQ(log(), "outstanding:" + kRead + " | close:" + kRead);

  log_.clear();
  Pair q = make_pair();
  q.stream->read_until("", [](absl::StatusOr<std::string>) { throw 42; });  // not a std::exception
  EXPECT_TRUE(run_until([&] { return log_.size() >= 1; })) << log();
  EXPECT_EQ(log(), "close:INTERNAL:exception in IOStream read callback: non-std::exception");
  EXPECT_EQ(loop().stats().exceptions, 2u);
}

// --- Write completions -------------------------------------------------------------------------

TEST_P(IOStreamExceptionTest, ThrowingFastPathWriteCallbackClosesTheStream) {
  Pair p = make_pair();
  p.stream->read_until("\n", record("read"));
  p.stream->write("hello", [](absl::Status) { throw std::runtime_error("boom"); });
  EXPECT_TRUE(run_until([&] { return log_.size() >= 2; })) << log();
  EXPECT_EQ(log(), "read:" + kWrite + " | close:" + kWrite);
  EXPECT_EQ(loop().stats().exceptions, 1u);
}

// The first write's flush callback runs (posted once its bytes are in the kernel) while the
// second write is still queued (8 MiB cannot pass in one 256 KiB slice): that one fails with
// the status.
TEST_P(IOStreamExceptionTest, ThrowingFlushCallbackFailsTheWritesStillQueued) {
  Pair p = make_pair();
  ASSERT_TRUE(p.stream->socket().set_send_buffer(4096).ok());
  ASSERT_TRUE(p.peer.set_receive_buffer(4096).ok());
  p.stream->write(std::string(64 * 1024, 'a'), [this](absl::Status s) {
    log_.push_back("first:" + str(s));
    throw std::runtime_error("boom");
  });
  p.stream->write(std::string(8 << 20, 'b'), record_write("second"));
  ASSERT_GT(p.stream->write_buffer_size(), 0u);
  const int fd = p.peer.fd();
  ASSERT_TRUE(loop()
                  .add_handler(
                      fd,
                      [&](int, uint32_t) {
                        char buf[65536];
                        if (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) == 0) {
                          loop().remove_handler(fd);
                        }
                      },
                      IOLoop::READ)
                  .ok());
  EXPECT_TRUE(run_until([&] { return log_.size() >= 3; }, 100000)) << log();
  loop().remove_handler(fd);
  EXPECT_EQ(log(), "first:OK: | second:" + kWrite + " | close:" + kWrite);
  EXPECT_EQ(loop().stats().exceptions, 1u);
}

// --- Watermarks ---------------------------------------------------------------------------------

TEST_P(IOStreamExceptionTest, ThrowingHighWatermarkCallbackClosesTheStreamNotTheCaller) {
  Pair p = make_pair();
  ASSERT_TRUE(p.stream->socket().set_send_buffer(4096).ok());
  ASSERT_TRUE(p.stream->set_write_watermarks(64 * 1024, 16 * 1024).ok());
  p.stream->set_high_watermark_callback([] { throw std::runtime_error("boom"); });
  // Before the fix the exception escaped from write() into this test.
  p.stream->write(std::string(1 << 20, 'x'), record_write("write"));
  EXPECT_TRUE(p.stream->closed());
  EXPECT_TRUE(run_until([&] { return log_.size() >= 2; })) << log();
  const std::string high = "INTERNAL:exception in IOStream high watermark callback: boom";
  EXPECT_EQ(log(), "write:" + high + " | close:" + high);
  EXPECT_EQ(loop().stats().exceptions, 1u);
}

// Before the fix the loop swallowed the exception and the callback was gone for good, so the
// stream went on with backpressure silently off.
TEST_P(IOStreamExceptionTest, ThrowingLowWatermarkCallbackClosesTheStream) {
  Pair p = make_pair();
  ASSERT_TRUE(p.stream->socket().set_send_buffer(4096).ok());
  ASSERT_TRUE(p.peer.set_receive_buffer(4096).ok());
  int highs = 0, lows = 0;
  ASSERT_TRUE(p.stream->set_write_watermarks(64 * 1024, 16 * 1024).ok());
  p.stream->set_high_watermark_callback([&] { ++highs; });
  p.stream->set_low_watermark_callback([&] {
    ++lows;
    throw std::runtime_error("boom");
  });
  p.stream->read_until("\n", record("read"));
  for (int i = 0; i < 64; ++i) p.stream->write(std::string(4096, 'x'));  // 256 KiB
  ASSERT_EQ(highs, 1);
  const int fd = p.peer.fd();
  ASSERT_TRUE(loop()
                  .add_handler(
                      fd,
                      [&](int, uint32_t) {
                        char buf[4096];
                        if (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) == 0) {
                          loop().remove_handler(fd);
                        }
                      },
                      IOLoop::READ)
                  .ok());
  EXPECT_TRUE(run_until([&] { return log_.size() >= 2; }, 100000)) << log();
  loop().remove_handler(fd);
  const std::string low = "INTERNAL:exception in IOStream low watermark callback: boom";
  EXPECT_EQ(lows, 1);
  EXPECT_EQ(log(), "read:" + low + " | close:" + low);
  EXPECT_EQ(loop().stats().exceptions, 1u);
}

// --- Callbacks that run after the stream closed -------------------------------------------------

// Every pending write callback throws during the close: each still runs exactly once, then
// the close callback. Before the fix the first throw skipped all the rest.
TEST_P(IOStreamExceptionTest, ThrowingCallbacksDuringCloseDoNotSkipTheOthers) {
  Pair p = make_pair();
  ASSERT_TRUE(p.stream->socket().set_send_buffer(4096).ok());
  p.stream->read_until("\n", [this](absl::StatusOr<std::string> r) {
    log_.push_back("read:" + str(r.status()));
    throw std::runtime_error("boom");
  });
  for (int i = 0; i < 3; ++i) {
    p.stream->write(std::string(1 << 20, 'x'), [this, i](absl::Status s) {
      log_.push_back(absl::StrCat("write", i, ":", str(s)));
      throw std::runtime_error("boom");
    });
  }
  p.stream->close(absl::AbortedError("stop"));
  EXPECT_TRUE(run_until([&] { return log_.size() >= 5; })) << log();
  EXPECT_EQ(log(),
            "read:ABORTED:stop | write0:ABORTED:stop | write1:ABORTED:stop | "
            "write2:ABORTED:stop | close:ABORTED:stop");
  EXPECT_EQ(str(p.stream->error()), "ABORTED:stop");  // the first reason stands
  EXPECT_EQ(loop().stats().exceptions, 4u);
}

// A throwing close callback is logged and counted; calls it made first still complete, and a
// close callback set later (posted) that throws is counted too.
TEST_P(IOStreamExceptionTest, ThrowingCloseCallbackBreaksNothing) {
  Pair p = make_pair();
  Pair other = make_pair();
  p.stream->set_close_callback([this, s = p.stream.get()](absl::Status st) {
    log_.push_back("close:" + str(st));
    s->read_bytes(1, record("read"));
    s->write("x", record_write("write"));
    throw std::runtime_error("boom");
  });
  p.stream->close(absl::AbortedError("stop"));
  EXPECT_TRUE(run_until([&] { return log_.size() >= 3; })) << log();
  EXPECT_EQ(log(), "close:ABORTED:stop | read:ABORTED:stop | write:ABORTED:stop");
  EXPECT_EQ(loop().stats().exceptions, 1u);

  log_.clear();
  p.stream->set_close_callback([this](absl::Status st) {
    log_.push_back("late close:" + str(st));
    throw std::runtime_error("boom");
  });
  EXPECT_TRUE(run_until([&] { return log_.size() >= 1; })) << log();
  EXPECT_EQ(log(), "late close:ABORTED:stop");
  EXPECT_EQ(loop().stats().exceptions, 2u);

  // The neighbour is untouched.
  log_.clear();
  other.stream->read_until("\n", record("other"));
  send(other.peer, "fine\n");
  EXPECT_TRUE(run_until([&] { return log_.size() >= 1; })) << log();
  EXPECT_EQ(log(), "other:OK:fine\n");
  EXPECT_FALSE(other.stream->closed());
}

}  // namespace
}  // namespace ioloop::net
