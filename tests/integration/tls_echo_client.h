// File: integration/tls_echo_client.h
// A TLS client written on OpenSSL directly (not on ioloop), with a non-blocking socket, for
// the TLS acceptance tests of the examples and the echo_load tool: an implementation
// independent of the server's, so a bug shared by both sides cannot hide itself.
//
// TLSClientContext trusts one CA file, verifies the peer and its name (SNI "localhost"), and
// allows TLS 1.2 and 1.3. TLSConnection is a state machine driven by pump(revents): it
// finishes the TCP connect, the handshake, writes what send() queued, sends close_notify
// once that is written (if shutdown_after_sending() was called), and reads into received()
// while reading is on. pump() never blocks; it returns the poll() events it waits for, so
// one thread can drive thousands of connections with one poll(). Header-only; a connection
// belongs to one thread.
#ifndef IOLOOP_TESTS_INTEGRATION_TLS_ECHO_CLIENT_H_
#define IOLOOP_TESTS_INTEGRATION_TLS_ECHO_CLIENT_H_

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ioloop/net/socket_address.h"

namespace ioloop::testing {

// OpenSSL's error queue as text (emptied), for a status message.
inline std::string take_openssl_errors() {
  std::string out;
  for (unsigned long e; (e = ERR_get_error()) != 0;) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    absl::StrAppend(&out, out.empty() ? "" : "; ", buf);
  }
  return out.empty() ? "no OpenSSL error" : out;
}

class TLSClientContext {
 public:
  // Verifies servers against `ca_file` (PEM) only; `alpn` (e.g. "http/1.1") is offered when
  // not empty.
  static absl::StatusOr<TLSClientContext> create(const std::string& ca_file,
                                                 const std::string& alpn = "") {
    TLSClientContext c;
    c.ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (!c.ctx_) return absl::InternalError(take_openssl_errors());
    SSL_CTX_set_min_proto_version(c.ctx_.get(), TLS1_2_VERSION);
    if (SSL_CTX_load_verify_locations(c.ctx_.get(), ca_file.c_str(), nullptr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(ca_file, ": ", take_openssl_errors()));
    }
    SSL_CTX_set_verify(c.ctx_.get(), SSL_VERIFY_PEER, nullptr);
    // Partial writes let one SSL_write() go out as far as the socket takes; a moving buffer
    // lets the caller's string grow between the retries that OpenSSL requires.
    SSL_CTX_set_mode(c.ctx_.get(),
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (!alpn.empty()) {
      std::string wire(1, static_cast<char>(alpn.size()));
      wire += alpn;
      SSL_CTX_set_alpn_protos(c.ctx_.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                              static_cast<unsigned>(wire.size()));
    }
    return c;
  }
  SSL_CTX* get() const { return ctx_.get(); }

 private:
  struct Free {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  };
  std::unique_ptr<SSL_CTX, Free> ctx_;
};

class TLSConnection {
 public:
  TLSConnection() = default;
  ~TLSConnection() { close(); }
  TLSConnection(const TLSConnection&) = delete;
  TLSConnection& operator=(const TLSConnection&) = delete;

  // Starts a non-blocking connect to `addr`; the handshake (server name "localhost") follows
  // in pump().
  absl::Status start(const TLSClientContext& ctx, const net::SocketAddress& addr) {
    fd_ = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return absl::ErrnoToStatus(errno, "socket");
    if (::connect(fd_, addr.get(), addr.length()) == 0) {
      connected_ = true;
    } else if (errno != EINPROGRESS) {
      return absl::ErrnoToStatus(errno, "connect");
    }
    ssl_ = SSL_new(ctx.get());
    if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) {
      return absl::InternalError(take_openssl_errors());
    }
    SSL_set_tlsext_host_name(ssl_, "localhost");
    SSL_set1_host(ssl_, "localhost");
    SSL_set_connect_state(ssl_);
    return absl::OkStatus();
  }

  // Frees the SSL and closes the socket (no close_notify). Idempotent.
  void close() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    ssl_ = nullptr;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  int fd() const { return fd_; }
  SSL* ssl() const { return ssl_; }
  bool handshake_done() const { return handshake_done_; }
  // Queues `data` to be written (after what is queued already).
  void send(std::string_view data) { out_.append(data); }
  // Sends close_notify once everything queued has been written: the TLS half-close.
  void shutdown_after_sending() { shutdown_requested_ = true; }
  bool close_notify_sent() const { return close_notify_sent_; }
  size_t unsent() const { return out_.size() - out_offset_; }
  // Reading off: received data stays in the socket, so the server's writes back up.
  void set_reading(bool on) { reading_ = on; }
  // Everything decrypted so far; the caller may consume (erase) it.
  std::string& received() { return in_; }
  // The server's close_notify arrived (SSL_read returned 0 with SSL_ERROR_ZERO_RETURN).
  bool close_notify_received() const { return close_notify_received_; }

