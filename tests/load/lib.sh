# shellcheck shell=bash
# tests/load/lib.sh: the helpers the load scripts in tests/load/ share (proxy_compare.sh,
# responder_ab.sh, instructions_per_request.sh, tls_compare.sh, compare/run.sh,
# profile_misses.sh). Sourced, not run; a script
# sets SCRIPT_NAME, then sources it after `set -euo pipefail`:
#
#   SCRIPT_NAME=proxy_compare
#   # shellcheck source=SCRIPTDIR/lib.sh
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Variables it expects:
#   SCRIPT_NAME     (before sourcing) the prefix of every message `die` prints ("NAME: ...");
#   WORK_DIR        (before `start`; make_work_dir sets it) the scratch directory that gets
#                   each process's output;
#   CLIENT_CPU, CONNECTIONS  (before `run_wrk`) wrk's CPU and its number of connections;
#   REMOVE_ON_EXIT  (optional) a directory removed on exit, once every started process is gone.
# What sourcing it does: sets REPO (the repository's root, absolute) and PIDS (empty), and sets
# the traps: on any exit `cleanup` stops every PID in PIDS by that PID (SIGTERM, up to 5 s, then
# SIGKILL); SIGINT and SIGTERM exit 130, so that cleanup runs then too. A process started in the
# background other than by `start` must be added to PIDS by the script (PIDS+=($!)).
# Functions:
#   die MESSAGE...               MESSAGE on stderr after "$SCRIPT_NAME: ", then exit 1;
#   abs_dir DIR                  prints DIR, made absolute relative to REPO if it is not;
#   require_built HOW FILE...    dies "FILE not found: build it first HOW" for a FILE that is
#                                not executable;
#   make_work_dir                sets WORK_DIR to a new mktemp directory,
#                                ${TMPDIR:-/tmp}/$SCRIPT_NAME.XXXXXX;
#   require_tools TOOL:PACKAGE...  dies naming the Debian packages to install (apt-get install
#                                -y ...) of every TOOL not on PATH;
#   start NAME COMMAND...        runs COMMAND in the background, stdout in $WORK_DIR/NAME.out and
#                                stderr in $WORK_DIR/NAME.err; adds its PID to PIDS and sets
#                                STARTED_PID (so not to be called in a subshell: $(start ...));
#   port_from_stdout FILE [SECONDS]  waits up to SECONDS (10) for "listening on ADDRESS:PORT" in
#                                FILE (a server's stdout) and prints PORT; dies with FILE and
#                                the matching .err file's text if it does not come;
#   cpu_ticks PID                prints utime + stime of every thread of PID, in clock ticks
#                                (CLK_TCK, set on sourcing, is how many make a second);
#   run_wrk PORT SECONDS OUT [SCHEME [WRK_ARG...]]  `wrk -t1 -c$CONNECTIONS` keep-alive on CPU
#                                $CLIENT_CPU against SCHEME://127.0.0.1:PORT/ (http unless
#                                given; extra wrk arguments after it), its output in OUT; prints
#                                "requests requests_per_s errors" (errors: socket errors and
#                                non-2xx/3xx);
#   build_compare_tools DIR      compiles compare/floor.c and compare/echo_client.c into DIR
#                                (sets FLOOR, ECHO_CLIENT);
#   run_echo PORT LOAD SECONDS OUT  `echo_client load` (LOAD: 1x64, 100x64, 10x16k) on CPU
#                                $CLIENT_CPU; prints "messages messages_per_s 0 bytes_per_s";
#   check_hello LABEL PORT       dies unless GET / on 127.0.0.1:PORT answers 200 with
#                                http_responder's "Hello, world!" body (LABEL names the server);
#   mark_start                   notes the load average and the time, for machine_summary;
#   machine_summary              prints "Machine: CPUs (model), kernel; load average (1, 5, 15
#                                min) at mark_start and now; seconds since mark_start" as one
#                                line (for a report's footer: call it when the measuring ends).

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  echo "tests/load/lib.sh is sourced by the load scripts, not run" >&2
  exit 2
fi
: "${SCRIPT_NAME:?set SCRIPT_NAME before sourcing tests/load/lib.sh}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

die() {
  echo "$SCRIPT_NAME: $*" >&2
  exit 1
}

