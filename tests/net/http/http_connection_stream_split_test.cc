// The connection core with streamed request bodies (an HTTPBodyHandlerFactory, the path
// http_proxy takes): every way the client's bytes may be split into reads gives the same
// responses and the same bodies as one read. (The buffered path's splits:
// HTTPConnectionCoreTest in http_server_test.cc.)
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "http/http_server_state.h"
#include "ioloop/net/http/http_body_handler.h"
#include "net/http/http_server_testing.h"

namespace ioloop::net {
namespace {

// Collects a streamed body; on_end answers "<target>|<body>", as echo does for a buffered one.
class CollectingHandler : public HTTPBodyHandler {
 public:
  bool on_body(absl::string_view chunk) override {
    body_.append(chunk.data(), chunk.size());
    return true;
  }
  void on_end(const HTTPRequest& request, HTTPResponseWriter& response) override {
    response.set_header("Content-Type", "text/plain");
    response.set_body(absl::StrCat(request.target(), "|", body_));
  }

 private:
  std::string body_;
};

// Found by a probe of http_proxy: with the head's last LF alone in a read (or first in one),
// the body began that many bytes late, and a pipelined request's bytes became body. Every
// three-way split (so every read holding just that LF) and byte at a time.
TEST(HTTPConnectionStreamSplitTest, EverySplitGivesTheSameResponsesAndBodies) {
  const std::string input =
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
      "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n"
      "GET /c HTTP/1.1\r\nHost: x\r\n\r\n"
      "PUT /d HTTP/1.0\nContent-Length: 2\n\nzz";
  auto shared = std::make_shared<HTTPServerState>(
      echo,
      [](const HTTPRequest&, HTTPBodyControl&) -> std::unique_ptr<HTTPBodyHandler> {
        return std::make_unique<CollectingHandler>();
      },
      HTTPServerOptions{});
  const absl::string_view all = input;
  const std::string whole = feed_core(shared, {all});
  EXPECT_EQ(whole, ok_response("/a|abc") + ok_response("/b|q") + ok_response("/c|") +
                       ok_response("/d|zz", "Connection: close\r\n", "HTTP/1.0"));
  for (size_t i = 0; i <= all.size(); ++i) {
    for (size_t j = i; j <= all.size(); ++j) {
      ASSERT_EQ(feed_core(shared, {all.substr(0, i), all.substr(i, j - i), all.substr(j)}), whole)
          << "split at " << i << " and " << j;
    }
  }
  std::vector<absl::string_view> bytes;
  for (size_t i = 0; i < all.size(); ++i) bytes.push_back(all.substr(i, 1));
  EXPECT_EQ(feed_core(shared, bytes), whole);
}

}  // namespace
}  // namespace ioloop::net
