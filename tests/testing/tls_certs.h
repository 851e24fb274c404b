// File: testing/tls_certs.h
// A small PKI generated at test time with the OpenSSL API (nothing secret is checked in):
//
//   root CA ("ioloop test root", ECDSA P-256)
//     └─ intermediate CA ("ioloop test intermediate", ECDSA P-256)
//          ├─ ecdsa_leaf   localhost / 127.0.0.1 / ::1, ECDSA P-256
//          ├─ rsa_leaf()   localhost / 127.0.0.1 / ::1, RSA 2048 (made on first use)
//          ├─ wrong_host   example.com only
//          ├─ cn_only      CN localhost, no subjectAltName
//          ├─ expired      localhost, validity ended a day ago
//          └─ client       "ioloop test client" (clientAuth)
//   other CA ("ioloop other root", unrelated)
//     └─ other_leaf        localhost / 127.0.0.1
//
// Every leaf's `chain_pem` is the leaf followed by its issuing intermediate (other_leaf: the
// leaf alone), as a server sends it; clients trust `root_ca_pem` only.
//
// Threading: test_pki() generates once per process and is safe to call from any thread; so
// is rsa_leaf(), which generates its RSA key on first use only: that is the slow part (0.1 s
// to 1 s), and most test processes, one per test case, need ECDSA only. Errors: generation
// failures abort the test binary (they mean OpenSSL itself is broken).
#ifndef IOLOOP_TESTS_TESTING_TLS_CERTS_H_
#define IOLOOP_TESTS_TESTING_TLS_CERTS_H_

#include <string>

namespace ioloop::testing {

struct TestCert {
  std::string cert_pem;   // the leaf alone
  std::string chain_pem;  // leaf + intermediate
  std::string key_pem;    // PKCS#8
};

struct TestPki {
  std::string root_ca_pem;
  std::string intermediate_pem;
  std::string intermediate_key_pem;  // signs rsa_leaf() when it is first asked for
  std::string other_ca_pem;
  TestCert ecdsa_leaf;
  // The same names as ecdsa_leaf with an RSA 2048 key; one per process (test_pki()'s).
  const TestCert& rsa_leaf() const;
  TestCert wrong_host;
  TestCert cn_only;
  TestCert expired;
  TestCert client;
  TestCert other_leaf;
};

const TestPki& test_pki();

// A fresh directory under $TMPDIR (or /tmp), removed with its files on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Writes `contents` to path()/name and returns the full path.
  std::string write(const std::string& name, const std::string& contents) const;

 private:
  std::string path_;
};

// The PKI's PEMs written to `dir`, for APIs that take files. Paths are absolute.
struct TestPkiFiles {
  std::string root_ca;
  std::string other_ca;
  std::string ecdsa_chain, ecdsa_key;
  std::string rsa_chain, rsa_key;
  std::string client_chain, client_key;
};
TestPkiFiles write_test_pki(const TempDir& dir);

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_TESTING_TLS_CERTS_H_
