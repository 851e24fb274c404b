#!/usr/bin/env bash
# pgo_build.sh: builds examples/http_proxy and examples/http_responder with GCC's
# profile-guided optimisation, trained on the proxy's keep-alive load, into BUILD_DIR (default
# build/pgo): the experiment of docs/benchmarks.md §7 ("profile-guided layout"), which asks how
# much of the proxy's user time is code layout (hot paths spread over cold code) rather than
# work. Not part of `make test`; a build option for measurements, not the project's Release.
#
#   tests/load/pgo_build.sh
#   BUILD_DIR=build/pgo-lto LTO=1 tests/load/pgo_build.sh
#   BUILD_DIR=build/pgo tests/load/proxy_compare.sh /tmp/pc.md      # then measure it
#
# Three steps, in one build directory (GCC finds each object's profile by the object's path):
# 1. a Release build with -fprofile-generate (profiles written to BUILD_DIR/pgo-data);
# 2. training: http_proxy in front of http_responder under `ab -k -c 64` (GET), `ab -k -c 16`
#    (POST bodies) and `ab -c 8` (a connection per request), then both stopped by SIGTERM
#    (a clean exit writes the profiles);
# 3. the same build again with -fprofile-use -fprofile-partial-training (code the training did
#    not run is optimised as usual, not for size).
# LTO=1 adds link-time optimisation (CMAKE_INTERPROCEDURAL_OPTIMIZATION) to both builds.
# Needs g++, cmake, ninja and ab (apache2-utils). Every process it starts is stopped by its PID
# on any exit (tests/load/lib.sh).
set -euo pipefail

SCRIPT_NAME=pgo_build
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD_DIR="$(abs_dir "${BUILD_DIR:-build/pgo}")"
PROFILE_DIR="$BUILD_DIR/pgo-data"
require_tools cmake:cmake ninja:ninja-build ab:apache2-utils g++:g++
make_work_dir
REMOVE_ON_EXIT="$WORK_DIR"

configure() {  # configure FLAGS: one Release configuration of BUILD_DIR with these CXX flags
  cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIOLOOP_BUILD_TESTS=OFF \
    "-DCMAKE_INTERPROCEDURAL_OPTIMIZATION=$([[ "${LTO:-0}" == 1 ]] && echo ON || echo OFF)" \
    "-DCMAKE_CXX_FLAGS=$1" >"$WORK_DIR/cmake.log" 2>&1 ||
    die "cmake failed: $(tail -20 "$WORK_DIR/cmake.log")"
  ninja -C "$BUILD_DIR" http_proxy http_responder >"$WORK_DIR/ninja.log" 2>&1 ||
    die "build failed: $(tail -20 "$WORK_DIR/ninja.log")"
}

echo "pgo_build: 1/3 instrumented build in $BUILD_DIR"
rm -rf "$PROFILE_DIR"
configure "-fprofile-generate -fprofile-update=atomic -fprofile-dir=$PROFILE_DIR"

echo "pgo_build: 2/3 training (http_proxy in front of http_responder, ab)"
examples="$BUILD_DIR/examples"
common=(--port=0 --address=127.0.0.1 --log_level=warn)
start upstream "$examples/http_responder" "${common[@]}"
upstream_pid=$STARTED_PID
upstream_port="$(port_from_stdout "$WORK_DIR/upstream.out")"
start proxy "$examples/http_proxy" "${common[@]}" "--upstream=http://127.0.0.1:$upstream_port"
proxy_pid=$STARTED_PID
url="http://127.0.0.1:$(port_from_stdout "$WORK_DIR/proxy.out")/"
head -c 4096 /dev/urandom >"$WORK_DIR/body"
for load in "-k -c 64 -n 100000" "-k -c 16 -n 20000 -p $WORK_DIR/body" "-c 8 -n 5000"; do
  # shellcheck disable=SC2086  # the load's words are ab's arguments
  failed="$(ab $load "$url" 2>&1 | awk '/^Failed requests/ {print $3}')"
  [[ "$failed" == 0 ]] || die "training load 'ab $load' failed: ${failed:-no ab output}"
done
for pid in "$proxy_pid" "$upstream_pid"; do
  kill -TERM "$pid"
  wait "$pid" || die "a trained process exited with $? (its profile may be incomplete)"
done

echo "pgo_build: 3/3 optimised build with the profiles"
configure "-fprofile-use -fprofile-partial-training -fprofile-dir=$PROFILE_DIR -Wno-missing-profile"
echo "pgo_build: done: $examples/http_proxy and $examples/http_responder"
