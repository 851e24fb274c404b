#!/usr/bin/env bash
# responder_ab.sh: A/B comparison of examples/http_responder built from two trees (issue 8's
# "server CPU per keep-alive request within 5% of the previous commit"). Both responders run
# side by side in one run, driven alternately by wrk keep-alive, so that the machine's load
# hits both alike: the per-round ratios B/A are what count, not the absolute figures.
# Not part of `make test` (it takes minutes and its figures depend on the machine).
# TARGET=proxy compares two builds of examples/http_proxy the same way, both in front of one
# http_responder (BUILD_B's, single-threaded, on CLIENT_CPU with wrk) that they share.
#
#   tests/load/responder_ab.sh BUILD_A BUILD_B [OUTPUT.md]
#   ROUNDS=7 DURATION=5 tests/load/responder_ab.sh /tmp/prev/build build/release /tmp/ab.md
#   TARGET=proxy ROUNDS=9 tests/load/responder_ab.sh /tmp/prev/build build/release
#
# BUILD_A and BUILD_B (absolute, or relative to the repository) must each hold
# examples/http_responder (and examples/http_proxy with TARGET=proxy), normally Release builds
# (`cmake --preset release`, or for an older commit a `git worktree` configured with
# -DCMAKE_BUILD_TYPE=Release). A is the baseline: the ratio is B/A, so below 1 means B spends
# less CPU per request.
# Environment: TARGET (responder, or proxy), ROUNDS (5) measured rounds, DURATION (5) seconds
# per wrk run, WARMUP (2) seconds of wrk per server before the first round, CONNECTIONS (64),
# SERVER_CPU (0) and CLIENT_CPU (1), LABEL_A and LABEL_B (default: the build directories).
# Needs wrk, taskset, python3 and 2 CPUs; it names the Debian packages to install when one is
# missing.
#
# What it does, and why:
#  - both responders run single-threaded (--threads=1, --log_level=warn, port 0 on 127.0.0.1)
#    pinned to CPU $SERVER_CPU; wrk runs on CPU $CLIENT_CPU, so the server has a core of its
#    own and its CPU time is its own; only one responder is loaded at a time;
#  - both are started once, checked to answer "Hello, world!", warmed up, then measured in
#    interleaved rounds (A, B; ROUNDS times);
#  - a measurement is `wrk -t1 -c$CONNECTIONS -d${DURATION}s` (keep-alive): requests/s from wrk,
#    and the server's CPU per request = (utime + stime) delta of /proc/PID/stat over the run
#    (every thread) / requests completed (wrk's count). The tick count is shown too (at 100
#    ticks/s, one tick in a few hundred); as a cross-check of that resolution the same delta
#    is also taken from /proc/PID/task/*/schedstat (on-CPU time in ns, every thread);
#  - every process it starts is stopped by its PID (SIGTERM, then SIGKILL) on any exit,
#    Ctrl-C included (the helpers in tests/load/lib.sh).
# On a shared, loaded machine single rounds scatter by up to +-20% (docs/benchmarks.md §4.1):
# use 20 or more rounds, and run the same build dir as both A and B once (an A/A control) to
# see how far from 1.00 the median ratio drifts on its own.
# Output: a Markdown table (each round's figures, then median and min-max over the rounds, and
# the median of the per-round ratios B/A), the machine's load and the command; printed and
# written to OUTPUT.md if given. Scratch files stay in $WORK_DIR (printed), a mktemp directory.
set -euo pipefail

SCRIPT_NAME=responder_ab
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  echo "usage: [TARGET=responder|proxy] [ROUNDS=5] [DURATION=5] $0 BUILD_A BUILD_B [OUTPUT.md]" >&2
  exit 2
}
(($# >= 2 && $# <= 3)) || usage
BUILD_A="$(abs_dir "$1")"
BUILD_B="$(abs_dir "$2")"
OUTPUT="${3:-}"
ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
TARGET="${TARGET:-responder}"
case "$TARGET" in responder | proxy) ;; *) usage ;; esac
LABEL_A="${LABEL_A:-$1}"
LABEL_B="${LABEL_B:-$2}"

# --- prerequisites ------------------------------------------------------------------------
require_tools wrk:wrk taskset:util-linux python3:python3
declare -A BIN
BIN[A]="$BUILD_A/examples/http_$TARGET"
BIN[B]="$BUILD_B/examples/http_$TARGET"
UPSTREAM_BIN="$BUILD_B/examples/http_responder"
require_built "(cmake -B DIR -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C DIR \
http_$TARGET http_responder)" "${BIN[A]}" "${BIN[B]}" "$UPSTREAM_BIN"
(($(nproc) >= 2)) || die "needs 2 CPUs (the server on one, wrk on the other)"

make_work_dir
RESULTS="$WORK_DIR/results.tsv"
: >"$RESULTS"

