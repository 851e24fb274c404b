# Stands in for CMake's FindOpenSSL on a machine without libssl-dev (tests/consumer/optional).
set(OpenSSL_FOUND FALSE)
set(OPENSSL_FOUND FALSE)
