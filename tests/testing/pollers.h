// File: testing/pollers.h
// The readiness backends every per-poller suite runs on, and readable test names for them:
//   INSTANTIATE_TEST_SUITE_P(Pollers, MyTest, AllPollers(), PollerName);
#ifndef IOLOOP_TESTS_TESTING_POLLERS_H_
#define IOLOOP_TESTS_TESTING_POLLERS_H_

#include <string>

#include "gtest/gtest.h"
#include "ioloop/poller.h"

namespace ioloop::testing {

inline auto AllPollers() {
  return ::testing::Values(PollerKind::kEpoll, PollerKind::kPoll, PollerKind::kSelect);
}

inline std::string PollerName(const ::testing::TestParamInfo<PollerKind>& info) {
  return std::string(poller_kind_name(info.param));
}

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_TESTING_POLLERS_H_
