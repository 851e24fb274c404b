#!/usr/bin/env bash
# tests/load/compare/run.sh: issue 10's side-by-side comparison (`make compare`). ioloop's
# examples against a hand-written epoll C server (the floor, floor.c), libevent, libuv,
# Boost.Asio, nginx and Python Tornado, every one single-threaded, pinned to CPU $SERVER_CPU
# (0), with the load on CPU $CLIENT_CPU (1). Not part of `make test`: it takes minutes and its
# figures depend on the machine (run it on a quiet one).
#
#   tests/load/compare/run.sh [OUTPUT.md]
#   ROUNDS=1 DURATION=2 tests/load/compare/run.sh /tmp/compare.md       # a quick look
#   CHART_DIR=docs/img tests/load/compare/run.sh /tmp/compare.md         # for the docs
#
# Environment (defaults fit `make compare` in under 15 minutes):
#   BUILD_DIR         (build/release) holds examples/http_responder and examples/echo_server
#   ROUNDS            (3) interleaved rounds: every server under every load once per round
#   DURATION          (5) seconds of each timed wrk run
#   WARMUP            (1) seconds of wrk per server and load before the first round
#   SYSCALL_DURATION  (2) seconds of the separate window in which syscalls are counted
#   CONNECTIONS       (64) wrk connections
#   SERVERS           (all: floor libevent libuv asio nginx tornado ioloop) a subset to run
#   CHART_DIR         (the scratch directory) where the PNG charts go (docs/img for the docs)
#   CFLAGS, CXXFLAGS  (-O2) for the peers; libevent and libuv add their pkg-config flags
#   SERVER_CPU, CLIENT_CPU (0, 1)
# Needs wrk, nginx (nginx-light), taskset, cc and c++, pkg-config, libevent-dev, libuv1-dev,
# libboost-dev, python3-tornado (run by /usr/bin/python3, Debian's), gnuplot (gnuplot-nox,
# optional: without it no charts) and perf (linux-perf) or strace; `make compare` installs them
# (third_party/install-deps.sh --compare).
#
# What it does, and why:
#  - the peers are compiled here from tests/load/compare/ into the scratch directory (nothing
#    is downloaded). floor, libevent, libuv and Asio share scanner.h: a request is whatever
#    ends in "\r\n\r\n", answered with a canned "Hello, world!" (keep-alive, every request of a
#    read answered in one write, "Connection: close" honoured). nginx (`return 200`), Tornado
#    (a RequestHandler) and ioloop's http_responder parse HTTP for real;
#  - every server is started once, with stdout/stderr in the scratch directory, and stopped by
#    its PID (SIGTERM, then SIGKILL) on any exit, Ctrl-C included (tests/load/lib.sh);
#  - loads, all `wrk -t1 -c$CONNECTIONS`: keep-alive; pipelined x16 (pipeline.lua: 16 requests
#    per write); connection per request (`-H "Connection: close"`);
#  - rounds interleave (round 1: every load over every server, then round 2, ...), so that a
#    change in the machine's load hits all alike; the ratio to the floor is taken per round;
#  - per timed run: requests/s and errors from wrk, the server's CPU per request = (utime +
#    stime) delta of /proc/PID/stat (every thread) / requests;
#  - syscalls per request: after the rounds, one separate SYSCALL_DURATION window per server and
#    load, counted by `perf stat -e raw_syscalls:sys_enter -p PID` (in-kernel counters), or by
#    `strace -c -f -p PID` where perf cannot (ptrace slows the server, so fewer requests and
#    more of wrk's connection setups per request). Never used for time.
# Output: one Markdown table per load (median and min-max over the rounds, ratio to the floor,
# syscalls per request, errors), the peers' versions, the machine and the exact command; printed
# and copied to OUTPUT.md if given. Charts: compare-http-LOAD.png in $CHART_DIR.
# Not done yet (issue 10 point 1): the echo loads (floor's echo mode and the peers' are built
# and answer, but no echo load client drives them) and RSS per idle connection.
set -euo pipefail

SCRIPT_NAME=compare
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
HERE="$REPO/tests/load/compare"

BUILD_DIR="$(abs_dir "${BUILD_DIR:-build/release}")"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
SYSCALL_DURATION="${SYSCALL_DURATION:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
CFLAGS="${CFLAGS:--O2}"
CXXFLAGS="${CXXFLAGS:--O2}"
read -r -a SERVERS <<<"${SERVERS:-floor libevent libuv asio nginx tornado ioloop}"
OUTPUT="${1:-}"
TORNADO_PYTHON=/usr/bin/python3  # Debian's, which python3-tornado installs into
LOADS=(keepalive pipelined close)

# --- prerequisites ------------------------------------------------------------------------
require_tools wrk:wrk nginx:nginx-light taskset:util-linux cc:gcc c++:g++ \
  pkg-config:pkg-config python3:python3
