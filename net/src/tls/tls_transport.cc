#include "ioloop/net/tls/tls_transport.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ioloop/net/tls/tls_context.h"
#include "tls/tls_util.h"

namespace ioloop::net {

using tls_internal::drain_errors;

// Lets the BIO callback (a C function) reach the private recv bookkeeping.
struct TLSTransportAccess {
  static void set_recv_short(TLSTransport* t, bool v) { t->recv_short_ = v; }
};

namespace {

// Most plaintext in one TLS record: small buffers are gathered up to this, and no
// SSL_write_ex is given more.
constexpr size_t kRecordSize = 16 * 1024;
// What one SSL_read_ex asks for at most (a record's worth; OpenSSL returns one record's
// plaintext per call anyway).
constexpr size_t kReadChunk = 16 * 1024;

// Watches the socket BIO's reads: a recv that returned less than asked (or failed) means the
// socket had nothing more at that moment.
long observe_bio(BIO* bio, int oper, const char*, size_t len, int, long, int ret,
                 size_t* processed) {
  if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
    auto* t = reinterpret_cast<TLSTransport*>(BIO_get_callback_arg(bio));
    TLSTransportAccess::set_recv_short(t, ret <= 0 || processed == nullptr || *processed < len);
  }
  return ret;
}

bool is_reason(unsigned long e, int lib, int reason) {
  return e != 0 && ERR_GET_LIB(e) == lib && ERR_GET_REASON(e) == reason;
}

}  // namespace

TLSTransport::TLSTransport(std::shared_ptr<const TLSContext> context, ssl_st* ssl)
    : context_(std::move(context)), ssl_(ssl) {
  BIO* bio = SSL_get_rbio(ssl_);
  BIO_set_callback_arg(bio, reinterpret_cast<char*>(this));
  BIO_set_callback_ex(bio, &observe_bio);
}

TLSTransport::~TLSTransport() { SSL_free(ssl_); }

IOResult TLSTransport::failure(int ret, const char* what) {
  const int saved_errno = errno;
  const int err = SSL_get_error(ssl_, ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      return IOResult::want_read();
    case SSL_ERROR_WANT_WRITE:
      return IOResult::want_write();
    case SSL_ERROR_ZERO_RETURN:
      eof_status_ = absl::OkStatus();
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
    eof_status_ =
        absl::DataLossError("TLS: peer closed the connection without close_notify (truncation)");
    return IOResult::eof();
  }
  if (err == SSL_ERROR_SYSCALL) {
    ERR_clear_error();
    return IOResult::error(absl::ErrnoToStatus(saved_errno, prefix));
  }
  const long verify = SSL_get_verify_result(ssl_);
  if (is_reason(first, ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED) && verify != X509_V_OK) {
    ERR_clear_error();
    return IOResult::error(absl::UnauthenticatedError(absl::StrCat(
        prefix, ": certificate verify failed: ", X509_verify_cert_error_string(verify))));
  }
  std::string reasons = drain_errors();
  if (reasons.empty()) reasons = absl::StrCat("SSL error ", err);
  return IOResult::error(absl::UnavailableError(absl::StrCat(prefix, ": ", reasons)));
}

IOResult TLSTransport::handshake(int) {
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_do_handshake(ssl_);
  starved_ = false;
  if (ret == 1) {
    handshake_done_ = true;
    return IOResult::done(0);
  }
  IOResult r = failure(ret, "handshake");
  starved_ = r.outcome == IOResult::kWantRead || r.outcome == IOResult::kWantWrite;
  if (r.outcome == IOResult::kEof) {
    // close_notify (or EOF) before the handshake finished is a failed handshake, not an end.
    failed_ = true;
    return IOResult::error(
        absl::UnavailableError("TLS handshake failed: peer closed the connection"));
  }
  return r;
}

IOResult TLSTransport::read(int, Buffer& buffer, size_t limit) {
  if (read_ended_) {
    end_held_ = false;
    return read_end_;
  }
  starved_ = false;
  recv_short_ = false;
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
    const int ret = SSL_read_ex(ssl_, in_place ? buffer.begin_write() : spill, want, &got);
    if (ret == 1) {
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
      // The socket came up short and OpenSSL holds nothing more: another SSL_read would only
      // recv EAGAIN, so stop here and say so.
      if (recv_short_ && !SSL_has_pending(ssl_)) {
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

IOResult TLSTransport::write(int, const struct iovec* iov, int count) {
  // Position in the caller's buffers.
  int index = 0;
  size_t offset = 0;
  auto skip_empty = [&] {
    while (index < count && offset == iov[index].iov_len) {
      ++index;
      offset = 0;
    }
  };
  size_t available = 0;  // bytes offered from the current position on
  for (int i = 0; i < count; ++i) available += iov[i].iov_len;
  char staging[kRecordSize];
  size_t total = 0;
  skip_empty();
  while (index < count) {
    const char* data;
    size_t n;
    const size_t in_this = iov[index].iov_len - offset;
    const char* here = static_cast<const char*>(iov[index].iov_base) + offset;
    if (retry_len_ > 0) {
      // OpenSSL holds a record begun with these bytes: offer exactly them again.
      n = retry_len_;
      if (available < n) {
        failed_ = true;
        return IOResult::error(absl::InternalError(absl::StrCat(
            "TLS: write retried with ", available, " bytes; the interrupted write had ", n)));
      }
    } else {
      // At most one record per call: with partial writes OpenSSL returns after each record
      // anyway, and a retry (which must offer the same bytes, however the caller cuts them
      // next time) then always fits the staging area.
      n = std::min(available, kRecordSize);
    }
    if (n <= in_this) {
      data = here;
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
        retry_len_ = n;
        if (total > 0) return IOResult::done(total);
        return r;
      }
      if (r.outcome == IOResult::kEof) {  // no write can end in a clean EOF; be safe
        r = IOResult::error(absl::UnavailableError("TLS: write after the connection ended"));
      }
      return r;
    }
    retry_len_ = 0;
    total += written;
    available -= written;
    // Advance past `written` bytes.
    size_t left = written;
    while (left > 0) {
      const size_t step = std::min(left, iov[index].iov_len - offset);
      offset += step;
      left -= step;
      skip_empty();
    }
    skip_empty();
  }
  return IOResult::done(total);
}

IOResult TLSTransport::shutdown_write(int) {
  // Nothing to send after a fatal error (OpenSSL forbids it), before the handshake (no
  // session to close) or once close_notify is out.
  if (failed_ || shutdown_sent_ || !handshake_done_) return IOResult::done(0);
  if (retry_len_ > 0) {
    // The alert would go behind (or into) the record OpenSSL began; finish the write first.
    return IOResult::error(
        absl::InternalError("TLS: shutdown_write while a write waits to be retried"));
  }
  ERR_clear_error();
  errno = 0;
  // A retry after kWantWrite only flushes the pending alert; it never waits for the peer's.
  const int ret = SSL_shutdown(ssl_);
  if (ret >= 0) {  // 0: ours sent, theirs not yet read; 1: both
    shutdown_sent_ = true;
    return IOResult::done(0);
  }
  IOResult r = failure(ret, "shutdown");
  if (r.outcome == IOResult::kEof) return IOResult::done(0);
  return r;
}

bool TLSTransport::has_buffered_input() const {
  return end_held_ || SSL_pending(ssl_) > 0 || (!starved_ && SSL_has_pending(ssl_) == 1);
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
