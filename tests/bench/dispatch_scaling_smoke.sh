#!/usr/bin/env bash
# dispatch_scaling_smoke.sh: ctest's check of tests/bench/dispatch_scaling (issue 10, point 2).
# Format and exit statuses only, never a speed (the machine may be busy):
#  - every backend, tiny sizes, both clocks (-t wall, -t cpu): exit 0 and exactly one line, a
#    RESULT line whose backend, n, a and w echo the arguments, whose medians are numbers and
#    whose loops_per_run is > 0;
#  - select with more fds than FD_SETSIZE: exactly "SKIP reason=..." and exit 4;
#  - bad arguments: exit 2 with a message on stderr and nothing on stdout.
#
#   tests/bench/dispatch_scaling_smoke.sh PATH/TO/dispatch_scaling
set -euo pipefail

BIN="${1:?usage: dispatch_scaling_smoke.sh PATH/TO/dispatch_scaling}"
[[ -x "$BIN" ]] || { echo "not executable: $BIN" >&2; exit 1; }
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

ERR_FILE="$(mktemp)"
trap 'rm -f "$ERR_FILE"' EXIT
# run ARGS...: sets OUT (stdout), ERR (stderr) and RC.
run() {
  RC=0
  OUT="$("$BIN" "$@" 2>"$ERR_FILE")" || RC=$?
  ERR="$(<"$ERR_FILE")"
}

number='[0-9]+(\.[0-9]+)?'
backends="raw epoll poll select"
# -b libevent exists only when CMake found libevent; then it is checked like the others.
if "$BIN" -b libevent -n 1 -w 0 -r 1 >/dev/null 2>&1; then backends+=" libevent"; fi
for backend in $backends; do
  # Both clocks: raw and poll on -t wall (the default), epoll and select on -t cpu.
  clock=wall
  [[ "$backend" == epoll || "$backend" == select ]] && clock=cpu
  run -b "$backend" -n 10 -a 2 -w 50 -r 3 -t "$clock"
  [[ $RC -eq 0 ]] || fail "$backend: exit $RC, stderr: $ERR"
  re="^RESULT backend=$backend n=10 a=2 w=50 median_us_run=($number)"
  re+=" median_us_event=($number) loops_per_run=($number)\$"
  if [[ "$OUT" =~ $re ]]; then
    loops="${BASH_REMATCH[5]}"
    [[ "$loops" =~ [1-9] ]] || fail "$backend: loops_per_run=$loops, not > 0"
  else
    fail "$backend: not exactly one well-formed RESULT line: '$OUT'"
  fi
done

# More pairs than select can watch: read fds reach past FD_SETSIZE (1024).
run -b select -n 2000 -a 1 -w 1 -r 1
[[ $RC -eq 4 ]] || fail "select -n 2000: exit $RC, want 4"
[[ "$OUT" =~ ^SKIP\ reason=[^[:space:]]+ && "$OUT" != *$'\n'* ]] ||
  fail "select -n 2000: want one SKIP line, got '$OUT'"

# Bad arguments: each exits 2, says why on stderr and prints nothing on stdout.
for args in "-b kqueue" "-n 0" "-n ten" "-a -1" "-w" "-r 0" "-t tsc" "-x" "extra"; do
  # shellcheck disable=SC2086  # split on purpose
  run $args
  [[ $RC -eq 2 ]] || fail "'$args': exit $RC, want 2"
  [[ -z "$OUT" ]] || fail "'$args': printed '$OUT' on stdout"
  [[ -n "$ERR" ]] || fail "'$args': no message on stderr"
done

if ((failures)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "dispatch_scaling_smoke: all checks passed"
