#!/usr/bin/env bash
# tests/load/compare/run.sh: issue 10's side-by-side comparison (`make compare`). ioloop's
# examples (http_responder, echo_server) against a hand-written epoll C server (the floor,
# floor.c), libevent, libuv, Boost.Asio, nginx and Python Tornado, every one single-threaded,
# pinned to CPU $SERVER_CPU (0), with the load on CPU $CLIENT_CPU (1). Not part of `make test`:
# it takes minutes and its figures depend on the machine (run it on a quiet one).
#
#   tests/load/compare/run.sh [OUTPUT.md]
#   ROUNDS=1 DURATION=2 tests/load/compare/run.sh /tmp/compare.md       # a quick look
#   CHART_DIR=docs/img tests/load/compare/run.sh /tmp/compare.md         # for the docs
#
# Environment (the defaults keep the measuring near 9.5 minutes, `make compare` under 15):
#   BUILD_DIR         (build/release) holds examples/http_responder and examples/echo_server
#   ROUNDS            (3) interleaved rounds: every server under every load once per round
#   DURATION          (3) seconds of each timed run
#   WARMUP            (1) seconds of load per server and load before the first round
#   SYSCALL_DURATION  (2) seconds of the separate window in which syscalls are counted
#   CONNECTIONS       (64) wrk connections
#   SERVERS           (floor libevent libuv asio nginx tornado ioloop) the HTTP servers
#   ECHO_SERVERS      (floor libevent libuv asio ioloop) the echo servers ("" skips echo)
#   IDLE_CONNECTIONS  (10000) connections of the idle-memory probe (0 skips it)
#   CHART_DIR         (the scratch directory) where the PNG charts go (docs/img for the docs)
#   CFLAGS, CXXFLAGS  (-O2) for the peers; libevent and libuv add their pkg-config flags
#   SERVER_CPU, CLIENT_CPU (0, 1); SYSCALL_COUNTER=strace forces strace over perf
# Needs wrk, nginx (nginx-light), taskset, cc and c++, pkg-config, libevent-dev, libuv1-dev,
# libboost-dev, python3-tornado (run by /usr/bin/python3, Debian's), gnuplot (gnuplot-nox,
# optional: without it no charts) and perf (linux-perf) or strace; `make compare` installs them
# (third_party/install-deps.sh --compare).
#
# What it does, and why:
#  - the peers and the echo load client (echo_client.c) are compiled here from
#    tests/load/compare/ into the scratch directory (nothing is downloaded). floor, libevent,
#    libuv and Asio share scanner.h: a request is whatever ends in "\r\n\r\n", answered with a
#    canned "Hello, world!" (keep-alive, every request of a read answered in one write,
#    "Connection: close" honoured); each also has an echo mode. nginx (`return 200`), Tornado (a
#    RequestHandler) and ioloop's http_responder parse HTTP for real;
#  - every server is started once per kind (http, echo), checked (the body; Connection: close;
#    bytes echoed), and stopped by its PID (SIGTERM, then SIGKILL) on any exit, Ctrl-C included
#    (tests/load/lib.sh);
#  - HTTP loads, all `wrk -t1 -c$CONNECTIONS`: keep-alive; pipelined x16 (pipeline.lua: 16
#    requests per write); connection per request (`-H "Connection: close"`). Echo loads,
#    echo_client (ping-pong, every byte checked): 1 connection x 64 B, 100 x 64 B, 10 x 16 KiB;
#  - rounds interleave (round 1: every load over every server, then round 2, ...), so that a
#    change in the machine's load hits all alike; the ratio to the floor is taken per round;
#  - per timed run: requests/s and errors from wrk (messages/s and MB/s from echo_client), the
#    server's CPU per request = (utime + stime) delta of /proc/PID/stat (every thread) / count;
#  - syscalls per request: after the rounds, one separate SYSCALL_DURATION window per server and
#    load, counted by `perf stat -e raw_syscalls:sys_enter -p PID` (in-kernel counters), or by
#    `strace -c -f -p PID` where perf cannot (ptrace slows the server, so fewer requests and
#    more of wrk's connection setups per request). Never used for time;
#  - memory per idle connection: a fresh server of each kind, IDLE_CONNECTIONS connections
#    (`echo_client idle`), one request each, then the server's VmRSS against its VmRSS before.
# Output: one Markdown table per load (median and min-max over the rounds, ratio to the floor,
# syscalls per request, errors), the idle-memory table, the machine, the peers' versions and
# the exact command; printed and copied to OUTPUT.md if given. Charts: compare-KIND-LOAD.png
# (CPU per request and rate per server) in $CHART_DIR. Scratch files stay in $WORK_DIR (printed).
set -euo pipefail

