#include "ioloop/io_loop.h"

#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "testing/loop_test_base.h"

namespace ioloop {
namespace {

class IOLoopTest : public testing::LoopTestBase,
                   public ::testing::WithParamInterface<PollerKind> {
 protected:
  IOLoopTest() : LoopTestBase(GetParam()) {}
};

TEST_P(IOLoopTest, CallbackRuns) {
  int runs = 0;
  loop().add_callback([&] {
    ++runs;
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(runs, 1);
}

TEST_P(IOLoopTest, ReadHandlerSeesData) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  uint32_t seen = 0;
  ASSERT_TRUE(loop()
                  .add_handler(
                      sv[0],
                      [&](int fd, uint32_t events) {
                        seen = events;
                        char c;
                        ASSERT_EQ(::read(fd, &c, 1), 1);
                        EXPECT_EQ(c, 'x');
                        done();
                      },
                      READ)
                  .ok());
  ASSERT_EQ(::write(sv[1], "x", 1), 1);
  ASSERT_TRUE(wait());
  EXPECT_EQ(seen, READ);
  loop().remove_handler(sv[0]);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_P(IOLoopTest, TimerNeverEarly) {
  const TimePoint start = loop().time();
  TimePoint fired;
  loop().call_later(absl::Milliseconds(3), [&] {
    fired = loop().time();
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_GE(fired - start, std::chrono::milliseconds(3));
}

INSTANTIATE_TEST_SUITE_P(Pollers, IOLoopTest,
                         ::testing::Values(PollerKind::kEpoll, PollerKind::kPoll,
                                           PollerKind::kSelect),
                         [](const auto& info) { return std::string(poller_kind_name(info.param)); });

}  // namespace
}  // namespace ioloop
