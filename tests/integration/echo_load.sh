#!/usr/bin/env bash
# echo_load.sh: 10,000 concurrent connections against examples/echo_server (issue 3, point 5;
# results in docs/benchmarks.md, "Echo server").
#
#   tests/integration/echo_load.sh BUILD_DIR [CLIENTS=10000] [SERVER=echo_server] [extra flags...]
#   cmake --build build/default --target echo_server echo_server_lowlevel echo_load
#   tests/integration/echo_load.sh build/default
#
# Starts the server on 127.0.0.1 with --port 0, runs echo_load (every client connects and is
# echoed, then all CLIENTS connections, open at once, are echoed again), prints the server's
# RSS with all of them open, then stops the server with SIGINT and checks it exits 0.
# With TLS=1 in the environment the server gets --tls_cert/--tls_key (a throwaway self-signed
# ECDSA P-256 certificate for localhost, made with the openssl CLI) and every client makes a
# full TLS handshake, verified against that certificate, before its first echo:
#   TLS=1 tests/integration/echo_load.sh build/default
# Both processes need an open-file limit above CLIENTS: the server raises its soft limit to the
# hard one by itself, and echo_load does the same; check `ulimit -Hn`.
set -euo pipefail
build=${1:?usage: echo_load.sh BUILD_DIR [CLIENTS] [SERVER] [server flags...]}
clients=${2:-10000}
server=${3:-echo_server}
shift $(( $# < 3 ? $# : 3 ))
hard=$(ulimit -Hn)
if [[ $hard != unlimited && $hard -lt $((clients + 100)) ]]; then
  echo "echo_load.sh: hard open-file limit $hard is too low for $clients clients" >&2
  exit 2
fi
out=$(mktemp)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$out"' EXIT
server_tls=() load_tls=()
if [[ ${TLS:-0} == 1 ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
  server_tls=("--tls_cert=$tmp/cert.pem" "--tls_key=$tmp/key.pem")
  load_tls=("--tls_ca=$tmp/cert.pem")
fi
"$build/examples/$server" --port=0 --address=127.0.0.1 --log_level=warn \
  ${server_tls[@]+"${server_tls[@]}"} "$@" >"$out" &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$tmp" "$out"' EXIT
for _ in $(seq 100); do grep -q '^listening on ' "$out" && break; sleep 0.1; done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out" | head -1)
[[ -n $port ]] || { echo "echo_load.sh: $server did not announce a port" >&2; exit 1; }
echo "echo_load.sh: $server (pid $pid) on port $port, $clients ${load_tls[@]+TLS }clients"
"$build/tests/integration/echo_load" 127.0.0.1 "$port" "$clients" "$pid" \
  ${load_tls[@]+"${load_tls[@]}"}
echo "echo_load.sh: server CPU time $(awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz " s"}' /proc/$pid/stat)," \
     "peak RSS $(awk '/VmHWM/ {print $2 " " $3}' /proc/$pid/status)"
start=$(date +%s%N)
kill -INT $pid
status=0
wait $pid || status=$?
echo "echo_load.sh: SIGINT -> exit status $status after $(( ($(date +%s%N) - start) / 1000000 )) ms"
exit $status
