#!/usr/bin/env bash
# Installs, with apt-get, only the Debian packages this project needs that are missing.
# Idempotent: when everything is present it prints one line and changes nothing.
# Uses sudo when not run as root.
#
#   bash third_party/install-deps.sh          # what `make build` / `make test` need
#   bash third_party/install-deps.sh --soak   # those plus the load generators of `make soak`
#   bash third_party/install-deps.sh --valgrind  # those plus valgrind, for `make valgrind`
#   bash third_party/install-deps.sh --compare   # those plus the peers of `make compare`
set -euo pipefail

packages=(
  # The packaging tests (tests/consumer/) use cpack (cmake), pkg-config, c++ (g++) and
  # dpkg-deb/dpkg -x (dpkg, Essential on every Debian): nothing beyond this list.
  cmake ninja-build g++ make pkg-config
  clang libclang-rt-14-dev          # libFuzzer target and clang builds
  llvm-14                           # llvm-symbolizer: the sanitizers' stack traces with names
  lld                               # links the tests and examples (CMakeLists.txt)
  clang-format clang-tidy           # tests/cmake/tooling.cmake, tests/cmake/clang_tidy.cmake
  shellcheck                        # tests/load/compare/smoke.sh lints the load scripts
  libabsl-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libhttp-parser-dev
  libssl-dev openssl                # ioloop::tls (OpenSSL 3); the CLI for interop tests
  python3 curl netcat-openbsd apache2-utils procps util-linux  # integration tests
  wrk                               # the proxy's integration test drives it with wrk too
  doxygen                           # make docs; the doxygen_warnings test of make test
)
# Only `make soak` (tests/soak/run.sh) needs this: h2load (nghttp2-client).
soak_packages=(nghttp2-client)
# Only `make compare` (tests/load/compare/run.sh) needs these: the peers it builds and runs, the
# chart plotter and the syscall counters.
compare_packages=(libevent-dev libuv1-dev libboost-dev nginx-light python3-tornado gnuplot-nox
  linux-perf strace)

case "${1:-}" in
  "") ;;
  --soak) packages+=("${soak_packages[@]}") ;;
  --valgrind) packages+=(valgrind) ;;
  --compare) packages+=("${compare_packages[@]}") ;;
  *) echo "usage: install-deps.sh [--soak|--valgrind|--compare]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
