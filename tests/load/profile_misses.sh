#!/usr/bin/env bash
# profile_misses.sh: the profile behind each of issue 10's missed goals (docs/benchmarks.md
# §9.4). For each load of `make compare` (tests/load/compare/run.sh) it profiles ioloop's
# server and the floor (compare/floor.c) under the same load, and it breaks down the heap each
# holds per idle connection. Not part of `make test`; about 8 minutes with the defaults.
#
#   tests/load/profile_misses.sh [OUTPUT.md]
#   LOADS='keepalive echo1' PROFILE_SECONDS=3 tests/load/profile_misses.sh   # a quick look
#
# Per load (keepalive, pipelined, close: wrk -t1 -c$CONNECTIONS as compare/run.sh drives them;
# echo1, echo100, echo16k: `echo_client load PORT 1 64`, `100 64`, `10 16384`) and server
# (ioloop's http_responder or echo_server, and the floor), each server one thread pinned to
# CPU $SERVER_CPU, the load on CPU $CLIENT_CPU:
#  - time: `perf record -e cpu-clock -p PID` (flat, no call graphs: a Release build has no
#    frame pointers) over a PROFILE_SECONDS window of the load, after WARMUP seconds of it; the
#    server's CPU per request or message over that window from /proc/PID/stat (as run.sh
#    takes it); `perf report --no-children --sort dso,sym` split into buckets: kernel
#    (syscalls, TCP), malloc/free (libc's allocator and operator new/delete), libhttp_parser,
#    ioloop's HTTP layer (the functions defined in net/src/http/*.o and the responder's own
#    code, listed by nm), ioloop's stream/loop (the rest of ioloop, and echo_server's own code),
#    other (memcpy, libc's syscall stubs, abseil, ...); and the top symbols by self time;
#  - instructions: this VM does not expose hardware counters (`perf stat -e instructions:u`
#    says <not supported>), so user-space instructions per request or message are counted by
#    callgrind, as instructions_per_request.sh does: the server under `valgrind
#    --tool=callgrind`, WARMUP seconds of the load, counters zeroed (callgrind_control -z),
#    CALLGRIND_SECONDS of the load, a dump (callgrind_control -d); the dump's Ir by the same
#    buckets (self cost), and its calls to malloc/free per request or message;
#  - memory (ioloop and floor, http and echo): a plain server and `echo_client idle PORT
#    IDLE_CONNECTIONS` (one request each, then all idle) for the VmRSS growth per connection;
#    then the same under heaptrack, made to exit (gdb: `call exit(0)`) while the connections
#    are idle and held, so that heaptrack's "leaked" is the live heap, minus a server ended so
#    with no connection: the live bytes and allocations per connection by allocation site
#    (their sum is the per-connection heap, to set against the RSS figure).
# Environment: BUILD_DIR (build/release: examples/http_responder and echo_server, and their
# object files, which name the buckets), LOADS (keepalive pipelined close echo1 echo100
# echo16k; `LOADS=` runs the memory part only), SERVERS (ioloop floor), PROFILE_SECONDS (4), WARMUP (1), CALLGRIND_SECONDS (3),
# CONNECTIONS (64), IDLE_CONNECTIONS (1000; 0 skips the memory part), TOP (8: symbols and
# sites shown), SERVER_CPU, CLIENT_CPU (0, 1), CFLAGS (-O2, the floor's and echo_client's).
# Needs perf (linux-perf), wrk, valgrind, heaptrack, gdb, nm (binutils), taskset, cc, python3; it
# names the Debian packages to install when one is missing. Every process it starts is stopped
# by its PID (tests/load/lib.sh); scratch files, perf.data and callgrind dumps included, stay
# in a mktemp directory (printed, kept for a closer look: `perf report -i ...`).
set -euo pipefail

SCRIPT_NAME=profile_misses
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$REPO/tests/load"

