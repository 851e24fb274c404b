#!/usr/bin/env bash
# tls_compare.sh: issue 9's HTTPS comparison. examples/http_responder with --tls_cert/--tls_key
# against nginx (one process, tests/load/nginx_tls.conf.in), both single-threaded with the same
# ECDSA P-256 certificate, TLS 1.3 and X25519, answering "Hello, world!".
# Not part of `make test` (it takes minutes and its figures depend on the machine).
#
#   tests/load/tls_compare.sh [OUTPUT.md]
#   BUILD_DIR=build/release ROUNDS=3 DURATION=10 IDLE_CONNECTIONS=10000 \
#     tests/load/tls_compare.sh /tmp/tls.md
#
# BUILD_DIR (default build/release, from `cmake --preset release`) must hold
# examples/http_responder. Needs wrk (built with OpenSSL, as Debian's is), nginx (nginx-light),
# openssl, strace, taskset and python3.
#
# What it does, and why:
#  - each server runs pinned to CPU $SERVER_CPU (0); wrk and the idle-connection client run on
#    CPU $CLIENT_CPU (1), so the server's CPU time is its own;
#  - both servers are started once and warmed up, then measured in interleaved rounds (ioloop,
#    nginx; ROUNDS times), so that a change in the machine's load hits both alike: the
#    per-round ratios are what count;
#  - keep-alive: `wrk -t1 -c64 -d${DURATION}s https://...`: requests/s, and the server's CPU per
#    request = (utime + stime) delta of /proc/PID/stat over the run / requests;
#  - full handshakes: the same with `-H 'Connection: close'`: every request is a new connection
#    and a full TLS 1.3 handshake (wrk does not resume sessions), so requests/s is handshakes/s
#    and the CPU per request is the CPU per handshake plus its one request;
#  - both measures again with both servers loaded at once (a wrk for each, started together):
#    each round's ratio then compares the same seconds of the host, the steadier figure on a
#    VM whose speed drifts between the sequential runs;
#  - syscalls per keep-alive request: `strace -c -f -p PID` over a separate
#    ${STRACE_DURATION}s wrk window (ptrace slows the server: counts only, never time);
#  - RSS per idle TLS connection: IDLE_CONNECTIONS connections (Python's ssl, asyncio) each make
#    one request and stay open; (VmRSS with them - VmRSS before) / IDLE_CONNECTIONS (0: skipped);
#  - nginx sends as many TLS 1.3 session tickets per full handshake as http_responder (one;
#    NGINX_TLS13_TICKETS=2 for OpenSSL's default, which nginx otherwise keeps), through
#    OPENSSL_CONF: a ticket is a session encrypted and sent on every full handshake;
#  - every process it starts is stopped by its PID (tests/load/lib.sh).
# Output: a Markdown table (median and min-max over the rounds; ioloop/nginx ratios per round),
# printed and written to OUTPUT.md if given. Scratch files stay in $WORK_DIR (printed).
set -euo pipefail

SCRIPT_NAME=tls_compare
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD_DIR="$(abs_dir "${BUILD_DIR:-build/release}")"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
STRACE_DURATION="${STRACE_DURATION:-3}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
IDLE_CONNECTIONS="${IDLE_CONNECTIONS:-10000}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
OUTPUT="${1:-}"

require_tools wrk:wrk nginx:nginx-light openssl:openssl strace:strace taskset:util-linux \
  python3:python3
RESPONDER_BIN="$BUILD_DIR/examples/http_responder"
require_built "(cmake --preset release && cmake --build build/release --target http_responder), \
or set BUILD_DIR" "$RESPONDER_BIN"
(($(nproc) >= 2)) || die "needs 2 CPUs (the server on one, the load on the other)"

make_work_dir
echo "tls_compare: scratch directory $WORK_DIR" >&2
RESULTS="$WORK_DIR/results.tsv"
: >"$RESULTS"

# One self-signed ECDSA P-256 certificate for both servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -keyout "$WORK_DIR/key.pem" -out "$WORK_DIR/cert.pem" -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>"$WORK_DIR/openssl.err" ||
  die "openssl req failed: $(cat "$WORK_DIR/openssl.err")"

declare -A PID PORT
start ioloop taskset -c "$SERVER_CPU" "$RESPONDER_BIN" --port=0 --address=127.0.0.1 \
  --log_level=warn --tls_cert="$WORK_DIR/cert.pem" --tls_key="$WORK_DIR/key.pem" \
  --idle_timeout=0
