#!/usr/bin/env bash
# proxy_compare.sh: issue 8's reverse proxy comparison. examples/http_proxy against nginx
# (proxy_pass), HAProxy and a plain epoll byte relay (tests/load/relay.c, the floor), each in
# front of the same single-threaded examples/http_responder, driven by wrk keep-alive.
# Not part of `make test` (it takes minutes and its figures depend on the machine).
#
#   tests/load/proxy_compare.sh [OUTPUT.md]
#   BUILD_DIR=build/h-x ROUNDS=3 DURATION=10 tests/load/proxy_compare.sh /tmp/proxy.md
#
# BUILD_DIR (default build/release, from `cmake --preset release`) must hold examples/
# http_proxy and examples/http_responder. Needs wrk, nginx, haproxy, taskset, a C compiler,
# python3, and perf (linux-perf) or strace; it names the Debian packages to install when one is
# missing.
#
# What it does, and why:
#  - every proxy runs single-threaded pinned to CPU $PROXY_CPU (0); the upstream and wrk share
#    CPU $CLIENT_CPU (1), so the proxy has a core of its own and its CPU time is its own;
#  - all four proxies are started once (nginx with master_process off: the one process is
#    the worker), warmed up, then measured in interleaved rounds (ioloop, nginx, haproxy,
#    relay, the upstream alone; ROUNDS times), so that a change in the machine's load hits
#    every proxy of a round alike: the per-round ratios to the relay are what count;
#  - a measurement is `wrk -t1 -c64 -d${DURATION}s` (keep-alive): requests/s from wrk, and
#    the proxy's CPU per request = (utime + stime) delta of /proc/PID/stat over the run (every
#    thread) / requests;
#  - syscalls per request come from a separate ${STRACE_DURATION}s wrk window (total calls /
#    requests in that window), counted by `perf stat` on the syscall tracepoints, or by
#    `strace -c -f -p PID` where perf cannot (see syscall_window). Either slows the proxy, so
#    that window is used for counts only, never for time;
#  - each round ends with the four proxies loaded at once (a wrk for each, started together;
#    the proxies share their CPU): those ratios compare the same seconds of the host, the
#    steadier figure on a VM whose speed drifts between the sequential runs;
#  - every process it starts is stopped by its PID (SIGTERM, then SIGKILL) on any exit,
#    Ctrl-C included (the helpers in tests/load/lib.sh).
# Output: a Markdown table (median and min-max over the rounds, ratios to the relay computed per
# round), the per-syscall breakdown per request of each proxy, the raw rounds and the machine's
# load; printed and written to OUTPUT.md if given. Scratch files stay in $WORK_DIR (printed).
set -euo pipefail

SCRIPT_NAME=proxy_compare
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD_DIR="$(abs_dir "${BUILD_DIR:-build/release}")"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
STRACE_DURATION="${STRACE_DURATION:-5}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
PROXY_CPU="${PROXY_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
OUTPUT="${1:-}"

# --- prerequisites ------------------------------------------------------------------------
require_tools wrk:wrk nginx:nginx-light haproxy:haproxy taskset:util-linux cc:gcc \
  python3:python3
PROXY_BIN="$BUILD_DIR/examples/http_proxy"
RESPONDER_BIN="$BUILD_DIR/examples/http_responder"
require_built "(cmake --preset release && cmake --build build/release --target http_proxy \
http_responder), or set BUILD_DIR" "$PROXY_BIN" "$RESPONDER_BIN"
(($(nproc) >= 2)) || die "needs 2 CPUs (the proxy on one, the upstream and wrk on the other)"

make_work_dir
RESULTS="$WORK_DIR/results.tsv"
: >"$RESULTS"

# --- start everything ------------------------------------------------------------------------
echo "proxy_compare: scratch directory $WORK_DIR" >&2
cc -O2 -Wall -Wextra -o "$WORK_DIR/relay" "$REPO/tests/load/relay.c" || die "cannot build relay.c"

start responder taskset -c "$CLIENT_CPU" "$RESPONDER_BIN" --port=0 --address=127.0.0.1 \
  --log_level=warn
RESPONDER_PID=$STARTED_PID
UP_PORT="$(port_from_stdout "$WORK_DIR/responder.out")"

declare -A PID PORT
start ioloop taskset -c "$PROXY_CPU" "$PROXY_BIN" --port=0 --address=127.0.0.1 --log_level=warn \
  --upstream="http://127.0.0.1:$UP_PORT" --max_upstream_connections=64
