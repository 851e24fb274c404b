#include "ioloop/net/tls/tls_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cerrno>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "ioloop/mutex.h"
#include "ioloop/net/tls/tls_transport.h"
#include "tls/tls_util.h"

namespace ioloop::net {

using tls_internal::load_source;
using tls_internal::PemSource;
using tls_internal::with_errors;

// The latest resumable session per "host:port", offered on the next connection to that
// peer. Sessions arrive from OpenSSL's new-session callback (TLS 1.3 tickets come after the
// handshake, inside a read) on whatever thread drives that connection, hence the mutex.
class TLSClientSessionCache {
 public:
  explicit TLSClientSessionCache(size_t capacity) : capacity_(capacity) {}
  ~TLSClientSessionCache() {
    for (auto& [key, session] : sessions_) SSL_SESSION_free(session);
  }

  // Takes ownership of `session`.
  void put(const std::string& key, SSL_SESSION* session) {
    MutexLock lock(&mu_);
    auto it = sessions_.find(key);
    if (it != sessions_.end()) {
      SSL_SESSION_free(it->second);
      it->second = session;
      return;
    }
    // Full: drop an arbitrary entry. A bounded cache matters, strict LRU does not.
    if (sessions_.size() >= capacity_ && !sessions_.empty()) {
      SSL_SESSION_free(sessions_.begin()->second);
      sessions_.erase(sessions_.begin());
    }
    sessions_.emplace(key, session);
  }

  // A copy of the session for `key` (the caller frees it), or null. A copy, not a shared
  // reference: OpenSSL writes to a connection's session (it marks it not resumable when the
  // connection is freed without close_notify), which would race with other threads reading
  // the cached object and would take it out of the cache.
  SSL_SESSION* get(const std::string& key) {
    MutexLock lock(&mu_);
    auto it = sessions_.find(key);
    if (it == sessions_.end()) return nullptr;
    if (!SSL_SESSION_is_resumable(it->second)) {
      SSL_SESSION_free(it->second);
      sessions_.erase(it);
      return nullptr;
    }
    SSL_SESSION* copy = SSL_SESSION_dup(it->second);
    if (copy == nullptr) ERR_clear_error();
    return copy;
  }

  size_t size() const {
    MutexLock lock(&mu_);
    return sessions_.size();
  }

 private:
  const size_t capacity_;
  mutable Mutex mu_;
  absl::flat_hash_map<std::string, SSL_SESSION*> sessions_ ABSL_GUARDED_BY(mu_);
};

namespace {

void free_key(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::string*>(ptr);
}

// The SSL ex_data slot holding a client connection's session-cache key (a std::string* the
// SSL owns). Allocated once per process.
int session_key_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_key);
  return index;
}

// OpenSSL's new-session callback (client contexts with resumption): keep a copy of the
// session. A copy, because OpenSSL marks a connection's own session not resumable when the
// connection is freed without close_notify (SSL_free -> SSL_CTX_remove_session), and
// connections that simply close (HTTP/1.1 servers often do) should still resume.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* cache = static_cast<TLSClientSessionCache*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  auto* key = static_cast<std::string*>(SSL_get_ex_data(ssl, session_key_index()));
  if (cache == nullptr || key == nullptr || !SSL_SESSION_is_resumable(session)) return 0;
  SSL_SESSION* copy = SSL_SESSION_dup(session);
  if (copy == nullptr) {
    ERR_clear_error();
    return 0;
  }
  cache->put(*key, copy);
  return 0;  // OpenSSL keeps (and frees) its reference to `session`
}

// Server ALPN: the first protocol of the server's list (arg: wire format) the client offers.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
  const std::string& ours = *static_cast<const std::string*>(arg);
  for (size_t i = 0; i < ours.size(); i += 1 + static_cast<unsigned char>(ours[i])) {
    const auto len = static_cast<unsigned char>(ours[i]);
    for (unsigned int j = 0; j < inlen; j += 1 + in[j]) {
      if (in[j] == len && j + 1 + len <= inlen &&
          ours.compare(i + 1, len, reinterpret_cast<const char*>(in + j + 1), len) == 0) {
        *out = in + j + 1;
        *outlen = len;
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  // No overlap: RFC 7301 §3.2's fatal no_application_protocol alert (nginx's answer too), so
  // that a client wanting h2 does not speak it to an HTTP/1.1 server. (A client offering no
  // ALPN never gets here: it is served without a protocol.)
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// Never prompt on a terminal for an encrypted key's passphrase (OpenSSL's default).
int no_password(char*, int, int, void*) { return -1; }

absl::StatusOr<std::string> alpn_wire(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const std::string& p : protocols) {
    if (p.empty() || p.size() > 255) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLSContext: ALPN protocol names are 1 to 255 bytes; got \"", p, "\""));
    }
    wire.push_back(static_cast<char>(p.size()));
    wire += p;
  }
  return wire;
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

