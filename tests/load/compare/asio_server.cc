// asio_server: the Boost.Asio (header-only, Debian libboost-dev) peer of
// tests/load/compare/run.sh (issue 10).
//
//   asio_server http|echo PORT [ADDRESS]   (PORT 0: the kernel picks one)
//
// One io_context run by one thread; a session per connection owned by the shared_ptr its
// pending handler holds (the usual Asio shape): async_read_some, then async_write of the
// answers, then read again. Each session has its own fixed read buffer, as Asio's examples do.
// http answers with the scanner of scanner.h; echo writes back what it read. Prints
// "listening on ADDRESS:PORT" (flushed); SIGINT or SIGTERM stops the io_context with status 0.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

// Built with -std=c++17 by run.sh: Boost 1.74's awaitable.hpp misses <utility> under C++20.
#include <boost/asio.hpp>

#include "scanner.h"

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr size_t kBufSize = 16 * 1024;  // one read; a kept partial request counts against it
bool echo_mode = false;

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : socket_(std::move(socket)) {}

  void read() {
    socket_.async_read_some(
        asio::buffer(in_ + have_, kBufSize - have_),
        [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
          if (!ec) self->on_read(n);
        });
  }

 private:
  void on_read(size_t n) {
    if (echo_mode) {
      write(in_, n, false);
      return;
    }
    have_ += n;
    size_t count;
    int close;
    const size_t used = scanner_scan(in_, have_, &count, &close);
    std::memmove(in_, in_ + used, have_ - used);
    have_ -= used;
    if (have_ == kBufSize) return;  // a head this large is not one of ours: drop the client
    if (count == 0) {
      read();
      return;
    }
    out_.resize(count * kHelloCloseLen);
    write(out_.data(), scanner_responses(out_.data(), count, close), close != 0);
  }

  void write(const char* data, size_t len, bool close) {
    asio::async_write(
        socket_, asio::buffer(data, len),
        [self = shared_from_this(), close](const boost::system::error_code& ec, size_t) {
          if (ec) return;
          if (close) {
            boost::system::error_code ignored;
            self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
            return;  // the last handler goes, and the socket is closed with the session
          }
          self->read();
        });
  }

  tcp::socket socket_;
  size_t have_ = 0;  // http: bytes of a partial request at the start of in_
  char in_[kBufSize];
  std::vector<char> out_;
};

void accept(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](const boost::system::error_code& ec, tcp::socket socket) {
    if (!ec) {
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket))->read();
    }
    accept(acceptor);
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || (std::strcmp(argv[1], "http") != 0 && std::strcmp(argv[1], "echo") != 0)) {
    std::fprintf(stderr, "usage: %s http|echo PORT [ADDRESS]\n", argv[0]);
    return 2;
  }
  echo_mode = std::strcmp(argv[1], "echo") == 0;
  const std::string address = argc > 3 ? argv[3] : "127.0.0.1";
  asio::io_context io(1);  // concurrency hint 1: one thread, Asio may skip its locking
  tcp::acceptor acceptor(io);
  const tcp::endpoint endpoint(asio::ip::make_address(address),
                               static_cast<unsigned short>(std::atoi(argv[2])));
  acceptor.open(endpoint.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(4096);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](const boost::system::error_code&, int) { io.stop(); });
  accept(acceptor);
  std::printf("listening on %s:%d\n", address.c_str(), acceptor.local_endpoint().port());
  std::fflush(stdout);
  io.run();
  return 0;
}
