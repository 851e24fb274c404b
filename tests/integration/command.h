// File: integration/command.h
// Runs shell commands for the integration tests that drive examples with real tools (curl,
// Python's http.client, ab, wrk). A tool that is not installed makes its test skip
// (third_party/install-deps.sh installs them all).
#ifndef IOLOOP_TESTS_INTEGRATION_COMMAND_H_
#define IOLOOP_TESTS_INTEGRATION_COMMAND_H_

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace ioloop::testing {

// Runs `command` with sh -c; returns its stdout, and its wait status in *status (0: exit 0).
inline std::string run(const std::string& command, int* status) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    *status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  *status = ::pclose(pipe);
  return out;
}

// Runs a Python program with `python3 -c` (stderr joined to stdout), as run() does. The program
// goes inside double quotes: it must not contain ", $, ` or \.
inline std::string run_python(const std::string& program, int* status) {
  return run("python3 -c \"" + program + "\" 2>&1", status);
}

// The whole file at `path`, byte-exact ("" if it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Whether `tool` is on PATH.
inline bool have(const std::string& tool) {
  int status;
  run("command -v " + tool + " >/dev/null 2>&1", &status);
  return status == 0;
}

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_INTEGRATION_COMMAND_H_
