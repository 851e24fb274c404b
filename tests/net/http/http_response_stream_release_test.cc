// File: tests/net/http/http_response_stream_release_test.cc
// Where an HTTPResponseStream's last reference may go: on its loop thread, on another thread
// while the loop runs (the destruction is posted to the loop), and on another thread once the
// loop is gone (the stream is left to its connection, which frees it as it detaches). The
// connection is a fake target that records where it was called from; ASan's leak check and
// use-after-free detection cover the hand-off between the last two.
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/http/http_response.h"
#include "ioloop/net/http/http_response_stream.h"

namespace ioloop::net {
namespace {

// The connection's side: counts stream_fail() calls and the threads they came from.
class FakeTarget final : public internal::HTTPResponseTarget {
 public:
  std::shared_ptr<HTTPResponseStream> defer() override { return nullptr; }
  absl::Status stream_write(std::string) override { return absl::OkStatus(); }
  void stream_flush(absl::AnyInvocable<void(absl::Status) &&> done) override {
    std::move(done)(absl::OkStatus());
  }
  absl::Status stream_finish(absl::AnyInvocable<void(absl::Status) &&> done) override {
    if (done) std::move(done)(absl::OkStatus());
    return absl::OkStatus();
  }
  absl::Status stream_interim(int, absl::string_view, const HTTPHeaders&) override {
    return absl::OkStatus();
  }
  void stream_fail(const absl::Status&, bool) override {
    fail_threads.push_back(std::this_thread::get_id());
  }
  size_t stream_queued() const override { return 0; }

  std::vector<std::thread::id> fail_threads;
};

// Drops `stream` (the last reference) on a thread of its own.
void drop_on_another_thread(std::shared_ptr<HTTPResponseStream> stream) {
  std::thread([s = std::move(stream)]() mutable { s.reset(); }).join();
}

// Runs `loop` until what is queued on it ran.
void run_pending(IOLoop& loop) {
  loop.add_callback([&loop] { loop.stop(); });
  loop.start();
}

class HTTPResponseStreamReleaseTest : public ::testing::Test {
 protected:
  std::shared_ptr<HTTPResponseStream> make() {
    return HTTPResponseStream::make(&target_, loop_.get(), &head_, 1, false);
  }
  std::unique_ptr<IOLoop> loop_ = std::make_unique<IOLoop>();
  FakeTarget target_;
  HTTPResponseWriter head_;
};

TEST_F(HTTPResponseStreamReleaseTest, OnTheLoopThreadAnUnfinishedStreamFailsAtOnce) {
  make().reset();
  ASSERT_EQ(target_.fail_threads.size(), 1u);
  EXPECT_EQ(target_.fail_threads[0], std::this_thread::get_id());
}

// Found by a threading probe: the worker that dropped the last reference called the
// connection itself, racing the loop thread.
TEST_F(HTTPResponseStreamReleaseTest, OnAnotherThreadTheFailureRunsOnTheLoop) {
  drop_on_another_thread(make());
  EXPECT_TRUE(target_.fail_threads.empty());  // posted, not run on the worker
  run_pending(*loop_);
  ASSERT_EQ(target_.fail_threads.size(), 1u);
  EXPECT_EQ(target_.fail_threads[0], std::this_thread::get_id());
}

// The loop is gone while the stream is still attached (a server's worker loop destroyed with
// its connections): the worker's post fails, and the stream waits for its connection, which
// frees it as it detaches. Nothing calls the connection from the worker.
TEST_F(HTTPResponseStreamReleaseTest, WithTheLoopGoneTheConnectionFreesTheStream) {
  std::shared_ptr<HTTPResponseStream> stream = make();
  HTTPResponseStream* raw = stream.get();
  loop_.reset();
  drop_on_another_thread(std::move(stream));
  EXPECT_TRUE(target_.fail_threads.empty());
  raw->detach(absl::OkStatus());  // what ~HTTPConnectionCore does: frees it (else a leak)
  EXPECT_TRUE(target_.fail_threads.empty());
}

// The other order: the connection let go first, so the worker frees the stream itself.
TEST_F(HTTPResponseStreamReleaseTest, WithTheLoopGoneADetachedStreamIsFreedByTheWorker) {
  std::shared_ptr<HTTPResponseStream> stream = make();
  stream->detach(absl::OkStatus());
  loop_.reset();
  drop_on_another_thread(std::move(stream));
  EXPECT_TRUE(target_.fail_threads.empty());
}

// A post that succeeded but never ran (the loop destroyed first) hands the stream over the
// same way, on the thread destroying the loop.
TEST_F(HTTPResponseStreamReleaseTest, APostedReleaseTheLoopNeverRanLeavesTheStreamAttached) {
  std::shared_ptr<HTTPResponseStream> stream = make();
  HTTPResponseStream* raw = stream.get();
  drop_on_another_thread(std::move(stream));
  loop_.reset();  // destroys the posted release unrun
  EXPECT_TRUE(target_.fail_threads.empty());
  raw->detach(absl::OkStatus());
}

}  // namespace
}  // namespace ioloop::net