BioPtr memory_bio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// The end of a PEM stream shows up as "no start line" in the error queue: not an error.
void clear_pem_end() {
  const unsigned long e = ERR_peek_last_error();
  if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
    ERR_clear_error();
  }
}

// OpenSSL decodes a certificate's extensions on first use, under the certificate's lock but
// with the "done" flag read outside it (TSan sees a race when two threads verify against a
// shared root for the first time). Decoding them while the context is still private makes
// every later use read-only.
void cache_extensions(X509* cert) {
  if (cert != nullptr) X509_check_purpose(cert, -1, 0);
}

// Installs the chain (leaf first) and the key, checking that they belong together.
absl::Status use_certificate(SSL_CTX* ctx, const PemSource& chain, const PemSource& key) {
  BioPtr bio = memory_bio(chain.text);
  X509* leaf = PEM_read_bio_X509_AUX(bio.get(), nullptr, &no_password, nullptr);
  if (leaf == nullptr) {
    return absl::InvalidArgumentError(
        with_errors(absl::StrCat("TLSContext: no certificate in ", chain.name)));
  }
  const int used = SSL_CTX_use_certificate(ctx, leaf);
  X509_free(leaf);  // the context holds its own reference
  if (used != 1) {
    return absl::InvalidArgumentError(
        with_errors(absl::StrCat("TLSContext: cannot use the certificate in ", chain.name)));
  }
  SSL_CTX_clear_chain_certs(ctx);
  while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, &no_password, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      return absl::InvalidArgumentError(
          with_errors(absl::StrCat("TLSContext: bad chain certificate in ", chain.name)));
    }
  }
  clear_pem_end();
  if (ERR_peek_error() != 0) {
    return absl::InvalidArgumentError(
        with_errors(absl::StrCat("TLSContext: bad chain certificate in ", chain.name)));
  }
  cache_extensions(SSL_CTX_get0_certificate(ctx));
  STACK_OF(X509)* extras = nullptr;
  SSL_CTX_get0_chain_certs(ctx, &extras);
  for (int i = 0; i < sk_X509_num(extras); ++i) cache_extensions(sk_X509_value(extras, i));

  BioPtr key_bio = memory_bio(key.text);
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, &no_password, nullptr);
  if (pkey == nullptr) {
    return absl::InvalidArgumentError(
        with_errors(absl::StrCat("TLSContext: no private key in ", key.name)));
  }
  // Checked here, not left to SSL_CTX_use_PrivateKey: for a key of another type than the
  // certificate OpenSSL only complains later, and never names the files.
  if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), pkey) != 1) {
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("TLSContext: private key does not match the certificate in ", chain.name,
                     " (key: ", key.name, ")"));
  }
  const int key_used = SSL_CTX_use_PrivateKey(ctx, pkey);
  EVP_PKEY_free(pkey);
  if (key_used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(
        with_errors(absl::StrCat("TLSContext: cannot use the private key in ", key.name)));
  }
  return absl::OkStatus();
}

// Adds every certificate of a PEM to the context's trust store.
absl::Status add_trusted(SSL_CTX* ctx, const PemSource& cas) {
  BioPtr bio = memory_bio(cas.text);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int added = 0;
  while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, &no_password, nullptr)) {
    cache_extensions(ca);
    const int ok = X509_STORE_add_cert(store, ca);
    X509_free(ca);
    if (ok != 1) {
      return absl::InvalidArgumentError(
          with_errors(absl::StrCat("TLSContext: cannot trust the certificates in ", cas.name)));
    }
    ++added;
  }
  clear_pem_end();
  if (added == 0 || ERR_peek_error() != 0) {
    return absl::InvalidArgumentError(
        with_errors(absl::StrCat("TLSContext: no CA certificate in ", cas.name)));
  }
  return absl::OkStatus();
}

