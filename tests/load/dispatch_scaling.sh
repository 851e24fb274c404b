#!/usr/bin/env bash
# dispatch_scaling.sh: issue 10 point 2's matrix. Runs tests/bench/dispatch_scaling (libevent's
# test/bench.c method: N socketpairs, A bytes in flight, a chain of W one-byte writes per run)
# for every backend at N = 10, 1,000, 8,000 and A = 1, 100, and prints a Markdown table of the
# cost per event with the ratio of ioloop's epoll backend to the raw epoll_wait loop (the
# floor), and of libevent's when the program was built with libevent. Not part of `make test`
# (a few minutes; its figures depend on the machine).
#
#   tests/load/dispatch_scaling.sh [OUTPUT.md]
#   BUILD_DIR=build/release ROUNDS=5 RUNS=11 SLOW_RUNS=3 WRITES=1000 CPU=1 CLOCK=wall \
#     tests/load/dispatch_scaling.sh /tmp/dispatch.md
#
# BUILD_DIR (default build/release, from `cmake --preset release`) must hold
# tests/dispatch_scaling. Needs taskset and python3.
#
# What it does, and why:
#  - every run is pinned with taskset to CPU $CPU, so a run never migrates mid-measurement;
#  - within each cell (N, A) the backends are interleaved, ROUNDS times (the order of raw and
#    epoll alternates between rounds), so that a change in the machine's load hits all of them
#    alike; the epoll/raw ratio is taken per round, from two runs made back to back, and its
#    median and min-max over the rounds are reported;
#  - each invocation reports the median over RUNS runs of the chain (SLOW_RUNS for poll and
#    select, whose scan of every fd makes a run at N = 8,000 take seconds); the table gives the
#    median over the rounds of those medians, as microseconds per event (wall time of a run /
#    (A + W)), and the loop iterations per run;
#  - CLOCK=wall (default) times each run on the steady clock, as bench.c does; CLOCK=cpu on the
#    thread's CPU time (user + kernel), which leaves out waiting for a CPU: on a shared, busy
#    machine the cpu figures are the steadier ones;
#  - A > N (N = 10, A = 100) is well defined: the A bytes are spread round-robin, every pair
#    holds A/N of them, and every wait finds all N pairs ready;
#  - a backend that cannot watch N fds (select above FD_SETSIZE) prints SKIP: shown as "skip".
# Output: the Markdown table, printed and written to OUTPUT.md if given, then one line on the
# machine and its load. Raw RESULT lines stay in $WORK_DIR/results.tsv (printed).
set -euo pipefail

SCRIPT_NAME=dispatch_scaling
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD_DIR="$(abs_dir "${BUILD_DIR:-build/release}")"
ROUNDS="${ROUNDS:-5}"
RUNS="${RUNS:-11}"
SLOW_RUNS="${SLOW_RUNS:-3}"
WRITES="${WRITES:-1000}"
CPU="${CPU:-1}"
CLOCK="${CLOCK:-wall}"
NS="${NS:-10 1000 8000}"
ACTIVES="${ACTIVES:-1 100}"
BACKENDS="${BACKENDS:-}"
OUTPUT="${1:-}"

require_tools taskset:util-linux python3:python3
BIN="$BUILD_DIR/tests/dispatch_scaling"
require_built "(cmake --preset release && cmake --build build/release --target dispatch_scaling), \
or set BUILD_DIR" "$BIN"

# libevent joins when the program was built with it (CMake found Debian's libevent-dev).
if [[ -z "$BACKENDS" ]]; then
  BACKENDS="raw epoll poll select"
  if "$BIN" -b libevent -n 1 -w 0 -r 1 >/dev/null 2>&1; then BACKENDS+=" libevent"; fi
fi

make_work_dir
echo "dispatch_scaling: scratch directory $WORK_DIR" >&2
RESULTS="$WORK_DIR/results.tsv"
: >"$RESULTS"