PID[ioloop]=$STARTED_PID
PORT[ioloop]="$(port_from_stdout "$WORK_DIR/ioloop.out")"

PORT[nginx]="$(free_port)"
sed -e "s|@DIR@|$WORK_DIR|g" -e "s|@PORT@|${PORT[nginx]}|g" -e "s|@UPSTREAM_PORT@|$UP_PORT|g" \
  "$REPO/tests/load/nginx_proxy.conf.in" >"$WORK_DIR/nginx.conf"
start nginx taskset -c "$PROXY_CPU" nginx -p "$WORK_DIR" -e "$WORK_DIR/nginx_error.log" \
  -c "$WORK_DIR/nginx.conf"
PID[nginx]=$STARTED_PID
wait_for_port "${PORT[nginx]}" nginx

PORT[haproxy]="$(free_port)"
sed -e "s|@PORT@|${PORT[haproxy]}|g" -e "s|@UPSTREAM_PORT@|$UP_PORT|g" \
  "$REPO/tests/load/haproxy.cfg.in" >"$WORK_DIR/haproxy.cfg"
start haproxy taskset -c "$PROXY_CPU" haproxy -db -f "$WORK_DIR/haproxy.cfg"
PID[haproxy]=$STARTED_PID
wait_for_port "${PORT[haproxy]}" haproxy

start relay taskset -c "$PROXY_CPU" "$WORK_DIR/relay" 0 127.0.0.1 "$UP_PORT"
PID[relay]=$STARTED_PID
PORT[relay]="$(port_from_stdout "$WORK_DIR/relay.out")"

PROXIES=(ioloop nginx haproxy relay)
PID[direct]=$RESPONDER_PID
PORT[direct]=$UP_PORT

# Each must answer the responder's body; a proxy that fails here would make its numbers void.
for name in "${PROXIES[@]}" direct; do check_hello "$name" "${PORT[$name]}"; done

# --- measure -----------------------------------------------------------------------------------
# Syscall counting. perf's syscall tracepoints when they work (in-kernel counters: the proxy
# runs at nearly full speed, so the window holds many requests and wrk's 64 connection setups
# weigh nothing per request); strace -c otherwise (ptrace stops the proxy at every syscall, so
# its window holds few requests and the setups show: accept4, close, setsockopt).
SYSCALL_NAMES=(read readv write writev recvfrom sendto recvmsg sendmsg epoll_wait epoll_pwait
  epoll_pwait2 epoll_ctl accept4 connect socket close shutdown getpeername getsockname getsockopt
  setsockopt fcntl ioctl futex clock_gettime timerfd_settime eventfd2 brk mmap munmap madvise)
# SYSCALL_COUNTER=strace forces the fallback.
COUNTER=strace
if [[ "${SYSCALL_COUNTER:-perf}" == perf ]] && command -v perf >/dev/null 2>&1 &&
  perf stat -x, -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
  COUNTER=perf
  PERF_EVENTS=raw_syscalls:sys_enter
  for s in "${SYSCALL_NAMES[@]}"; do
    if [[ -d "/sys/kernel/tracing/events/syscalls/sys_enter_$s" ]] ||
      [[ -d "/sys/kernel/debug/tracing/events/syscalls/sys_enter_$s" ]]; then
      PERF_EVENTS+=",syscalls:sys_enter_$s"
    fi
  done
fi
[[ "$COUNTER" == perf ]] || command -v strace >/dev/null 2>&1 ||
  die "neither perf (linux-perf) nor strace can count syscalls: apt-get install -y strace"

# Counts the syscalls of proxy $1 over a separate wrk window of STRACE_DURATION seconds, into
# $WORK_DIR/syscalls.$1.$2 as "NAME CALLS" lines plus "total CALLS"; sets STRACE_REQUESTS
# (not run in a subshell, so that the counter's PID is in PIDS if the script is interrupted).
syscall_window() {
  local name="$1" round="$2" file="$WORK_DIR/syscalls.$1.$2" out
  start_syscall_counter "$COUNTER" "${PID[$name]}" "$file.raw" "$PERF_EVENTS"
  out="$(run_wrk "${PORT[$name]}" "$STRACE_DURATION" "$WORK_DIR/wrk.syscalls.$name.$round")"
  stop_syscall_counter
  STRACE_REQUESTS="${out%% *}"
  python3 - "$COUNTER" "$file.raw" >"$file" <<'PY'
import re, sys
counter, path = sys.argv[1], sys.argv[2]
for line in open(path):
    f = line.split(",") if counter == "perf" else line.split()
    if counter == "perf":
        if len(f) > 2 and f[0].strip().isdigit():
            event = f[2].strip()
            name = "total" if event == "raw_syscalls:sys_enter" else event.split("sys_enter_")[-1]
            print(name, int(f[0]))
    elif len(f) >= 5 and re.match(r"^[\d.]+$", f[0]) and f[3].isdigit():
        print(f[-1], int(f[3]))
PY
}

