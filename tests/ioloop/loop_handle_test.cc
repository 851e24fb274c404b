#include "ioloop/loop_handle.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "ioloop/io_loop.h"
#include "testing/loop_test_base.h"

namespace ioloop {
namespace {

class LoopHandleTest : public ioloop::testing::LoopTestBase {};

TEST_F(LoopHandleTest, IsTheSameObjectEveryTime) {
  EXPECT_EQ(loop().handle(), loop().handle());
  EXPECT_TRUE(loop().handle()->alive());
}

TEST_F(LoopHandleTest, PostFromAnotherThreadRunsOnTheLoopThread) {
  std::shared_ptr<LoopHandle> handle = loop().handle();
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id ran_on;
  bool posted = false;
  std::thread poster([&] {
    posted = handle->post([&] {
      ran_on = std::this_thread::get_id();
      done();
    });
  });
  ASSERT_TRUE(wait());
  poster.join();
  EXPECT_TRUE(posted);
  EXPECT_EQ(ran_on, loop_thread);
}

TEST(LoopHandleLifetimeTest, PostAfterTheLoopIsGoneDestroysTheCallbackUnrun) {
  auto loop = std::make_unique<IOLoop>();
  std::shared_ptr<LoopHandle> handle = loop->handle();
  loop.reset();
  EXPECT_FALSE(handle->alive());
  auto token = std::make_shared<int>(0);
  bool ran = false;
  EXPECT_FALSE(handle->post([token, &ran] { ran = true; }));
  EXPECT_EQ(token.use_count(), 1) << "the callback must be destroyed before post() returns";
  EXPECT_FALSE(ran);
}

// The callable's destructor may post again (it runs outside the handle's lock).
TEST(LoopHandleLifetimeTest, ADroppedCallbackMayPostFromItsDestructor) {
  auto loop = std::make_unique<IOLoop>();
  std::shared_ptr<LoopHandle> handle = loop->handle();
  loop.reset();
  struct PostsOnDestruction {
    std::shared_ptr<LoopHandle> handle;
    bool* reposted;
    ~PostsOnDestruction() {
      if (handle) *reposted = !handle->post([] {});
    }
    PostsOnDestruction(std::shared_ptr<LoopHandle> h, bool* r)
        : handle(std::move(h)), reposted(r) {}
    PostsOnDestruction(PostsOnDestruction&& o) noexcept
        : handle(std::move(o.handle)), reposted(o.reposted) {}
  };
  bool reposted = false;
  EXPECT_FALSE(handle->post([p = PostsOnDestruction(handle, &reposted)] {}));
  EXPECT_TRUE(reposted);
}

// A callback posted while the loop lived but never run is destroyed with the loop.
TEST(LoopHandleLifetimeTest, PendingPostIsDestroyedUnrunWithTheLoop) {
  auto loop = std::make_unique<IOLoop>();
  auto token = std::make_shared<int>(0);
  bool ran = false;
  EXPECT_TRUE(loop->handle()->post([token, &ran] { ran = true; }));
  EXPECT_EQ(token.use_count(), 2);
  loop.reset();
  EXPECT_EQ(token.use_count(), 1);
  EXPECT_FALSE(ran);
}

// Threads post as fast as they can while the loop is destroyed under them: each callback is
// either queued (then destroyed by ~IOLoop) or refused (then destroyed by post()), never
// lost or touched after the loop is gone. ASan and TSan check the rest.
TEST(LoopHandleLifetimeTest, ConcurrentPostsWhileTheLoopIsDestroyed) {
  auto loop = std::make_unique<IOLoop>();
  std::shared_ptr<LoopHandle> handle = loop->handle();
  auto token = std::make_shared<int>(0);
  constexpr int kThreads = 4;
  std::atomic<int> accepted{0}, refused{0}, running{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      ++running;
      // Post until refused: some posts surely land before and some after the destruction.
      while (handle->post([token] {})) ++accepted;
      ++refused;
    });
  }
  // Destroy once every thread is posting.
  while (running.load() < kThreads || accepted.load() < 100 * kThreads) std::this_thread::yield();
  loop.reset();
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(refused.load(), kThreads);
  EXPECT_GE(accepted.load(), 100 * kThreads);
  EXPECT_EQ(token.use_count(), 1);
}

}  // namespace
}  // namespace ioloop