# On-CPU time of every thread of $1 in ns (first field of each task's schedstat); 0 when the
# kernel has no schedstat (the cross-check then reads n/a).
cpu_ns() {
  local total=0 f ns _
  for f in /proc/"$1"/task/*/schedstat; do
    [[ -r "$f" ]] || continue
    read -r ns _ <"$f" || continue
    total=$((total + ns))
  done
  echo "$total"
}

# --- start both --------------------------------------------------------------------------------
echo "responder_ab: scratch directory $WORK_DIR" >&2
declare -A PID PORT
TARGET_ARGS=()
if [[ "$TARGET" == proxy ]]; then
  start upstream taskset -c "$CLIENT_CPU" "$UPSTREAM_BIN" --port=0 --address=127.0.0.1 \
    --threads=1 --log_level=warn
  TARGET_ARGS=(--upstream="http://127.0.0.1:$(port_from_stdout "$WORK_DIR/upstream.out")"
    --max_upstream_connections="$CONNECTIONS")
fi
for side in A B; do
  start "$side" taskset -c "$SERVER_CPU" "${BIN[$side]}" --port=0 --address=127.0.0.1 \
    --threads=1 --log_level=warn "${TARGET_ARGS[@]}"
  PID[$side]=$STARTED_PID
  PORT[$side]="$(port_from_stdout "$WORK_DIR/$side.out")"
done

# Each must answer the responder's body; one that fails here would make its numbers void.
for side in A B; do check_hello "$side (${BIN[$side]})" "${PORT[$side]}"; done

# --- measure -----------------------------------------------------------------------------------
mark_start
echo "responder_ab: warming up" >&2
for side in A B; do run_wrk "${PORT[$side]}" "$WARMUP" "$WORK_DIR/wrk.warmup.$side" >/dev/null; done

for round in $(seq "$ROUNDS"); do
  for side in A B; do
    before="$(cpu_ticks "${PID[$side]}")"
    ns_before="$(cpu_ns "${PID[$side]}")"
    out="$(run_wrk "${PORT[$side]}" "$DURATION" "$WORK_DIR/wrk.$side.$round")"
    after="$(cpu_ticks "${PID[$side]}")"
    ns_after="$(cpu_ns "${PID[$side]}")"
    read -r requests rps errors <<<"$out"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$side" "$requests" "$rps" "$errors" \
      "$((after - before))" "$((ns_after - ns_before))" >>"$RESULTS"
    echo "responder_ab: round $round $side: $rps requests/s, $errors errors," \
      "$((after - before)) ticks" >&2
  done
done
MACHINE="$(machine_summary)"

# --- report --------------------------------------------------------------------------------------
REPORT="$WORK_DIR/report.md"
python3 - "$RESULTS" "$CLK_TCK" "$LABEL_A" "$LABEL_B" >"$REPORT" <<'PY'
import collections, statistics, sys

results, clk_tck, label_a, label_b = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rows = collections.defaultdict(dict)  # round -> side -> values
for line in open(results):
    rnd, side, requests, rps, errors, ticks, ns = line.rstrip("\n").split("\t")
    n = max(int(requests), 1)
    rows[int(rnd)][side] = {"requests": int(requests), "rps": float(rps), "errors": int(errors),
                            "ticks": int(ticks), "cpu_us": int(ticks) * 1e6 / clk_tck / n,
                            "sched_us": int(ns) / 1e3 / n}
rounds = sorted(rows)

def col(side, key):
    return [rows[r][side][key] for r in rounds]

def spread(values, fmt):
    return (f"{fmt.format(statistics.median(values))} "
            f"({fmt.format(min(values))} to {fmt.format(max(values))})")

cpu_ratio = [rows[r]["B"]["cpu_us"] / rows[r]["A"]["cpu_us"] for r in rounds]
have_sched = all(rows[r][s]["sched_us"] > 0 for r in rounds for s in "AB")
sched_ratio = [rows[r]["B"]["sched_us"] / rows[r]["A"]["sched_us"] for r in rounds
               ] if have_sched else []
rps_ratio = [rows[r]["B"]["rps"] / rows[r]["A"]["rps"] for r in rounds]

print(f"A = {label_a}, B = {label_b}.")
print()
print("| round | A requests/s | A CPU per request | B requests/s | B CPU per request | "
      "CPU B/A |")
print("|---|---:|---:|---:|---:|---:|")
for r, ratio in zip(rounds, cpu_ratio):
    a, b = rows[r]["A"], rows[r]["B"]
    print(f"| {r} | {a['rps']:,.0f} | {a['cpu_us']:.2f} µs ({a['ticks']} ticks) | "
          f"{b['rps']:,.0f} | {b['cpu_us']:.2f} µs ({b['ticks']} ticks) | {ratio:.3f} |")
print(f"| median (min to max) | {spread(col('A', 'rps'), '{:,.0f}')} | "
      f"{spread(col('A', 'cpu_us'), '{:.2f}')} µs | {spread(col('B', 'rps'), '{:,.0f}')} | "
      f"{spread(col('B', 'cpu_us'), '{:.2f}')} µs | "
      f"**{spread(cpu_ratio, '{:.3f}')}** |")
print()
print(f"CPU B/A is taken within each round, then the median of those ratios is shown "
      f"({len(rounds)} interleaved rounds); requests/s B/A, the same way: "
      f"{spread(rps_ratio, '{:.3f}')}. wrk errors: A {sum(col('A', 'errors'))}, "
      f"B {sum(col('B', 'errors'))}.")
if have_sched:
    print()
    print(f"Cross-check, CPU per request from /proc/PID/task/*/schedstat (ns): A "
          f"{spread(col('A', 'sched_us'), '{:.2f}')} µs, "
          f"B {spread(col('B', 'sched_us'), '{:.2f}')} µs, "
          f"B/A per round {spread(sched_ratio, '{:.3f}')}.")
PY

{
  echo
  echo "$MACHINE"
  bt='`'
  echo "Command: ${bt}TARGET=$TARGET ROUNDS=$ROUNDS DURATION=$DURATION tests/load/responder_ab.sh \
$1 $2${OUTPUT:+ $OUTPUT}${bt}; wrk ${bt}-t1 -c$CONNECTIONS -d${DURATION}s${bt} on CPU $CLIENT_CPU, \
each http_$TARGET (one thread) on CPU $SERVER_CPU\
$([[ "$TARGET" == proxy ]] && echo ", both in front of one http_responder on CPU $CLIENT_CPU")."
} >>"$REPORT"

cat "$REPORT"
if [[ -n "$OUTPUT" ]]; then cp "$REPORT" "$OUTPUT"; fi