SCRIPT_NAME=compare
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
HERE="$REPO/tests/load/compare"

BUILD_DIR="$(abs_dir "${BUILD_DIR:-build/release}")"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-3}"
WARMUP="${WARMUP:-1}"
SYSCALL_DURATION="${SYSCALL_DURATION:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
CFLAGS="${CFLAGS:--O2}"
CXXFLAGS="${CXXFLAGS:--O2}"
read -r -a SERVERS <<<"${SERVERS-floor libevent libuv asio nginx tornado ioloop}"
read -r -a ECHO_SERVERS <<<"${ECHO_SERVERS-floor libevent libuv asio ioloop}"
IDLE_CONNECTIONS="${IDLE_CONNECTIONS:-10000}"
OUTPUT="${1:-}"
TORNADO_PYTHON=/usr/bin/python3  # Debian's, which python3-tornado installs into
# shellcheck disable=SC2034  # read through run_rounds' namerefs
LOADS=(keepalive pipelined close)
# shellcheck disable=SC2034
ECHO_LOADS=(1x64 100x64 10x16k)  # CONNECTIONSxSIZE
# The python3 first on PATH may be a pyenv shim, which costs half a second per start: paid by
# every run_wrk (tests/load/lib.sh parses wrk's output with it). Debian's has all the helpers
# need (the standard library).
if [[ -x /usr/bin/python3 ]]; then python3() { /usr/bin/python3 "$@"; }; fi

# --- prerequisites ------------------------------------------------------------------------
require_tools wrk:wrk nginx:nginx-light taskset:util-linux cc:gcc c++:g++ \
  pkg-config:pkg-config python3:python3
pkg-config --exists libevent || die "libevent not found: apt-get install -y libevent-dev"
pkg-config --exists libuv || die "libuv not found: apt-get install -y libuv1-dev"
[[ -f /usr/include/boost/asio.hpp ]] || die "Boost.Asio not found: apt-get install -y libboost-dev"
"$TORNADO_PYTHON" -c 'import tornado' 2>/dev/null ||
  die "tornado not found for $TORNADO_PYTHON: apt-get install -y python3-tornado"
HTTP_RESPONDER="$BUILD_DIR/examples/http_responder"
ECHO_SERVER="$BUILD_DIR/examples/echo_server"
require_built "(cmake --preset release && cmake --build build/release --target http_responder \
echo_server), or set BUILD_DIR" "$HTTP_RESPONDER" "$ECHO_SERVER"
(($(nproc) >= 2)) || die "needs 2 CPUs (the server on one, the load on the other)"
# 10,000 idle connections need as many fds in the server and in the probe; every process
# started from here inherits the raised soft limit.
ulimit -n "$(ulimit -Hn)"
if ((IDLE_CONNECTIONS > 0)) && [[ "$(ulimit -n)" != unlimited ]] &&
  (($(ulimit -n) < IDLE_CONNECTIONS + 100)); then
  die "the open-file limit $(ulimit -n) is too low for IDLE_CONNECTIONS=$IDLE_CONNECTIONS"
fi
[[ -n "$OUTPUT" ]] && OUTPUT="$(cd "$(dirname "$OUTPUT")" && pwd)/$(basename "$OUTPUT")"

make_work_dir
CHART_DIR="$(abs_dir "${CHART_DIR:-$WORK_DIR}")"
mkdir -p "$CHART_DIR"
RESULTS="$WORK_DIR/results.tsv"
SYSCALLS="$WORK_DIR/syscalls.tsv"
RSS="$WORK_DIR/rss.tsv"
: >"$RESULTS"
: >"$SYSCALLS"
: >"$RSS"
echo "compare: scratch directory $WORK_DIR" >&2