int openssl_version(TLSVersion v) {
  return v == TLSVersion::kTLS1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

struct CtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxDeleter>;

// A new SSL_CTX with what both sides share: versions, options, modes.
absl::StatusOr<CtxPtr> new_context(const SSL_METHOD* method, TLSVersion min_version,
                                   TLSVersion max_version) {
  if (min_version > max_version) {
    return absl::InvalidArgumentError("TLSContext: min_version is above max_version");
  }
  CtxPtr owned(SSL_CTX_new(method));
  if (owned == nullptr) return absl::InternalError(with_errors("TLSContext: SSL_CTX_new failed"));
  SSL_CTX* ctx = owned.get();
  if (SSL_CTX_set_min_proto_version(ctx, openssl_version(min_version)) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, openssl_version(max_version)) != 1) {
    return absl::InternalError(with_errors("TLSContext: cannot set the protocol versions"));
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
  // OpenSSL 3 makes a peer's FIN without close_notify fatal: every later write fails, so a
  // peer that half-closed lost what was still queued for it. With this it is an end like
  // close_notify, and TLSTransport tells the two apart by the BIO's EOF flag: the truncation is
  // still reported (DataLoss), and the queue still flushes, as after plain TCP's FIN.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
  // Partial writes and moving buffers: Transport::write() reports a prefix and the stream may
  // move its bytes between retries. Released buffers: an idle connection holds none. No auto
  // chain: the chain sent is the one the PEM holds, as the options say; OpenSSL would
  // otherwise build one from the trust store (a certificate verification) on every handshake
  // whenever the PEM has no intermediates, and send CA certificates nobody configured to
  // send. nginx sets the mode too.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
  // Read ahead: one recv takes as many records as fit in OpenSSL's buffer (instead of a
  // header, then a body), and lets TLSTransport tell a drained socket from a full one.
  SSL_CTX_set_read_ahead(ctx, 1);
  return owned;
}

}  // namespace

TLSContext::TLSContext(ssl_ctx_st* ctx, bool is_server) : ctx_(ctx), is_server_(is_server) {}

TLSContext::~TLSContext() {
  SSL_CTX_free(ctx_);  // before the cache: the SSL_CTX's own sessions do not point into it
}

absl::StatusOr<std::shared_ptr<const TLSContext>> TLSContext::server(
    const TLSServerOptions& options) {
  ERR_clear_error();
  absl::StatusOr<PemSource> chain = load_source(options.cert_chain_file, options.cert_chain_pem,
                                                "cert_chain_file", "cert_chain_pem");
  if (!chain.ok()) return chain.status();
  absl::StatusOr<PemSource> key = load_source(options.private_key_file, options.private_key_pem,
                                              "private_key_file", "private_key_pem");
  if (!key.ok()) return key.status();
  if (chain->name.empty() || key->name.empty()) {
    return absl::InvalidArgumentError(
        "TLSContext: a server needs a certificate chain (cert_chain_file or cert_chain_pem) "
        "and its private key (private_key_file or private_key_pem)");
  }
  absl::StatusOr<PemSource> client_ca =
      load_source(options.client_ca_file, options.client_ca_pem, "client_ca_file", "client_ca_pem");
  if (!client_ca.ok()) return client_ca.status();
  if (!options.verify_client && !client_ca->name.empty()) {
    // Silently ignoring the CA would leave a server that believes it checks clients.
    return absl::InvalidArgumentError(
        "TLSContext: client_ca_file/client_ca_pem given without verify_client");
  }
  if (options.verify_client && client_ca->name.empty()) {
    return absl::InvalidArgumentError(
        "TLSContext: verify_client needs client_ca_file or client_ca_pem");
  }
  absl::StatusOr<std::string> alpn = alpn_wire(options.alpn_protocols);
  if (!alpn.ok()) return alpn.status();

  absl::StatusOr<CtxPtr> made =
      new_context(TLS_server_method(), options.min_version, options.max_version);
  if (!made.ok()) return made.status();
  CtxPtr ctx = *std::move(made);
  SSL_CTX_set_options(ctx.get(), SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (absl::Status s = use_certificate(ctx.get(), *chain, *key); !s.ok()) return s;

  if (options.verify_client) {
    if (absl::Status s = add_trusted(ctx.get(), *client_ca); !s.ok()) return s;
    // The CA names sent in the CertificateRequest, so a client can pick its certificate.
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    BioPtr bio = memory_bio(client_ca->text);
    while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, &no_password, nullptr)) {
      sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(ca)));
      X509_free(ca);
    }
    ERR_clear_error();
    SSL_CTX_set_client_CA_list(ctx.get(), names);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }

  // Resumption needs a session id context whenever client certificates are verified (else
  // OpenSSL fails resumed handshakes); set it always.
  static constexpr unsigned char kSessionContext[] = "ioloop";
  SSL_CTX_set_session_id_context(ctx.get(), kSessionContext, sizeof(kSessionContext) - 1);
  if (options.session_resumption) {
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx.get(), static_cast<long>(options.session_cache_size));
    SSL_CTX_set_num_tickets(ctx.get(), options.tls13_tickets);
  } else {
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx.get(), 0);
  }

  std::shared_ptr<TLSContext> context(new TLSContext(ctx.release(), /*is_server=*/true));
  context->alpn_wire_ = std::move(*alpn);
  if (!context->alpn_wire_.empty()) {
    SSL_CTX_set_alpn_select_cb(context->ctx_, &select_alpn, &context->alpn_wire_);
  }
  return std::shared_ptr<const TLSContext>(std::move(context));
}

