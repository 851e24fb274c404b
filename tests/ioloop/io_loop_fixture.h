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
