// IOStream bugs found by tests/fuzz/io_stream_fuzzer.cc, each reduced to a deterministic case.
// On all three pollers.
#include <sys/socket.h>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ioloop/net/io_stream.h"
#include "testing/loop_test_base.h"
#include "testing/pollers.h"

namespace ioloop::net {
namespace {

using ::ioloop::testing::LoopTestBase;

class IOStreamFuzzRegressionTest : public LoopTestBase,
                                   public ::testing::WithParamInterface<PollerKind> {
 protected:
  IOStreamFuzzRegressionTest() : LoopTestBase(GetParam()) {
    auto pair = Socket::pair();
    EXPECT_TRUE(pair.ok()) << pair.status();
    peer_ = std::move(pair->second);
    stream_ = IOStream::create(loop(), std::move(pair->first));
  }

  void send(const std::string& s) {
    ASSERT_EQ(::send(peer_.fd(), s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
  }

  // Reads one byte, then from its callback closes the stream and starts read_until("\n",
  // max_bytes) on what is left buffered; returns that read's result as "code:message" or
  // "OK:<data>".
  std::string read_until_after_close(size_t max_bytes) {
    std::string result;
    stream_->read_bytes(1, [&](absl::StatusOr<std::string> first) {
      ASSERT_TRUE(first.ok()) << first.status();
      stream_->close();
      stream_->read_until(
          "\n",
          [&](absl::StatusOr<std::string> r) {
            result = r.ok() ? "OK:" + *r
                            : absl::StrCat(absl::StatusCodeToString(r.status().code()), ":",
                                           r.status().message());
            done();
          },
          max_bytes);
    });
    EXPECT_TRUE(wait());
    return result;
  }

  Socket peer_;
  std::shared_ptr<IOStream> stream_;
};

INSTANTIATE_TEST_SUITE_P(Pollers, IOStreamFuzzRegressionTest, ioloop::testing::AllPollers(),
                         ioloop::testing::PollerName);

// After the stream closed, buffered data used to complete a read_until past its max_bytes
// (the limit was only checked while the stream was open): 8 bytes for max_bytes=4.
TEST_P(IOStreamFuzzRegressionTest, ReadUntilAfterCloseStillHonoursMaxBytes) {
  send("abcdefgh\n");
  EXPECT_EQ(read_until_after_close(4),
            "RESOURCE_EXHAUSTED:IOStream::read_until: delimiter ends at byte 8, beyond "
            "max_bytes=4");
  EXPECT_TRUE(stream_->error().ok());  // the stream's own close status stands
}

TEST_P(IOStreamFuzzRegressionTest, ReadUntilAfterCloseWithoutDelimiterFailsAtMaxBytes) {
  send("abcdefgh");
  EXPECT_EQ(read_until_after_close(4),
            "RESOURCE_EXHAUSTED:IOStream::read_until: delimiter not found within max_bytes=4");
}

TEST_P(IOStreamFuzzRegressionTest, ReadUntilAfterCloseWithinMaxBytesCompletes) {
  send("abc\nrest");
  EXPECT_EQ(read_until_after_close(3), "OK:bc\n");
}

}  // namespace
}  // namespace ioloop::net