# --- build the peers ----------------------------------------------------------------------
echo "compare: building the peers" >&2
BIN="$WORK_DIR/bin"
mkdir -p "$BIN"
read -r -a cflags <<<"$CFLAGS"
read -r -a cxxflags <<<"$CXXFLAGS"
read -r -a event_cflags <<<"$(pkg-config --cflags libevent)"
read -r -a event_libs <<<"$(pkg-config --libs libevent)"
read -r -a uv_cflags <<<"$(pkg-config --cflags libuv)"
read -r -a uv_libs <<<"$(pkg-config --libs libuv)"
{
  build_compare_tools "$BIN"  # sets FLOOR and ECHO_CLIENT
  cc "${cflags[@]}" -Wall -Wextra ${event_cflags[@]+"${event_cflags[@]}"} \
    -o "$BIN/libevent_server" "$HERE/libevent_server.c" "${event_libs[@]}"
  cc "${cflags[@]}" -Wall -Wextra ${uv_cflags[@]+"${uv_cflags[@]}"} -o "$BIN/libuv_server" \
    "$HERE/libuv_server.c" "${uv_libs[@]}"
  # C++17: Boost 1.74's asio/awaitable.hpp does not compile as C++20 (it misses <utility>).
  c++ "${cxxflags[@]}" -std=c++17 -Wall -Wextra -o "$BIN/asio_server" "$HERE/asio_server.cc" \
    -pthread
} >"$WORK_DIR/build.log" 2>&1 || die "cannot build the peers: $(cat "$WORK_DIR/build.log")"

# --- start the servers --------------------------------------------------------------------
# PID and PORT are keyed by instance: http.NAME and echo.NAME (started once, measured in the
# rounds) and rss.KIND.NAME (a fresh one per idle-connection probe).
declare -A PID PORT
# start_server KIND NAME INSTANCE: NAME's KIND (http or echo) server, pinned to SERVER_CPU.
start_server() {
  local kind="$1" name="$2" inst="$3" pin=(taskset -c "$SERVER_CPU") bin
  case "$name" in
    floor) start "$inst" "${pin[@]}" "$FLOOR" "$kind" 0 127.0.0.1 ;;
    libevent | libuv | asio) start "$inst" "${pin[@]}" "$BIN/${name}_server" "$kind" 0 127.0.0.1 ;;
    tornado) start "$inst" "${pin[@]}" "$TORNADO_PYTHON" "$HERE/tornado_server.py" 0 127.0.0.1 ;;
    ioloop)
      bin="$HTTP_RESPONDER"
      [[ "$kind" == echo ]] && bin="$ECHO_SERVER"
      start "$inst" "${pin[@]}" "$bin" --port=0 --address=127.0.0.1 --log_level=warn
      ;;
    nginx)
      PORT[$inst]="$(free_port)"
      mkdir -p "$WORK_DIR/$inst"  # its own prefix: pid file, logs and temp dirs
      sed -e "s|@DIR@|$WORK_DIR/$inst|g" -e "s|@PORT@|${PORT[$inst]}|g" "$HERE/nginx.conf.in" \
        >"$WORK_DIR/$inst/nginx.conf"
      start "$inst" "${pin[@]}" nginx -p "$WORK_DIR/$inst" -e "$WORK_DIR/$inst/nginx_error.log" \
        -c "$WORK_DIR/$inst/nginx.conf"
      PID[$inst]=$STARTED_PID
      wait_for_port "${PORT[$inst]}" "$inst"
      return
      ;;
    *) die "unknown server $name" ;;
  esac
  PID[$inst]=$STARTED_PID
  PORT[$inst]="$(port_from_stdout "$WORK_DIR/$inst.out")"
}

stop_server() {
  kill -TERM "${PID[$1]}" 2>/dev/null || true
  wait "${PID[$1]}" 2>/dev/null || true
  forget_pid "${PID[$1]}"
}

# Each must behave; a server that fails here would make its numbers void.
check_http() {
  check_hello "$1" "${PORT[$1]}"
  # Connection: close must be honoured (else the connection-per-request load measures nothing).
  python3 - "${PORT[$1]}" <<'PY' || die "$1 does not close on Connection: close"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while chunk := s.recv(4096):
    data += chunk
assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"Hello, world!"), data
PY
}
check_echo() {
  "$ECHO_CLIENT" load "${PORT[$1]}" 2 100000 0.2 >/dev/null 2>"$WORK_DIR/check.$1.err" ||
    die "$1 does not echo: $(cat "$WORK_DIR/check.$1.err")"
}

