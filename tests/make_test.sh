#!/usr/bin/env bash
# `make test`'s pipeline (the Makefile runs it after installing the dependencies): build the
# default, asan, tsan and fuzz presets, run each one's ctest, then the comparison harness's
# smoke run and every libFuzzer target for 30 s.
#
# Each preset's ctest runs while the next preset builds. The suites spend most of their wall
# time waiting on sockets, child processes and timers, and hold no wall-clock windows (the
# house rule), so a concurrent build slows them without failing them; the overlap takes about
# a fifth off `make test` on a 2-core machine. A ctest's output goes to build/<preset>/ctest.log
# and is printed when it ends; a failed ctest stops the run there (after the build it
# overlapped), a failed build at once (the ctest running beside it is stopped).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ctest_pid=""
ctest_preset=""
stop_ctest() { if [[ -n "$ctest_pid" ]]; then kill "$ctest_pid" 2>/dev/null || true; fi; }
trap stop_ctest EXIT

build() {
  cmake --preset "$1"
  cmake --build --preset "$1"
}

start_ctest() {
  ctest_preset="$1"
  echo "make test: ctest --preset $1 (log: build/$1/ctest.log) while the next preset builds"
  ctest --preset "$1" >"build/$1/ctest.log" 2>&1 &
  ctest_pid=$!
}

finish_ctest() {
  local status=0
  wait "$ctest_pid" || status=$?
  ctest_pid=""
  echo "make test: ctest --preset $ctest_preset:"
  cat "build/$ctest_preset/ctest.log"
  if [[ $status -ne 0 ]]; then
    echo "make test: ctest --preset $ctest_preset failed (exit status $status)" >&2
    exit 1
  fi
}

build default
start_ctest default
build asan
finish_ctest
start_ctest asan
build tsan
finish_ctest
start_ctest tsan
build fuzz
finish_ctest
bash tests/load/compare/smoke.sh
bash tests/fuzz/run.sh 30
