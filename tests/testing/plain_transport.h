// File: testing/plain_transport.h
// PlainTransport: a Transport that does everything as the plain socket does, for a test that
// changes one behaviour (its handshake, output it holds) and keeps the rest plain. Loop thread
// only, like any transport; it does not own the fd.
#ifndef IOLOOP_TESTS_TESTING_PLAIN_TRANSPORT_H_
#define IOLOOP_TESTS_TESTING_PLAIN_TRANSPORT_H_

#include <sys/uio.h>

#include <cstddef>

#include "ioloop/net/buffer.h"
#include "ioloop/net/transport.h"

namespace ioloop::testing {

class PlainTransport : public net::Transport {
 public:
  net::IOResult handshake(int fd) override { return plain().handshake(fd); }
  net::IOResult read(int fd, net::Buffer& buffer, size_t limit) override {
    return plain().read(fd, buffer, limit);
  }
  net::IOResult write(int fd, const struct iovec* iov, int count) override {
    return plain().write(fd, iov, count);
  }
  net::IOResult shutdown_write(int fd) override { return plain().shutdown_write(fd); }
  bool has_buffered_input() const override { return false; }
};

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_TESTING_PLAIN_TRANSPORT_H_