for name in "${SERVERS[@]}"; do start_server http "$name" "http.$name"; done
for name in "${ECHO_SERVERS[@]}"; do start_server echo "$name" "echo.$name"; done
for name in "${SERVERS[@]}"; do check_http "http.$name"; done
for name in "${ECHO_SERVERS[@]}"; do check_echo "echo.$name"; done

# --- measure --------------------------------------------------------------------------------
# measure KIND LOAD INSTANCE SECONDS OUT: one run of the load, pinned to CLIENT_CPU; prints
# "count count_per_s errors bytes_per_s" (count: requests or messages).
measure() {
  local kind="$1" load="$2" port="${PORT[$3]}" seconds="$4" out="$5" result
  case "$load" in
    keepalive) result="$(run_wrk "$port" "$seconds" "$out")" ;;
    pipelined) result="$(run_wrk "$port" "$seconds" "$out" http -s "$HERE/pipeline.lua")" ;;
    close) result="$(run_wrk "$port" "$seconds" "$out" http -H "Connection: close")" ;;
    *x*)  # echo: CONNECTIONSxSIZE, SIZE in bytes or KiB (16k)
      run_echo "$port" "$load" "$seconds" "$out"
      return
      ;;
    *) die "unknown load $load" ;;
  esac
  echo "$result 0"  # wrk: no byte rate
}

COUNTER=strace
if [[ "${SYSCALL_COUNTER:-perf}" == perf ]] && command -v perf >/dev/null 2>&1 &&
  perf stat -x, -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
  COUNTER=perf
fi
[[ "$COUNTER" == perf ]] || command -v strace >/dev/null 2>&1 ||
  die "neither perf (linux-perf) nor strace can count syscalls: apt-get install -y strace"

# syscall_window KIND LOAD NAME: counts the syscalls of KIND.NAME over a SYSCALL_DURATION window
# of the load; appends "kind load name calls count" to $SYSCALLS. Not run in a subshell, so
# that the counter's PID is in PIDS if the script is interrupted.
syscall_window() {
  local kind="$1" load="$2" name="$3" inst="$1.$3" file="$WORK_DIR/syscalls.$1.$2.$3" out
  local calls
  start_syscall_counter "$COUNTER" "${PID[$inst]}" "$file.raw"
  out="$(measure "$kind" "$load" "$inst" "$SYSCALL_DURATION" "$file.load")"
  stop_syscall_counter
  if [[ "$COUNTER" == perf ]]; then
    calls="$(awk -F, '$3 == "raw_syscalls:sys_enter" {print $1}' "$file.raw")"
  else
    calls="$(awk '$NF == "total" {print $4}' "$file.raw")"
  fi
  [[ "$calls" =~ ^[0-9]+$ ]] || die "no syscall count for $inst ($load): $(cat "$file.raw")"
  printf '%s\t%s\t%s\t%s\t%s\n' "$kind" "$load" "$name" "$calls" "${out%% *}" >>"$SYSCALLS"
}

# run_rounds KIND LOADS_ARRAY SERVERS_ARRAY: warm-up, ROUNDS interleaved rounds, then the
# syscall windows; appends "kind load round name count rate errors ticks bytes_per_s" lines to
# $RESULTS.
run_rounds() {
  local kind="$1" round load name before after out count rate errors bytes
  local -n loads="$2" names="$3"
  echo "compare: $kind: warming up" >&2
  for load in "${loads[@]}"; do
    for name in "${names[@]}"; do
      measure "$kind" "$load" "$kind.$name" "$WARMUP" "$WORK_DIR/warmup.$kind.$load.$name" \
        >/dev/null
    done
  done
  for round in $(seq "$ROUNDS"); do
    for load in "${loads[@]}"; do
      for name in "${names[@]}"; do
        before="$(cpu_ticks "${PID[$kind.$name]}")"
        out="$(measure "$kind" "$load" "$kind.$name" "$DURATION" \
          "$WORK_DIR/run.$kind.$load.$name.$round")"
        after="$(cpu_ticks "${PID[$kind.$name]}")"
        read -r count rate errors bytes <<<"$out"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$load" "$round" "$name" "$count" \
          "$rate" "$errors" "$((after - before))" "$bytes" >>"$RESULTS"
        echo "compare: round $round $kind $load $name: $rate/s, $errors errors," \
          "$((after - before)) ticks" >&2
      done
    done
  done
  echo "compare: $kind: counting syscalls ($COUNTER)" >&2
  for load in "${loads[@]}"; do
    for name in "${names[@]}"; do syscall_window "$kind" "$load" "$name"; done
  done
}

