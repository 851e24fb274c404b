// File: integration/server_process.h
// ServerProcess: runs an example server as a child process for an integration test. The
// server is started with `--port 0` (or whatever arguments the test gives) and must print
// "listening on HOST:PORT" on stdout; start() waits for that line and parses the port.
//
// Threading: use from the test's thread. The destructor SIGKILLs and reaps a server that is
// still running, so a failing test never leaves one behind.
#ifndef IOLOOP_TESTS_INTEGRATION_SERVER_PROCESS_H_
#define IOLOOP_TESTS_INTEGRATION_SERVER_PROCESS_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ioloop/net/socket_address.h"

namespace ioloop::testing {

class ServerProcess {
 public:
  // Runs `path` with `args`, stdout piped to us (stderr is inherited, so server logs show
  // in the test output, unless `stderr_path` names a file to write them to instead). Waits
  // up to `timeout` for the "listening on " line.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> start(
      const std::string& path, const std::vector<std::string>& args,
      absl::Duration timeout = absl::Seconds(20), const std::string& stderr_path = "") {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
    std::vector<std::string> argv_storage = {path};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);

    const pid_t pid = ::fork();
    if (pid < 0) return absl::ErrnoToStatus(errno, "fork");
    if (pid == 0) {
      ::dup2(out[1], STDOUT_FILENO);  // dup2 clears CLOEXEC on the copy
      if (!stderr_path.empty()) {
        const int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (err >= 0) ::dup2(err, STDERR_FILENO);
      }
      ::execv(path.c_str(), argv.data());
      std::fprintf(stderr, "execv %s: %s\n", path.c_str(), std::strerror(errno));
      ::_exit(127);
    }
    ::close(out[1]);
    auto server = std::unique_ptr<ServerProcess>(new ServerProcess(pid, out[0]));
    if (absl::Status s = server->read_listening_line(timeout); !s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat(absl::StrJoin(argv_storage, " "), ": ", s.message()));
    }
    return server;
  }

  ~ServerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status;
      ::waitpid(pid_, &status, 0);
    }
    ::close(stdout_fd_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  pid_t pid() const { return pid_; }
  // The first address announced, e.g. 127.0.0.1:41234.
  const net::SocketAddress& address() const { return address_; }
  uint16_t port() const { return address_.port(); }
  // Everything read from the server's stdout so far.
  const std::string& stdout_text() const { return stdout_; }

  // Sends `signo` and waits up to `timeout` for the server to exit; returns its wait status
  // (test it with WIFEXITED/WEXITSTATUS). DeadlineExceeded if it is still running.
  absl::StatusOr<int> signal_and_wait(int signo, absl::Duration timeout = absl::Seconds(20)) {
    if (pid_ <= 0) return absl::FailedPreconditionError("server already reaped");
    if (::kill(pid_, signo) != 0) return absl::ErrnoToStatus(errno, "kill");
    // A pidfd becomes readable when the process exits: wait on it instead of sleeping.
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    const absl::Time deadline = absl::Now() + timeout;
    int status = 0;
    while (true) {
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (r < 0) {
        if (pidfd >= 0) ::close(pidfd);
        return absl::ErrnoToStatus(errno, "waitpid");
      }
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        if (pidfd >= 0) ::close(pidfd);
        return absl::DeadlineExceededError(
            absl::StrCat("server pid ", pid_, " still running after signal ", signo));
      }
      if (pidfd >= 0) {
        pollfd p = {pidfd, POLLIN, 0};
        ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // kernels before 5.3
      }
    }
    if (pidfd >= 0) ::close(pidfd);
    pid_ = -1;
    return status;
  }

 private:
  ServerProcess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}

  absl::Status read_listening_line(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    constexpr absl::string_view kPrefix = "listening on ";
    while (true) {
      size_t line_start = 0;
      for (size_t nl; (nl = stdout_.find('\n', line_start)) != std::string::npos;
           line_start = nl + 1) {
        std::string line = stdout_.substr(line_start, nl - line_start);
        if (line.rfind(kPrefix.data(), 0) != 0) continue;
        std::string addr = line.substr(kPrefix.size());
        size_t colon = addr.rfind(':');
        uint32_t port = 0;
        if (colon == std::string::npos || !absl::SimpleAtoi(addr.substr(colon + 1), &port)) {
          return absl::InternalError(absl::StrCat("cannot parse '", line, "'"));
        }
        absl::StatusOr<net::SocketAddress> parsed =
            net::SocketAddress::parse(addr.substr(0, colon), static_cast<uint16_t>(port));
        if (!parsed.ok()) return parsed.status();
        address_ = *parsed;
        return absl::OkStatus();
      }
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError(
            absl::StrCat("no 'listening on' line on stdout; got '", stdout_, "'"));
      }
      pollfd p = {stdout_fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
      if (ready < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "poll");
      if (ready <= 0) continue;  // the pipe blocks: read only when poll said so
      char buf[512];
      ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
      if (n == 0) {
        return absl::UnavailableError(
            absl::StrCat("server exited before listening; stdout: '", stdout_, "'"));
      }
      if (n > 0) stdout_.append(buf, static_cast<size_t>(n));
    }
  }

  pid_t pid_;
  int stdout_fd_;
  std::string stdout_;
  net::SocketAddress address_;
};

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_INTEGRATION_SERVER_PROCESS_H_
