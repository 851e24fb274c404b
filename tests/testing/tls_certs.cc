#include "testing/tls_certs.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

namespace ioloop::testing {
namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "tls_certs: %s failed\n", what);
  std::abort();
}

struct Key {
  EVP_PKEY* pkey;
  ~Key() { EVP_PKEY_free(pkey); }
};

EVP_PKEY* ec_key() {
  EVP_PKEY* k = EVP_EC_gen("P-256");
  if (k == nullptr) die("EVP_EC_gen");
  return k;
}

EVP_PKEY* rsa_key() {
  EVP_PKEY* k = EVP_RSA_gen(2048);
  if (k == nullptr) die("EVP_RSA_gen");
  return k;
}

std::string key_pem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (PEM_write_bio_PKCS8PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    die("PEM_write_bio_PKCS8PrivateKey");
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string cert_pem(X509* c) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (PEM_write_bio_X509(bio, c) != 1) die("PEM_write_bio_X509");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr || X509_add_ext(cert, ext, -1) != 1) die(value);
  X509_EXTENSION_free(ext);
}

struct CertSpec {
  const char* cn;
  const char* san = nullptr;  // "DNS:localhost,IP:127.0.0.1"
  bool ca = false;
  bool client = false;
  long not_before = -3600;  // seconds from now
  long not_after = 30L * 24 * 3600;
};

// Signs a certificate for `key` with `issuer_key` (self-signed when issuer is null).
X509* make_cert(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  static long serial = 1;
  X509* c = X509_new();
  X509_set_version(c, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
  X509_gmtime_adj(X509_getm_notBefore(c), spec.not_before);
  X509_gmtime_adj(X509_getm_notAfter(c), spec.not_after);
  X509_set_pubkey(c, key);
  X509_NAME* name = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("ioloop tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.cn), -1, -1, 0);
  X509_set_issuer_name(c, issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509* ext_issuer = issuer != nullptr ? issuer : c;
  add_ext(c, ext_issuer, NID_subject_key_identifier, "hash");
  add_ext(c, ext_issuer, NID_authority_key_identifier, "keyid:always");
  if (spec.ca) {
    add_ext(c, ext_issuer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(c, ext_issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(c, ext_issuer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(c, ext_issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_ext(c, ext_issuer, NID_ext_key_usage, spec.client ? "clientAuth" : "serverAuth");
    if (spec.san != nullptr) add_ext(c, ext_issuer, NID_subject_alt_name, spec.san);
  }
  if (X509_sign(c, issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    die("X509_sign");
  }
  return c;
}

TestCert leaf(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
              const std::string& issuer_pem) {
  X509* c = make_cert(spec, key, issuer, issuer_key);
  TestCert out;
  out.cert_pem = cert_pem(c);
  out.chain_pem = out.cert_pem + issuer_pem;
  out.key_pem = key_pem(key);
  X509_free(c);
  return out;
}

constexpr const char* kLocalSan = "DNS:localhost,IP:127.0.0.1,IP:::1";

TestPki generate() {
  TestPki pki;
  Key root_key{ec_key()}, inter_key{ec_key()}, other_key{ec_key()};
  X509* root = make_cert({.cn = "ioloop test root", .ca = true}, root_key.pkey, nullptr, nullptr);
  X509* inter = make_cert({.cn = "ioloop test intermediate", .ca = true}, inter_key.pkey, root,
                          root_key.pkey);
  X509* other =
      make_cert({.cn = "ioloop other root", .ca = true}, other_key.pkey, nullptr, nullptr);
  pki.root_ca_pem = cert_pem(root);
  pki.intermediate_pem = cert_pem(inter);
  pki.intermediate_key_pem = key_pem(inter_key.pkey);
  pki.other_ca_pem = cert_pem(other);

  Key ecdsa{ec_key()}, wrong{ec_key()}, cn_only{ec_key()}, expired{ec_key()}, client{ec_key()},
      other_leaf{ec_key()};
  pki.ecdsa_leaf = leaf({.cn = "localhost", .san = kLocalSan}, ecdsa.pkey, inter, inter_key.pkey,
                        pki.intermediate_pem);
  pki.wrong_host = leaf({.cn = "example.com", .san = "DNS:example.com"}, wrong.pkey, inter,
                        inter_key.pkey, pki.intermediate_pem);
  pki.cn_only =
      leaf({.cn = "localhost"}, cn_only.pkey, inter, inter_key.pkey, pki.intermediate_pem);
  pki.expired = leaf({.cn = "localhost",
                      .san = kLocalSan,
                      .not_before = -10L * 24 * 3600,
                      .not_after = -24L * 3600},
                     expired.pkey, inter, inter_key.pkey, pki.intermediate_pem);
  pki.client = leaf({.cn = "ioloop test client", .client = true}, client.pkey, inter,
                    inter_key.pkey, pki.intermediate_pem);
  pki.other_leaf =
      leaf({.cn = "localhost", .san = kLocalSan}, other_leaf.pkey, other, other_key.pkey, "");
  X509_free(root);
  X509_free(inter);
  X509_free(other);
  return pki;
}

EVP_PKEY* parse_key(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (k == nullptr) die("PEM_read_bio_PrivateKey");
  return k;
}

X509* parse_cert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* c = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (c == nullptr) die("PEM_read_bio_X509");
  return c;
}

TestCert generate_rsa_leaf(const TestPki& pki) {
  Key rsa{rsa_key()}, inter_key{parse_key(pki.intermediate_key_pem)};
  X509* inter = parse_cert(pki.intermediate_pem);
  TestCert out = leaf({.cn = "localhost", .san = kLocalSan}, rsa.pkey, inter, inter_key.pkey,
                      pki.intermediate_pem);
  X509_free(inter);
  return out;
}

}  // namespace

const TestPki& test_pki() {
  static const TestPki* const pki = new TestPki(generate());
  return *pki;
}

const TestCert& TestPki::rsa_leaf() const {
  static const TestCert* const cert = new TestCert(generate_rsa_leaf(*this));
  return *cert;
}

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/ioloop_tls_test.XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) die("mkdtemp");
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& contents) const {
  const std::string file = path_ + "/" + name;
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << contents;
  out.close();
  if (!out) die("writing a test file");
  return file;
}

TestPkiFiles write_test_pki(const TempDir& dir) {
  const TestPki& pki = test_pki();
  TestPkiFiles f;
  f.root_ca = dir.write("root_ca.pem", pki.root_ca_pem);
  f.other_ca = dir.write("other_ca.pem", pki.other_ca_pem);
  f.ecdsa_chain = dir.write("ecdsa_chain.pem", pki.ecdsa_leaf.chain_pem);
  f.ecdsa_key = dir.write("ecdsa_key.pem", pki.ecdsa_leaf.key_pem);
  f.rsa_chain = dir.write("rsa_chain.pem", pki.rsa_leaf().chain_pem);
  f.rsa_key = dir.write("rsa_key.pem", pki.rsa_leaf().key_pem);
  f.client_chain = dir.write("client_chain.pem", pki.client.chain_pem);
  f.client_key = dir.write("client_key.pem", pki.client.key_pem);
  return f;
}

}  // namespace ioloop::testing
