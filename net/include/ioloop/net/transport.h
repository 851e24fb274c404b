/// @file ioloop/net/transport.h
/// Transport: how an IOStream moves bytes through its socket. The stream keeps the buffers,
/// the read modes, the write queue, the callbacks and the close order; the transport only
/// turns "read into this buffer" / "send these bytes" / "end the write side" into syscalls.
/// Two exist: the plain transport (the socket itself: one recv per read, one send or
/// sendmsg per write batch, shutdown(SHUT_WR)) and TLS (ioloop/net/tls/tls_transport.h, OpenSSL
/// over the same fd).
///
/// Contract for every implementation:
///   - Non-blocking and synchronous: each call does what it can now and returns what
///     happened. A transport never calls back into its stream and never touches the loop;
///     the stream decides what to wait for from the returned IOResult.
///   - kWantRead / kWantWrite say which readiness lets the same call make progress. TLS may
///     need to read to finish a write (a handshake message, a key update) or to write to
///     finish a read; the stream registers that interest even while reading is paused.
///   - One thread: the stream's loop thread, like the stream itself.
///   - Errors are an absl::Status the stream closes with: the errno text for socket errors
///     (Unavailable "Connection reset by peer", ...), the library's reason for TLS.
///
/// Ownership: IOStream::create() takes a std::unique_ptr<Transport> (null: the plain one,
/// which is stateless and shared). A transport does not own the fd; the stream does.
#ifndef IOLOOP_NET_TRANSPORT_H_
#define IOLOOP_NET_TRANSPORT_H_

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ioloop/net/buffer.h"

namespace ioloop::net {

/// What one transport call did.
struct IOResult {
  /// What happened; `bytes` and `status` say more for kDone and kError.
  enum Outcome : uint8_t {
    kDone,       ///< `bytes` moved (read: appended to the buffer; write: accepted). Handshake
                 ///< and shutdown_write: finished.
    kWantRead,   ///< nothing (more) now: call again when the fd is readable
    kWantWrite,  ///< nothing (more) now: call again when the fd is writable
    kEof,        ///< read: the peer ended its side cleanly (FIN, TLS close_notify)
    kError,      ///< `status` says why; the stream closes with it
  };
  Outcome outcome = kDone;  ///< what happened
  /// kDone from read(): the call got less than it asked for, so the socket (and the
  /// transport's own buffer) is drained and another read now would only find EAGAIN.
  bool drained = false;
  size_t bytes = 0;     ///< kDone: how many bytes moved
  absl::Status status;  ///< kError: why (never OK then)

  /// @{
  /// Makes the result of each outcome.
  static IOResult done(size_t n, bool drained = false) { return {kDone, drained, n, {}}; }
  static IOResult want_read() { return {kWantRead, false, 0, {}}; }
  static IOResult want_write() { return {kWantWrite, false, 0, {}}; }
  static IOResult eof() { return {kEof, false, 0, {}}; }
  static IOResult error(absl::Status s) { return {kError, false, 0, std::move(s)}; }
  /// @}
};

/// The type URL of the payload (absl::Status::GetPayload) on a handshake error that an alert
/// from the peer caused (TLS: it refused the handshake and said why), as opposed to a local or
/// socket failure. A stream that finds the connection reset mid-handshake reports such an
/// error, read from what the socket still held, rather than the reset.
inline constexpr char kPeerAlertPayload[] = "type.ioloop.net/PeerAlert";

/// How a stream moves bytes over its fd: plain send/recv, or TLS. One thread (the stream's
/// loop thread); it does not own the fd; errors are the Status the stream closes with. See the
/// file comment of ioloop/net/transport.h.
class Transport {
 public:
  virtual ~Transport() = default;

  /// Advances the handshake, if the transport has one; kDone once it is complete (the plain
  /// transport: at once). Called until kDone or kError before any read or write.
  virtual IOResult handshake(int fd) = 0;
  /// Appends at most `limit` (> 0) bytes of plaintext to `buffer`.
  virtual IOResult read(int fd, Buffer& buffer, size_t limit) = 0;
  /// Sends a prefix of the `count` (1..64) buffers; kDone with the bytes accepted (a partial
  /// write is normal). After kWantRead/kWantWrite, or a kDone that took fewer bytes than
  /// offered, the next write must pass the bytes not taken first (they may have moved: only
  /// their content must be the same): TLS may have encrypted them into a record whose tail
  /// the socket has not taken yet.
  virtual IOResult write(int fd, const struct iovec* iov, int count) = 0;
  /// Ends the write direction: the peer reads EOF once what was written before arrives.
  virtual IOResult shutdown_write(int fd) = 0;
  /// Plaintext the transport holds that read() returns without the fd becoming readable
  /// (TLS records read ahead in one recv). The stream must not wait for readiness while
  /// this is true. The plain transport: never.
  virtual bool has_buffered_input() const = 0;
  /// Why the stream ended without a clean close where that matters: a TLS peer that sent
  /// FIN without close_notify. Called when read() returned kEof; OK for a clean end.
  virtual absl::Status eof_status() const { return absl::OkStatus(); }

  /// Bytes the transport produced but has not sent: a TLS server's last handshake flight
  /// (its session tickets), held by a handshake() that returned kDone so that they leave in
  /// one send with the first response record instead of a segment of their own; what a full
  /// socket did not take of a record, or of an alert a read made. They go out
  /// ahead of anything written later (write(), shutdown_write(), close()); the stream calls
  /// flush() at the end of a dispatch that leaves them held and no write queued. The plain
  /// transport: never.
  virtual bool has_pending_output() const { return false; }
  /// Sends what has_pending_output() holds: kDone once all of it is out, kWantWrite if the
  /// socket took only part (call again when writable), kError for a socket error.
  virtual IOResult flush(int) { return IOResult::done(0); }
  /// The stream closes the fd right after this call, after a clean local close: send what
  /// ends the session (TLS: close_notify, after anything pending), best effort, held for the
  /// FIN the close sends so that both leave in one segment. The plain transport: nothing.
  virtual void end_before_close(int) {}

  /// The shared stateless plain-socket transport.
  static Transport& plain();
};

/// Makes the transport of each new connection for TCPServer (server side) and TCPClient
/// (client side). TLSContext (ioloop/net/tls/tls_context.h) is the one the library ships.
/// Thread-safe: a server with N loops calls it from N threads at once.
class TransportFactory {
 public:
  virtual ~TransportFactory() = default;
  /// For an accepted connection on `fd`.
  virtual absl::StatusOr<std::unique_ptr<Transport>> server_transport(int fd) const = 0;
  /// For an outgoing connection on `fd` to `host`:`port` (`host` is the name the peer must
  /// prove, and the one a TLS client sends as SNI; the pair keys session resumption).
  virtual absl::StatusOr<std::unique_ptr<Transport>> client_transport(int fd,
                                                                      absl::string_view host,
                                                                      uint16_t port) const = 0;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_TRANSPORT_H_
