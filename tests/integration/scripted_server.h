// File: integration/scripted_server.h
// ScriptedServer: the HTTP server of http_fetch_integration_test, in the test's process (a
// thread per connection), answering canned bytes by request path, so that malformed,
// cut-short and silent responses are exact.
#ifndef IOLOOP_TESTS_INTEGRATION_SCRIPTED_SERVER_H_
#define IOLOOP_TESTS_INTEGRATION_SCRIPTED_SERVER_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
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
#include "ioloop/mutex.h"

namespace ioloop::testing {

// Answers each request with the canned bytes for its path (404 if none), then keeps the
// connection open for the next request unless the canned response says to close. Records
// every request (head and body) it read.
class ScriptedServer {
 public:
  struct Reply {
    std::string bytes;
    bool close = false;    // close the connection after writing
    bool silent = false;   // write nothing; wait for the client to go away
    bool endless = false;  // after `bytes`, send `fill` bytes until the client goes away
    char fill = '\0';
  };

  explicit ScriptedServer(std::map<std::string, Reply> replies) : replies_(std::move(replies)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener_, 16) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen: " << std::strerror(errno);
    }
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~ScriptedServer() {
    ::shutdown(listener_, SHUT_RDWR);  // wakes accept()
    acceptor_.join();
    {
      MutexLock lock(&mu_);
      for (int fd : connections_) ::shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& t : threads_) t.join();
    ::close(listener_);
  }

  std::string url(absl::string_view path) const {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }

  std::vector<std::string> requests() {
    MutexLock lock(&mu_);
    return requests_;
  }

 private:
  void accept_loop() {
    for (;;) {
      int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      MutexLock lock(&mu_);
      connections_.push_back(fd);
      threads_.emplace_back([this, fd] { serve(fd); });
    }
  }

  // Reads one request (head, then a Content-Length body); false at EOF or on error.
  static bool read_request(int fd, std::string& buffer, std::string& request) {
    size_t end;
    while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
      if (!read_more(fd, buffer)) return false;
    }
    std::string head = buffer.substr(0, end + 4);
    size_t length = 0;
    for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
      if (absl::StartsWithIgnoreCase(line, "content-length:")) {
        (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(15)), &length);
      }
    }
    while (buffer.size() < head.size() + length) {
      if (!read_more(fd, buffer)) return false;
    }
    request = buffer.substr(0, head.size() + length);
    buffer.erase(0, request.size());
    return true;
  }

  static bool read_more(int fd, std::string& buffer) {
    char chunk[4096];
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<size_t>(n));
    return true;
  }

  void serve(int fd) {
    std::string buffer, request;
    while (read_request(fd, buffer, request)) {
      {
        MutexLock lock(&mu_);
        requests_.push_back(request);
      }
      // "GET /path HTTP/1.1": the target is between the first two spaces.
      size_t a = request.find(' ');
      size_t b = request.find(' ', a + 1);
      std::string path = request.substr(a + 1, b - a - 1);
      auto it = replies_.find(path);
      Reply reply = it != replies_.end()
                        ? it->second
                        : Reply{"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"};
      if (reply.silent) {
        while (read_more(fd, buffer)) {
        }
        break;
      }
      size_t sent = 0;
      while (sent < reply.bytes.size()) {
        ssize_t n = ::send(fd, reply.bytes.data() + sent, reply.bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
      const std::string filler(reply.endless ? 65536 : 0, reply.fill);
      while (reply.endless && sent == reply.bytes.size()) {
        if (::send(fd, filler.data(), filler.size(), MSG_NOSIGNAL) <= 0) break;
      }
      if (reply.close || reply.endless) break;
    }
    ::shutdown(fd, SHUT_RDWR);
    MutexLock lock(&mu_);
    // The fd is closed here, once, by its own thread; the destructor only shuts it down.
    for (int& c : connections_) {
      if (c == fd) c = -1;
    }
    ::close(fd);
  }

  const std::map<std::string, Reply> replies_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::thread acceptor_;
  Mutex mu_;
  std::vector<int> connections_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
};

using Replies = std::map<std::string, ScriptedServer::Reply>;

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_INTEGRATION_SCRIPTED_SERVER_H_
