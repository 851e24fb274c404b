/// @file ioloop/net/tls/tls_transport.h
/// TLSTransport: the Transport (ioloop/net/transport.h) that runs TLS over a socket with
/// OpenSSL 3. Created by TLSContext::new_server_transport / new_client_transport and then
/// owned by its stream (or driven by hand, as the tests do).
///
/// Behaviour per call (every call non-blocking; OpenSSL's error queue is cleared before and
/// drained after each operation, so one connection's errors never leak into another's):
///   - handshake(): kDone once the handshake is complete. A server's first call, with no byte
///     in the socket yet (FIONREAD), returns kWantRead without calling OpenSSL: its first
///     SSL_do_handshake allocates the record buffers (about 47 KB), which a client that
///     connects and sends nothing (a scanner, a slowloris) would otherwise hold until the
///     handshake timeout; so an accepted connection waiting for its ClientHello costs the SSL
///     object alone (about 9 KB), as in nginx. Failures are kError with
///     "TLS handshake failed: <reason>": Unauthenticated for a certificate that does not
///     verify ("certificate verify failed: unable to get local issuer certificate",
///     "...: hostname mismatch", "...: certificate has expired"), Unavailable for everything
///     else ("unsupported protocol", "wrong version number" / "http request" for a plaintext
///     client, "tlsv1 alert unknown ca" for a server whose client rejected it, the errno text
///     for a socket error, "peer closed the connection" for EOF mid-handshake).
///   - read(): appends up to `limit` plaintext bytes, record after record, until `limit`, the
///     socket runs dry (kDone with drained=true, or kWantRead if nothing came) or an end:
///     kEof for the peer's close_notify (eof_status() OK) and also for a FIN without
///     close_notify (eof_status() DataLoss "TLS: peer closed the connection without
///     close_notify (truncation)"); kError with the errno text for a reset, with OpenSSL's
///     reason for a bad record or a fatal alert ("TLS: read: sslv3 alert handshake failure").
///     Bytes read before an end are returned first (kDone); the end comes with every later
///     call. OpenSSL 3.0 answers a TLS 1.3 key-update request with our next write, or from
///     the read that takes the peer's next handshake message; TLS 1.2's no_renegotiation alert
///     from the read that takes the request. When a full socket does not take such an answer,
///     it is held (has_pending_output()), that read returns what it read (kDone, or kWantRead),
///     and the next read() returns kWantWrite until the answer is out: retry read() when the
///     fd is writable, even while the stream has nothing to write. A peer that asks without
///     reading is so held back, as a write would be. A read never needs the write side
///     otherwise. More than 32 handshake messages (key updates, session tickets) in a row
///     without application data end the connection: kError ResourceExhausted (OpenSSL would
///     handle them all within one read, for as long as the peer sends them; BoringSSL's
///     limit).
///   - write(): encrypts a prefix of the buffers, one record (at most 16 KiB) per
///     SSL_write_ex: in place when the record lies within one buffer, else gathered from
///     several small ones into one record (one send instead of one per buffer).
///     kDone(bytes) counts plaintext whose records the socket took whole; a partial write is
///     normal. A record the socket took only part of is finished by the transport, not by
///     OpenSSL: its tail is held (has_pending_output()) and its bytes count with the next
///     write(), which sends the tail first. OpenSSL never holds a record half sent after the
///     handshake, because it cannot answer a peer's key update then (openssl#8677: "bad
///     length"). So after kWantWrite, or a kDone that took fewer bytes than offered, the next
///     write() must start with the same bytes (Transport's rule; they may be cut
///     differently); fewer bytes than that record is kError (Internal). After the handshake a
///     write does not need to read in practice (renegotiation is refused); kWantRead is
///     mapped anyway.
///   - Output: a server's handshake() holds what OpenSSL writes and sends it in one piece
///     before returning; when it returns kDone, the session tickets stay held
///     (has_pending_output()) and leave with the next record in the same send (the first
///     response: one segment instead of two), or with flush(). end_before_close() sends
///     close_notify with MSG_MORE so that the close's FIN rides in its segment. No recv is
///     made that would only find EAGAIN: not after one that came up short in the same call,
///     nor in the first read() after a handshake() that completed holding the client's first
///     data and whose last recv came up short. Output held for a socket that does not take
///     it is bounded (64 KiB: a record's tail and OpenSSL's own answers); a peer that keeps
///     making OpenSSL answer while reading nothing ends its connection with ResourceExhausted.
///   - shutdown_write(): sends close_notify (kWantWrite until it is out) without waiting for
///     the peer's. Writing after the peer's close_notify is allowed (half-close, RFC 8446
///     §6.1); reading after our own close_notify is too. After a fatal error or before the
///     handshake completes there is nothing to send: kDone at once. Call it only once the
///     last write() took every byte offered (not kWantRead/kWantWrite, nor a short kDone):
///     else Internal.
///   - has_buffered_input(): OpenSSL holds bytes already received (decrypted plaintext or
///     records read ahead in the same recv) that read() can return without the socket: the
///     stream must call read() again without waiting for readability, e.g. after a read that
///     stopped at `limit`, and after handshake() completes (the client's first data often
///     arrives with its Finished). False after a read()/handshake() that ended wanting the
///     socket (kWantRead, or drained), even if a partial record is held, so a stream that
///     polls it never spins; false also while a read's answer waits for room (read() returns
///     kWantWrite until it is out). True also while read() holds an end (close_notify, EOF or an
///     error found after the bytes it returned) for its next call.
///
/// Threading: one thread at a time (the stream's loop thread). Ownership: the fd is
/// borrowed; the transport holds its TLSContext. Destroying it sends nothing (call
/// shutdown_write() first for a clean close).
#ifndef IOLOOP_NET_TLS_TLS_TRANSPORT_H_
#define IOLOOP_NET_TLS_TLS_TRANSPORT_H_

