// File: testing/log_capture.h
// Captures what the library's "ioloop" logger writes while a ScopedLogCapture lives, so a test
// can assert on exact log lines (rate limiting, exception messages) instead of reading stderr.
// Install and remove it on the test's thread; lines() may be read from any thread.
#ifndef IOLOOP_TESTS_TESTING_LOG_CAPTURE_H_
#define IOLOOP_TESTS_TESTING_LOG_CAPTURE_H_

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ioloop/logging.h"
#include "spdlog/sinks/base_sink.h"

namespace ioloop::testing {

// Records the payload of every line the "ioloop" logger writes while it is installed.
class CapturingSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

class ScopedLogCapture {
 public:
  ScopedLogCapture() : sink_(std::make_shared<CapturingSink>()) {
    logger().sinks().push_back(sink_);
  }
  ~ScopedLogCapture() {
    auto& sinks = logger().sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  ScopedLogCapture(const ScopedLogCapture&) = delete;
  ScopedLogCapture& operator=(const ScopedLogCapture&) = delete;

  std::vector<std::string> lines() { return sink_->lines(); }
  // All lines joined by '\n', for HasSubstr.
  std::string text() {
    std::string all;
    for (const std::string& line : lines()) all += line + "\n";
    return all;
  }

 private:
  std::shared_ptr<CapturingSink> sink_;
};

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_TESTING_LOG_CAPTURE_H_
