#!/usr/bin/env bash
# instructions_per_request.sh: user-space instructions per keep-alive HTTP request of
# examples/http_responder or examples/http_proxy (in front of a native http_responder), counted
# by callgrind. Deterministic, unlike CPU time on a shared machine, so it is the figure to
# compare two commits by (docs/benchmarks.md §7). `nginx` counts nginx's proxy_pass the same
# way, in front of the same upstream with proxy_compare.sh's configuration
# (tests/load/nginx_proxy.conf.in): the peer's figure to compare with. `handshake` counts
# http_responder over TLS with a connection per request (each a full TLS 1.3 handshake: ab does
# not resume sessions), `nginx_handshake` nginx the same way with tls_compare.sh's configuration
# (tests/load/nginx_tls.conf.in), both with one fresh self-signed ECDSA P-256 certificate.
# Not part of `make test`.
#
#   tests/load/instructions_per_request.sh proxy|responder|nginx|handshake|nginx_handshake [REQUESTS]
#   BUILD_DIR=build/h-x tests/load/instructions_per_request.sh proxy 20000
#
# BUILD_DIR (default build/release) must hold examples/http_responder and, for `proxy`,
# examples/http_proxy. Needs valgrind and ab (apache2-utils); it names the Debian packages to
# install when one is missing. Load: `ab -k -c 16`, 1,000 requests of warm-up, then the
# counters are zeroed (callgrind_control -z) and REQUESTS (default 20,000) are counted
# (callgrind_control -d). Every process it starts is stopped by its PID (SIGTERM, then SIGKILL)
# on any exit, Ctrl-C included (the helpers in tests/load/lib.sh); scratch files stay in a
# mktemp directory (removed on exit).
#
# CONCURRENCY (default 16) is ab's -c for keep-alive loads (64 matches proxy_compare.sh's wrk).
# CACHE_SIM=1 adds callgrind's cache simulation (the host's cache sizes) and prints the
# instruction-cache (I1) and data-cache (D1 read, write) misses per request too: how much
# distinct code and data one request touches, which instruction counts alone do not show.
# CALLGRIND_OUT=FILE keeps the counted dump there, with uncompressed names. Per function:
# `tests/load/callgrind_self.py FILE REQUESTS` (callgrind_annotate charges a dump taken after
# `callgrind_control -z` to __libc_start_main alone).
set -euo pipefail

SCRIPT_NAME=instructions_per_request
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TARGET="${1:-}"
REQUESTS="${2:-20000}"
case "$TARGET" in proxy | responder | nginx | handshake | nginx_handshake) ;; *)
  echo "usage: $0 proxy|responder|nginx|handshake|nginx_handshake [REQUESTS]" >&2
  exit 2
  ;;
esac
BUILD_DIR="$(abs_dir "${BUILD_DIR:-build/release}")"
require_tools valgrind:valgrind callgrind_control:valgrind callgrind_annotate:valgrind \
  ab:apache2-utils

make_work_dir
REMOVE_ON_EXIT="$WORK_DIR"

examples="$BUILD_DIR/examples"
built=("$examples/http_responder")
if [[ "$TARGET" == proxy ]]; then built+=("$examples/http_proxy"); fi
if [[ "$TARGET" == nginx* ]]; then require_tools nginx:nginx-light; fi
if [[ "$TARGET" == *handshake ]]; then
  require_tools openssl:openssl
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$WORK_DIR/key.pem" -out "$WORK_DIR/cert.pem" -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>"$WORK_DIR/openssl.err" ||
    die "openssl req failed: $(cat "$WORK_DIR/openssl.err")"
