#!/usr/bin/env bash
# ctest package_consumer_deb (tests/cmake/packaging.cmake): builds the libioloop-dev .deb
# from BUILD_DIR's already-built libraries (cpack, ioloop/cmake/packaging.cmake), checks its
# control fields and contents with dpkg-deb -I / -c, unpacks it with dpkg -x (no
# installation, no root) and builds and runs tests/consumer/ against the unpacked usr/, with
# CMake and with pkg-config (lib.sh; the .pc files are relocatable).
#
#   check_deb.sh BUILD_DIR WORK LIBDIR VERSION
set -euo pipefail
# shellcheck source=tests/consumer/lib.sh
source "$(dirname "$0")/lib.sh"
consumer_args check_deb.sh "$@"

"$CPACK" -G DEB --config "$build/CPackConfig.cmake" -B "$work/deb" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack"; }
deb="$work/deb/libioloop-dev_${version}_$(dpkg --print-architecture).deb"
[ -f "$deb" ] || fail "no $deb; cpack made: $(ls "$work/deb")"

# Control fields, as dpkg-deb -I prints them (" Field: value").
info=$(dpkg-deb -I "$deb")
field() { sed -n "s/^ $1: //p" <<<"$info"; }
[ "$(field Package)" = libioloop-dev ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version)"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] ||
  fail "Architecture: $(field Architecture)"
[ "$(field Section)" = libdevel ] || fail "Section: $(field Section)"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
[ -n "$(field Description)" ] || fail "no Description"
depends=", $(field Depends),"
for dep in libabsl-dev libspdlog-dev libfmt-dev libssl-dev libhttp-parser-dev; do
  grep -Eq ", $dep( \([^)]*\))?," <<<"$depends" || fail "Depends lacks $dep: $depends"
done
# abseil pinned to the release built against, from both sides (its symbols' inline namespace
# changes with each release), in a form the installed libabsl-dev satisfies.
absl_installed=$(dpkg-query -W -f='${Version}' libabsl-dev)
absl_release=${absl_installed%%.*}
pin="libabsl-dev (>= $absl_release), libabsl-dev (<< $((absl_release + 1)))"
[[ "$depends" == *", $pin,"* ]] || fail "Depends lacks '$pin': $depends"
dpkg --compare-versions "$absl_installed" ge "$absl_release" &&
  dpkg --compare-versions "$absl_installed" lt "$((absl_release + 1))" ||
  fail "the installed libabsl-dev $absl_installed does not satisfy '$pin'"

# Contents: the archives, the headers of every library, the CMake package and the .pc
# files, all under /usr; nothing else (no private header from net/src, no binary).
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in "$libdir/libioloop.a" "$libdir/libioloop_net.a" "$libdir/libioloop_http.a" \
  "$libdir/libioloop_tls.a" include/ioloop/io_loop.h include/ioloop/net/io_stream.h \
  include/ioloop/net/http/http_server.h include/ioloop/net/tls/tls_context.h \
  "$libdir/cmake/ioloop/ioloopConfig.cmake" "$libdir/cmake/ioloop/ioloopConfigVersion.cmake" \
  "$libdir/pkgconfig/ioloop.pc" "$libdir/pkgconfig/ioloop-net.pc"; do
  grep -qx "\./usr/$f" <<<"$contents" || fail "the package lacks /usr/$f"
done
allowed="include/ioloop/.*\.h|$libdir/[^/]*\.a|$libdir/cmake/ioloop/[^/]*\.cmake"
allowed+="|$libdir/pkgconfig/[^/]*\.pc"
stray=$(grep -v '/$' <<<"$contents" | grep -Ev "^\./usr/($allowed)$" || true)
[ -z "$stray" ] || fail "the package holds more than headers, archives, CMake and .pc files: $stray"

dpkg -x "$deb" "$work/root"
# IOLOOP_DEB_STRIP_DEBUG (the default): no debug sections left in the archives.
if [ "${DEB_STRIPPED:-0}" = 1 ]; then
  for archive in "$work/root/usr/$libdir"/*.a; do
    # (not `objdump | grep -q`: grep's early exit would fail objdump under pipefail)
    sections=$(objdump -h "$archive")
    if grep -q '\.debug_info' <<<"$sections"; then fail "$archive has debug info"; fi
  done
fi
consumer_build_and_run "$work/root/usr" "$libdir" "$version" "$work" -DCONSUMER_ALL_COMPONENTS=ON
echo "PASS: $(basename "$deb") checked, unpacked and built against"
rm -rf "$work"
