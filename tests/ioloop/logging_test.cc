#include "ioloop/logging.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ioloop {
namespace {

using ::testing::HasSubstr;

class LoggingTest : public ::testing::Test {
 protected:
  LoggingTest() : saved_(logger().level()) {}
  ~LoggingTest() override { logger().set_level(saved_); }
  spdlog::level::level_enum saved_;
};

TEST_F(LoggingTest, OneNamedLogger) {
  EXPECT_EQ(logger().name(), "ioloop");
  EXPECT_EQ(&logger(), &logger());
  EXPECT_EQ(spdlog::get("ioloop").get(), &logger());
}

TEST_F(LoggingTest, SetsEveryKnownLevel) {
  const std::pair<const char*, spdlog::level::level_enum> levels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"critical", spdlog::level::critical},
      {"off", spdlog::level::off},
  };
  for (const auto& [name, level] : levels) {
    absl::Status s = set_log_level(name);
    EXPECT_TRUE(s.ok()) << name << ": " << s;
    EXPECT_EQ(logger().level(), level) << name;
  }
}

TEST_F(LoggingTest, RejectsUnknownLevelAndKeepsTheCurrentOne) {
  ASSERT_TRUE(set_log_level("warn").ok());
  for (const char* bad : {"verbose", "", "INFO!", "offf"}) {
    absl::Status s = set_log_level(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr(std::string("'") + bad + "'"));
    EXPECT_THAT(s.message(), HasSubstr("trace|debug|info|warn|error|critical|off"));
    EXPECT_EQ(logger().level(), spdlog::level::warn) << bad;
  }
}

}  // namespace
}  // namespace ioloop