fi
require_built "(cmake --preset release && cmake --build build/release --target ${built[*]##*/}), \
or set BUILD_DIR" "${built[@]}"
callgrind=(valgrind --tool=callgrind "--callgrind-out-file=$WORK_DIR/callgrind.out")
if [[ "${CACHE_SIM:-0}" == 1 ]]; then callgrind+=(--cache-sim=yes); fi
# A dump names each function only the first time (compressed names): the counted dump, the
# second, would leave a reader with bare ids.
if [[ -n "${CALLGRIND_OUT:-}" ]]; then callgrind+=(--compress-strings=no); fi
common=(--port=0 --address=127.0.0.1 --log_level=warn)
if [[ "$TARGET" == proxy || "$TARGET" == nginx ]]; then
  start upstream "$examples/http_responder" "${common[@]}"
  upstream_port="$(port_from_stdout "$WORK_DIR/upstream.out")"
fi
if [[ "$TARGET" == proxy ]]; then
  start proxy "${callgrind[@]}" "$examples/http_proxy" "${common[@]}" \
    "--upstream=http://127.0.0.1:$upstream_port"
elif [[ "$TARGET" == nginx* ]]; then
  port="$(free_port)"
  conf=nginx_proxy.conf.in
  if [[ "$TARGET" == nginx_handshake ]]; then conf=nginx_tls.conf.in; fi
  sed -e "s|@DIR@|$WORK_DIR|g" -e "s|@PORT@|$port|g" -e "s|@UPSTREAM_PORT@|${upstream_port:-}|g" \
    "$(dirname "${BASH_SOURCE[0]}")/$conf" >"$WORK_DIR/nginx.conf"
  # master_process off: the process valgrind starts is the one worker.
  start nginx "${callgrind[@]}" nginx -p "$WORK_DIR" -e "$WORK_DIR/nginx_error.log" \
    -c "$WORK_DIR/nginx.conf"
elif [[ "$TARGET" == handshake ]]; then
  start handshake "${callgrind[@]}" "$examples/http_responder" "${common[@]}" \
    "--tls_cert=$WORK_DIR/cert.pem" "--tls_key=$WORK_DIR/key.pem"
else
  start responder "${callgrind[@]}" "$examples/http_responder" "${common[@]}"
fi
measured_pid=$STARTED_PID
# Under valgrind a server takes seconds to start on a loaded machine: up to 30 s.
if [[ "$TARGET" == nginx* ]]; then
  wait_for_port "$port" "nginx under valgrind" 30
else
  port="$(port_from_stdout "$WORK_DIR/$TARGET.out" 30)"
fi
url="http://127.0.0.1:$port/"
load=(-k -c "${CONCURRENCY:-16}")
warmup=1000
if [[ "$TARGET" == *handshake ]]; then
  url="https://127.0.0.1:$port/"
  load=(-c 4)  # no keep-alive: a connection, a full handshake, per request
  warmup=50
fi

ab "${load[@]}" -n "$warmup" "$url" >/dev/null 2>&1
callgrind_control -z "$measured_pid" >/dev/null 2>&1
failed="$(ab "${load[@]}" -n "$REQUESTS" "$url" 2>&1 | awk '/^Failed requests/ {print $3}')"
callgrind_control -d "$measured_pid" >/dev/null 2>&1
dumps=("$WORK_DIR"/callgrind.out.*)
dump="${dumps[0]}"
if [[ -n "${CALLGRIND_OUT:-}" ]]; then cp "$dump" "$CALLGRIND_OUT"; fi
# The totals line: Ir, then (with CACHE_SIM=1) Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw, each
# followed by its percentage unless it is 0.
read -r -a totals <<<"$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {
  gsub(/\([^)]*\)/, "")
  for (i = 1; i <= NF; i++) if ($i ~ /^[0-9,]+$/) { gsub(",", "", $i); printf "%s ", $i }
}')"
total="${totals[0]}"
echo "$TARGET: $((total / REQUESTS)) instructions per request ($total over $REQUESTS requests," \
  "ab ${load[*]}; failed requests: ${failed:-?})"
if [[ "${CACHE_SIM:-0}" == 1 ]]; then
  echo "$TARGET: per request, $((totals[3] / REQUESTS)) I1 misses, $((totals[4] / REQUESTS))" \
    "D1 read misses, $((totals[5] / REQUESTS)) D1 write misses"
fi