absl::StatusOr<std::shared_ptr<const TLSContext>> TLSContext::client(
    const TLSClientOptions& options) {
  ERR_clear_error();
  // ca_file, ca_pem and ca_dir may be combined (unlike other sources): all are trusted.
  absl::StatusOr<PemSource> ca_file = load_source(options.ca_file, "", "ca_file", "ca_pem");
  if (!ca_file.ok()) return ca_file.status();
  absl::StatusOr<PemSource> ca_pem = load_source("", options.ca_pem, "ca_file", "ca_pem");
  if (!ca_pem.ok()) return ca_pem.status();
  absl::StatusOr<PemSource> chain = load_source(options.cert_chain_file, options.cert_chain_pem,
                                                "cert_chain_file", "cert_chain_pem");
  if (!chain.ok()) return chain.status();
  absl::StatusOr<PemSource> key = load_source(options.private_key_file, options.private_key_pem,
                                              "private_key_file", "private_key_pem");
  if (!key.ok()) return key.status();
  if (chain->name.empty() != key->name.empty()) {
    return absl::InvalidArgumentError(
        "TLSContext: a client certificate needs both the chain and its private key");
  }
  absl::StatusOr<std::string> alpn = alpn_wire(options.alpn_protocols);
  if (!alpn.ok()) return alpn.status();

  absl::StatusOr<CtxPtr> made =
      new_context(TLS_client_method(), options.min_version, options.max_version);
  if (!made.ok()) return made.status();
  CtxPtr ctx = *std::move(made);
  for (const PemSource* cas : {&*ca_file, &*ca_pem}) {
    if (cas->name.empty()) continue;
    if (absl::Status s = add_trusted(ctx.get(), *cas); !s.ok()) return s;
  }
  if (!options.ca_dir.empty()) {
    // OpenSSL looks into the directory only when it verifies: check it now, as files are.
    struct stat st;
    if (options.ca_dir.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError("TLSContext: ca_dir holds a NUL");
    }
    if (::stat(options.ca_dir.c_str(), &st) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("TLSContext: CA directory ", options.ca_dir));
    }
    if (!S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLSContext: CA directory ", options.ca_dir, " is not a directory"));
    }
    if (SSL_CTX_load_verify_dir(ctx.get(), options.ca_dir.c_str()) != 1) {
      return absl::InvalidArgumentError(
          with_errors(absl::StrCat("TLSContext: cannot use CA directory ", options.ca_dir)));
    }
  }
  if (options.ca_file.empty() && options.ca_pem.empty() && options.ca_dir.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
      return absl::InternalError(with_errors("TLSContext: cannot load the system CA store"));
    }
  }
  SSL_CTX_set_verify(ctx.get(), options.verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  if (!chain->name.empty()) {
    if (absl::Status s = use_certificate(ctx.get(), *chain, *key); !s.ok()) return s;
  }
  if (!alpn->empty()) {
    // SSL_CTX_set_alpn_protos returns 0 on success.
    if (SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const unsigned char*>(alpn->data()),
                                static_cast<unsigned int>(alpn->size())) != 0) {
      return absl::InternalError(with_errors("TLSContext: cannot set the ALPN protocols"));
    }
  }

  std::unique_ptr<TLSClientSessionCache> cache;
  if (options.session_resumption && options.session_cache_size > 0) {
    // Sessions go to our cache only: OpenSSL's client-side internal store is never consulted.
    SSL_CTX_set_session_cache_mode(ctx.get(),
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx.get(), &on_new_session);
    cache = std::make_unique<TLSClientSessionCache>(options.session_cache_size);
    SSL_CTX_set_app_data(ctx.get(), cache.get());
    session_key_index();  // allocate the slot before any thread races for it
  } else {
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  }
  std::shared_ptr<TLSContext> context(new TLSContext(ctx.release(), /*is_server=*/false));
  context->session_cache_ = std::move(cache);
  return std::shared_ptr<const TLSContext>(std::move(context));
}