#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ioloop/net/buffer.h"
#include "ioloop/net/transport.h"

struct bio_st;
struct ssl_st;

namespace ioloop::net {

class TLSContext;

/// TLS over a socket with OpenSSL 3: made by a TLSContext, owned by its stream (one thread at a
/// time); it does not own the fd. Per-call behaviour: the file comment of
/// ioloop/net/tls/tls_transport.h.
class TLSTransport final : public Transport {
 public:
  ~TLSTransport() override;
  TLSTransport(const TLSTransport&) = delete;
  TLSTransport& operator=(const TLSTransport&) = delete;

  IOResult handshake(int fd) override;
  IOResult read(int fd, Buffer& buffer, size_t limit) override;
  IOResult write(int fd, const struct iovec* iov, int count) override;
  IOResult shutdown_write(int fd) override;
  bool has_buffered_input() const override;
  bool has_pending_output() const override { return !staged_.empty(); }
  IOResult flush(int fd) override;
  void end_before_close(int fd) override;
  absl::Status eof_status() const override { return eof_status_; }

  /// After the handshake:
  /// handshake() has returned kDone.
  bool handshake_done() const { return handshake_done_; }
  /// "TLSv1.3", "TLSv1.2".
  std::string protocol_version() const;
  /// The protocol ALPN selected, or empty.
  std::string alpn_protocol() const;
  /// "TLS_AES_256_GCM_SHA384", ...
  std::string cipher() const;
  /// The peer certificate's subject (one line, RFC 2253), or empty if it sent none.
  std::string peer_subject() const;
  /// Whether the handshake resumed an earlier session (abbreviated handshake).
  bool session_resumed() const;

  /// The OpenSSL connection (SSL*), for what this interface does not offer. The transport
  /// owns its BIO and its message callback (SSL_set_msg_callback): one set in its place turns
  /// off the bound on post-handshake messages (read()).
  ssl_st* native_handle() const { return ssl_; }

 private:
  friend class TLSContext;
  TLSTransport(std::shared_ptr<const TLSContext> context, ssl_st* ssl);