PID[ioloop]=$STARTED_PID
PORT[ioloop]="$(port_from_stdout "$WORK_DIR/ioloop.out")"

PORT[nginx]="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
sed -e "s|@DIR@|$WORK_DIR|g" -e "s|@PORT@|${PORT[nginx]}|g" "$REPO/tests/load/nginx_tls.conf.in" \
  >"$WORK_DIR/nginx.conf"
# TLS 1.3 session tickets per full handshake: nginx has no directive for it, so OpenSSL's
# configuration file sets it (nginx loads it at startup). The default gives nginx the one
# ticket http_responder sends (TLSServerOptions::tls13_tickets), so that both do the same work;
# NGINX_TLS13_TICKETS=2 is OpenSSL's default, which nginx keeps when nothing says otherwise.
cat >"$WORK_DIR/openssl.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
NumTickets = ${NGINX_TLS13_TICKETS:-1}
EOF
start nginx env OPENSSL_CONF="$WORK_DIR/openssl.cnf" taskset -c "$SERVER_CPU" nginx \
  -p "$WORK_DIR" -e "$WORK_DIR/nginx_error.log" -c "$WORK_DIR/nginx.conf"
PID[nginx]=$STARTED_PID
SERVERS=(ioloop nginx)

https_hello() {  # dies unless GET / over TLS 1.3 answers 200 "Hello, world!"
  local name="$1" port="$2" answer
  for _ in $(seq 50); do
    answer="$(curl -s --max-time 5 --tlsv1.3 --cacert "$WORK_DIR/cert.pem" \
      --resolve "localhost:$port:127.0.0.1" "https://localhost:$port/" 2>/dev/null)" && break
    sleep 0.1
  done
  [[ "$answer" == "Hello, world!" ]] || die "$name does not answer over https: '$answer'"
}
for name in "${SERVERS[@]}"; do https_hello "$name" "${PORT[$name]}"; done

# One measurement: wrk over https (extra wrk arguments after the label), the server's CPU.
measure() {
  local name="$1" label="$2" round="$3" before after requests rps errors
  shift 3
  before="$(cpu_ticks "${PID[$name]}")"
  read -r requests rps errors < <(run_wrk "${PORT[$name]}" "$DURATION" \
    "$WORK_DIR/wrk_${name}_${label}_$round.txt" https "$@")
  after="$(cpu_ticks "${PID[$name]}")"
  ((errors == 0)) || die "$name $label: $errors wrk errors (see $WORK_DIR)"
  printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$name" "$round" "$rps" \
    "$(python3 -c "print(($after - $before) / $CLK_TCK / $requests * 1e6)")" >>"$RESULTS"
}

# The same, with both servers loaded at once (a wrk for each, both on the client CPU, the
# servers sharing theirs): the host's changing speed then hits both within the same seconds,
# which on a noisy VM makes this the steadier ratio of the two.
measure_together() {
  local label="$1" round="$2" name requests rps errors ticks
  shift 2
  wrk_together "${label}_$round" https "${SERVERS[@]}" -- "$@"
  while read -r name requests rps errors ticks; do
    ((errors == 0)) || die "$name $label: $errors wrk errors (see $WORK_DIR)"
    printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$name" "$round" "$rps" \
      "$(python3 -c "print($ticks / $CLK_TCK / $requests * 1e6)")" >>"$RESULTS"
  done <"$WORK_DIR/together.${label}_$round"
}

mark_start
for name in "${SERVERS[@]}"; do
  run_wrk "${PORT[$name]}" "$WARMUP" "$WORK_DIR/warmup_$name.txt" https >/dev/null
done
for round in $(seq "$ROUNDS"); do
  for name in "${SERVERS[@]}"; do
    measure "$name" keepalive "$round"
    measure "$name" handshake "$round" -H "Connection: close"
  done
  measure_together keepalive_together "$round"
  measure_together handshake_together "$round" -H "Connection: close"
done

# Syscalls per keep-alive request, in a window of their own.
declare -A SYSCALLS
for name in "${SERVERS[@]}"; do
  start_syscall_counter strace "${PID[$name]}" "$WORK_DIR/strace_$name.txt"
  read -r requests _ _ < <(run_wrk "${PORT[$name]}" "$STRACE_DURATION" \
    "$WORK_DIR/wrk_strace_$name.txt" https)
  stop_syscall_counter
  calls="$(awk '$NF == "total" {print $4; exit}' "$WORK_DIR/strace_$name.txt")"
  SYSCALLS[$name]="$(python3 -c "print(f'{$calls / $requests:.2f}')")"
