// File: integration/proc_stats.h
// What /proc says about a process the integration tests started: its memory (VmRSS, VmHWM)
// and its CPU time, for the tests that bound them.
#ifndef IOLOOP_TESTS_INTEGRATION_PROC_STATS_H_
#define IOLOOP_TESTS_INTEGRATION_PROC_STATS_H_

#include <sys/types.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ioloop::testing {

// A field of /proc/<pid>/status in KiB ("VmRSS", "VmHWM", ...).
inline absl::StatusOr<int64_t> proc_status_kib(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  if (!in) return absl::NotFoundError(absl::StrCat("no /proc/", pid, "/status"));
  std::string line;
  const std::string prefix = field + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::istringstream fields(line.substr(prefix.size()));
    int64_t kib = 0;
    if (fields >> kib) return kib;
  }
  return absl::NotFoundError(absl::StrCat(field, " not in /proc/", pid, "/status"));
}

// utime + stime of `pid` from /proc/<pid>/stat, in clock ticks (sysconf(_SC_CLK_TCK)).
inline absl::StatusOr<int64_t> proc_cpu_ticks(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Field 2 (comm) may contain spaces: count fields after its closing parenthesis.
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return absl::NotFoundError(absl::StrCat("no /proc/", pid));
  std::istringstream fields(text.substr(paren + 2));
  std::string f;
  int64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14 && !absl::SimpleAtoi(f, &utime)) return absl::InternalError("bad utime");
    if (i == 15 && !absl::SimpleAtoi(f, &stime)) return absl::InternalError("bad stime");
  }
  return utime + stime;
}

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_INTEGRATION_PROC_STATS_H_