# The four proxies loaded at once (a wrk for each, started together, all on the client CPU
# with the upstream; the proxies share theirs): each round's ratios then compare the same
# seconds of a host whose speed drifts between the sequential runs above.
TOGETHER="$WORK_DIR/together.tsv"
: >"$TOGETHER"
measure_together() {
  local round="$1" name requests rps errors ticks
  wrk_together "$round" http "${PROXIES[@]}"
  while read -r name requests rps errors ticks; do
    printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$requests" "$errors" "$ticks" >>"$TOGETHER"
  done <"$WORK_DIR/together.$round"
}

mark_start
echo "proxy_compare: warming up" >&2
for name in "${PROXIES[@]}"; do run_wrk "${PORT[$name]}" "$WARMUP" "$WORK_DIR/wrk.warmup.$name" >/dev/null; done

for round in $(seq "$ROUNDS"); do
  for name in "${PROXIES[@]}" direct; do
    before="$(cpu_ticks "${PID[$name]}")"
    out="$(run_wrk "${PORT[$name]}" "$DURATION" "$WORK_DIR/wrk.$name.$round")"
    after="$(cpu_ticks "${PID[$name]}")"
    read -r requests rps errors <<<"$out"
    STRACE_REQUESTS=0
    if [[ "$name" != direct ]]; then syscall_window "$name" "$round"; fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$requests" "$rps" "$errors" \
      "$((after - before))" "$STRACE_REQUESTS" >>"$RESULTS"
    echo "proxy_compare: round $round $name: $rps requests/s, $errors errors, $((after - before)) ticks" >&2
  done
  measure_together "$round"
done
MACHINE="$(machine_summary)"

# --- report --------------------------------------------------------------------------------------
REPORT="$WORK_DIR/report.md"
python3 - "$RESULTS" "$WORK_DIR" "$CLK_TCK" "$COUNTER" "$TOGETHER" >"$REPORT" <<'PY'
import collections, glob, os, re, statistics, sys

results, work, clk_tck, counter = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
together = collections.defaultdict(dict)  # round -> name -> CPU µs per request
for line in open(sys.argv[5]):
    rnd, name, requests, errors, ticks = line.split("\t")
    if int(errors) > 0:
        raise SystemExit(f"{name}: {errors} wrk errors in the joint round {rnd}")
    together[int(rnd)][name] = int(ticks) * 1e6 / clk_tck / max(int(requests), 1)
proxies = ["ioloop", "nginx", "haproxy", "relay"]
label = {"ioloop": "ioloop `http_proxy`", "nginx": "nginx `proxy_pass`",
         "haproxy": "HAProxy", "relay": "relay (floor, `tests/load/relay.c`)",
         "direct": "no proxy (wrk straight to `http_responder`)"}
rows = collections.defaultdict(dict)  # round -> name -> values

def strace_calls(path):
    per, total = {}, None
    for line in open(path):
        name, calls = line.split()
        if name == "total":
            total = int(calls)
        else:
            per[name] = int(calls)
    if total is None:
        raise SystemExit(f"no syscall total in {path}")
    return total, per

for line in open(results):
    rnd, name, requests, rps, errors, ticks, s_requests = line.split("\t")
    v = {"requests": int(requests), "rps": float(rps), "errors": int(errors),
         "cpu_us": int(ticks) * 1e6 / clk_tck / max(int(requests), 1)}
    if name != "direct":
        total, per = strace_calls(os.path.join(work, f"syscalls.{name}.{rnd}"))
        v["sys"] = total / int(s_requests)
        v["per"] = {k: c / int(s_requests) for k, c in per.items()}
    rows[int(rnd)][name] = v

def spread(values, fmt):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))} to {fmt.format(max(values))})"

def column(name, key):
    return [rows[r][name][key] for r in sorted(rows)]

