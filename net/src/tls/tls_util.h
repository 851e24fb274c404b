// File: net/src/tls/tls_util.h (private)
// Helpers shared by TLSContext and TLSTransport: OpenSSL's per-thread error queue turned into
// text, PEM sources (a file or memory) read into memory with errors naming the source, and
// the socket BIO every TLS connection uses.
#ifndef IOLOOP_NET_SRC_TLS_TLS_UTIL_H_
#define IOLOOP_NET_SRC_TLS_TLS_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct bio_st;

namespace ioloop::net::tls_internal {

// A socket BIO on `fd` (not owned: BIO_NOCLOSE): OpenSSL's own socket BIO with its read and
// write replaced by bio_read and bio_write. It sends with send(MSG_NOSIGNAL): OpenSSL's writes
// to a peer that has gone away must be an EPIPE status, as on a plain stream, never a SIGPIPE
// that kills the process. Null if OpenSSL cannot allocate it.
bio_st* new_socket_bio(int fd);

// The socket BIO's read and write, defined with TLSTransport (tls_transport.cc): recv and
// send(MSG_NOSIGNAL) as OpenSSL's socket BIO does them, through the policy of the transport
// that BIO_set_data() attached (staging, recvs skipped on a drained socket; see
// tls_transport.h), or plainly while none is attached.
int bio_read(bio_st* bio, char* out, int len);
int bio_write(bio_st* bio, const char* data, int len);

// Empties this thread's OpenSSL error queue and returns the reasons it held, oldest first,
// joined with "; " (duplicates dropped), e.g. "no start line". Empty if it was empty.
std::string drain_errors();

// `prefix` + ": " + drain_errors(), or `prefix` alone when the queue is empty.
std::string with_errors(absl::string_view prefix);

// A PEM source: the file's contents, or the in-memory text. `name` is what messages call it:
// the path, or "<field_name>" for memory.
struct PemSource {
  std::string text;
  std::string name;
};

// Reads `file` (if not empty) or takes `pem`. Both given: InvalidArgument naming both
// fields. Neither: returns a source with an empty name (the caller decides whether that is
// an error). Unreadable file: the errno's code (NotFound, PermissionDenied, ...) with
// "TLSContext: cannot read <path>: <strerror>".
absl::StatusOr<PemSource> load_source(const std::string& file, const std::string& pem,
                                      absl::string_view file_field, absl::string_view pem_field);

}  // namespace ioloop::net::tls_internal

#endif  // IOLOOP_NET_SRC_TLS_TLS_UTIL_H_
