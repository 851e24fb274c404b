// Runs the built examples/http_fetch against a scripted HTTP server in this process (a thread
// per connection answering canned bytes by request path, so malformed, cut-short and silent
// responses are exact) and checks its exit status (0 for 2xx/3xx, 1 for 4xx/5xx, 2 for
// transport errors with a one-line reason), the body on stdout byte for byte, --include's head
// on stderr, and what it sent (method, fields, body).
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "integration/command.h"
#include "integration/scripted_server.h"
#include "ioloop/mutex.h"

#ifndef HTTP_FETCH_PATH
#error "HTTP_FETCH_PATH must name the http_fetch binary (tests/integration/CMakeLists.txt)"
#endif

namespace ioloop::testing {
namespace {

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs http_fetch with `args` (each single-quoted for sh), stdout and stderr to files.
Result fetch(const std::vector<std::string>& args) {
  // Per process and call: ctest runs tests of this file in parallel processes that share
  // TempDir(), and shared names mixed one test's output into another's.
  static int calls = 0;
  const std::string base =
      absl::StrCat(::testing::TempDir(), "/http_fetch.", ::getpid(), ".", ++calls);
  const std::string out = base + ".out", err = base + ".err";
  std::string command = HTTP_FETCH_PATH;
  for (const std::string& a : args) absl::StrAppend(&command, " '", a, "'");
  absl::StrAppend(&command, " >", out, " 2>", err);
  int status = std::system(command.c_str());
  Result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  return r;
}

std::string binary_body() {
  std::string body;
  for (int i = 0; i < 70000; ++i) body.push_back(static_cast<char>((i * 7 + i / 256) & 0xff));
  return body;
}

ScriptedServer::Reply ok(const std::string& body, const std::string& fields = "") {
  return {absl::StrCat("HTTP/1.1 200 OK\r\n", fields, "Content-Length: ", body.size(), "\r\n\r\n",
                       body)};
}

TEST(HTTPFetchTest, BinaryBodyByteExactOnStdout) {
  const std::string body = binary_body();
  ScriptedServer server(Replies{{"/bin", ok(body)}});
  Result r = fetch({server.url("/bin")});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, body);  // NULs, CRLFs and high bytes included
  EXPECT_EQ(r.err, "");
}

TEST(HTTPFetchTest, ChunkedBodyIsDechunked) {
  static constexpr char kResponse[] =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n\0\r\n\r\n4\r\nabcd\r\n0\r\n\r\n";
  ScriptedServer server(Replies{{"/c", {std::string(kResponse, sizeof kResponse - 1)}}});
  Result r = fetch({server.url("/c")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, std::string("\0\r\nabcd", 7));
}

TEST(HTTPFetchTest, IncludeWritesTheHeadToStderr) {
  ScriptedServer server(Replies{{"/h", ok("body", "X-Test: a, b\r\nServer: scripted\r\n")}});
  Result r = fetch({"--include", server.url("/h")});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "body");
  EXPECT_EQ(r.err,
            "HTTP/1.1 200 OK\r\nX-Test: a, b\r\nServer: scripted\r\nContent-Length: 4\r\n\r\n");
}

// Found by a probe: the interim (1xx) heads were left out; curl -i shows them first.
TEST(HTTPFetchTest, IncludeWritesInterimHeadsBeforeTheFinalOne) {
  ScriptedServer server(
      Replies{{"/h", {"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + ok("body").bytes}}});
  Result r = fetch({"--include", server.url("/h")});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "body");
  EXPECT_EQ(r.err,
            "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
            "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n");
}

TEST(HTTPFetchTest, OutputFlagWritesTheFile) {
  const std::string body = binary_body();
  ScriptedServer server(Replies{{"/bin", ok(body)}});
  const std::string file =
      absl::StrCat(::testing::TempDir(), "/http_fetch_output.", ::getpid(), ".bin");
  std::remove(file.c_str());
  Result r = fetch({"--output=" + file, server.url("/bin")});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(read_file(file), body);
}

// Found by a probe: --output truncated the file before the request, so a transfer that failed
// (refused, malformed, too many redirects) left the user's file empty. As curl -o: the file is
// replaced only once a response arrives, and a file made for a failed transfer is removed.
TEST(HTTPFetchTest, AFailedTransferLeavesTheOutputFileAsItWas) {
  ScriptedServer server(Replies{{"/bad", {"HTTP/1.1 abc OK\r\n\r\n", true}},
                                {"/empty", {"HTTP/1.1 204 No Content\r\n\r\n"}},
                                {"/body", ok("new")}});
  const std::string file =
      absl::StrCat(::testing::TempDir(), "/http_fetch_kept.", ::getpid(), ".txt");
  std::remove(file.c_str());
  const auto write = [&](const std::string& text) {
    FILE* f = std::fopen(file.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  };
  const auto exists = [&] { return ::access(file.c_str(), F_OK) == 0; };

  write("precious");
  Result r = fetch({"--output=" + file, server.url("/bad")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(read_file(file), "precious");

  // A file made for the transfer goes with it.
  std::remove(file.c_str());
  r = fetch({"--output=" + file, server.url("/bad")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_FALSE(exists());

  // Also when http_fetch gives up before any request (a review's finding: the file stayed).
  r = fetch({"--output=" + file, "--ca_file=/nonexistent/ca.pem", server.url("/bad")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_FALSE(exists());

  // A symbolic link to a missing file makes that file, as curl does (a review's finding: a
  // failure to open).
  const std::string link = file + ".link";
  std::remove(link.c_str());
  ASSERT_EQ(::symlink(file.c_str(), link.c_str()), 0);
  r = fetch({"--output=" + link, server.url("/body")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(file), "new");
  std::remove(link.c_str());
  std::remove(file.c_str());

  // A response replaces the file, an empty one too.
  write("precious");
  r = fetch({"--output=" + file, server.url("/body")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(file), "new");
  r = fetch({"--output=" + file, server.url("/empty")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(exists());
  EXPECT_EQ(read_file(file), "");
  std::remove(file.c_str());
  r = fetch({"--output=" + file, server.url("/empty")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(exists());
  std::remove(file.c_str());
}

TEST(HTTPFetchTest, ClientAndServerErrorsExitOneWithTheBody) {
  ScriptedServer server(
      Replies{{"/500", {"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops"}}});
  Result r = fetch({server.url("/missing")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "not found");
  EXPECT_EQ(r.err, "");
  r = fetch({server.url("/500")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "oops");
}

// Each test runs http_fetch at most twice: a sanitizer build starts a process in about a
// second on a loaded machine, and every test must stay well under 5 s.
Replies redirects() {
  return Replies{
      {"/old", {"HTTP/1.1 302 Found\r\nLocation: /new\r\nContent-Length: 5\r\n\r\nmoved"}},
      {"/new", ok("new body")},
      {"/loop",
       {"HTTP/1.1 301 Moved Permanently\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n"}}};
}

TEST(HTTPFetchTest, RedirectsAreFollowedOrNot) {
  ScriptedServer server(redirects());
  Result r = fetch({"--include", server.url("/old")});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "new body");
  EXPECT_EQ(r.err, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n");  // the final head only

  r = fetch({"--follow_redirects=false", server.url("/old")});
  EXPECT_EQ(r.exit_code, 0);  // a 3xx is a success
  EXPECT_EQ(r.out, "moved");
}

TEST(HTTPFetchTest, TooManyRedirectsExitTwo) {
  ScriptedServer server(redirects());
  Result r = fetch({"--max_redirects=2", server.url("/loop")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(absl::StartsWith(r.err, "http_fetch: ")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "too many redirects")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(server.requests().size(), 3u);  // the first request and 2 redirects
}

TEST(HTTPFetchTest, SendsPostWithFieldsAndBody) {
  ScriptedServer server(Replies{{"/p", ok("done")}});
  Result r = fetch(
      {"--data=a=1&b=2", "--header=X-List: x, y", "--header", "X-Other:  z ", server.url("/p")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "done");
  std::vector<std::string> requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(requests[0], "POST /p HTTP/1.1\r\n")) << requests[0];
  EXPECT_TRUE(absl::StrContains(requests[0], "\r\nX-List: x, y\r\nX-Other: z\r\n")) << requests[0];
  EXPECT_TRUE(absl::StrContains(requests[0], "\r\nContent-Length: 7\r\n")) << requests[0];
  EXPECT_TRUE(absl::EndsWith(requests[0], "\r\n\r\na=1&b=2")) << requests[0];
}

TEST(HTTPFetchTest, MethodFlagAndDefaultGet) {
  ScriptedServer server(Replies{{"/p", ok("done")}});
  Result r = fetch({"--method=PUT", "--data=", server.url("/p")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = fetch({server.url("/p?q=1")});  // 404 (the path differs), but sent as GET
  EXPECT_EQ(r.exit_code, 1) << r.err;
  std::vector<std::string> requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_TRUE(absl::StartsWith(requests[0], "PUT /p HTTP/1.1\r\n")) << requests[0];
  EXPECT_TRUE(absl::StartsWith(requests[1], "GET /p?q=1 HTTP/1.1\r\n")) << requests[1];
}

// Found by a probe: --data='' sent a GET (the method followed the value, not the flag). curl
// -d '' posts an empty body.
TEST(HTTPFetchTest, EmptyDataStillPosts) {
  ScriptedServer server(Replies{{"/p", ok("done")}});
  Result r = fetch({"--data=", server.url("/p")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = fetch({"--data", "", server.url("/p")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  for (const std::string& request : requests) {
    EXPECT_TRUE(absl::StartsWith(request, "POST /p HTTP/1.1\r\n")) << request;
    EXPECT_TRUE(absl::EndsWith(request, "\r\nContent-Length: 0\r\n\r\n")) << request;
  }
}

// Runs http_fetch once with `args` and expects exit status 2, nothing on stdout beyond
// `out`, and one line on stderr starting "http_fetch: " and containing `reason`.
void expect_transport_error(const std::vector<std::string>& args, absl::string_view reason,
                            absl::string_view out = "") {
  Result r = fetch(args);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, out);
  EXPECT_TRUE(absl::StartsWith(r.err, "http_fetch: ")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, reason)) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(HTTPFetchTest, RefusedExitsTwo) {
  // A port nobody listens on: bound by this test, not listening.
  int probe = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::getsockname(probe, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  // Kept bound, never listening: connecting is refused, and no other test's server can take
  // the port meanwhile (closing it first let one do so under ctest -j).
  expect_transport_error({absl::StrCat("http://127.0.0.1:", ntohs(addr.sin_port), "/")},
                         "Connection refused");
  ::close(probe);
}

TEST(HTTPFetchTest, MalformedAndCutShortResponsesExitTwo) {
  ScriptedServer server(
      Replies{{"/bad", {"HTTP/1.1 abc OK\r\n\r\n", true}},
              {"/short", {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true}}});
  expect_transport_error({server.url("/bad")}, "malformed response: invalid HTTP status code");
  // What arrived before the cut is on stdout.
  // The reason names the request and the phase.
  expect_transport_error({server.url("/short")},
                         "connection closed after 3 of 10 body bytes (GET " + server.url("/short") +
                             ", reading the body)",
                         "abc");
}

TEST(HTTPFetchTest, TimeoutExitsTwo) {
  ScriptedServer server(Replies{{"/hang", {"", false, true}}});
  Result r = fetch({"--timeout=1s", server.url("/hang")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  // Where the transfer was when the time ran out: here the server read the request and never
  // answered. (1 s: the request must be out by then, even on a loaded machine.)
  EXPECT_EQ(r.err, "http_fetch: timeout: the transfer took longer than 1s (GET " +
                       server.url("/hang") + ", waiting for the response)\n");
}

// Found by a probe: a TLS handshake that never ends gave "connect to 127.0.0.1: connect_timeout
// (300ms) expired", naming a limit http_fetch has no flag for, instead of --timeout's line.
TEST(HTTPFetchTest, TimeoutInAHandshakeThatNeverEndsSaysConnecting) {
  ScriptedServer server(Replies{});  // reads the ClientHello as the start of a head, forever
  const std::string url = "https" + server.url("/hang").substr(4);
  Result r = fetch({"--timeout=300ms", url});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "http_fetch: timeout: the transfer took longer than 300ms (GET " + url +
                       ", connecting)\n");
}

// Found by a probe: with stdout closed (`| head -c 10`), http_fetch read on until the body's
// end or --timeout, for ever without one, and then printed two lines (the second with a stale
// errno). It now stops the transfer at the failed write: exit 2, one line naming the error.
TEST(HTTPFetchTest, AClosedStdoutEndsTheTransfer) {
  ScriptedServer server(Replies{{"/endless", {"HTTP/1.1 200 OK\r\n\r\n", false, false, true}}});
  static int calls = 0;
  const std::string err =
      absl::StrCat(::testing::TempDir(), "/http_fetch_pipe.", ::getpid(), ".", ++calls, ".err");
  const std::string command =
      absl::StrCat("bash -c \"", HTTP_FETCH_PATH, " --timeout=60s '", server.url("/endless"),
                   "' 2>", err, " | head -c 10 >/dev/null; exit \\${PIPESTATUS[0]}\"");
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_EQ(read_file(err), "http_fetch: cannot write the body: Broken pipe\n");
  std::remove(err.c_str());
}

// Runs `http_fetch --timeout=1s URL` with stdout and stderr on the given fds (nobody reads
// them) and returns its wait status; nullopt if it outlived the guard (then it is killed). The
// guard is a minute: a failure either way, no duration is asserted.
std::optional<int> fetch_into(const std::string& url, int out_fd, int err_fd) {
  const pid_t pid = ::fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {  // only async-signal-safe calls: the server's threads share this process
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    ::execl(HTTP_FETCH_PATH, HTTP_FETCH_PATH, "--timeout=1s", url.c_str(), nullptr);
    ::_exit(127);
  }
  int status = 0;
  for (int i = 0; i < 600; ++i) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    ::usleep(100 * 1000);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return std::nullopt;
}

// Runs fetch_into() with stdout on `out_fd` and stderr to a file, and expects --timeout's exit
// status and line. `what`: the output, for the failure message.
void expect_timed_out(const std::string& url, int out_fd, const std::string& what) {
  static int calls = 0;
  const std::string err =
      absl::StrCat(::testing::TempDir(), "/http_fetch_full.", ::getpid(), ".", ++calls, ".err");
  const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(err_fd, 0);
  const std::optional<int> status = fetch_into(url, out_fd, err_fd);
  ::close(err_fd);
  ASSERT_TRUE(status.has_value()) << what << ": http_fetch outlived --timeout=1s by a minute";
  ASSERT_TRUE(WIFEXITED(*status)) << what;
  EXPECT_EQ(WEXITSTATUS(*status), 2) << what;
  EXPECT_EQ(read_file(err), "http_fetch: timeout: the transfer took longer than 1s (GET " + url +
                                ", reading the body)\n")
      << what;
  std::remove(err.c_str());
}

// Found by a probe: with stdout a pipe nobody read (`http_fetch --timeout=2s URL | sleep 600`),
// the body's write blocked the loop thread, so --timeout's timer never ran and http_fetch
// waited as long as the reader did. The wait for room is now bounded by --timeout too.
TEST(HTTPFetchTest, TimeoutBoundsAnOutputNobodyReads) {
  ScriptedServer server(Replies{{"/endless", {"HTTP/1.1 200 OK\r\n\r\n", false, false, true}}});
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);  // never read: full after its 64 KiB
  expect_timed_out(server.url("/endless"), pipe_fds[1], "a pipe");
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

// Found by a review: a terminal reports room (POLLOUT) for less than a PIPE_BUF write, which
// then blocked on a terminal nobody read (a stalled ssh session); and with `2>&1` into a full
// pipe, the last line's write blocked after the body's had timed out. Both now give up at the
// deadline (the line a second after it, then dropped: the exit status still says why).
TEST(HTTPFetchTest, TimeoutBoundsATerminalAndAStderrNobodyReads) {
  // Newlines: a terminal writes two bytes for each (ONLCR), so it reports room for a write
  // it cannot take whole.
  ScriptedServer server(
      Replies{{"/endless", {"HTTP/1.1 200 OK\r\n\r\n", false, false, true, '\n'}}});
  const std::string url = server.url("/endless");

  const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);  // never read
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  const int terminal = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(terminal, 0);
  expect_timed_out(url, terminal, "a terminal");
  ::close(terminal);
  ::close(master);

  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  const std::optional<int> status = fetch_into(url, pipe_fds[1], pipe_fds[1]);  // 2>&1, unread
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  ASSERT_TRUE(status.has_value()) << "2>&1: http_fetch outlived --timeout=1s by a minute";
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 2);
}

// Found by a probe: started with stdout closed (`>&-`), http_fetch's epoll descriptor took fd 1,
// and the body went to it: "cannot write the body: Invalid argument". With 0 to 2 held on
// /dev/null (read-only) at start, the write fails as on any closed stdout.
TEST(HTTPFetchTest, StartedWithStdoutClosedSaysSo) {
  ScriptedServer server(Replies{{"/x", {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true}}});
  static int calls = 0;
  const std::string err =
      absl::StrCat(::testing::TempDir(), "/http_fetch_closed.", ::getpid(), ".", ++calls, ".err");
  const std::string command =
      absl::StrCat(HTTP_FETCH_PATH, " '", server.url("/x"), "' >&- 2>", err);
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_EQ(read_file(err), "http_fetch: cannot write the body: Bad file descriptor\n");
  std::remove(err.c_str());
}

TEST(HTTPFetchTest, UsageErrorsExitTwo) {
  Result r = fetch({"ftp://example.com/"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "http_fetch: URL: unsupported scheme 'ftp'\n");
  r = fetch({"--header=NoColon", "http://127.0.0.1:1/"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "http_fetch: --header must be 'Name: value', got 'NoColon'\n");
  // Found by a probe: a control byte in a value went on the wire (a server answers 400).
  r = fetch({"--header=X-Ctl: a\x1b[31m", "http://127.0.0.1:1/"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "http_fetch: HTTPClientRequest.headers: the value of X-Ctl contains a control byte "
            "(only HTAB may)\n");
}

// Found by a review: a usage error's line written to a stderr nobody reads any more (a pipe
// whose reader has gone) killed http_fetch by SIGPIPE (status 141 in a shell), since SIGPIPE
// was ignored only once the loop was about to run. It exits 2 like any usage error.
TEST(HTTPFetchTest, AUsageErrorOnAClosedStderrPipeExitsTwo) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  ::close(pipe_fds[0]);  // the reader has gone
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {                // only async-signal-safe calls: the test may have threads
    ::signal(SIGPIPE, SIG_DFL);  // as from a shell (an ignored signal stays ignored in exec)
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::execl(HTTP_FETCH_PATH, HTTP_FETCH_PATH, nullptr);  // no URL: a usage error
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

}  // namespace
}  // namespace ioloop::testing