def ratio(name, key):
    return [rows[r][name][key] / rows[r]["relay"][key] for r in sorted(rows)]

print(f"| proxy (one thread, CPU 0) | requests/s | proxy CPU per request | CPU vs relay | "
      f"syscalls per request | syscalls vs relay | wrk errors |")
print("|---|---|---|---|---|---|---|")
for name in proxies:
    print(f"| {label[name]} | {spread(column(name, 'rps'), '{:,.0f}')} | "
          f"{spread(column(name, 'cpu_us'), '{:.1f}')} µs | {spread(ratio(name, 'cpu_us'), '{:.2f}')}x | "
          f"{spread(column(name, 'sys'), '{:.2f}')} | {spread(ratio(name, 'sys'), '{:.2f}')}x | "
          f"{sum(column(name, 'errors'))} |")
print(f"| {label['direct']} | {spread(column('direct', 'rps'), '{:,.0f}')} | "
      f"(upstream: {spread(column('direct', 'cpu_us'), '{:.1f}')} µs) | | | | "
      f"{sum(column('direct', 'errors'))} |")
print()
print(f"Median (min to max) over {len(rows)} interleaved rounds; each ratio is taken within a round, "
      f"then the median of those is shown.")
print()
print("All four loaded at once (a wrk for each, started together): proxy CPU per request, and its "
      "ratios within each round:")
print()
print("| proxy | proxy CPU per request | CPU vs relay | CPU vs nginx |")
print("|---|---|---|---|")
for name in proxies:
    rs = sorted(together)
    us = [together[r][name] for r in rs]
    vs_relay = [together[r][name] / together[r]["relay"] for r in rs]
    vs_nginx = [together[r][name] / together[r]["nginx"] for r in rs]
    print(f"| {label[name]} | {spread(us, '{:.1f}')} µs | {spread(vs_relay, '{:.2f}')}x | "
          f"{spread(vs_nginx, '{:.2f}')}x |")
print()
how = ("perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_NAME..." if counter == "perf"
       else "strace -c -f")
print(f"Syscalls per proxied request by name ({how} over a separate wrk window; median over the "
      "rounds; those at 0.01 or more):")
print()
names = sorted({k for r in rows.values() for n in proxies for k in r[n]["per"]})
meds = {n: {k: statistics.median([rows[r][n]["per"].get(k, 0.0) for r in rows]) for k in names}
        for n in proxies}
names = [k for k in names if max(meds[n][k] for n in proxies) >= 0.01]
names.sort(key=lambda k: -max(meds[n][k] for n in proxies))
print("| syscall | " + " | ".join(proxies) + " |")
print("|---|" + "---|" * len(proxies))
for k in names:
    print(f"| {k} | " + " | ".join(f"{meds[n][k]:.2f}" if meds[n][k] >= 0.005 else "" for n in proxies) + " |")
print()
print("Raw rounds (requests in the timed run, requests/s, CPU µs per request, syscalls per request):")
print()
print("| round | " + " | ".join(proxies + ["direct"]) + " |")
print("|---|" + "---|" * (len(proxies) + 1))
for r in sorted(rows):
    cells = []
    for n in proxies + ["direct"]:
        v = rows[r][n]
        s = f", {v['sys']:.2f}" if "sys" in v else ""
        cells.append(f"{v['requests']:,}, {v['rps']:,.0f}/s, {v['cpu_us']:.1f} µs{s}")
    print(f"| {r} | " + " | ".join(cells) + " |")
PY

{
  echo
  echo "$MACHINE"
  echo "Versions: $(nginx -v 2>&1 | sed 's/.*: //'), $(haproxy -v | head -1 | cut -d' ' -f1-3), \
$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)."
  bt='`'
  echo "Command: ${bt}BUILD_DIR=${BUILD_DIR#"$REPO"/} ROUNDS=$ROUNDS DURATION=$DURATION \
STRACE_DURATION=$STRACE_DURATION tests/load/proxy_compare.sh${OUTPUT:+ $OUTPUT}${bt}; wrk \
${bt}-t1 -c$CONNECTIONS -d${DURATION}s${bt} on CPU $CLIENT_CPU with the upstream, each proxy on \
CPU $PROXY_CPU."
} >>"$REPORT"

cat "$REPORT"
if [[ -n "$OUTPUT" ]]; then cp "$REPORT" "$OUTPUT"; fi
