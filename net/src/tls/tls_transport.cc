#include "ioloop/net/tls/tls_transport.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "ioloop/net/tls/tls_context.h"
#include "socket_status.h"
#include "tls/tls_util.h"

namespace ioloop::net {

using tls_internal::drain_errors;

// Lets the BIO's read and write (C functions) reach the transport's I/O policy.
struct TLSTransportAccess {
  static int recv(TLSTransport* t, BIO* bio, char* out, int len) {
    return t->bio_recv(bio, out, len);
  }
  static int send(TLSTransport* t, BIO* bio, const char* data, int len) {
    return t->bio_send(bio, data, len);
  }
};

namespace {

// Most plaintext in one TLS record: small buffers are gathered up to this, and no
// SSL_write_ex is given more.
constexpr size_t kRecordSize = 16 * 1024;
// What one SSL_read_ex asks for at most (a record's worth; OpenSSL returns one record's
// plaintext per call anyway).
constexpr size_t kReadChunk = 16 * 1024;
// Most output kept for a socket that does not take it, after the handshake: the tail of one
// record (write() sends no other before it is out) plus what OpenSSL writes on its own (a
// key update's answer, alerts). Only a peer that keeps making OpenSSL answer while it reads
// nothing reaches it.
constexpr size_t kMaxStaged = 64 * 1024;
// Most handshake messages (key updates, session tickets) read after the handshake without
// application data between them: OpenSSL handles records without data inside one SSL_read,
// reading on while the socket has more, so a peer that sends only those would hold the loop's
// thread for as long as it goes on. BoringSSL's limit (kMaxKeyUpdates); no peer needs more.
constexpr int kMaxMessagesWithoutData = 32;

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

int bio_fd(BIO* bio) {
  int fd = -1;
  BIO_get_fd(bio, &fd);
  return fd;
}

// recv and send as OpenSSL's socket BIO makes them: EINTR retried, EAGAIN a retry flag, 0
// from recv the EOF flag (OpenSSL tells a bare EOF from a failure by it).
int socket_recv(BIO* bio, char* out, int len) {
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do {
    n = ::recv(bio_fd(bio), out, static_cast<size_t>(len), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && would_block(errno)) BIO_set_retry_read(bio);
  if (n == 0) BIO_set_flags(bio, BIO_FLAGS_IN_EOF);
  return static_cast<int>(n);
}

int socket_send(BIO* bio, const char* data, int len, int flags) {
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do {
    n = ::send(bio_fd(bio), data, static_cast<size_t>(len), flags);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && would_block(errno)) BIO_set_retry_write(bio);
  return static_cast<int>(n);
}

absl::Status truncation() {
  return absl::DataLossError("TLS: peer closed the connection without close_notify (truncation)");
}

bool is_reason(unsigned long e, int lib, int reason) {
  return e != 0 && ERR_GET_LIB(e) == lib && ERR_GET_REASON(e) == reason;
}

}  // namespace

namespace tls_internal {

int bio_read(BIO* bio, char* out, int len) {
  if (auto* t = static_cast<TLSTransport*>(BIO_get_data(bio))) {
    return TLSTransportAccess::recv(t, bio, out, len);
  }
  return socket_recv(bio, out, len);
}

int bio_write(BIO* bio, const char* data, int len) {
  if (auto* t = static_cast<TLSTransport*>(BIO_get_data(bio))) {
    return TLSTransportAccess::send(t, bio, data, len);
  }
  return socket_send(bio, data, len, MSG_NOSIGNAL);
}

}  // namespace tls_internal

TLSTransport::TLSTransport(std::shared_ptr<const TLSContext> context, ssl_st* ssl)
    : context_(std::move(context)), ssl_(ssl) {
  BIO_set_data(SSL_get_rbio(ssl_), this);
  SSL_set_msg_callback(ssl_, &TLSTransport::on_message);
  SSL_set_msg_callback_arg(ssl_, this);
}

void TLSTransport::on_message(int write_p, int, int content_type, const void*, size_t, ssl_st*,
                              void* arg) {
  if (write_p != 0 || content_type != SSL3_RT_HANDSHAKE) return;
  auto* t = static_cast<TLSTransport*>(arg);
  if (t->handshake_done_ && ++t->messages_without_data_ > kMaxMessagesWithoutData) {
    t->flooded_ = true;
  }
}

TLSTransport::~TLSTransport() {
  BIO_set_data(SSL_get_rbio(ssl_), nullptr);
  SSL_free(ssl_);
}

// Marks one call of the Transport interface: drained_ holds only inside it (see the header).
class TLSTransport::CallScope {
 public:
  CallScope(TLSTransport* t, bool drained) : t_(t) {
    t_->in_call_ = true;
    t_->drained_ = drained;
  }
  ~CallScope() {
    t_->in_call_ = false;
    t_->drained_ = false;
  }
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;

