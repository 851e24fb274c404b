#!/usr/bin/env bash
# ctest package_consumer_install (tests/cmake/packaging.cmake): installs the already-built
# libraries of BUILD_DIR (`cmake --install`, no second build) into WORK/prefix and builds and
# runs tests/consumer/ against it, with CMake and with pkg-config (lib.sh).
#
#   check_install.sh BUILD_DIR WORK LIBDIR VERSION
set -euo pipefail
# shellcheck source=tests/consumer/lib.sh
source "$(dirname "$0")/lib.sh"
consumer_args check_install.sh "$@"

"$CMAKE" --install "$build" --prefix "$work/prefix" >"$work/install.log" ||
  { cat "$work/install.log"; fail "cmake --install"; }
# Headers of every exported library, and none of the private ones (net/src/...).
for f in include/ioloop/io_loop.h include/ioloop/net/io_stream.h \
  include/ioloop/net/http/http_server.h include/ioloop/net/tls/tls_context.h \
  "$libdir/libioloop.a" "$libdir/libioloop_net.a" "$libdir/libioloop_http.a" \
  "$libdir/libioloop_tls.a" "$libdir/cmake/ioloop/ioloopConfig.cmake" \
  "$libdir/cmake/ioloop/ioloopConfigVersion.cmake" "$libdir/pkgconfig/ioloop.pc"; do
  [ -f "$work/prefix/$f" ] || fail "not installed: $f"
done
stray=$(cd "$work/prefix" && find . -type f ! -path "./include/ioloop/*.h" \
  ! -path "./$libdir/*.a" ! -path "./$libdir/cmake/ioloop/*.cmake" \
  ! -path "./$libdir/pkgconfig/*.pc")
[ -z "$stray" ] || fail "installed beyond headers, archives, CMake and .pc files: $stray"

consumer_build_and_run "$work/prefix" "$libdir" "$version" "$work"
echo "PASS: consumer built and ran against the installed prefix"
rm -rf "$work"
