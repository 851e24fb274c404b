#include "ioloop/events.h"

#include <poll.h>
#include <sys/epoll.h>

#include "gtest/gtest.h"

namespace ioloop {
namespace {

TEST(EventsTest, ValuesAreTheKernels) {
  // The epoll backend passes masks through untranslated.
  EXPECT_EQ(READ, static_cast<uint32_t>(EPOLLIN));
  EXPECT_EQ(WRITE, static_cast<uint32_t>(EPOLLOUT));
  EXPECT_EQ(ERROR, static_cast<uint32_t>(EPOLLERR | EPOLLHUP));
  EXPECT_EQ(EDGE, static_cast<uint32_t>(EPOLLET));
  EXPECT_EQ(READ, static_cast<uint32_t>(POLLIN));
  EXPECT_EQ(WRITE, static_cast<uint32_t>(POLLOUT));
}

TEST(EventsTest, ToString) {
  EXPECT_EQ(events_to_string(0), "NONE");
  EXPECT_EQ(events_to_string(READ), "READ");
  EXPECT_EQ(events_to_string(WRITE), "WRITE");
  EXPECT_EQ(events_to_string(READ | WRITE), "READ|WRITE");
  EXPECT_EQ(events_to_string(ERROR), "ERR|HUP");
  EXPECT_EQ(events_to_string(EPOLLHUP), "HUP");
  EXPECT_EQ(events_to_string(READ | EPOLLERR), "READ|ERR");
  EXPECT_EQ(events_to_string(READ | WRITE | ERROR | EDGE), "READ|WRITE|ERR|HUP|EDGE");
  EXPECT_EQ(events_to_string(READ | EDGE), "READ|EDGE");
}

}  // namespace
}  // namespace ioloop