done

# RSS per idle TLS connection. The client opens N connections (200 handshakes at a time), makes
# one request on each, prints "ready N", and holds them until the file named by its last
# argument exists.
cat >"$WORK_DIR/idle_client.py" <<'PY'
import asyncio, os, resource, ssl, sys
port, n, ca, release = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
ctx = ssl.create_default_context(cafile=ca)
held = []
async def one(sem):
    async with sem:
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                             server_hostname="localhost")
        w.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while not data.endswith(b"Hello, world!"):
            chunk = await r.read(4096)
            if not chunk:
                raise SystemExit("connection closed before the answer")
            data += chunk
        held.append((r, w))
async def main():
    sem = asyncio.Semaphore(200)
    await asyncio.gather(*(one(sem) for _ in range(n)))
    print("ready", len(held), flush=True)
    while not os.path.exists(release):
        await asyncio.sleep(0.1)
asyncio.run(main())
PY
vmrss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
declare -A IDLE_BYTES
for name in "${SERVERS[@]}"; do
  if ((IDLE_CONNECTIONS == 0)); then  # skipped
    IDLE_BYTES[$name]=0
    continue
  fi
  before="$(vmrss_kib "${PID[$name]}")"
  start "idle_$name" taskset -c "$CLIENT_CPU" python3 "$WORK_DIR/idle_client.py" \
    "${PORT[$name]}" "$IDLE_CONNECTIONS" "$WORK_DIR/cert.pem" "$WORK_DIR/release_$name"
  client=$STARTED_PID
  for _ in $(seq 3000); do
    grep -q '^ready' "$WORK_DIR/idle_$name.out" 2>/dev/null && break
    kill -0 "$client" 2>/dev/null ||
      die "idle client for $name failed: $(cat "$WORK_DIR/idle_$name.err")"
    sleep 0.1
  done
  grep -q "^ready $IDLE_CONNECTIONS" "$WORK_DIR/idle_$name.out" ||
    die "idle client for $name did not hold $IDLE_CONNECTIONS connections"
  after="$(vmrss_kib "${PID[$name]}")"
  IDLE_BYTES[$name]=$(((after - before) * 1024 / IDLE_CONNECTIONS))
  touch "$WORK_DIR/release_$name"  # the client exits, closing its connections
  wait "$client" 2>/dev/null || true
done

report() {
  python3 - "$RESULTS" "${SYSCALLS[ioloop]}" "${SYSCALLS[nginx]}" "${IDLE_BYTES[ioloop]}" \
    "${IDLE_BYTES[nginx]}" <<'PY'
import statistics, sys
from collections import defaultdict
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
data = defaultdict(dict)  # (label, name) -> round -> (rps, us)
for label, name, rnd, rps, us in rows:
    data[(label, name)][rnd] = (float(rps), float(us))
def cell(values, fmt):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"
print("| measure | ioloop | nginx | ioloop / nginx (per round) |")
print("|---|---:|---:|---:|")
for label, title in (("keepalive", "keep-alive"), ("handshake", "full handshake + request"),
                     ("keepalive_together", "keep-alive, both servers loaded at once"),
                     ("handshake_together", "full handshake + request, both servers loaded at once")):
    io, ng = data[(label, "ioloop")], data[(label, "nginx")]
    rounds = sorted(io)
    for k, what, fmt in ((1, "server CPU µs per request", "{:.1f}"), (0, "requests/s", "{:.0f}")):
        a = [io[r][k] for r in rounds]
        b = [ng[r][k] for r in rounds]
        ratios = [x / y for x, y in zip(a, b)]
        print(f"| {title}: {what} | {cell(a, fmt)} | {cell(b, fmt)} | {cell(ratios, '{:.2f}')} |")
print(f"| keep-alive: syscalls per request | {sys.argv[2]} | {sys.argv[3]} | |")
if int(sys.argv[5]) > 0:  # IDLE_CONNECTIONS=0 skips this measure
    print(f"| RSS per idle TLS connection (after one request) | {sys.argv[4]} B | {sys.argv[5]} B | "
          f"{int(sys.argv[4]) / int(sys.argv[5]):.2f} |")
PY
  echo
  machine_summary
}
report | tee "${OUTPUT:-/dev/null}"
