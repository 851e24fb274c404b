// File: tests/net/http/http_server_async_clients_test.cc
// Deferred, streamed responses as real clients see them: curl (raw and decoded) and Python's
// http.client run as subprocesses against a loopback HTTPServer whose handler writes its body
// in pieces from loop timers. The subprocess's stdout is read through the same loop, so the
// test is single-threaded; no sleeps. Skipped when curl or python3 is missing.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ioloop/net/http/http_response_stream.h"
#include "ioloop/net/http/http_server.h"
#include "testing/loop_test_base.h"

namespace ioloop::net {
namespace {

bool have(const char* tool) {
  return std::system(absl::StrCat("command -v ", tool, " >/dev/null 2>&1").c_str()) == 0;
}

class HTTPServerAsyncClientsTest : public ::ioloop::testing::LoopTestBase {
 protected:
  void SetUp() override {
    // Three pieces, each from its own timer: "hello " "chunked " "world\n".
    server_ =
        std::make_unique<HTTPServer>(loop(), [this](const HTTPRequest&, HTTPResponseWriter& w) {
          w.set_header("Content-Type", "text/plain");
          std::shared_ptr<HTTPResponseStream> s = w.defer();
          loop().call_later(absl::Milliseconds(1), [this, s] {
            s->write("hello ").IgnoreError();
            loop().call_later(absl::Milliseconds(1), [this, s] {
              s->write("chunked ").IgnoreError();
              loop().call_later(absl::Milliseconds(1), [s] {
                s->write("world\n").IgnoreError();
                s->finish().IgnoreError();
              });
            });
          });
        });
    ASSERT_TRUE(server_->listen(0, "127.0.0.1").ok());
    ASSERT_TRUE(server_->start().ok());
  }

  // Runs `command` (with the server's URL in place of URL) and returns its stdout, serving
  // HTTP on this thread meanwhile.
  std::string run(const std::string& command) {
    std::string cmd = command;
    const std::string url = absl::StrCat("http://127.0.0.1:", server_->port(), "/x");
    cmd.replace(cmd.find("URL"), 3, url);
    FILE* pipe = ::popen(cmd.c_str(), "r");
    EXPECT_NE(pipe, nullptr);
    if (pipe == nullptr) return "";
    const int fd = ::fileno(pipe);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    std::string out;
    EXPECT_TRUE(loop()
                    .add_handler(
                        fd,
                        [&](int, uint32_t) {
                          char buf[4096];
                          ssize_t n;
                          while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, n);
                          if (n == 0) done();
                        },
                        IOLoop::READ)
                    .ok());
    EXPECT_TRUE(wait());
    loop().remove_handler(fd);
    EXPECT_EQ(::pclose(pipe), 0) << cmd;
    return out;
  }

  std::unique_ptr<HTTPServer> server_;
};

TEST_F(HTTPServerAsyncClientsTest, CurlSeesExactChunksAndDecodesThem) {
  if (!have("curl")) GTEST_SKIP() << "curl not installed";
  EXPECT_EQ(run("curl -s --raw URL"), "6\r\nhello \r\n8\r\nchunked \r\n6\r\nworld\n\r\n0\r\n\r\n");
  EXPECT_EQ(run("curl -s -D - -o /dev/null -H 'User-Agent:' URL").find("HTTP/1.1 200 OK\r\n"), 0u);
  EXPECT_EQ(run("curl -s URL"), "hello chunked world\n");
  // HTTP/1.0: close-delimited.
  EXPECT_EQ(run("curl -s --http1.0 URL"), "hello chunked world\n");
  EXPECT_EQ(server_->stats().deferred_responses, 4u);
}

TEST_F(HTTPServerAsyncClientsTest, PythonHttpClientReadsTheChunkedBody) {
  if (!have("python3")) GTEST_SKIP() << "python3 not installed";
  const std::string script =
      "import http.client,sys,urllib.parse\n"
      "u=urllib.parse.urlparse(sys.argv[1])\n"
      "c=http.client.HTTPConnection(u.hostname,u.port)\n"
      "for i in range(2):\n"
      "  c.request('GET',u.path)\n"
      "  r=c.getresponse()\n"
      "  print(r.status,r.getheader('Transfer-Encoding'),repr(r.read()))\n";
  EXPECT_EQ(run(absl::StrCat("python3 -c \"", script, "\" URL")),
            "200 chunked b'hello chunked world\\n'\n200 chunked b'hello chunked world\\n'\n");
  EXPECT_EQ(server_->stats().connections, 1u);  // keep-alive: both on one connection
}

}  // namespace
}  // namespace ioloop::net