pkg-config --exists libevent || die "libevent not found: apt-get install -y libevent-dev"
pkg-config --exists libuv || die "libuv not found: apt-get install -y libuv1-dev"
[[ -f /usr/include/boost/asio.hpp ]] || die "Boost.Asio not found: apt-get install -y libboost-dev"
"$TORNADO_PYTHON" -c 'import tornado' 2>/dev/null ||
  die "tornado not found for $TORNADO_PYTHON: apt-get install -y python3-tornado"
HTTP_RESPONDER="$BUILD_DIR/examples/http_responder"
require_built "(cmake --preset release && cmake --build build/release --target http_responder \
echo_server), or set BUILD_DIR" "$HTTP_RESPONDER"
(($(nproc) >= 2)) || die "needs 2 CPUs (the server on one, wrk on the other)"
[[ -n "$OUTPUT" ]] && OUTPUT="$(cd "$(dirname "$OUTPUT")" && pwd)/$(basename "$OUTPUT")"

make_work_dir
CHART_DIR="$(abs_dir "${CHART_DIR:-$WORK_DIR}")"
mkdir -p "$CHART_DIR"
RESULTS="$WORK_DIR/results.tsv"
SYSCALLS="$WORK_DIR/syscalls.tsv"
: >"$RESULTS"
: >"$SYSCALLS"
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
  cc "${cflags[@]}" -Wall -Wextra -o "$BIN/floor" "$HERE/floor.c"
  cc "${cflags[@]}" -Wall -Wextra ${event_cflags[@]+"${event_cflags[@]}"} \
    -o "$BIN/libevent_server" "$HERE/libevent_server.c" "${event_libs[@]}"
  cc "${cflags[@]}" -Wall -Wextra ${uv_cflags[@]+"${uv_cflags[@]}"} -o "$BIN/libuv_server" \
    "$HERE/libuv_server.c" "${uv_libs[@]}"
  # C++17: Boost 1.74's asio/awaitable.hpp does not compile as C++20 (it misses <utility>).
  c++ "${cxxflags[@]}" -std=c++17 -Wall -Wextra -o "$BIN/asio_server" "$HERE/asio_server.cc" \
    -pthread
} >"$WORK_DIR/build.log" 2>&1 || die "cannot build the peers: $(cat "$WORK_DIR/build.log")"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  die "nothing listens on port $1 ($2)"
}

# --- start the servers --------------------------------------------------------------------
declare -A PID PORT
start_http_server() {
  local name="$1" pin=(taskset -c "$SERVER_CPU")
  case "$name" in
    floor | libevent | libuv | asio)
      local bin="$BIN/${name}_server"
      [[ "$name" == floor ]] && bin="$BIN/floor"
      start "$name" "${pin[@]}" "$bin" http 0 127.0.0.1
      ;;
    tornado) start "$name" "${pin[@]}" "$TORNADO_PYTHON" "$HERE/tornado_server.py" 0 127.0.0.1 ;;
    ioloop)
      start "$name" "${pin[@]}" "$HTTP_RESPONDER" --port=0 --address=127.0.0.1 --log_level=warn
      ;;
    nginx)
      PORT[nginx]="$(free_port)"
      sed -e "s|@DIR@|$WORK_DIR|g" -e "s|@PORT@|${PORT[nginx]}|g" "$HERE/nginx.conf.in" \
        >"$WORK_DIR/nginx.conf"
      start nginx "${pin[@]}" nginx -p "$WORK_DIR" -e "$WORK_DIR/nginx_error.log" \
        -c "$WORK_DIR/nginx.conf"
      PID[nginx]=$STARTED_PID
      wait_for_port "${PORT[nginx]}" nginx
      return
      ;;
    *) die "unknown server $name (SERVERS=${SERVERS[*]})" ;;
  esac
  PID[$name]=$STARTED_PID
  PORT[$name]="$(port_from_stdout "$WORK_DIR/$name.out")"
}
for name in "${SERVERS[@]}"; do start_http_server "$name"; done
# A server that fails this would make its numbers void.
for name in "${SERVERS[@]}"; do check_hello "$name" "${PORT[$name]}"; done
# Connection: close must be honoured (else the connection-per-request load measures nothing).
for name in "${SERVERS[@]}"; do
  python3 - "${PORT[$name]}" <<'PY' || die "$name does not close on Connection: close"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while chunk := s.recv(4096):
    data += chunk
assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"Hello, world!"), data
PY
done

# --- measure --------------------------------------------------------------------------------
# run_wrk with the load's arguments; prints "requests requests_per_s errors".
run_load() {
  local load="$1" port="$2" seconds="$3" out="$4"
  case "$load" in
    keepalive) run_wrk "$port" "$seconds" "$out" ;;
    pipelined) run_wrk "$port" "$seconds" "$out" http -s "$HERE/pipeline.lua" ;;
    close) run_wrk "$port" "$seconds" "$out" http -H "Connection: close" ;;
  esac
}