mark_start
for n in $NS; do
  for a in $ACTIVES; do
    for round in $(seq "$ROUNDS"); do
      # Alternate which of raw and epoll goes first: neither always gets the warmer machine.
      order="$BACKENDS"
      if ((round % 2 == 0)); then order="${BACKENDS/raw epoll/epoll raw}"; fi
      for b in $order; do
        runs="$RUNS"
        [[ "$b" == poll || "$b" == select ]] && runs="$SLOW_RUNS"
        rc=0
        line="$(taskset -c "$CPU" "$BIN" -b "$b" -n "$n" -a "$a" -w "$WRITES" -r "$runs" \
          -t "$CLOCK")" ||
          rc=$?
        case "$rc:$line" in
          0:RESULT*) ;;
          4:SKIP*) ;;
          *) die "dispatch_scaling -b $b -n $n -a $a exited $rc: $line" ;;
        esac
        printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$n" "$a" "$b" "$line" >>"$RESULTS"
        echo "round $round: $line" >&2
      done
    done
  done
done
summary="$(machine_summary)"

python3 - "$RESULTS" "$ROUNDS" "$RUNS" "$SLOW_RUNS" "$WRITES" "$CPU" "$BACKENDS" "$CLOCK" \
  "$summary" \
  >"$WORK_DIR/table.md" <<'PY'
import collections, re, statistics, sys

path, rounds, runs, slow_runs, writes, cpu, backends, clock, summary = sys.argv[1:]
backends = backends.split()
us = collections.defaultdict(list)     # (n, a, backend) -> [median_us_event per round]
loops = collections.defaultdict(list)  # (n, a, backend) -> [loops_per_run per round]
per_round = {}                         # (n, a, backend, round) -> median_us_event
skipped = set()
cells = []
for row in open(path):
    rnd, n, a, b, line = row.rstrip("\n").split("\t", 4)
    key = (int(n), int(a), b)
    if (key[0], key[1]) not in cells:
        cells.append((key[0], key[1]))
    if line.startswith("SKIP"):
        skipped.add(key)
        continue
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    us[key].append(float(f["median_us_event"]))
    loops[key].append(float(f["loops_per_run"]))
    per_round[key + (rnd,)] = float(f["median_us_event"])

def fmt(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:,.2f}"

head = "| N | A | " + " | ".join(f"{b} µs/event" for b in backends)
peers = [b for b in ("epoll", "libevent") if b in backends]  # each gets a ratio to raw
head += "".join(f" | {b} / raw, median (min-max)" for b in peers) + " | loops/run raw, epoll |"
print(head)
print("|" + "---:|" * (len(backends) + 2) + "---|" * len(peers) + "---|")
for n, a in cells:
    row = [f"{n:,}", f"{a:,}"]
    for b in backends:
        k = (n, a, b)
        if us[k]:
            row.append(fmt(statistics.median(us[k])))
        else:
            row.append("skip" if k in skipped else "-")
    for peer in peers:
        ratios = [per_round[(n, a, peer, r)] / per_round[(n, a, "raw", r)]
                  for r in map(str, range(1, int(rounds) + 1))
                  if (n, a, peer, r) in per_round and (n, a, "raw", r) in per_round]
        if ratios:
            mid = statistics.median(ratios)
            verdict = " **over 1.1x**" if peer == "epoll" and mid > 1.1 else ""
            row.append(f"{mid:.3f}x ({min(ratios):.3f}-{max(ratios):.3f}){verdict}")
        else:
            row.append("-")
    ll = [f"{statistics.median(loops[(n, a, b)]):,.0f}" if loops[(n, a, b)] else "-"
          for b in ("raw", "epoll")]
    row.append(", ".join(ll))
    print("| " + " | ".join(row) + " |")
print()
clock = "wall (steady clock)" if clock == "wall" else "the thread's CPU time"
print(f"Timed on {clock}. "
      f"W = {int(writes):,} chained writes per run, so A + W events per run; each figure is the "
      f"median over {rounds} interleaved rounds of one invocation's median over {runs} runs "
      f"({slow_runs} for poll and select); all runs pinned to CPU {cpu}. Ratios are per round "
      f"(epoll and raw run back to back), then median and min-max.")
print()
print(summary)
PY
cat "$WORK_DIR/table.md"
if [[ -n "$OUTPUT" ]]; then cp "$WORK_DIR/table.md" "$OUTPUT"; fi