  // Does all the work possible without blocking, given the poll() result `revents` for fd()
  // (0 to just try). Returns the events to wait for next (0: nothing left to do: handshake
  // done, nothing to send, and reading off or the server's close_notify received), or an
  // error: connect failure, TLS failure (with OpenSSL's reason), or the connection ending
  // without close_notify (DataLoss: truncation).
  absl::StatusOr<short> pump(short revents) {
    if (!connected_) {
      if (revents == 0) return POLLOUT;
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return absl::ErrnoToStatus(err, "connect");
      connected_ = true;
    }
    short want = 0;
    if (!handshake_done_) {
      const int r = SSL_do_handshake(ssl_);
      if (r != 1) return wants(r, "handshake");
      handshake_done_ = true;
    }
    for (bool progress = true; progress;) {
      progress = false;
      if (out_offset_ < out_.size()) {
        const int n = SSL_write(
            ssl_, out_.data() + out_offset_,
            static_cast<int>(std::min<size_t>(out_.size() - out_offset_, size_t{1} << 16)));
        if (n > 0) {
          out_offset_ += static_cast<size_t>(n);
          progress = true;
          // Drop what is written once it is at least half the string: amortized linear, where
          // erasing every MiB of a 64 MiB send would move gigabytes (slow under TSan).
          if (out_offset_ == out_.size() ||
              (out_offset_ >= (size_t{1} << 20) && 2 * out_offset_ >= out_.size())) {
            out_.erase(0, out_offset_);
            out_offset_ = 0;
          }
        } else {
          absl::StatusOr<short> w = wants(n, "write");
          if (!w.ok()) return w;
          want |= *w;
        }
      } else if (shutdown_requested_ && !close_notify_sent_) {
        const int r = SSL_shutdown(ssl_);  // 0: sent, the peer's not yet seen; 1: both
        if (r >= 0) {
          close_notify_sent_ = true;
          progress = true;
        } else {
          absl::StatusOr<short> w = wants(r, "shutdown");
          if (!w.ok()) return w;
          want |= *w;
        }
      }
      if (reading_ && !close_notify_received_) {
        char buf[64 * 1024];
        const int n = SSL_read(ssl_, buf, sizeof buf);
        if (n > 0) {
          in_.append(buf, static_cast<size_t>(n));
          progress = true;
        } else if (SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN) {
          close_notify_received_ = true;
        } else {
          absl::StatusOr<short> w = wants(n, "read");
          if (!w.ok()) return w;
          want |= *w;
        }
      }
    }
    return want;
  }

  // Drives this one connection with poll() until `done()` holds or `timeout` passes.
  absl::Status pump_until(const std::function<bool()>& done,
                          absl::Duration timeout = absl::Seconds(30)) {
    const absl::Time deadline = absl::Now() + timeout;
    short revents = 0;
    while (true) {
      absl::StatusOr<short> want = pump(revents);
      if (!want.ok()) return want.status();
      if (done()) return absl::OkStatus();
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("pump_until");
      if (*want == 0) return absl::FailedPreconditionError("nothing to wait for, not done");
      pollfd p = {fd_, *want, 0};
      if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) < 0 &&
          errno != EINTR) {
        return absl::ErrnoToStatus(errno, "poll");
      }
      revents = p.revents;
    }
  }

 private:
  // The poll() events an SSL call returning `r` waits for, or its error.
  absl::StatusOr<short> wants(int r, const char* what) {
    const int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ) return POLLIN;
    if (e == SSL_ERROR_WANT_WRITE) return POLLOUT;
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
      const int saved = errno;
      return r == 0 || saved == 0
                 ? absl::DataLossError(absl::StrCat(what, ": EOF without close_notify"))
                 : absl::ErrnoToStatus(saved, what);
    }
    if (e == SSL_ERROR_SSL && ERR_peek_error() != 0 &&
        ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
      ERR_clear_error();
      return absl::DataLossError(absl::StrCat(what, ": EOF without close_notify"));
    }
    return absl::UnavailableError(
        absl::StrCat(what, ": SSL error ", e, ": ", take_openssl_errors()));
  }

  int fd_ = -1;
  SSL* ssl_ = nullptr;
  bool connected_ = false;
  bool handshake_done_ = false;
  bool reading_ = true;
  bool shutdown_requested_ = false;
  bool close_notify_sent_ = false;
  bool close_notify_received_ = false;
  std::string out_;
  size_t out_offset_ = 0;
  std::string in_;
};

// Waits (bounded) for the TCP connection under `fd` to end after the TLS close, and tells how:
// OK for a clean EOF (recv() == 0), the errno otherwise (a reset is ECONNRESET), DataLoss if
// bytes arrived after close_notify, DeadlineExceeded if it stays open.
inline absl::Status wait_for_tcp_eof(int fd, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    char c;
    const ssize_t r = ::recv(fd, &c, 1, MSG_DONTWAIT);
    if (r == 0) return absl::OkStatus();
    if (r > 0) return absl::DataLossError("bytes after close_notify");
    if (errno != EAGAIN && errno != EINTR) return absl::ErrnoToStatus(errno, "recv");
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("connection still open");
    pollfd p = {fd, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
  }
}

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_INTEGRATION_TLS_ECHO_CLIENT_H_
