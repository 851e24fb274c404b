#include "ioloop/net/buffer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace ioloop::net {
namespace {

TEST(BufferTest, DefaultHoldsNoBlock) {
  Buffer b;
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.find("x"), Buffer::npos);
  EXPECT_LE(sizeof(Buffer), 24u);
}

TEST(BufferTest, AppendRetrieve) {
  Buffer b;
  ASSERT_TRUE(b.append("hello ").ok());
  ASSERT_TRUE(b.append("world").ok());
  EXPECT_EQ(b.view(), "hello world");
  EXPECT_EQ(b.retrieve_as_string(6), "hello ");
  EXPECT_EQ(b.readable_bytes(), 5u);
  b.retrieve(2);
  EXPECT_EQ(b.view(), "rld");
  EXPECT_EQ(b.retrieve_all_as_string(), "rld");
  EXPECT_TRUE(b.empty());
  EXPECT_GT(b.capacity(), 0u);
  EXPECT_TRUE(b.release_if_empty());
  EXPECT_EQ(b.capacity(), 0u);
}

TEST(BufferTest, FirstBlockIsExactThenDoubles) {
  Buffer b;
  ASSERT_TRUE(b.append(std::string(10, 'a')).ok());
  EXPECT_EQ(b.capacity(), 10u);
  ASSERT_TRUE(b.append("b").ok());
  EXPECT_EQ(b.capacity(), 20u);
  EXPECT_EQ(b.view(), std::string(10, 'a') + "b");
}

TEST(BufferTest, ReclaimsConsumedPrefixBeforeGrowing) {
  Buffer b;
  ASSERT_TRUE(b.append(std::string(100, 'a')).ok());
  b.retrieve(90);
  ASSERT_TRUE(b.append(std::string(80, 'b')).ok());
  EXPECT_EQ(b.capacity(), 100u);
  std::string expected(10, 'a');
  expected.append(80, 'b');  // not a + of two temporaries: g++ 12's -Warray-bounds misfires on it
  EXPECT_EQ(b.view(), expected);
}

TEST(BufferTest, ReleaseIfEmptyKeepsData) {
  Buffer b;
  ASSERT_TRUE(b.append("x").ok());
  EXPECT_FALSE(b.release_if_empty());
  EXPECT_EQ(b.view(), "x");
}

TEST(BufferTest, ShrinkToReadable) {
  Buffer b;
  ASSERT_TRUE(b.append(std::string(1000, 'a')).ok());
  b.retrieve(997);
  b.shrink();
  EXPECT_EQ(b.capacity(), 3u);
  EXPECT_EQ(b.view(), "aaa");
}

// A source inside the buffer's own readable bytes (append(view()), repeating a part) moves
// with them when the append slides or reallocates them; it is copied from where it went.
TEST(BufferTest, AppendingItsOwnBytesWhileSlidingCopiesThem) {
  Buffer b;
  ASSERT_TRUE(b.append("abcdefghij").ok());
  ASSERT_EQ(b.capacity(), 10u);
  b.retrieve(3);
  ASSERT_TRUE(b.append(b.peek(), 3).ok());  // fits once "abc" is reclaimed: a slide
  EXPECT_EQ(b.capacity(), 10u);
  EXPECT_EQ(b.view(), "defghijdef");
}

TEST(BufferTest, AppendingItsOwnBytesWhileGrowingCopiesThem) {
  Buffer b;
  ASSERT_TRUE(b.append("0123456789").ok());
  ASSERT_TRUE(b.append(b.view()).ok());  // a new block; the old one is freed
  EXPECT_EQ(b.view(), "01234567890123456789");
  b.retrieve(15);
  ASSERT_TRUE(b.append(b.view().substr(2)).ok());  // room at the end: no move
  EXPECT_EQ(b.view(), "56789789");
}

