// File: examples/example_support.h
// Process set-up shared by the example servers (header-only: each examples/*.cc is built as
// its own program). Call these from main() before starting any thread, in this order:
//
//   ioloop::examples::hold_standard_fds();   // first thing, before any fd is opened
//   ioloop::examples::configure_logging(absl::GetFlag(FLAGS_log_level));
//   auto loop = ioloop::examples::make_server_loop(options);  // or the steps one by one:
//     raise_fd_limit(); ignore_sigpipe(); create the IOLoop; stop_on_signals(loop);
//   ... bind, then announce_listening(sockets) (or announce_listening(server.addresses())) ...
//
// Every function logs what it did through the library's logger; failures are logged and, for
// the ones a server cannot run without, returned.
#ifndef IOLOOP_EXAMPLES_EXAMPLE_SUPPORT_H_
#define IOLOOP_EXAMPLES_EXAMPLE_SUPPORT_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "ioloop/io_loop.h"
#include "ioloop/logging.h"
#include "ioloop/net/socket.h"
#include "ioloop/net/socket_address.h"
#include "ioloop/poller.h"

namespace ioloop::examples {

// absl::ParseCommandLine for a program that takes up to `positional` arguments besides its
// flags (the servers none, http_fetch its URL). Returns them, argv[0] not among them, or
// InvalidArgument naming the first one too many: `echo_server 5000`, meant as --port=5000, is
// refused rather than ignored by a server that would then start on its default port. A
// `--name=value` whose value the flag cannot take (`--port=abc`, `--timeout=5` without a unit)
// is InvalidArgument with absl's reason too, so that the program exits 2 as for any bad usage:
// absl's parser would print it and exit 1. (It still does for an unknown flag.)
inline absl::StatusOr<std::vector<std::string>> parse_command_line(int argc, char** argv,
                                                                   size_t positional = 0) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;  // what follows is positional
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) continue;
    const size_t eq = arg.find('=');
    if (eq == absl::string_view::npos) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(arg.substr(0, eq));
    std::string error;
    if (flag != nullptr && !flag->ParseFrom(arg.substr(eq + 1), &error)) {
      return absl::InvalidArgumentError(error);
    }
  }
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  std::vector<std::string> rest(args.begin() + 1, args.end());  // args[0]: the program
  if (rest.size() > positional) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", rest[positional],
                                                   "' (flags are --name=value; see --help)"));
  }
  return rest;
}

// A program started with stdin, stdout or stderr closed (`>&-`, some daemon launchers) would
// hand that number to its first socket or epoll descriptor, and then write its output or log
// lines there. Each closed one is held on /dev/null, read-only: reads see EOF, and writes fail
// with EBADF as on a closed descriptor. (Calls open() only for a closed one.)
inline void hold_standard_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    // open() takes the lowest free number: `fd` itself, since the ones below are open.
    if (::open("/dev/null", O_RDONLY | O_CLOEXEC) < 0) return;
  }
}

// Sets the logger's level from a --log_level flag value. InvalidArgument for an unknown name.
inline absl::Status configure_logging(const std::string& level) {
  return ::ioloop::set_log_level(level);
}

// IOLoop options for a --poller flag value ("epoll", "poll" or "select").
inline absl::StatusOr<IOLoop::Options> loop_options(const std::string& poller) {
  absl::StatusOr<PollerKind> kind = parse_poller_kind(poller);
  if (!kind.ok()) return kind.status();
  IOLoop::Options options;
  options.poller = *kind;
  return options;
}

// A server holds one fd per client. The soft limit is often 1024 while the hard limit is far
// higher: raise the soft one as far as we are allowed. Logs both values.
inline void raise_fd_limit() {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    logger().warn("getrlimit(RLIMIT_NOFILE): {}", std::strerror(errno));
    return;
  }
  const rlim_t before = rl.rlim_cur;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      logger().warn("setrlimit(RLIMIT_NOFILE, {}): {}", rl.rlim_max, std::strerror(errno));
      return;
    }
  }
  logger().info("open file limit: {} (was {}, hard limit {})", rl.rlim_cur, before, rl.rlim_max);
}

// A write to a connection the peer has reset raises SIGPIPE, whose default action kills the
// whole server. The examples send with MSG_NOSIGNAL; this covers every other path.
inline void ignore_sigpipe() { ::signal(SIGPIPE, SIG_IGN); }

// Stops `loop` (so start() returns and main() can exit 0) on SIGINT or SIGTERM. Uses the
// loop's signalfd, which blocks the signals in the calling thread: call it before starting
// any thread, so that every thread inherits the mask.
inline absl::Status stop_on_signals(IOLoop& loop) {
  for (int signo : {SIGINT, SIGTERM}) {
    absl::Status s = loop.add_signal_handler(signo, [&loop](int sig) {
      logger().info("received {}, stopping", ::strsignal(sig));
      loop.stop();
    });
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// The usual start of a server's main(): raise_fd_limit(), ignore_sigpipe(), create the loop,
// make it current and stop_on_signals(). Call it before starting any thread. The error says
// which step failed.
inline absl::StatusOr<std::unique_ptr<IOLoop>> make_server_loop(const IOLoop::Options& options) {
  raise_fd_limit();
  ignore_sigpipe();
  absl::StatusOr<std::unique_ptr<IOLoop>> loop = IOLoop::create(options);
  if (!loop.ok()) {
    return absl::Status(loop.status().code(),
                        absl::StrCat("cannot create the loop: ", loop.status().message()));
  }
  (*loop)->make_current();
  if (absl::Status s = stop_on_signals(**loop); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("cannot handle signals: ", s.message()));
  }
  return loop;
}

// Prints "listening on ADDRESS" on stdout for each socket, one line each, flushed at once:
// with --port 0 this is how a script or a test learns the port the kernel picked.
inline void announce_listening(const std::vector<net::Socket>& sockets) {
  for (const net::Socket& s : sockets) {
    absl::StatusOr<net::SocketAddress> local = s.local_address();
    if (!local.ok()) continue;
    std::printf("listening on %s\n", local->to_string().c_str());
    logger().info("listening on {}", local->to_string());
  }
  std::fflush(stdout);
}

// The same for addresses already known, e.g. TCPServer::addresses().
inline void announce_listening(const std::vector<net::SocketAddress>& addresses) {
  for (const net::SocketAddress& address : addresses) {
    std::printf("listening on %s\n", address.to_string().c_str());
    logger().info("listening on {}", address.to_string());
  }
  std::fflush(stdout);
}

}  // namespace ioloop::examples

#endif  // IOLOOP_EXAMPLES_EXAMPLE_SUPPORT_H_
