#!/usr/bin/env bash
# tests/load/compare/smoke.sh: the few-second check `make test` runs on the comparison harness
# (`make compare`, run.sh), so that a change that breaks it is caught before the long run:
#  - run.sh parses (`bash -n`) and, when shellcheck is installed, is shellcheck-clean;
#  - the floor (floor.c) and the echo load client (echo_client.c) compile without warnings;
#  - the floor answers HTTP as the peers must (the body; three pipelined requests in one write
#    answered in order, the last with Connection: close, then the connection closed);
#  - the floor echoes (echo_client checks every byte) and holds idle connections (the memory
#    probe's own check).
# It needs only what `make test` installs (no libevent, libuv, Boost, nginx or Tornado: those
# are `make compare`'s). Every process is stopped by its PID; the scratch directory is removed.
set -euo pipefail

SCRIPT_NAME=compare_smoke
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
HERE="$REPO/tests/load/compare"

bash -n "$HERE/run.sh" || die "run.sh does not parse"
if command -v shellcheck >/dev/null 2>&1; then
  shellcheck -x "$HERE/run.sh" "$HERE/smoke.sh" || die "shellcheck complains"
fi

make_work_dir
REMOVE_ON_EXIT="$WORK_DIR"
cc -O2 -Wall -Wextra -Werror -o "$WORK_DIR/floor" "$HERE/floor.c"
cc -O2 -Wall -Wextra -Werror -o "$WORK_DIR/echo_client" "$HERE/echo_client.c"

start floor_http "$WORK_DIR/floor" http 0 127.0.0.1
port="$(port_from_stdout "$WORK_DIR/floor_http.out")"
check_hello floor "$port"
python3 - "$port" <<'PY' || die "the floor does not answer pipelined requests as it should"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
s.sendall(get + get + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while chunk := s.recv(4096):  # ends only if the floor closes after the third answer
    data += chunk
assert data.count(b"HTTP/1.1 200 OK") == 3 and data.endswith(b"Hello, world!"), data
assert data.count(b"Connection: close") == 1, data
PY

start floor_echo "$WORK_DIR/floor" echo 0 127.0.0.1
echo_pid=$STARTED_PID
port="$(port_from_stdout "$WORK_DIR/floor_echo.out")"
out="$("$WORK_DIR/echo_client" load "$port" 2 100000 0.3)" || die "echo_client load failed"
read -r messages _ <<<"$out"
((messages > 0)) || die "no message echoed"
out="$("$WORK_DIR/echo_client" idle "$port" 100 echo "$echo_pid")" || die "echo_client idle failed"
read -r _ _ _ fds <<<"$out"
((fds >= 100)) || die "the floor holds $fds fds, not the 100 idle connections"
echo "compare_smoke: ok (run.sh parses, floor and echo_client build and behave)"
