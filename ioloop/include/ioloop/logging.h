/// @file ioloop/logging.h
/// The library's one spdlog logger, named "ioloop". Thread-safe.
#ifndef IOLOOP_LOGGING_H_
#define IOLOOP_LOGGING_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ioloop/rate_limiter.h"
#include "spdlog/spdlog.h"

namespace ioloop {

/// The "ioloop" logger (stderr, colour when a terminal). Its initial level comes from the
/// SPDLOG_LEVEL environment variable when set, else "info".
spdlog::logger& logger();

/// Sets the level from trace|debug|info|warn|error|critical|off. InvalidArgument otherwise.
absl::Status set_log_level(absl::string_view level);

}  // namespace ioloop

#endif  // IOLOOP_LOGGING_H_
