# shellcheck shell=bash
# Shared by check_install.sh and check_deb.sh (sourced): builds tests/consumer/ against an
# installed ioloop twice, once with CMake (find_package) and once with a bare c++ command
# line from pkg-config, and runs each program of each build for its one round trip.
#
#   consumer_build_and_run PREFIX LIBDIR VERSION WORK
# PREFIX holds include/ and LIBDIR/ (a `cmake --install` prefix, or usr/ of the unpacked
# .deb); WORK is a scratch directory. Fails (set -e) on the first wrong byte.

# The CMake of the build under test (the ctest passes it), else the one on PATH.
CMAKE=${CMAKE:-cmake}
CPACK=${CPACK:-cpack}
consumer_src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# consumer_args SCRIPT BUILD_DIR WORK LIBDIR VERSION: the two check scripts' arguments, into
# build, work, libdir and version; WORK is emptied.
consumer_args() {
  [ $# -eq 5 ] || { echo "usage: $1 BUILD_DIR WORK LIBDIR VERSION" >&2; exit 2; }
  build=$2 work=$3 libdir=$4 version=$5
  rm -rf "$work"
  mkdir -p "$work"
}

# Runs program $1, which must exit 0 and print exactly the bytes $2 (trailing newline too).
expect_output() {
  local program=$1 expected=$2 status=0
  "$program" >"$program.out" || status=$?
  [ "$status" -eq 0 ] || fail "$program exited $status, printed: $(cat "$program.out")"
  printf '%s' "$expected" | cmp -s - "$program.out" ||
    fail "$program printed '$(cat "$program.out")', expected '$expected'"
  echo "ok: $program: $(cat "$program.out")"
}

consumer_build_and_run() {
  local prefix=$1 libdir=$2 version=$3 work=$4
  shift 4  # the rest: the consumer's CMake options

  # 1. CMake: find_package(ioloop CONFIG) from PREFIX only (the cache must name it: a stray
  #    system-wide ioloop would otherwise pass unnoticed). No build type: -O0, fastest.
  "$CMAKE" -S "$consumer_src" -B "$work/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" "$@" \
    >"$work/cmake-configure.log" 2>&1 || { cat "$work/cmake-configure.log"; fail "configure"; }
  local cache="$work/cmake/CMakeCache.txt"
  grep -qx "ioloop_DIR:PATH=$prefix/$libdir/cmake/ioloop" "$cache" ||
    fail "find_package(ioloop) did not use $prefix: $(grep '^ioloop_DIR' "$cache")"
  "$CMAKE" --build "$work/cmake" -j 1 >"$work/cmake-build.log" 2>&1 ||
    { cat "$work/cmake-build.log"; fail "cmake build"; }
  expect_output "$work/cmake/echo_roundtrip" $'echo: hello, ioloop\n'
  expect_output "$work/cmake/http_roundtrip" $'http: 200 hello from /consumer\n'

  # 1b. OPTIONAL_COMPONENTS: without OpenSSL, an optional tls leaves the package found (and
  #     the stream library linked and working); a required one fails with the reason.
  "$CMAKE" -S "$consumer_src/optional" -B "$work/optional" -G Ninja \
    -DCMAKE_PREFIX_PATH="$prefix" >"$work/optional-configure.log" 2>&1 ||
    { cat "$work/optional-configure.log"; fail "configure with tls optional and no OpenSSL"; }
  "$CMAKE" --build "$work/optional" -j 1 >"$work/optional-build.log" 2>&1 ||
    { cat "$work/optional-build.log"; fail "build with tls optional"; }
  expect_output "$work/optional/echo_roundtrip" $'echo: hello, ioloop\n'
  if "$CMAKE" -S "$consumer_src/optional" -B "$work/required" -G Ninja -DTLS_REQUIRED=ON \
    -DCMAKE_PREFIX_PATH="$prefix" >"$work/required-configure.log" 2>&1; then
    fail "tls required without OpenSSL configured"
  fi
  grep -q "OpenSSL 3.0 not found" "$work/required-configure.log" ||
    { cat "$work/required-configure.log"; fail "no reason given for the missing tls"; }

  # 2. pkg-config: nothing but the compiler and plain `pkg-config --libs`, as Meson and
  #    autotools ask (the archives are static, so their own dependencies are in Libs and
  #    Requires, not in the .private fields those leave out).
  export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
  local found
  found=$(pkg-config --modversion ioloop) || fail "pkg-config does not find ioloop"
  [ "$found" = "$version" ] || fail "pkg-config: ioloop version $found, expected $version"
  local pcfiledir
  pcfiledir=$(pkg-config --variable=pcfiledir ioloop)
  [ "$pcfiledir" = "$prefix/$libdir/pkgconfig" ] || fail "pkg-config used $pcfiledir, not $prefix"
  # The layers: the stream library alone pulls in neither HTTP nor TLS.
  local net_libs
  net_libs=$(pkg-config --libs ioloop-net)
  case " $net_libs " in
    *" -lioloop_net "*) ;;
    *) fail "ioloop-net's libs lack -lioloop_net: $net_libs" ;;
  esac
  case " $net_libs " in
    *" -lioloop_http "* | *" -lhttp_parser "* | *" -lioloop_tls "* | *" -lssl "*)
      fail "ioloop-net's libs include HTTP or TLS: $net_libs" ;;
  esac
  mkdir -p "$work/pc"
  local name
  for name in echo_roundtrip http_roundtrip; do
    # shellcheck disable=SC2046  # pkg-config's output is a list of words
    c++ -std=c++20 "$consumer_src/$name.cc" -o "$work/pc/$name" \
      $(pkg-config --cflags --libs ioloop) || fail "c++ $name.cc with pkg-config"
  done
  expect_output "$work/pc/echo_roundtrip" $'echo: hello, ioloop\n'
  expect_output "$work/pc/http_roundtrip" $'http: 200 hello from /consumer\n'
}