TEST(BufferTest, FindFromOffsetAndStraddle) {
  Buffer b;
  ASSERT_TRUE(b.append("ab\r\ncd\r\n").ok());
  EXPECT_EQ(b.find("\r\n"), 2u);
  EXPECT_EQ(b.find("\r\n", 3), 6u);
  EXPECT_EQ(b.find("\r\n", 7), Buffer::npos);
  EXPECT_EQ(b.find(""), Buffer::npos);
  b.retrieve(3);  // "\ncd\r\n"
  EXPECT_EQ(b.find("\r\n"), 3u);
}

TEST(BufferTest, MoveTransfersBlock) {
  Buffer a;
  ASSERT_TRUE(a.append("data").ok());
  Buffer b(std::move(a));
  EXPECT_EQ(b.view(), "data");
  EXPECT_EQ(a.capacity(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty
  Buffer c;
  c = std::move(b);
  EXPECT_EQ(c.view(), "data");
}

// Appending past the 4 GiB - 1 limit used to allocate a 4 GiB - 1 block and copy the whole
// source into it (a heap overflow). The source here is an untouched MAP_NORESERVE mapping,
// so the test costs address space, not memory: a correct append refuses before reading it.
TEST(BufferTest, AppendPastTheLimitFailsAndKeepsTheData) {
  const size_t n = static_cast<size_t>(UINT32_MAX);  // 3 + n > the limit
  void* src = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (src == MAP_FAILED) GTEST_SKIP() << "cannot map 4 GiB of address space: " << strerror(errno);
  Buffer b;
  ASSERT_TRUE(b.append("abc").ok());
  const absl::Status s = b.append(static_cast<const char*>(src), n);
  ::munmap(src, n);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "Buffer: 3 bytes held + 4294967295 more exceed the limit of 4294967295");
  EXPECT_EQ(b.view(), "abc");
  EXPECT_EQ(b.capacity(), 3u);
  EXPECT_EQ(b.ensure_writable(Buffer::kMaxSize).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(b.capacity(), 3u);
  EXPECT_TRUE(b.append("de").ok());
  EXPECT_EQ(b.view(), "abcde");
}

class BufferFdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv_), 0);
    int big = 1 << 20;
    ::setsockopt(sv_[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    ::setsockopt(sv_[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  }
  void TearDown() override {
    ::close(sv_[0]);
    ::close(sv_[1]);
  }
  void put(const std::string& s) {
    ASSERT_EQ(::write(sv_[1], s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  // A lending buffer that read `s` from the socket into the spill area (returned by move,
  // which hands the loan over).
  Buffer lent(const std::string& s) {
    put(s);
    Buffer b;
    b.set_lending(true);
    int err = 0;
    EXPECT_EQ(b.read_fd(sv_[0], &err), static_cast<ssize_t>(s.size()));
    EXPECT_TRUE(b.lending());
    return b;
  }
  int sv_[2];
};

TEST_F(BufferFdTest, SmallReadAllocatesOnlyWhatArrived) {
  put("hello");
  Buffer b;
  int err = 0;
  EXPECT_EQ(b.read_fd(sv_[0], &err), 5);
  EXPECT_EQ(b.view(), "hello");
  EXPECT_EQ(b.capacity(), 5u);
}

TEST_F(BufferFdTest, OneCallReadsUpToSpillSize) {
  std::string data(200 * 1024, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(sv_[1], data.data() + off, data.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ASSERT_GE(off, Buffer::kSpillSize + 10);
  Buffer b;
  ASSERT_TRUE(b.append("0123456789").ok());
  b.retrieve(10);  // 10 bytes of writable space, plus the spill area
  int err = 0;
  EXPECT_EQ(b.read_fd(sv_[0], &err), static_cast<ssize_t>(10 + Buffer::kSpillSize));
  EXPECT_EQ(b.view(), data.substr(0, 10 + Buffer::kSpillSize));
}

TEST_F(BufferFdTest, MaxBytesLimitsTheRead) {
  put("abcdefgh");
  Buffer b;
  int err = 0;
  EXPECT_EQ(b.read_fd_request(3), 3u);
  EXPECT_EQ(b.read_fd(sv_[0], &err, 3), 3);
  EXPECT_EQ(b.view(), "abc");
  EXPECT_EQ(b.read_fd(sv_[0], &err, 0), -1);
  EXPECT_EQ(err, ENOBUFS);
  EXPECT_EQ(b.read_fd(sv_[0], &err), 5);
  EXPECT_EQ(b.view(), "abcdefgh");
}

TEST_F(BufferFdTest, EmptySocketAndEof) {
  Buffer b;
  int err = 0;
  EXPECT_EQ(b.read_fd(sv_[0], &err), -1);
  EXPECT_EQ(err, EAGAIN);
  ::shutdown(sv_[1], SHUT_WR);
  EXPECT_EQ(b.read_fd(sv_[0], &err), 0);
  EXPECT_EQ(b.capacity(), 0u);
}

// read_socket() (recv, or recvmsg with the spill area as a second iovec) gives read_fd()'s
// results: the bytes, the limits, EAGAIN, EOF and lending; a pipe is not a socket.
TEST_F(BufferFdTest, ReadSocketReadsAsReadFdDoes) {
  int err = 0;
  Buffer small;
  put("hello");
  EXPECT_EQ(small.read_socket(sv_[0], &err), 5);  // no block: one iovec, recv()
  EXPECT_EQ(small.view(), "hello");
  EXPECT_EQ(small.capacity(), 5u);

  std::string data(Buffer::kSpillSize + 100, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  put(data);
  Buffer two;
  ASSERT_TRUE(two.append("0123456789").ok());
  two.retrieve(10);  // 10 bytes of writable space, plus the spill area: recvmsg()
  EXPECT_EQ(two.read_socket(sv_[0], &err), static_cast<ssize_t>(10 + Buffer::kSpillSize));
  EXPECT_EQ(two.view(), data.substr(0, 10 + Buffer::kSpillSize));
  EXPECT_EQ(two.read_socket(sv_[0], &err, 3), 3);
  EXPECT_EQ(two.read_socket(sv_[0], &err, 0), -1);
  EXPECT_EQ(err, ENOBUFS);
  EXPECT_EQ(two.read_socket(sv_[0], &err), 87);
  EXPECT_TRUE(two.view() == data);

  Buffer lending;
  lending.set_lending(true);
  put("lent");
  EXPECT_EQ(lending.read_socket(sv_[0], &err), 4);
  EXPECT_TRUE(lending.lending());
  EXPECT_EQ(lending.view(), "lent");
  EXPECT_EQ(lending.read_socket(sv_[0], &err), -1);
  EXPECT_EQ(err, EAGAIN);
  EXPECT_EQ(lending.view(), "lent");
  ::shutdown(sv_[1], SHUT_WR);
  EXPECT_EQ(lending.read_socket(sv_[0], &err), 0);
  EXPECT_EQ(lending.view(), "lent");

  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK), 0);
  ASSERT_EQ(::write(fds[1], "pipe", 4), 4);
  Buffer pipe;
  EXPECT_EQ(pipe.read_socket(fds[0], &err), -1);
  EXPECT_EQ(err, ENOTSOCK);
  EXPECT_EQ(pipe.read_fd(fds[0], &err), 4);  // read_fd() reads any fd
  EXPECT_EQ(pipe.view(), "pipe");
  ::close(fds[0]);
  ::close(fds[1]);
}

// Lending: a read into an empty buffer leaves the bytes in the thread's spill area (no block);
// every way the loan ends keeps the unconsumed bytes, exactly.
TEST_F(BufferFdTest, LendingReadLeavesTheBytesInTheSpillArea) {
  Buffer b = lent("hello");
  EXPECT_TRUE(b.lending());
  EXPECT_EQ(b.view(), "hello");
  EXPECT_EQ(b.capacity(), 0u);  // no block
  EXPECT_EQ(b.writable_bytes(), 0u);
  b.retrieve(5);
  EXPECT_TRUE(b.release_if_empty());
  EXPECT_FALSE(b.lending());
  EXPECT_EQ(b.capacity(), 0u);
}

// end_lending() and shrink() both leave a block of exactly the unconsumed rest.
TEST_F(BufferFdTest, EndingALoanCopiesExactlyTheUnconsumedRest) {
  Buffer b = lent("hello world");
  b.retrieve(6);
  b.end_lending();
  EXPECT_FALSE(b.lending());
  EXPECT_EQ(b.view(), "world");
  EXPECT_EQ(b.capacity(), 5u);
  Buffer c = lent("abcd");
  c.retrieve(1);
  c.shrink();
  EXPECT_FALSE(c.lending());
  EXPECT_EQ(c.view(), "bcd");
  EXPECT_EQ(c.capacity(), 3u);
}

TEST_F(BufferFdTest, WritingIntoALentBufferTakesABlockFirst) {
  Buffer b = lent("abc");
  int err = 0;
  ASSERT_TRUE(b.append("def").ok());
  EXPECT_FALSE(b.lending());
  EXPECT_EQ(b.view(), "abcdef");
  // A second read appends to what is held: no loan while bytes are held in a block.
  put("gh");
  EXPECT_EQ(b.read_fd(sv_[0], &err), 2);
  EXPECT_FALSE(b.lending());
  EXPECT_EQ(b.view(), "abcdefgh");
}

TEST_F(BufferFdTest, AppendingLentBytesToTheirBufferCopiesThem) {
  Buffer b = lent("abc");
  ASSERT_TRUE(b.append(b.view()).ok());
  EXPECT_FALSE(b.lending());
  EXPECT_EQ(b.view(), "abcabc");
}

TEST_F(BufferFdTest, ReadingAgainWhileLendingAppends) {
  Buffer b = lent("abc");
  int err = 0;
  put("de");
  EXPECT_EQ(b.read_fd(sv_[0], &err), 2);
  EXPECT_EQ(b.view(), "abcde");
  b.retrieve(5);
  put("f");  // into the block the second read made: a buffer with a block does not lend
  EXPECT_EQ(b.read_fd(sv_[0], &err), 1);
  EXPECT_FALSE(b.lending());
  EXPECT_EQ(b.view(), "f");
  b.retrieve(1);
  ASSERT_TRUE(b.release_if_empty());
  put("g");  // no block again: lends
  EXPECT_EQ(b.read_fd(sv_[0], &err), 1);
  EXPECT_TRUE(b.lending());
  EXPECT_EQ(b.view(), "g");
}

// The spill area is the thread's: a second lender's read first moves the first one's bytes
// into a block of their own.
TEST_F(BufferFdTest, AnotherLendersReadEndsTheFirstLoan) {
  int other[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, other), 0);
  put("first");
  ASSERT_EQ(::write(other[1], "second", 6), 6);
  Buffer a, b;
  a.set_lending(true);
  b.set_lending(true);
  int err = 0;
  ASSERT_EQ(a.read_fd(sv_[0], &err), 5);
  ASSERT_EQ(b.read_fd(other[0], &err), 6);
  EXPECT_FALSE(a.lending());
  EXPECT_TRUE(b.lending());
  EXPECT_EQ(a.view(), "first");
  EXPECT_EQ(b.view(), "second");
  ::close(other[0]);
  ::close(other[1]);
}

TEST_F(BufferFdTest, MovingAndDestroyingALenderKeepTheAreaConsistent) {
  Buffer b = lent("moved");
  Buffer c(std::move(b));
  EXPECT_TRUE(c.lending());
  EXPECT_FALSE(b.lending());
  EXPECT_TRUE(b.empty());
  {
    Buffer d;
    d = std::move(c);
    EXPECT_EQ(d.view(), "moved");
    Buffer e = lent("x");  // d's loan ends: its bytes get a block
    EXPECT_EQ(d.view(), "moved");
    EXPECT_FALSE(d.lending());
  }
  // Destroyed lenders are forgotten: this read must not touch them.
  Buffer f = lent("after");
  EXPECT_EQ(f.view(), "after");
  f.set_lending(false);  // ends the loan
  EXPECT_FALSE(f.lending());
  EXPECT_EQ(f.view(), "after");
}

}  // namespace
}  // namespace ioloop::net