COUNTER=strace
if [[ "${SYSCALL_COUNTER:-perf}" == perf ]] && command -v perf >/dev/null 2>&1 &&
  perf stat -x, -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
  COUNTER=perf
fi
[[ "$COUNTER" == perf ]] || command -v strace >/dev/null 2>&1 ||
  die "neither perf (linux-perf) nor strace can count syscalls: apt-get install -y strace"

# Counts the syscalls of server $2 under load $1 over a SYSCALL_DURATION wrk window; appends
# "load server calls requests" to $SYSCALLS. Not run in a subshell, so that the counter's PID
# is in PIDS if the script is interrupted.
syscall_window() {
  local load="$1" name="$2" file="$WORK_DIR/syscalls.$1.$2" spid out calls
  if [[ "$COUNTER" == perf ]]; then
    perf stat -x, -e raw_syscalls:sys_enter -p "${PID[$name]}" -o "$file.raw" &
    spid=$!
    PIDS+=("$spid")
    sleep 0.5  # perf attaches at once; this leaves it time to open its counters
  else
    strace -c -f -p "${PID[$name]}" -o "$file.raw" 2>"$file.err" &
    spid=$!
    PIDS+=("$spid")
    for _ in $(seq 100); do  # attached once the server's TracerPid is set
      grep -q '^TracerPid:[[:space:]]*[1-9]' "/proc/${PID[$name]}/status" && break
      sleep 0.05
    done
    sleep 0.2
  fi
  out="$(run_load "$load" "${PORT[$name]}" "$SYSCALL_DURATION" \
    "$WORK_DIR/wrk.syscalls.$load.$name")"
  kill -INT "$spid"
  wait "$spid" 2>/dev/null || true
  if [[ "$COUNTER" == perf ]]; then
    calls="$(awk -F, '$3 == "raw_syscalls:sys_enter" {print $1}' "$file.raw")"
  else
    calls="$(awk '$NF == "total" {print $4}' "$file.raw")"
  fi
  [[ "$calls" =~ ^[0-9]+$ ]] || die "no syscall count for $name ($load): $(cat "$file.raw")"
  printf '%s\t%s\t%s\t%s\n' "$load" "$name" "$calls" "${out%% *}" >>"$SYSCALLS"
}

mark_start
echo "compare: warming up" >&2
for load in "${LOADS[@]}"; do
  for name in "${SERVERS[@]}"; do
    run_load "$load" "${PORT[$name]}" "$WARMUP" "$WORK_DIR/wrk.warmup.$load.$name" >/dev/null
  done
done

for round in $(seq "$ROUNDS"); do
  for load in "${LOADS[@]}"; do
    for name in "${SERVERS[@]}"; do
      before="$(cpu_ticks "${PID[$name]}")"
      out="$(run_load "$load" "${PORT[$name]}" "$DURATION" "$WORK_DIR/wrk.$load.$name.$round")"
      after="$(cpu_ticks "${PID[$name]}")"
      read -r requests rps errors <<<"$out"
      printf 'http\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$load" "$round" "$name" "$requests" "$rps" \
        "$errors" "$((after - before))" >>"$RESULTS"
      echo "compare: round $round $load $name: $rps requests/s, $errors errors," \
        "$((after - before)) ticks" >&2
    done
  done
done

echo "compare: counting syscalls ($COUNTER)" >&2
for load in "${LOADS[@]}"; do
  for name in "${SERVERS[@]}"; do syscall_window "$load" "$name"; done
done
MACHINE="$(machine_summary)"

# --- report ---------------------------------------------------------------------------------------
dpkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
bt='`'
REPORT="$WORK_DIR/report.md"
{
  echo "# ioloop against its peers (tests/load/compare/run.sh)"
  echo
  python3 "$HERE/report.py" "$RESULTS" "$SYSCALLS" "$CLK_TCK" "$COUNTER" "$WORK_DIR" \
    "$CHART_DIR" "${SERVERS[@]}"
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
SERVERS='${SERVERS[*]}' tests/load/compare/run.sh${OUTPUT:+ $OUTPUT}${bt}; every server on CPU \
$SERVER_CPU (${bt}taskset -c $SERVER_CPU${bt}), wrk ${bt}-t1 -c$CONNECTIONS${bt} on CPU \
$CLIENT_CPU; syscalls counted with $COUNTER."
} >"$REPORT"

if command -v gnuplot >/dev/null 2>&1; then
  for load in "${LOADS[@]}"; do
    gnuplot "$WORK_DIR/compare-http-$load.gp" >>"$WORK_DIR/gnuplot.log" 2>&1 ||
      die "gnuplot failed: $(cat "$WORK_DIR/gnuplot.log")"
  done
  echo "compare: charts in $CHART_DIR" >&2
else
  echo "compare: no gnuplot (apt-get install -y gnuplot-nox): no charts" >&2
fi

cat "$REPORT"
if [[ -n "$OUTPUT" ]]; then cp "$REPORT" "$OUTPUT"; fi