BUILD_DIR="$(abs_dir "${BUILD_DIR:-build/release}")"
read -r -a LOADS <<<"${LOADS-keepalive pipelined close echo1 echo100 echo16k}"  # set but empty: none
read -r -a SERVERS <<<"${SERVERS:-ioloop floor}"
PROFILE_SECONDS="${PROFILE_SECONDS:-4}"
WARMUP="${WARMUP:-1}"
CALLGRIND_SECONDS="${CALLGRIND_SECONDS:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
IDLE_CONNECTIONS="${IDLE_CONNECTIONS:-1000}"
TOP="${TOP:-8}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
OUTPUT="${1:-}"
# As in compare/run.sh: Debian's python3, not a slow-starting pyenv shim (run_wrk uses it).
if [[ -x /usr/bin/python3 ]]; then python3() { /usr/bin/python3 "$@"; }; fi
HELPER="$HERE/profile_misses.py"

require_tools perf:linux-perf wrk:wrk valgrind:valgrind callgrind_control:valgrind \
  heaptrack:heaptrack heaptrack_print:heaptrack gdb:gdb nm:binutils taskset:util-linux cc:gcc \
  python3:python3
HTTP_RESPONDER="$BUILD_DIR/examples/http_responder"
ECHO_SERVER="$BUILD_DIR/examples/echo_server"
require_built "(cmake --preset release && cmake --build --preset release --target \
http_responder echo_server), or set BUILD_DIR" "$HTTP_RESPONDER" "$ECHO_SERVER"
(($(nproc) >= 2)) || die "needs 2 CPUs (the server on one, the load on the other)"
perf record -e cpu-clock -o /dev/null -- true >/dev/null 2>&1 ||
  die "perf record -e cpu-clock does not work here (perf_event_paranoid?)"
for load in "${LOADS[@]}"; do
  case "$load" in keepalive | pipelined | close | echo1 | echo100 | echo16k) ;;
    *) die "unknown load $load" ;; esac
done
ulimit -n "$(ulimit -Hn)"
if [[ "$(ulimit -n)" != unlimited ]] && (($(ulimit -n) < IDLE_CONNECTIONS + 100)); then
  die "the open-file limit $(ulimit -n) is too low for IDLE_CONNECTIONS=$IDLE_CONNECTIONS"
fi
[[ -n "$OUTPUT" ]] && OUTPUT="$(cd "$(dirname "$OUTPUT")" && pwd)/$(basename "$OUTPUT")"

make_work_dir
echo "profile_misses: scratch directory $WORK_DIR" >&2
mkdir -p "$WORK_DIR/bin"
build_compare_tools "$WORK_DIR/bin" >"$WORK_DIR/build.log" 2>&1 ||
  die "cannot build the floor and echo_client: $(cat "$WORK_DIR/build.log")"
SYMBOLS="$WORK_DIR/symbols.tsv"
objs="$BUILD_DIR/net/CMakeFiles"
{
  python3 "$HELPER" symbols "$SYMBOLS" "$objs/ioloop_http.dir" \
    "$BUILD_DIR/ioloop/CMakeFiles/ioloop_ioloop.dir:$objs/ioloop_net.dir" &&
    python3 "$HELPER" symbols-examples "$SYMBOLS" \
      "$BUILD_DIR/examples/CMakeFiles/http_responder.dir" \
      "$BUILD_DIR/examples/CMakeFiles/echo_server.dir"
} || die "cannot list the symbols of $BUILD_DIR's object files"
printf '{"connections": %d, "seconds": %s}\n' "$CONNECTIONS" "$PROFILE_SECONDS" \
  >"$WORK_DIR/meta.json"

kind_of() { case "$1" in echo*) echo echo ;; *) echo http ;; esac; }

# server_command KIND NAME: NAME's KIND (http, echo) server, as compare/run.sh starts it.
server_command() {
  case "$2" in
    floor) SERVER_CMD=("$FLOOR" "$1" 0 127.0.0.1) ;;
    ioloop)
      SERVER_CMD=("$HTTP_RESPONDER")
      [[ "$1" == echo ]] && SERVER_CMD=("$ECHO_SERVER")
      SERVER_CMD+=(--port=0 --address=127.0.0.1 --log_level=warn)
      ;;
    *) die "unknown server $2 (SERVERS: ioloop, floor)" ;;
  esac
}