 private:
  TLSTransport* const t_;
};

int TLSTransport::bio_recv(BIO* bio, char* out, int len) {
  if (flooded_) {  // read no more: read() ends the connection
    BIO_clear_retry_flags(bio);
    errno = EPROTO;
    return -1;
  }
  if (in_call_ && drained_) {  // found empty moments ago: what arrives since makes the fd readable
    BIO_clear_retry_flags(bio);
    BIO_set_retry_read(bio);
    return -1;
  }
  const int n = socket_recv(bio, out, len);
  if (in_call_) drained_ = n < len;
  return n;
}

int TLSTransport::bio_send(BIO* bio, const char* data, int len) {
  BIO_clear_retry_flags(bio);
  const size_t size = static_cast<size_t>(len);
  if (staging_) {
    staged_.append(data, size);
    return len;
  }
  // What is staged goes first, in the same send.
  const size_t held = staged_.size();
  struct iovec iov[2] = {{staged_.data(), held}, {const_cast<char*>(data), size}};
  struct msghdr msg = {};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  const int flags = MSG_NOSIGNAL | (closing_ ? MSG_MORE : 0);
  ssize_t n;
  do {
    n = held > 0 ? ::sendmsg(bio_fd(bio), &msg, flags) : ::send(bio_fd(bio), data, size, flags);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && !would_block(errno)) return -1;
  const size_t sent = n < 0 ? 0 : static_cast<size_t>(n);
  const size_t taken = sent > held ? sent - held : 0;  // of `data`
  drop_sent(std::min(sent, held));
  if (taken == size) return len;
  if (!handshake_done_) {
    // In the handshake OpenSSL keeps the rest of its flight and offers it again.
    if (taken > 0) return static_cast<int>(taken);
    BIO_set_retry_write(bio);
    return -1;
  }
  // After the handshake the rest is kept here: OpenSSL must never hold a record it began to
  // send, because answering a key update then fails its write (see write()). A peer that
  // makes OpenSSL write (alerts) without reading is cut off past a bound.
  if (staged_.size() + (size - taken) > kMaxStaged) {
    overflow_ = true;
    errno = ENOBUFS;
    return -1;
  }
  staged_.append(data + taken, size - taken);
  kept_ = true;
  return len;
}

IOResult TLSTransport::flush(int fd) { return send_staged(fd, "TLS: send"); }

IOResult TLSTransport::send_staged(int fd, absl::string_view what) {
  while (!staged_.empty()) {
    const ssize_t n =
        ::send(fd, staged_.data(), staged_.size(), MSG_NOSIGNAL | (closing_ ? MSG_MORE : 0));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (would_block(errno)) return IOResult::want_write();
      failed_ = true;
      return IOResult::error(internal::socket_errno_status(errno, what));
    }
    drop_sent(static_cast<size_t>(n));
  }
  return IOResult::done(0);
}

void TLSTransport::drop_sent(size_t n) {
  answer_left_ -= std::min(answer_left_, n);
  if (n < staged_.size()) {
    staged_.erase(0, n);
  } else {
    std::string().swap(staged_);  // frees the storage
  }
}

void TLSTransport::end_before_close(int fd) {
  closing_ = true;
  shutdown_write(fd);  // close_notify, behind what is staged
  if (!failed_ && !staged_.empty()) flush(fd);
}

IOResult TLSTransport::failure(int ret, const char* what) {
  const int saved_errno = errno;
  const int err = SSL_get_error(ssl_, ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      return IOResult::want_read();
    case SSL_ERROR_WANT_WRITE:
      return IOResult::want_write();
    case SSL_ERROR_ZERO_RETURN:
      // A close_notify is read whole before any EOF; with SSL_OP_IGNORE_UNEXPECTED_EOF
      // (tls_context.cc) a FIN without one comes here too, after recv() returned 0.
      eof_status_ =
          BIO_test_flags(SSL_get_rbio(ssl_), BIO_FLAGS_IN_EOF) ? truncation() : absl::OkStatus();
      return IOResult::eof();
    default:
      break;
  }
  failed_ = true;
  const bool in_handshake = !handshake_done_;
  const std::string prefix = in_handshake ? "TLS handshake failed" : absl::StrCat("TLS: ", what);
  const unsigned long first = ERR_peek_error();
  // The peer's FIN without close_notify: OpenSSL 3 reports it as SSL_ERROR_SSL with
  // "unexpected eof while reading", older versions as SSL_ERROR_SYSCALL with errno 0.
  const bool bare_eof =
      (err == SSL_ERROR_SYSCALL && saved_errno == 0) ||
      (err == SSL_ERROR_SSL && is_reason(first, ERR_LIB_SSL, SSL_R_UNEXPECTED_EOF_WHILE_READING));
  if (bare_eof) {
    ERR_clear_error();
    if (in_handshake) {
      return IOResult::error(
          absl::UnavailableError(absl::StrCat(prefix, ": peer closed the connection")));
    }
    eof_status_ = truncation();
    return IOResult::eof();
  }
  if (err == SSL_ERROR_SYSCALL) {
    ERR_clear_error();
    if (overflow_) {
      overflow_ = false;  // reported once; the connection has failed
      return IOResult::error(absl::ResourceExhaustedError(
          absl::StrCat(prefix, ": the peer reads nothing while it makes OpenSSL answer; over ",
                       kMaxStaged, " bytes wait to be sent")));
    }
    return IOResult::error(internal::socket_errno_status(saved_errno, prefix));
  }
  const long verify = SSL_get_verify_result(ssl_);
  if (is_reason(first, ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED) && verify != X509_V_OK) {
    ERR_clear_error();
    return IOResult::error(absl::UnauthenticatedError(absl::StrCat(
        prefix, ": certificate verify failed: ", X509_verify_cert_error_string(verify))));
  }
  std::string reasons = drain_errors();
  if (reasons.empty()) reasons = absl::StrCat("SSL error ", err);
  absl::Status status = absl::UnavailableError(absl::StrCat(prefix, ": ", reasons));
  // OpenSSL's reason for an alert received is the alert's code past SSL_AD_REASON_OFFSET.
  const int reason = ERR_GET_REASON(first);
  if (ERR_GET_LIB(first) == ERR_LIB_SSL && reason >= SSL_AD_REASON_OFFSET &&
      reason < SSL_AD_REASON_OFFSET + 256) {
    status.SetPayload(kPeerAlertPayload, absl::Cord());
  }
  return IOResult::error(std::move(status));
}

IOResult TLSTransport::handshake(int fd) {
  constexpr absl::string_view kFailed = "TLS handshake failed";
  // A server speaks second: no OpenSSL call (and so no record buffers) before the ClientHello
  // has begun to arrive. See the file comment.
  if (!std::exchange(handshake_started_, true) && SSL_is_server(ssl_) == 1) {
    int pending = 0;
    if (::ioctl(fd, FIONREAD, &pending) == 0 && pending == 0) return IOResult::want_read();
  }
  if (!staged_.empty() && !handshake_done_) {  // the last flight did not fit: send it first
    IOResult f = send_staged(fd, kFailed);
    if (f.outcome != IOResult::kDone) return f;
  }
  ERR_clear_error();
  errno = 0;
  CallScope call(this, false);
  // A server stages what OpenSSL writes: the flight leaves in one send below, and the
  // session tickets written as the handshake completes wait for the first response record.
  staging_ = SSL_is_server(ssl_) == 1;
  const int ret = SSL_do_handshake(ssl_);
  staging_ = false;
  starved_ = false;
  IOResult r = IOResult::done(0);
  if (ret == 1) {
    handshake_done_ = true;
    // What came with the Finished is read right away (has_buffered_input()), without a recv
    // this handshake already found empty.
    carry_drained_ = drained_ && SSL_has_pending(ssl_) == 1;
    // A TLS 1.3 server's tickets wait for the first response record; a TLS 1.2 server's last
    // flight is one its client waits for.
    if (SSL_version(ssl_) >= TLS1_3_VERSION) return r;
  } else {
    r = failure(ret, "handshake");
    starved_ = r.outcome == IOResult::kWantRead || r.outcome == IOResult::kWantWrite;
    if (r.outcome == IOResult::kEof) {
      // close_notify (or EOF) before the handshake finished is a failed handshake, not an end.
      failed_ = true;
      r = IOResult::error(
          absl::UnavailableError("TLS handshake failed: peer closed the connection"));
    }
  }
  if (staged_.empty()) return r;
  // The peer waits for this flight (or reads the alert of a failure) now.
  const IOResult f = send_staged(fd, kFailed);
  if (r.outcome == IOResult::kError) {
    std::string().swap(staged_);  // best effort: the stream closes with r
    return r;
  }
  return f.outcome == IOResult::kDone ? r : f;  // kWantWrite: sent first by the next call
}

IOResult TLSTransport::read(int fd, Buffer& buffer, size_t limit) {
  if (read_ended_) {
    end_held_ = false;
    return read_end_;
  }
  if (answer_left_ > 0) {
    // A read made OpenSSL answer (a key update) and the socket did not take it: read on only
    // once it is out, so a peer that asks without reading is held back, as a write would be.
    IOResult f = send_staged(fd, "TLS: send");
    if (f.outcome == IOResult::kError) return f;
    if (answer_left_ > 0) return IOResult::want_write();
  }
  starved_ = false;
  CallScope call(this, carry_drained_);  // right after the handshake: its last recv counts
  carry_drained_ = false;
  size_t total = 0;
  // Plaintext goes straight into the buffer's free space when a record's worth fits; else
  // through a stack area and appended, so a small message does not make an idle stream's
  // buffer grow to 16 KiB (the plain transport's spill area, for the same reason).
  char spill[kReadChunk];
  while (total < limit) {
    const size_t want = std::min(limit - total, kReadChunk);
    const bool in_place = buffer.writable_bytes() >= want;
    ERR_clear_error();
    errno = 0;
    size_t got = 0;
    kept_ = false;
    const int ret = SSL_read_ex(ssl_, in_place ? buffer.begin_write() : spill, want, &got);
    if (kept_) answer_left_ = staged_.size();
    if (flooded_) {
      failed_ = true;
      read_ended_ = true;
      read_end_ = IOResult::error(absl::ResourceExhaustedError(absl::StrCat(
          "TLS: read: the peer sent over ", kMaxMessagesWithoutData,
          " post-handshake messages (key updates, session tickets) without application data "
          "between them")));
      end_held_ = total > 0;
      return total > 0 ? IOResult::done(total) : read_end_;
    }
    if (ret == 1) {
      messages_without_data_ = 0;
      if (in_place) {
        buffer.has_written(got);
      } else if (absl::Status s = buffer.append(spill, got); !s.ok()) {
        // Over Buffer::kMaxSize (4 GiB): the plaintext is lost, so this ends the stream.
        failed_ = true;
        read_ended_ = true;
        read_end_ = IOResult::error(std::move(s));
        end_held_ = total > 0;
        return total > 0 ? IOResult::done(total) : read_end_;
      }
      total += got;
      if (kept_) return IOResult::done(total);  // the next read() waits for the answer first
      // The socket came up short and OpenSSL holds nothing more: another SSL_read would only
      // recv EAGAIN, so stop here and say so.
      if (drained_ && !SSL_has_pending(ssl_)) {
        starved_ = total < limit;
        return IOResult::done(total, total < limit);
      }
      continue;
    }
    IOResult r = failure(ret, "read");
    starved_ = r.outcome == IOResult::kWantRead || r.outcome == IOResult::kWantWrite;
    if (total == 0) {
      if (r.outcome == IOResult::kEof || r.outcome == IOResult::kError) {
        read_ended_ = true;
        read_end_ = r;
      }
      return r;
    }
    switch (r.outcome) {
      case IOResult::kWantRead:
        return IOResult::done(total, /*drained=*/true);
      case IOResult::kWantWrite:
        return IOResult::done(total);  // the next read() reports the kWantWrite
      default:
        read_ended_ = true;  // hand the bytes out first, the end with the next call
        read_end_ = r;
        end_held_ = true;
        return IOResult::done(total);
    }
  }
  return IOResult::done(total);
}

IOResult TLSTransport::write(int fd, const struct iovec* iov, int count) {
  // Position in the caller's buffers.
  int index = 0;
  size_t offset = 0;
  auto skip_empty = [&] {
    while (index < count && offset == iov[index].iov_len) {
      ++index;
      offset = 0;
    }
  };
  auto advance = [&](size_t n) {
    while (n > 0) {
      const size_t step = std::min(n, iov[index].iov_len - offset);
      offset += step;
      n -= step;
      skip_empty();
    }
  };
  size_t available = 0;  // bytes offered from the current position on
  for (int i = 0; i < count; ++i) available += iov[i].iov_len;
  const size_t owed = retry_len_ > 0 ? retry_len_ : staged_len_;
  if (available < owed) {
    failed_ = true;
    return IOResult::error(absl::InternalError(absl::StrCat(
        "TLS: write retried with ", available, " bytes; the interrupted write had ", owed)));
  }
  size_t total = 0;
  skip_empty();
  if (staged_len_ > 0) {
    // The record made of these bytes is encrypted; they count once the socket took its rest.
    IOResult f = send_staged(fd, "TLS: send");
    if (f.outcome != IOResult::kDone) return f;
    total = staged_len_;
    available -= staged_len_;
    staged_len_ = 0;
    advance(total);
  }
  char staging[kRecordSize];
  CallScope call(this, false);  // a write may have to read (a handshake message)
  while (index < count) {
    const char* data;
    // At most one record per call: OpenSSL returns after each record anyway, and a retry
    // (which must offer the same bytes, however the caller cuts them next time) then always
    // fits the staging area.
    const size_t n = retry_len_ > 0 ? retry_len_ : std::min(available, kRecordSize);
    const size_t in_this = iov[index].iov_len - offset;
    if (n <= in_this) {
      data = static_cast<const char*>(iov[index].iov_base) + offset;
    } else {
      size_t copied = 0;
      int i = index;
      size_t off = offset;
      while (copied < n) {
        const size_t take = std::min(n - copied, iov[i].iov_len - off);
        std::memcpy(staging + copied, static_cast<const char*>(iov[i].iov_base) + off, take);
        copied += take;
        ++i;
        off = 0;
      }
      data = staging;
    }
    ERR_clear_error();
    errno = 0;
    size_t written = 0;
    const int ret = SSL_write_ex(ssl_, data, n, &written);
    if (ret != 1) {
      IOResult r = failure(ret, "write");
      if (r.outcome == IOResult::kWantRead || r.outcome == IOResult::kWantWrite) {
        retry_len_ = n;  // OpenSSL holds a record begun with these bytes
        if (total > 0) return IOResult::done(total);
        return r;
      }
      if (r.outcome == IOResult::kEof) {  // no write can end in a clean EOF; be safe
        r = IOResult::error(absl::UnavailableError("TLS: write after the connection ended"));
      }
      return r;
    }
    retry_len_ = 0;
    if (!staged_.empty()) {
      // The socket is full and holds only part of the record: its bytes count with the next
      // write, which sends the rest first.
      staged_len_ = written;
      return total > 0 ? IOResult::done(total) : IOResult::want_write();
    }
    total += written;
    available -= written;
    advance(written);
  }
  return IOResult::done(total);
}

IOResult TLSTransport::shutdown_write(int fd) {
  // Nothing to send after a fatal error (OpenSSL forbids it) or before the handshake (no
  // session to close); once close_notify is made, only what the socket has not taken.
  if (failed_ || !handshake_done_) return IOResult::done(0);
  if (shutdown_sent_) return send_staged(fd, "TLS: shutdown");
  if (retry_len_ > 0 || staged_len_ > 0) {
    // The alert would go behind (or into) a record that is not out; finish the write first.
    return IOResult::error(
        absl::InternalError("TLS: shutdown_write while a write waits to be retried"));
  }
  ERR_clear_error();
  errno = 0;
  CallScope call(this, false);
  const int ret = SSL_shutdown(ssl_);
  if (ret >= 0) {  // 0: ours made, theirs not yet read; 1: both
    shutdown_sent_ = true;
    return staged_.empty() ? IOResult::done(0) : IOResult::want_write();
  }
  IOResult r = failure(ret, "shutdown");
  if (r.outcome == IOResult::kEof) return IOResult::done(0);
  return r;
}

bool TLSTransport::has_buffered_input() const {
  // While an answer waits for room, read() returns only kWantWrite: nothing to read now.
  return end_held_ || (answer_left_ == 0 &&
                       (SSL_pending(ssl_) > 0 || (!starved_ && SSL_has_pending(ssl_) == 1)));
}

std::string TLSTransport::protocol_version() const { return SSL_get_version(ssl_); }

std::string TLSTransport::alpn_protocol() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return std::string(reinterpret_cast<const char*>(data), data != nullptr ? len : 0);
}

std::string TLSTransport::cipher() const {
  const char* name = SSL_get_cipher_name(ssl_);
  return name != nullptr ? name : "";
}

std::string TLSTransport::peer_subject() const {
  X509* peer = SSL_get1_peer_certificate(ssl_);
  if (peer == nullptr) return "";
  std::string out;
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio != nullptr &&
      X509_NAME_print_ex(bio, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) >= 0) {
    char* text = nullptr;
    const long n = BIO_get_mem_data(bio, &text);
    if (n > 0) out.assign(text, static_cast<size_t>(n));
  }
  BIO_free(bio);
  X509_free(peer);
  return out;
}

bool TLSTransport::session_resumed() const { return SSL_session_reused(ssl_) == 1; }

}  // namespace ioloop::net
