// HTTPClient against a Python http.server in a subprocess (another implementation than the
// project's own server): keep-alive reuse, a POST body, a chunked response, HEAD, and a server
// that ends the connection. Runs on the real clock (the peer is another process).
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "http_client_testing.h"
#include "ioloop/net/http/http_client.h"

extern char** environ;

namespace ioloop::net {
namespace {

constexpr char kServer[] = R"PY(
import http.server, sys
connections = 0
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        global connections
        connections += 1
        super().setup()
    def reply(self, body, extra=()):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    def do_GET(self):
        if self.path == "/connections":
            return self.reply(str(connections).encode())
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"hello ", b"from ", b"python"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path == "/close":
            self.close_connection = True
            return self.reply(b"bye", [("Connection", "close")])
        self.reply(("GET " + self.path).encode())
    do_HEAD = do_GET
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.reply(b"POST " + self.rfile.read(n))
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
)PY";

class HTTPClientPythonTest : public HTTPClientTest {
 protected:
  HTTPClientPythonTest() : HTTPClientTest(/*manual_clock=*/false) {}

  void SetUp() override {
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    const char* argv[] = {"python3", "-c", kServer, nullptr};
    const int rc =
        posix_spawnp(&pid_, "python3", &actions, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    if (rc != 0) {
      close(out[0]);
      GTEST_SKIP() << "python3 is not available";
    }
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    ASSERT_TRUE(absl::SimpleAtoi(line, &port_)) << "python server said: " << line;
  }

  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }

  std::string py(absl::string_view path) { return absl::StrCat("http://127.0.0.1:", port_, path); }

  pid_t pid_ = -1;
  int port_ = 0;
};

TEST_F(HTTPClientPythonTest, SequentialFetchesReuseOneConnection) {
  HTTPClient client(loop());
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<HTTPClientResponse> r = get(client, py(absl::StrCat("/n", i)));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->body, absl::StrCat("GET /n", i));
  }
  absl::StatusOr<HTTPClientResponse> r = get(client, py("/connections"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "1");
  EXPECT_EQ(client.stats().connections_opened, 1u);
  EXPECT_EQ(client.stats().connections_reused, 10u);
}

TEST_F(HTTPClientPythonTest, PostChunkedHeadAndClose) {
  HTTPClient client(loop());
  HTTPClientRequest post;
  post.method = "POST";
  post.url = py("/p");
  post.body = "data";
  absl::StatusOr<HTTPClientResponse> r = fetch(client, std::move(post));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "POST data");

  r = get(client, py("/chunked"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "hello from python");
  EXPECT_EQ(r->headers.get("Transfer-Encoding"), "chunked");

  HTTPClientRequest head;
  head.method = "HEAD";
  head.url = py("/h");
  r = fetch(client, std::move(head));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->headers.get("Content-Length"), "6");
  EXPECT_EQ(r->body, "");

  r = get(client, py("/close"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "bye");
  EXPECT_EQ(client.stats().open_connections, 0u);  // not pooled
  r = get(client, py("/after"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->reused_connection);
  EXPECT_EQ(client.stats().retries, 0u);
}

}  // namespace
}  // namespace ioloop::net
