#!/usr/bin/env bash
# instructions_per_request.sh: user-space instructions per keep-alive HTTP request of
# examples/http_responder or examples/http_proxy (in front of a native http_responder), counted
# by callgrind. Deterministic, unlike CPU time on a shared machine, so it is the figure to
# compare two commits by (docs/benchmarks.md §7). Not part of `make test`.
#
#   tests/load/instructions_per_request.sh proxy|responder [REQUESTS]
#   BUILD_DIR=build/h-x tests/load/instructions_per_request.sh proxy 20000
#
# BUILD_DIR (default build/release) must hold examples/http_responder and, for `proxy`,
# examples/http_proxy. Needs valgrind and ab (apache2-utils). Load: `ab -k -c 16`, 1,000
# requests of warm-up, then the counters are zeroed (callgrind_control -z) and REQUESTS
# (default 20,000) are counted (callgrind_control -d). Every process it starts is stopped by
# its PID on exit; scratch files stay in a mktemp directory (removed on exit).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-build/release}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$REPO/$BUILD_DIR" ;; esac
TARGET="${1:-}"
REQUESTS="${2:-20000}"
case "$TARGET" in proxy | responder) ;; *)
  echo "usage: $0 proxy|responder [REQUESTS]" >&2
  exit 2
  ;;
esac
for tool in valgrind:valgrind callgrind_control:valgrind ab:apache2-utils; do
  command -v "${tool%%:*}" >/dev/null 2>&1 ||
    { echo "instructions_per_request: install ${tool#*:}" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/instructions.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Starts "$@" with stdout in $work/$name.out and waits for "listening on HOST:PORT"; sets PORT.
start() {
  local name="$1"
  shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=("$!")
  LAST_PID=$!
  for _ in $(seq 1 150); do
    if grep -q "listening on" "$work/$name.out" 2>/dev/null; then
      PORT="$(grep -o '[0-9]*$' "$work/$name.out" | head -1)"
      return 0
    fi
    sleep 0.2
  done
  echo "instructions_per_request: $name did not start: $(cat "$work/$name.err")" >&2
  exit 1
}

examples="$BUILD_DIR/examples"
callgrind=(valgrind --tool=callgrind "--callgrind-out-file=$work/callgrind.out")
common=(--port=0 --address=127.0.0.1 --log_level=warn)
if [ "$TARGET" = proxy ]; then
  start upstream "$examples/http_responder" "${common[@]}"
  start proxy "${callgrind[@]}" "$examples/http_proxy" "${common[@]}" \
    "--upstream=http://127.0.0.1:$PORT"
else
  start responder "${callgrind[@]}" "$examples/http_responder" "${common[@]}"
fi
measured_pid=$LAST_PID
url="http://127.0.0.1:$PORT/"

ab -k -n 1000 -c 16 "$url" >/dev/null 2>&1
callgrind_control -z "$measured_pid" >/dev/null 2>&1
failed="$(ab -k -n "$REQUESTS" -c 16 "$url" 2>&1 | awk '/^Failed requests/ {print $3}')"
callgrind_control -d "$measured_pid" >/dev/null 2>&1
dumps=("$work"/callgrind.out.*)
dump="${dumps[0]}"
total="$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')"
echo "$TARGET: $((total / REQUESTS)) instructions per request ($total over $REQUESTS requests," \
  "ab -k -c 16; failed requests: ${failed:-?})"
