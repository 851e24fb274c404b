#include "ioloop/logging.h"

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "spdlog/sinks/stdout_color_sinks.h"

namespace ioloop {

namespace {

std::shared_ptr<spdlog::logger> make_logger() {
  auto existing = spdlog::get("ioloop");
  if (existing) return existing;
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto log = std::make_shared<spdlog::logger>("ioloop", sink);
  log->set_level(spdlog::level::info);
  // The library never calls setenv(), so getenv() races only with a program that does.
  if (const char* env = std::getenv("SPDLOG_LEVEL")) {  // NOLINT(concurrency-mt-unsafe)
    auto level = spdlog::level::from_str(env);
    // from_str() maps unknown names to "off"; only honour names it really knows.
    if (level != spdlog::level::off || std::string(env) == "off") log->set_level(level);
  }
  spdlog::register_logger(log);
  return log;
}

}  // namespace

spdlog::logger& logger() {
  // Leaked on purpose: loops log from destructors that may run during static destruction.
  static auto* const holder = new std::shared_ptr<spdlog::logger>(make_logger());
  return **holder;
}

absl::Status set_log_level(absl::string_view level) {
  const std::string name(level);
  auto parsed = spdlog::level::from_str(name);
  if (parsed == spdlog::level::off && name != "off") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown log level '", name, "': expected trace|debug|info|warn|error|critical|off"));
  }
  logger().set_level(parsed);
  return absl::OkStatus();
}

}  // namespace ioloop