# start_server KIND NAME INSTANCE [WRAPPER...]: the server pinned to SERVER_CPU, under WRAPPER
# (valgrind, heaptrack) if given; sets PID[INSTANCE] and PORT[INSTANCE].
declare -A PID PORT
start_server() {
  local kind="$1" name="$2" inst="$3"
  shift 3
  server_command "$kind" "$name"
  start "$inst" taskset -c "$SERVER_CPU" "$@" "${SERVER_CMD[@]}"
  PID[$inst]=$STARTED_PID
  PORT[$inst]="$(port_from_stdout "$WORK_DIR/$inst.out" 30)"  # valgrind: seconds to start
}

stop_server() {
  kill -TERM "${PID[$1]}" 2>/dev/null || true
  wait "${PID[$1]}" 2>/dev/null || true
  forget_pid "${PID[$1]}"
}

# drive LOAD PORT SECONDS OUT: one run of LOAD; prints the requests or messages it counted.
drive() {
  local load="$1" port="$2" seconds="$3" out="$4" result
  case "$load" in
    keepalive) result="$(run_wrk "$port" "$seconds" "$out")" ;;
    pipelined) result="$(run_wrk "$port" "$seconds" "$out" http -s "$HERE/compare/pipeline.lua")" ;;
    close) result="$(run_wrk "$port" "$seconds" "$out" http -H "Connection: close")" ;;
    echo1) result="$(run_echo "$port" 1x64 "$seconds" "$out")" ;;
    echo100) result="$(run_echo "$port" 100x64 "$seconds" "$out")" ;;
    echo16k) result="$(run_echo "$port" 10x16k "$seconds" "$out")" ;;
  esac
  echo "${result%% *}"
}

loads_of() {  # loads_of KIND: the LOADS of that kind
  local load
  KIND_LOADS=()
  for load in "${LOADS[@]}"; do
    if [[ "$(kind_of "$load")" == "$1" ]]; then KIND_LOADS+=("$load"); fi
  done
}

mark_start