size_t TLSContext::cached_client_sessions() const {
  return session_cache_ != nullptr ? session_cache_->size() : 0;
}

namespace {
struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

// The connection reads and writes `fd` through new_socket_bio() (no SIGPIPE), not
// SSL_set_fd()'s plain socket BIO.
absl::Status attach_socket(SSL* ssl, int fd) {
  BIO* bio = ssl == nullptr ? nullptr : tls_internal::new_socket_bio(fd);
  if (bio == nullptr) {
    return absl::InternalError(with_errors("TLSContext: cannot create a TLS connection"));
  }
  SSL_set_bio(ssl, bio, bio);  // one BIO both ways; the SSL owns it
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<std::unique_ptr<TLSTransport>> TLSContext::new_server_transport(int fd) const {
  if (!is_server_) {
    return absl::FailedPreconditionError("TLSContext: new_server_transport on a client context");
  }
  ERR_clear_error();
  SslPtr ssl(SSL_new(ctx_));
  if (absl::Status s = attach_socket(ssl.get(), fd); !s.ok()) return s;
  SSL_set_accept_state(ssl.get());
  return std::unique_ptr<TLSTransport>(new TLSTransport(shared_from_this(), ssl.release()));
}

absl::StatusOr<std::unique_ptr<TLSTransport>> TLSContext::new_client_transport(
    int fd, std::string_view hostname, uint16_t port) const {
  if (is_server_) {
    return absl::FailedPreconditionError("TLSContext: new_client_transport on a server context");
  }
  const bool verify = (SSL_CTX_get_verify_mode(ctx_) & SSL_VERIFY_PEER) != 0;
  if (hostname.empty() && verify) {
    return absl::InvalidArgumentError(
        "TLSContext: new_client_transport needs the server's host name to verify it");
  }
  // OpenSSL takes C strings: the name would be verified (and sent) up to the NUL.
  if (hostname.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("TLSContext: host name contains NUL");
  }
  ERR_clear_error();
  SslPtr ssl(SSL_new(ctx_));
  if (absl::Status s = attach_socket(ssl.get(), fd); !s.ok()) return s;
  SSL_set_connect_state(ssl.get());
  const std::string host(hostname);
  unsigned char addr[16];
  const bool is_ip =
      inet_pton(AF_INET, host.c_str(), addr) == 1 || inet_pton(AF_INET6, host.c_str(), addr) == 1;
  if (is_ip) {
    // RFC 6066: no SNI for an address. Verification matches the certificate's IP SANs.
    if (verify && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str()) != 1) {
      return absl::InvalidArgumentError(with_errors("TLSContext: bad IP address " + host));
    }
  } else if (!host.empty()) {
    if (SSL_set_tlsext_host_name(ssl.get(), host.c_str()) != 1 ||
        (verify && SSL_set1_host(ssl.get(), host.c_str()) != 1)) {
      return absl::InvalidArgumentError(with_errors("TLSContext: bad host name " + host));
    }
    // Only DNS subjectAltNames name the host (RFC 9525 §6.3): OpenSSL would otherwise take the
    // subject's CN when the certificate has none. No partial wildcards ("w*.example"), as curl
    // and Python.
    SSL_set_hostflags(ssl.get(),
                      X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  }
  if (session_cache_ != nullptr) {
    std::string key = absl::StrCat(host, ":", port);
    if (SSL_SESSION* session = session_cache_->get(key)) {
      SSL_set_session(ssl.get(), session);  // takes its own reference to the copy
      SSL_SESSION_free(session);
    }
    SSL_set_ex_data(ssl.get(), session_key_index(), new std::string(std::move(key)));
  }
  return std::unique_ptr<TLSTransport>(new TLSTransport(shared_from_this(), ssl.release()));
}

absl::StatusOr<std::unique_ptr<Transport>> TLSContext::server_transport(int fd) const {
  absl::StatusOr<std::unique_ptr<TLSTransport>> t = new_server_transport(fd);
  if (!t.ok()) return t.status();
  return std::unique_ptr<Transport>(*std::move(t));
}

absl::StatusOr<std::unique_ptr<Transport>> TLSContext::client_transport(int fd,
                                                                        absl::string_view host,
                                                                        uint16_t port) const {
  absl::StatusOr<std::unique_ptr<TLSTransport>> t =
      new_client_transport(fd, std::string_view(host.data(), host.size()), port);
  if (!t.ok()) return t.status();
  return std::unique_ptr<Transport>(*std::move(t));
}

}  // namespace ioloop::net