# rss_probe KIND NAME: a fresh server, IDLE_CONNECTIONS connections with one request each;
# appends "kind name rss_before rss_connected rss_after server_fds" to $RSS.
rss_probe() {
  local kind="$1" name="$2" inst="rss.$1.$2" out
  start_server "$kind" "$name" "$inst"
  out="$WORK_DIR/$inst.probe"
  taskset -c "$CLIENT_CPU" "$ECHO_CLIENT" idle "${PORT[$inst]}" "$IDLE_CONNECTIONS" "$kind" \
    "${PID[$inst]}" >"$out" 2>&1 || die "idle probe failed on $inst: $(cat "$out")"
  stop_server "$inst"
  printf '%s\t%s\t%s\n' "$kind" "$name" "$(tr ' ' '\t' <"$out")" >>"$RSS"
  echo "compare: idle $kind $name: $(cat "$out")" >&2
}

mark_start
if ((${#SERVERS[@]})); then run_rounds http LOADS SERVERS; fi
if ((${#ECHO_SERVERS[@]})); then run_rounds echo ECHO_LOADS ECHO_SERVERS; fi
if ((IDLE_CONNECTIONS > 0)); then
  for name in "${SERVERS[@]}"; do rss_probe http "$name"; done
  for name in "${ECHO_SERVERS[@]}"; do rss_probe echo "$name"; done
fi
MACHINE="$(machine_summary)"

# --- report ---------------------------------------------------------------------------------------
dpkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
bt='`'
REPORT="$WORK_DIR/report.md"
{
  echo "# ioloop against its peers (tests/load/compare/run.sh)"
  echo
  python3 "$HERE/report.py" "$RESULTS" "$SYSCALLS" "$RSS" "$CLK_TCK" "$COUNTER" "$WORK_DIR" \
    "$CHART_DIR" "${SERVERS[*]}" "${ECHO_SERVERS[*]}" "$IDLE_CONNECTIONS"
  echo
  echo "$MACHINE"
  echo
  echo "Versions: ioloop $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet \
HEAD 2>/dev/null || echo "+changes") (${BUILD_DIR#"$REPO"/}, $(grep -m1 \
'^CMAKE_BUILD_TYPE' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null | cut -d= -f2 || echo "?")); \
libevent $(pkg-config --modversion libevent); libuv $(pkg-config --modversion libuv); Boost.Asio \
$(dpkg_version libboost-dev); nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'); Tornado \
$("$TORNADO_PYTHON" -c 'import tornado; print(tornado.version)') (Python \
$("$TORNADO_PYTHON" -c 'import platform; print(platform.python_version())')); \
$(cc --version | head -1) with ${bt}$CFLAGS${bt} (C++: ${bt}$CXXFLAGS -std=c++17${bt}); \
$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)."
  echo
  echo "Command: ${bt}BUILD_DIR=${BUILD_DIR#"$REPO"/} ROUNDS=$ROUNDS DURATION=$DURATION \
WARMUP=$WARMUP SYSCALL_DURATION=$SYSCALL_DURATION CONNECTIONS=$CONNECTIONS \
SERVERS='${SERVERS[*]}' ECHO_SERVERS='${ECHO_SERVERS[*]}' IDLE_CONNECTIONS=$IDLE_CONNECTIONS \
tests/load/compare/run.sh${OUTPUT:+ $OUTPUT}${bt}; every server on CPU $SERVER_CPU \
(${bt}taskset -c $SERVER_CPU${bt}), wrk ${bt}-t1 -c$CONNECTIONS${bt} and ${bt}echo_client${bt} on \
CPU $CLIENT_CPU; syscalls counted with $COUNTER."
} >"$REPORT"

if command -v gnuplot >/dev/null 2>&1; then
  for gp in "$WORK_DIR"/compare-*.gp; do
    gnuplot "$gp" >>"$WORK_DIR/gnuplot.log" 2>&1 ||
      die "gnuplot failed: $(cat "$WORK_DIR/gnuplot.log")"
  done
  echo "compare: charts in $CHART_DIR" >&2
else
  echo "compare: no gnuplot (apt-get install -y gnuplot-nox): no charts" >&2
fi

cat "$REPORT"
if [[ -n "$OUTPUT" ]]; then cp "$REPORT" "$OUTPUT"; fi
