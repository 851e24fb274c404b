// File: tests/ioloop/io_loop_fixture.h
// The per-poller IOLoop fixture shared by the io_loop_*_test.cc suites:
//   using IOLoopTest = ::ioloop::testing::IOLoopParamTest;
//   TEST_P(IOLoopTest, ...) { ... }
//   INSTANTIATE_TEST_SUITE_P(Pollers, IOLoopTest, AllPollers(), PollerName);
#ifndef IOLOOP_TESTS_IOLOOP_IO_LOOP_FIXTURE_H_
#define IOLOOP_TESTS_IOLOOP_IO_LOOP_FIXTURE_H_

#include <functional>
#include <memory>

#include "gtest/gtest.h"
#include "ioloop/io_loop.h"
#include "testing/loop_test_base.h"
#include "testing/pollers.h"

namespace ioloop::testing {

// Keeps a loop iterating for exactly `n` iterations (one self-re-adding callback each, so the
// loop never blocks), then stops it: a loop stopped early by someone else shows as count < n.
struct IterationChain {
  IOLoop& loop;
  int n;
  int count = 0;
  void start() {
    loop.add_callback([this] { step(); });
  }
  void step() {
    if (++count == n) {
      loop.stop();
    } else {
      loop.add_callback([this] { step(); });
    }
  }
};

class IOLoopParamTest : public LoopTestBase, public ::testing::WithParamInterface<PollerKind> {
 protected:
  IOLoopParamTest() : LoopTestBase(GetParam()) {}

  // Runs `n` iterations of the loop (a callback that re-adds itself runs once per iteration).
  void run_iterations(int n) {
    auto step = std::make_shared<std::function<void(int)>>();
    *step = [this, step](int left) {
      if (left == 0) {
        done();
        return;
      }
      loop().add_callback([step, left] { (*step)(left - 1); });
    };
    (*step)(n);
    ASSERT_TRUE(wait());
    *step = nullptr;  // break the cycle
  }
};

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_IOLOOP_IO_LOOP_FIXTURE_H_