  friend struct TLSTransportAccess;
  class CallScope;
  /// Maps a failed SSL_read_ex / SSL_write_ex / SSL_do_handshake to an IOResult.
  IOResult failure(int ret, const char* what);
  /// flush(), its send error's message starting with `what`: a handshake's flight that cannot
  /// go out is a handshake failure, and says so.
  IOResult send_staged(int fd, absl::string_view what);
  /// Removes the first `n` bytes of staged_ (the socket took them), freeing its storage once
  /// empty.
  void drop_sent(size_t n);
  /// The socket BIO's read and write (tls_internal::bio_read / bio_write): OpenSSL's recv and
  /// send, with drained_, staged_ and closing_ applied.
  int bio_recv(bio_st* bio, char* out, int len);
  int bio_send(bio_st* bio, const char* data, int len);
  /// OpenSSL's message callback: counts the handshake messages read after the handshake.
  static void on_message(int write_p, int version, int content_type, const void* buf, size_t len,
                         ssl_st* ssl, void* arg);

  std::shared_ptr<const TLSContext> context_;
  ssl_st* const ssl_;
  /// Bytes of the write OpenSSL has begun and must be offered again (0: none).
  size_t retry_len_ = 0;
  /// Bytes of the last record SSL_write_ex took whose tail is still in staged_: the next
  /// write() must offer them again, and counts them once staged_ is out (0: none).
  size_t staged_len_ = 0;
  /// staged_ would have grown past its bound: the BIO failed the send (failure() says why).
  bool overflow_ = false;
  /// Handshake messages read since the handshake or the last plaintext, and whether they went
  /// past kMaxMessagesWithoutData (then the BIO reads no more and read() fails).
  int messages_without_data_ = 0;
  bool flooded_ = false;
  /// The BIO kept bytes in staged_ that the socket did not take (reset before each SSL_read).
  bool kept_ = false;
  /// Bytes at the front of staged_ that end with what an SSL_read made OpenSSL send (a
  /// key-update answer) and the socket did not take: read() sends them before reading on
  /// (kWantWrite until they are out).
  size_t answer_left_ = 0;
  /// An end found while bytes were being returned: handed out by the next read().
  bool read_ended_ = false;
  IOResult read_end_;
  /// read_end_ was found behind bytes and no read() has returned it yet. It counts as
  /// buffered input: its record has left the socket, so no readiness will announce it.
  bool end_held_ = false;
  /// handshake() has been called: a server's first call only waits for readability.
  bool handshake_started_ = false;
  /// handshake() returned kDone. (Not SSL_is_init_finished: that turns false again after a
  /// fatal error, which would make a later read's failure look like a handshake's.)
  bool handshake_done_ = false;
  /// A fatal error happened: OpenSSL forbids shutdown afterwards.
  bool failed_ = false;
  /// SSL_shutdown returned 0 or 1: our close_notify is out. (Calling it again would make
  /// OpenSSL wait for the peer's close_notify.)
  bool shutdown_sent_ = false;
  /// The last handshake()/read() stopped because OpenSSL needs more bytes from the socket:
  /// what it holds (a partial record) is no reason to call read() before readability.
  bool starved_ = false;
  /// In this call (or in the handshake() call that set carry_drained_), a recv returned
  /// less than it asked for: the socket is drained, so the BIO does not recv again
  /// (it would only find EAGAIN; anything arriving meanwhile makes the fd readable) and read()
  /// can say so. False between calls, so OpenSSL used directly (native_handle()) always recvs.
  bool drained_ = false;
  /// A call of the Transport interface is running (CallScope); OpenSSL used directly through
  /// native_handle() between calls sees a plain socket BIO.
  bool in_call_ = false;
  /// The handshake() that returned kDone found the socket drained and left plaintext in
  /// OpenSSL (it came with the Finished): the next read() starts with drained_ set.
  bool carry_drained_ = false;
  /// handshake() is running on a server: the BIO appends what OpenSSL writes to staged_.
  bool staging_ = false;
  /// end_before_close() runs: what is sent now waits for the FIN (MSG_MORE).
  bool closing_ = false;
  /// Output OpenSSL wrote that the socket has not taken: a server's handshake flight until
  /// handshake() sends it, its session tickets until the next send (has_pending_output()),
  /// and after the handshake whatever a send left over (the tail of a record, an alert), so
  /// that OpenSSL never holds a record half sent. Sent ahead of every later record; its
  /// storage is freed once empty.
  std::string staged_;
  absl::Status eof_status_;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_TLS_TLS_TRANSPORT_H_
