#include "tls/tls_util.h"

#include <openssl/bio.h>
#include <openssl/err.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ioloop::net::tls_internal {

std::string drain_errors() {
  std::vector<std::string> reasons;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    const char* reason = ERR_reason_error_string(e);
    std::string text = reason != nullptr ? reason : absl::StrCat("error 0x", absl::Hex(e));
    bool seen = false;
    for (const std::string& r : reasons) seen = seen || r == text;
    if (!seen) reasons.push_back(std::move(text));
  }
  return absl::StrJoin(reasons, "; ");
}

std::string with_errors(absl::string_view prefix) {
  std::string reasons = drain_errors();
  if (reasons.empty()) return std::string(prefix);
  return absl::StrCat(prefix, ": ", reasons);
}

namespace {

// errno's status for `file`, but InvalidArgument for a directory (fopen() opens one, and reading
// it fails with EISDIR, which absl calls FailedPrecondition): the path is the caller's mistake.
absl::Status read_error(int err, const std::string& file) {
  absl::Status status = absl::ErrnoToStatus(err, absl::StrCat("TLSContext: cannot read ", file));
  if (err == EISDIR) return absl::InvalidArgumentError(status.message());
  return status;
}

}  // namespace

absl::StatusOr<PemSource> load_source(const std::string& file, const std::string& pem,
                                      absl::string_view file_field, absl::string_view pem_field) {
  if (!file.empty() && !pem.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLSContext: give ", file_field, " or ", pem_field, ", not both"));
  }
  if (file.empty()) {
    if (pem.empty()) return PemSource{};
    return PemSource{pem, absl::StrCat("<", pem_field, ">")};
  }
  if (file.find('\0') != std::string::npos) {  // fopen() would open the path up to it
    return absl::InvalidArgumentError(absl::StrCat("TLSContext: ", file_field, " holds a NUL"));
  }
  // Read it ourselves rather than let OpenSSL open it: the errno becomes the status code and
  // the message names the path, which OpenSSL's "system library" errors do not do well.
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(file.c_str(), "rbe"), &std::fclose);
  if (f == nullptr) return read_error(errno, file);
  std::string text;
  char chunk[8192];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof(chunk), f.get())) > 0) {
    text.append(chunk, n);
    // Certificates and keys are a few KiB; a huge "PEM" is a mistake (a device, a log).
    if (text.size() > (16u << 20)) {
      return absl::InvalidArgumentError(absl::StrCat("TLSContext: ", file, " is over 16 MiB"));
    }
  }
  if (std::ferror(f.get())) return read_error(errno, file);
  return PemSource{std::move(text), file};
}

namespace {

// OpenSSL's socket BIO with read and write replaced; made once, shared by every connection,
// never freed (BIO_METHODs are immutable once set up).
const BIO_METHOD* nosignal_socket_method() {
  static const BIO_METHOD* const kMethod = [] {
    const BIO_METHOD* socket = BIO_s_socket();
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "ioloop socket");
    if (m == nullptr) return static_cast<BIO_METHOD*>(nullptr);
    BIO_meth_set_write(m, &bio_write);
    BIO_meth_set_read(m, &bio_read);
    BIO_meth_set_puts(m, BIO_meth_get_puts(socket));
    BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(socket));
    BIO_meth_set_create(m, BIO_meth_get_create(socket));
    BIO_meth_set_destroy(m, BIO_meth_get_destroy(socket));
    return m;
  }();
  return kMethod;
}

}  // namespace

bio_st* new_socket_bio(int fd) {
  const BIO_METHOD* method = nosignal_socket_method();
  if (method == nullptr) return nullptr;
  BIO* bio = BIO_new(method);
  if (bio == nullptr) return nullptr;
  BIO_set_fd(bio, fd, BIO_NOCLOSE);
  return bio;
}

}  // namespace ioloop::net::tls_internal
