// File: net/io_stream_memory_test.cc
// What an idle accepted stream keeps on the heap (the "Memory" paragraph of
// ioloop/net/io_stream.h): set up as examples/echo_server sets up a connection at accept
// (write watermarks with their two callbacks, a close callback, a streaming read whose
// callbacks capture one pointer), after one message echoed, the stream holds two heap blocks:
// itself with its shared_ptr control block, and the loop's handler entry (whose callback is
// stored inline). Nothing else: no side allocation for the watermarks, no heap box for the
// streaming or the handler callback (issue 10: RSS per idle connection).
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/io_stream.h"
#include "testing/heap.h"
#include "testing/loop_test_base.h"

namespace ioloop::net {
namespace {

using ::ioloop::testing::heap_in_use;
using ::ioloop::testing::malloc_chunk;

constexpr int kStreams = 64;

class IOStreamMemoryTest : public ::ioloop::testing::LoopTestBase {
 protected:
  // Opens kStreams socketpairs, serves the stream end of each like echo_server, echoes one
  // message on each and returns the heap growth once all are idle again. Closes everything
  // before returning, so a second round reuses the same fds (and the loop's handler table
  // does not grow).
  size_t idle_heap() {
    std::vector<int> peers;
    std::vector<int> ends;
    peers.reserve(kStreams);
    ends.reserve(kStreams);
    for (int i = 0; i < kStreams; ++i) {
      int sv[2];
      EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
      ends.push_back(sv[0]);
      peers.push_back(sv[1]);
    }
    std::vector<std::shared_ptr<IOStream>> streams;
    streams.reserve(kStreams);
    int echoed = 0;

    const size_t before = heap_in_use();
    IOStreamOptions options;
    options.socket_nonblocking = true;
    for (int fd : ends) {
      streams.push_back(IOStream::create(loop(), Socket(fd), options));
      IOStream* s = streams.back().get();
      EXPECT_TRUE(s->set_write_watermarks(1 << 20, 1 << 19).ok());
      s->set_high_watermark_callback([s] { s->pause_reading(); });
      s->set_low_watermark_callback([s] { s->resume_reading(); });
      s->set_close_callback([](absl::Status) {});
      s->read_streaming(
          [this, s, &echoed](absl::string_view chunk) {
            s->write_copy(chunk);
            if (++echoed == kStreams) done();
          },
          [](absl::StatusOr<std::string>) {});
    }
    for (int fd : peers) EXPECT_EQ(::send(fd, "ping", 4, MSG_NOSIGNAL), 4);
    EXPECT_TRUE(wait());
    const size_t after = heap_in_use();

    for (int fd : peers) {
      char buf[8] = {};
      EXPECT_EQ(::recv(fd, buf, sizeof buf, 0), 4);
      EXPECT_EQ(std::string(buf, 4), "ping");
    }
    for (auto& s : streams) s->close();
    loop().add_callback([this] { done(); });
    EXPECT_TRUE(wait());  // the close callbacks run
    streams.clear();
    for (int fd : peers) ::close(fd);
    return after - before;
  }
};

TEST_F(IOStreamMemoryTest, IdleServedStreamKeepsItselfAndItsHandlerEntryOnly) {
  // Warm up: the loop's handler table, event array and callback queues reach their size.
  idle_heap();
  const size_t grown = idle_heap();
  if (heap_in_use() == 0) GTEST_SKIP() << "mallinfo2() does not count this allocator's heap";
  // The stream with its make_shared control block (two words of counts, one vtable pointer
  // at most: 16 bytes), and the loop's entry (the handler, its event mask and generation).
  const size_t two_blocks = malloc_chunk(sizeof(IOStream) + 16) +
                            malloc_chunk(sizeof(IOLoop::Handler) + 2 * sizeof(uint32_t));
  // Plus, once for all streams, what the loop's own bookkeeping may grow by (wait()'s timer).
  constexpr size_t kLoopSlack = 1024;
  RecordProperty("heap_bytes_per_stream", static_cast<int>(grown / kStreams));
  RecordProperty("sizeof_IOStream", static_cast<int>(sizeof(IOStream)));
  EXPECT_LE(grown, kStreams * two_blocks + kLoopSlack)
      << static_cast<double>(grown) / kStreams << " B per stream; sizeof(IOStream) "
      << sizeof(IOStream) << ", two blocks " << two_blocks << " B";
}

}  // namespace
}  // namespace ioloop::net