abs_dir() {
  case "$1" in /*) echo "$1" ;; *) echo "$REPO/$1" ;; esac
}

make_work_dir() {
  WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/$SCRIPT_NAME.XXXXXX")"
}

require_tools() {
  local tool missing=()
  for tool in "$@"; do
    command -v "${tool%%:*}" >/dev/null 2>&1 && continue
    [[ " ${missing[*]} " == *" ${tool#*:} "* ]] || missing+=("${tool#*:}")  # each package once
  done
  if ((${#missing[@]})); then
    die "missing tools; install them with: apt-get install -y ${missing[*]}"
  fi
}

require_built() {
  local how="$1" file
  shift
  for file in "$@"; do
    [[ -x "$file" ]] || die "$file not found: build it first $how"
  done
}

# --- process management: every PID started is remembered and stopped by that PID ----------
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n "${REMOVE_ON_EXIT:-}" ]]; then rm -rf "$REMOVE_ON_EXIT"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() {
  local name="$1"
  shift
  "$@" >"$WORK_DIR/$name.out" 2>"$WORK_DIR/$name.err" &
  PIDS+=($!)
  # shellcheck disable=SC2034  # read by the scripts
  STARTED_PID=$!
}

port_from_stdout() {
  local file="$1" seconds="${2:-10}" line
  for _ in $(seq $((seconds * 10))); do
    line="$(grep -m1 'listening on' "$file" 2>/dev/null || true)"
    if [[ -n "$line" ]]; then echo "${line##*:}"; return 0; fi
    sleep 0.1
  done
  die "no 'listening on' in $file: $(cat "$file" "${file%.out}.err" 2>/dev/null)"
}

# wait_for_port PORT NAME [SECONDS]: waits (up to SECONDS, default 10) until something accepts
# connections on 127.0.0.1:PORT; NAME is for the error message. For servers that do not print
# their port (nginx, HAProxy).
wait_for_port() {
  for _ in $(seq $((${3:-10} * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  die "nothing listens on port $1 ($2)"
}

# A port free on 127.0.0.1 now (for a server that cannot be given port 0).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# forget_pid PID: drops a process the script has already waited for from PIDS, so that the
# exit trap never signals its PID, which the kernel may have given to another process since
# (pid_max is 32768 here, and a run starts hundreds of processes).
forget_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# start_syscall_counter COUNTER PID FILE [EVENTS]: counts PID's syscalls into FILE with
# `perf stat -x,` (COUNTER perf; EVENTS default raw_syscalls:sys_enter) or `strace -c -f`
# (COUNTER strace), returning once the counter is attached. Sets COUNTER_PID (also in PIDS, so
# that the exit trap stops it). Not for a subshell: PIDS must see it. stop_syscall_counter
# ends the count; FILE is complete once it returns.
start_syscall_counter() {
  local counter="$1" pid="$2" file="$3" events="${4:-raw_syscalls:sys_enter}"
  if [[ "$counter" == perf ]]; then
    perf stat -x, -e "$events" -p "$pid" -o "$file" &
    COUNTER_PID=$!
    PIDS+=("$COUNTER_PID")
    sleep 0.5  # perf attaches at once; this leaves it time to open its counters
  else
    strace -c -f -p "$pid" -o "$file" 2>"$file.err" &
    COUNTER_PID=$!
    PIDS+=("$COUNTER_PID")
    for _ in $(seq 100); do  # attached once the process's TracerPid is set
      grep -q '^TracerPid:[[:space:]]*[1-9]' "/proc/$pid/status" && break
      sleep 0.05
    done
    sleep 0.2
  fi
}

stop_syscall_counter() {
  kill -INT "$COUNTER_PID"
  wait "$COUNTER_PID" 2>/dev/null || true
  forget_pid "$COUNTER_PID"
}

# shellcheck disable=SC2034  # read by the scripts
CLK_TCK="$(getconf CLK_TCK)"
cpu_ticks() {
  local stat
  stat="$(cat "/proc/$1/stat")" || die "process $1 is gone"
  stat="${stat##*) }"  # fields after the command name, which may hold spaces
  # shellcheck disable=SC2086
  set -- $stat
  echo $((${12} + ${13}))
}

# run_wrk PORT SECONDS OUT [SCHEME [WRK ARGS...]]: wrk keep-alive on CPU(s) $CLIENT_CPU with
# $WRK_THREADS threads (1) and $CONNECTIONS connections; prints "requests rps errors".
run_wrk() {
  local port="$1" seconds="$2" out="$3" scheme="${4:-http}"
  shift $(($# < 4 ? $# : 4))
  taskset -c "$CLIENT_CPU" wrk -t"${WRK_THREADS:-1}" -c"$CONNECTIONS" -d"${seconds}s" "$@" \
    "$scheme://127.0.0.1:$port/" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
  python3 - "$out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
requests = int(re.search(r"(\d+) requests in", text).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors += int(m.group(1)) if m else 0
print(requests, rps, errors)
PY
}

# wrk_together TAG SCHEME NAME... [-- WRK ARGS...]: one run_wrk against each named server
# (the calling script's PORT[NAME] and PID[NAME]), all started together for $DURATION seconds,
# so that their figures come from the same seconds of the host. Writes one line per server,
# "NAME requests rps errors ticks" (ticks: the server's CPU over the run, /proc/PID/stat), to
# $WORK_DIR/together.TAG. Not in a subshell: die() stops the script.
# shellcheck disable=SC2153  # PID and PORT are the calling script's
wrk_together() {
  local tag="$1" scheme="$2" name
  shift 2
  local servers=()
  while (($# > 0)) && [[ "$1" != -- ]]; do
    servers+=("$1")
    shift
  done
  if (($# > 0)); then shift; fi
  local -A ticks_before wrk_jobs
  for name in "${servers[@]}"; do ticks_before[$name]="$(cpu_ticks "${PID[$name]}")"; done
  for name in "${servers[@]}"; do
    run_wrk "${PORT[$name]}" "$DURATION" "$WORK_DIR/wrk.$tag.$name" "$scheme" "$@" \
      >"$WORK_DIR/parsed.$tag.$name" &
    wrk_jobs[$name]=$!
  done
  for name in "${servers[@]}"; do
    wait "${wrk_jobs[$name]}" || die "wrk against $name failed (see $WORK_DIR/wrk.$tag.$name)"
  done
  : >"$WORK_DIR/together.$tag"
  for name in "${servers[@]}"; do
    echo "$name $(cat "$WORK_DIR/parsed.$tag.$name")" \
      "$(($(cpu_ticks "${PID[$name]}") - ${ticks_before[$name]}))" >>"$WORK_DIR/together.$tag"
  done
}

# build_compare_tools DIR: compiles the floor (tests/load/compare/floor.c) and the echo load
# client (echo_client.c) into DIR with $CFLAGS (-O2), as `make compare` measures them; sets
# FLOOR and ECHO_CLIENT to their paths. Returns non-zero (the compiler's messages on stderr) if
# either fails.
build_compare_tools() {
  local cflags
  read -r -a cflags <<<"${CFLAGS:--O2}"
  FLOOR="$1/floor"
  ECHO_CLIENT="$1/echo_client"
  cc "${cflags[@]}" -Wall -Wextra -o "$FLOOR" "$REPO/tests/load/compare/floor.c" &&
    cc "${cflags[@]}" -Wall -Wextra -o "$ECHO_CLIENT" "$REPO/tests/load/compare/echo_client.c"
}

# run_echo PORT LOAD SECONDS OUT: `echo_client load` ($ECHO_CLIENT, see build_compare_tools) on
# CPU $CLIENT_CPU against 127.0.0.1:PORT for SECONDS; LOAD is CONNECTIONSxSIZE, SIZE in bytes
# or KiB (1x64, 100x64, 10x16k). Its output in OUT; prints "messages messages_per_s 0
# bytes_per_s" (the 0: echo_client fails on any error rather than counting it).
run_echo() {
  local port="$1" load="$2" seconds="$3" out="$4" conns size
  conns="${load%%x*}"
  size="${load#*x}"
  [[ "$size" == *k ]] && size=$((${size%k} * 1024))
  taskset -c "$CLIENT_CPU" "$ECHO_CLIENT" load "$port" "$conns" "$size" "$seconds" >"$out" 2>&1 ||
    die "echo_client failed ($load on port $port): $(cat "$out")"
  awk '{printf "%d %.1f 0 %.1f\n", $1, $1 / $3, $2 / $3}' "$out"
}

# A server that fails this would make its numbers void.
check_hello() {
  local label="$1" port="$2" body
  body="$(python3 - "$port" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
c.request("GET", "/")
r = c.getresponse()
print(r.status, r.read().decode())
PY
)" || die "$label does not answer"
  [[ "$body" == "200 Hello, world!"* ]] || die "$label answered: $body"
}

mark_start() {
  LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
  START_SECONDS=$(date +%s)
}

machine_summary() {
  local model
  model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "Machine: $(nproc) CPUs ($model), kernel $(uname -r); load average (1, 5, 15 min)" \
    "$LOAD_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg) after;" \
    "run took $(($(date +%s) - START_SECONDS)) s."
}
