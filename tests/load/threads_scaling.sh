#!/usr/bin/env bash
# threads_scaling.sh: issue 10's multi-core figure. examples/http_responder with --threads=N
# (N loops in N threads, one SO_REUSEPORT listener each) for each N in THREADS, driven by
# `wrk -t2 -c$CONNECTIONS` keep-alive in interleaved rounds; requests/s and server CPU per
# request, medians and min-max, and each N's rate as a ratio to N=1 within a round.
# Not part of `make test`.
#
#   tests/load/threads_scaling.sh [OUTPUT.md]
#   ROUNDS=5 DURATION=5 THREADS="1 2" BUILD_DIR=build/release tests/load/threads_scaling.sh
#
# What the figure can show on this 2-core machine: nothing is pinned, so the server's threads
# and wrk's two threads share the same two cores. With --threads=2 the server can use both
# cores only by taking them from wrk; a ratio near 1 is the expected outcome here and says
# that a second loop costs nothing, not how ioloop scales. What it cannot show: scaling to
# more cores, which needs a machine whose load generator does not share the server's cores.
set -euo pipefail

SCRIPT_NAME=threads_scaling
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OUTPUT="${1:-}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5}"
THREADS="${THREADS:-1 2}"
CONNECTIONS="${CONNECTIONS:-64}"
BUILD_DIR="$(abs_dir "${BUILD_DIR:-build/release}")"
# Nothing pinned: wrk's two threads may run on every CPU, as the server's may (run_wrk).
CLIENT_CPU="0-$(($(nproc) - 1))"
WRK_THREADS=2
BIN="$BUILD_DIR/examples/http_responder"
require_tools wrk:wrk taskset:util-linux python3:python3
require_built "(cmake --preset release && cmake --build build/release --target http_responder), \
or set BUILD_DIR" "$BIN"

make_work_dir
RESULTS="$WORK_DIR/results.tsv"
: >"$RESULTS"
declare -A PID PORT
for n in $THREADS; do
  start "t$n" "$BIN" --port=0 --address=127.0.0.1 --threads="$n" --log_level=warn
  PID[$n]=$STARTED_PID
  PORT[$n]="$(port_from_stdout "$WORK_DIR/t$n.out")"
  check_hello "--threads=$n" "${PORT[$n]}"
done

mark_start
for n in $THREADS; do run_wrk "${PORT[$n]}" 2 "$WORK_DIR/wrk.warmup.$n" >/dev/null; done
for round in $(seq "$ROUNDS"); do
  for n in $THREADS; do
    before="$(cpu_ticks "${PID[$n]}")"
    read -r requests rps errors < <(run_wrk "${PORT[$n]}" "$DURATION" "$WORK_DIR/wrk.$n.$round")
    after="$(cpu_ticks "${PID[$n]}")"
    ((errors == 0)) || die "--threads=$n: $errors wrk errors (see $WORK_DIR/wrk.$n.$round)"
    printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$n" "$requests" "$rps" "$((after - before))" >>"$RESULTS"
    echo "threads_scaling: round $round --threads=$n: $rps requests/s" >&2
  done
done
MACHINE="$(machine_summary)"

python3 - "$RESULTS" "$CLK_TCK" >"$WORK_DIR/report.md" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(dict)
clk = int(sys.argv[2])
for line in open(sys.argv[1]):
    rnd, n, requests, rps, ticks = line.split()
    rows[int(n)][int(rnd)] = (float(rps), int(ticks) * 1e6 / clk / max(int(requests), 1))
base = min(rows)
print("| `--threads` | requests/s | x`--threads=%d` (per round) | server CPU per request |" % base)
print("|---:|---:|---:|---:|")
for n in sorted(rows):
    r = rows[n]
    rates = [r[k][0] for k in sorted(r)]
    ratios = [r[k][0] / rows[base][k][0] for k in sorted(r)]
    cpu = [r[k][1] for k in sorted(r)]
    print("| %d | %s (%s-%s) | %.2f (%.2f-%.2f) | %.2f (%.2f-%.2f) us |" % (
        n, f"{statistics.median(rates):,.0f}", f"{min(rates):,.0f}", f"{max(rates):,.0f}",
        statistics.median(ratios), min(ratios), max(ratios),
        statistics.median(cpu), min(cpu), max(cpu)))
PY
{
  cat "$WORK_DIR/report.md"
  echo
  echo "$MACHINE"
  echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION THREADS='$THREADS' BUILD_DIR=$BUILD_DIR $0\`;" \
    "wrk -t2 -c$CONNECTIONS keep-alive, nothing pinned."
} | tee ${OUTPUT:+"$OUTPUT"}