# --- time: perf record over a window of each load -----------------------------------------------
for kind in http echo; do
  loads_of "$kind"
  ((${#KIND_LOADS[@]})) || continue
  for name in "${SERVERS[@]}"; do start_server "$kind" "$name" "$kind.$name"; done
  for load in "${KIND_LOADS[@]}"; do
    for name in "${SERVERS[@]}"; do
      inst="$kind.$name"
      tag="$load.$name"
      drive "$load" "${PORT[$inst]}" "$WARMUP" "$WORK_DIR/warmup.$tag" >/dev/null
      taskset -c "$CLIENT_CPU" perf record -e cpu-clock -p "${PID[$inst]}" \
        -o "$WORK_DIR/perf.$tag.data" >"$WORK_DIR/perf.$tag.log" 2>&1 &
      perf_pid=$!
      PIDS+=("$perf_pid")
      sleep 0.5  # perf attaches
      before="$(cpu_ticks "${PID[$inst]}")"
      count="$(drive "$load" "${PORT[$inst]}" "$PROFILE_SECONDS" "$WORK_DIR/load.$tag")"
      after="$(cpu_ticks "${PID[$inst]}")"
      kill -INT "$perf_pid"
      wait "$perf_pid" 2>/dev/null || true
      forget_pid "$perf_pid"
      perf report -i "$WORK_DIR/perf.$tag.data" --stdio --no-children --sort dso,sym -g none \
        --percent-limit 0 -t $'\t' >"$WORK_DIR/perf.$tag.txt" 2>"$WORK_DIR/perf.$tag.err" ||
        die "perf report failed: $(cat "$WORK_DIR/perf.$tag.err")"
      python3 "$HELPER" perf "$SYMBOLS" "$WORK_DIR/perf.$tag.txt" "$WORK_DIR/perf.$tag.json"
      ((count > 0)) || die "no $load traffic counted on $name"
      printf '{"count": %d, "ticks": %d, "us": %s}\n' "$count" "$((after - before))" \
        "$(awk -v t="$((after - before))" -v hz="$CLK_TCK" -v n="$count" \
          'BEGIN {printf "%.4f", t * 1e6 / hz / n}')" >"$WORK_DIR/win.$tag.json"
      echo "profile_misses: perf $load $name: $count in ${PROFILE_SECONDS} s," \
        "$((after - before)) ticks" >&2
    done
  done
  for name in "${SERVERS[@]}"; do stop_server "$kind.$name"; done
done

# --- instructions: callgrind, one server per kind, a dump per load ----------------------------
for kind in http echo; do
  loads_of "$kind"
  ((${#KIND_LOADS[@]})) || continue
  for name in "${SERVERS[@]}"; do
    inst="cg.$kind.$name"
    start_server "$kind" "$name" "$inst" valgrind --tool=callgrind \
      "--callgrind-out-file=$WORK_DIR/$inst.out"
    for load in "${KIND_LOADS[@]}"; do
      tag="$load.$name"
      drive "$load" "${PORT[$inst]}" "$WARMUP" "$WORK_DIR/cg-warmup.$tag" >/dev/null
      callgrind_control -z "${PID[$inst]}" >/dev/null 2>&1 || die "callgrind_control -z failed"
      count="$(drive "$load" "${PORT[$inst]}" "$CALLGRIND_SECONDS" "$WORK_DIR/cg-load.$tag")"
      callgrind_control -d "${PID[$inst]}" >/dev/null 2>&1 || die "callgrind_control -d failed"
      dump="$(find "$WORK_DIR" -maxdepth 1 -name "$inst.out.*" -newer "$WORK_DIR/cg-load.$tag" |
        head -1)"
      [[ -n "$dump" ]] || die "no callgrind dump for $tag"
      mv "$dump" "$WORK_DIR/callgrind.$tag.out"
      python3 "$HELPER" callgrind "$SYMBOLS" "$WORK_DIR/callgrind.$tag.out" "$WORK_DIR/cg.$tag.json"
      python3 - "$WORK_DIR/cg.$tag.json" "$count" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["count"] = int(sys.argv[2])
json.dump(d, open(sys.argv[1], "w"))
PY
      echo "profile_misses: callgrind $load $name: $count counted" >&2
    done
    stop_server "$inst"
  done
done

# --- memory: live heap per idle connection by allocation site ---------------------------------
# heaptrack_run KIND NAME TAG CONNECTIONS: the server under heaptrack; CONNECTIONS idle ones
# (one request each, then held open by `echo_client idle ... HOLD_SECONDS`) if > 0; then the
# server is made to call exit(0) from gdb: heaptrack's data is complete (its writer flushes at
# exit; a SIGKILL loses what it buffers) and nothing that a connection holds was freed (the
# loop and its connections live on main's stack, which exit does not unwind), so heaptrack's
# "leaked" is the live heap. The leak report in $WORK_DIR/TAG.leaks.
heaptrack_run() {
  local kind="$1" name="$2" tag="$3" conns="$4" spid holder="" data
  start_server "$kind" "$name" "$tag" heaptrack -o "$WORK_DIR/$tag"
  server_command "$kind" "$name"
  spid="$(pgrep -P "${PID[$tag]}" -x "$(basename "${SERVER_CMD[0]}" | cut -c1-15)")" ||
    die "no server process under heaptrack ($tag)"
  PIDS+=("$spid")
  if ((conns > 0)); then
    taskset -c "$CLIENT_CPU" "$ECHO_CLIENT" idle "${PORT[$tag]}" "$conns" "$kind" "$spid" 600 \
      >"$WORK_DIR/$tag.probe" 2>&1 &
    holder=$!
    PIDS+=("$holder")
    for _ in $(seq 900); do  # the probe prints its line once every answer is in
      [[ -s "$WORK_DIR/$tag.probe" ]] && break
      kill -0 "$holder" 2>/dev/null || break
      sleep 0.1
    done
    [[ "$(cat "$WORK_DIR/$tag.probe")" =~ ^[0-9]+\ [0-9]+\ [0-9]+\ [0-9]+$ ]] ||
      die "idle probe failed on $tag: $(cat "$WORK_DIR/$tag.probe")"
  fi
  gdb -p "$spid" -batch -nx -ex 'call (void)exit(0)' >"$WORK_DIR/$tag.gdb" 2>&1 || true
  wait "${PID[$tag]}" 2>/dev/null || true
  forget_pid "$spid"
  forget_pid "${PID[$tag]}"
  if [[ -n "$holder" ]]; then
    kill -TERM "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    forget_pid "$holder"
  fi
  data="$WORK_DIR/$tag.zst"  # heaptrack compresses with zstd when it has it, else gzip
  [[ -f "$data" ]] || data="$WORK_DIR/$tag.gz"
  heaptrack_print -f "$data" -l 1 -p 0 -a 0 -T 0 >"$WORK_DIR/$tag.leaks" 2>&1 ||
    die "heaptrack_print failed: $(cat "$WORK_DIR/$tag.leaks")"
}

if ((IDLE_CONNECTIONS > 0)); then
  for kind in http echo; do
    for name in "${SERVERS[@]}"; do
      inst="rss.$kind.$name"
      start_server "$kind" "$name" "$inst"
      taskset -c "$CLIENT_CPU" "$ECHO_CLIENT" idle "${PORT[$inst]}" "$IDLE_CONNECTIONS" "$kind" \
        "${PID[$inst]}" >"$WORK_DIR/$inst.probe" 2>&1 ||
        die "idle probe failed on $inst: $(cat "$WORK_DIR/$inst.probe")"
      stop_server "$inst"
      heaptrack_run "$kind" "$name" "ht0.$kind.$name" 0
      heaptrack_run "$kind" "$name" "ht.$kind.$name" "$IDLE_CONNECTIONS"
      python3 "$HELPER" heaptrack "$WORK_DIR/ht0.$kind.$name.leaks" \
        "$WORK_DIR/ht.$kind.$name.leaks" "$WORK_DIR/$inst.probe" "$IDLE_CONNECTIONS" \
        "$WORK_DIR/mem.$kind.$name.json"
      echo "profile_misses: memory $kind $name: $(cat "$WORK_DIR/$inst.probe")" >&2
    done
  done
fi
MACHINE="$(machine_summary)"

# --- report ---------------------------------------------------------------------------------------
bt='`'
REPORT="$WORK_DIR/report.md"
{
  python3 "$HELPER" report "$WORK_DIR" "$TOP" "${LOADS[*]}" "${SERVERS[*]}" "$IDLE_CONNECTIONS"
  echo "$MACHINE"
  echo
  echo "Command: ${bt}BUILD_DIR=${BUILD_DIR#"$REPO"/} LOADS='${LOADS[*]}' SERVERS='${SERVERS[*]}' \
PROFILE_SECONDS=$PROFILE_SECONDS WARMUP=$WARMUP CALLGRIND_SECONDS=$CALLGRIND_SECONDS \
CONNECTIONS=$CONNECTIONS IDLE_CONNECTIONS=$IDLE_CONNECTIONS tests/load/profile_misses.sh\
${OUTPUT:+ $OUTPUT}${bt} at $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff \
--quiet HEAD 2>/dev/null || echo "+changes") ($(grep -m1 '^CMAKE_BUILD_TYPE' \
"$BUILD_DIR/CMakeCache.txt" 2>/dev/null | cut -d= -f2 || echo "?")); servers on CPU \
$SERVER_CPU, the load on CPU $CLIENT_CPU."
} >"$REPORT"
cat "$REPORT"
if [[ -n "$OUTPUT" ]]; then cp "$REPORT" "$OUTPUT"; fi
