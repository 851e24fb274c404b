#!/usr/bin/env bash
# tests/soak/run.sh: load and soak runs against the real example servers (`make soak`; issue 7,
# point 14). Not part of `make test`.
#
#   bash tests/soak/run.sh [SUMMARY_FILE]        # default build/soak/summary.md
#
# Stages (each starts its own server on 127.0.0.1 with --port=0, reads the port the kernel
# picked from the server's "listening on" line, and stops it by its PID with SIGINT, expecting
# exit status 0; loopback only):
#   echo    SOAK_ECHO_CONNECTIONS (10000) connections to examples/echo_server held open while
#           each one exchanges messages of 1..SOAK_ECHO_MAX_MESSAGE (4096) bytes for
#           SOAK_ECHO_SECONDS (60); every echoed byte and a checksum per message verified
#           (tests/integration/echo_load --seconds, see echo_soak.h).
#   wrk     wrk -c SOAK_WRK_CONNECTIONS (1000) -t SOAK_WRK_THREADS (2) against
#           examples/http_responder for SOAK_WRK_SECONDS (600). The server's VmRSS is sampled
#           every SOAK_RSS_INTERVAL (10) s into wrk.rss.csv; the stage fails unless every
#           sample from the first one at or after SOAK_WRK_WARMUP s (60, or a third of a
#           shorter run) to the last, taken as wrk exits, is at most SOAK_RSS_GROWTH (1.10)
#           times, or SOAK_RSS_SLACK_KIB (2048) KiB above, that first one, and unless wrk saw
#           0 socket errors (SOAK_WRK_TIMEOUT 30s per request) and 0 non-2xx responses.
#   h2load  h2load --h1 -m SOAK_H2LOAD_STREAMS (10) -c SOAK_H2LOAD_CONNECTIONS (100)
#           -n SOAK_H2LOAD_REQUESTS (1000000) against http_responder: all succeeded, all 2xx.
#   reset   the echo stage with SOAK_RESET_PERCENT (5) percent of the messages cut off by a
#           client reset (SO_LINGER 0) at a random point mid-transfer, then a reconnect, for
#           SOAK_RESET_SECONDS (SOAK_ECHO_SECONDS) with SOAK_RESET_CONNECTIONS
#           (SOAK_ECHO_CONNECTIONS). Then a fresh 100-client echo check, and the server's
#           VmRSS, SOAK_SETTLE_SECONDS (5) after the clients left, must be back within
#           SOAK_RSS_END_SLACK_KIB (16384) KiB of its value before they came. (glibc keeps
#           freed heap, so RSS does not fall back to the start; 10,000 connections cost the
#           server about 6 MiB, and a leak of 1 KiB per reset over the ~20,000 resets of a
#           60 s run would exceed the slack.)
# Every stage also fails on a server log line at warning level or above, or a server that
# does not exit 0 within 20 s of SIGINT. "Connections held" is echo_load's count of
# connections open at the end (echo stages) or the most sockets the server had open at a
# sample (wrk, h2load); RSS peak is the server's VmHWM.
# SOAK_STAGES ("echo wrk h2load reset") picks stages; SOAK_BUILD_DIR (build/default) the build;
# SOAK_SERVER_THREADS (1) the servers' --threads. Every client runs under `timeout`.
# Exit status 0 only if every stage passed. Per-stage logs and RSS CSVs are written next to
# the summary.
#
# A smoke run in about two minutes:
#   SOAK_ECHO_CONNECTIONS=2000 SOAK_ECHO_SECONDS=10 SOAK_WRK_SECONDS=30 \
#     SOAK_H2LOAD_REQUESTS=100000 bash tests/soak/run.sh
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${SOAK_BUILD_DIR:-$root/build/default}
summary=${1:-$root/build/soak/summary.md}

stages=${SOAK_STAGES:-echo wrk h2load reset}
server_threads=${SOAK_SERVER_THREADS:-1}
rss_interval=${SOAK_RSS_INTERVAL:-10}
settle=${SOAK_SETTLE_SECONDS:-5}
echo_connections=${SOAK_ECHO_CONNECTIONS:-10000}
echo_seconds=${SOAK_ECHO_SECONDS:-60}
echo_max_message=${SOAK_ECHO_MAX_MESSAGE:-4096}
reset_connections=${SOAK_RESET_CONNECTIONS:-$echo_connections}
reset_seconds=${SOAK_RESET_SECONDS:-$echo_seconds}
reset_percent=${SOAK_RESET_PERCENT:-5}
rss_end_slack=${SOAK_RSS_END_SLACK_KIB:-16384}
wrk_seconds=${SOAK_WRK_SECONDS:-600}
wrk_connections=${SOAK_WRK_CONNECTIONS:-1000}
wrk_threads=${SOAK_WRK_THREADS:-2}
wrk_timeout=${SOAK_WRK_TIMEOUT:-30s}
wrk_warmup=${SOAK_WRK_WARMUP:-$((wrk_seconds >= 180 ? 60 : wrk_seconds / 3))}
rss_growth=${SOAK_RSS_GROWTH:-1.10}
rss_slack=${SOAK_RSS_SLACK_KIB:-2048}
h2load_requests=${SOAK_H2LOAD_REQUESTS:-1000000}
h2load_connections=${SOAK_H2LOAD_CONNECTIONS:-100}
h2load_streams=${SOAK_H2LOAD_STREAMS:-10}
h2load_timeout=${SOAK_H2LOAD_TIMEOUT:-900}

die() { echo "soak: $*" >&2; exit 2; }

# Outputs go under build/ or outside the repository, never into the source tree.
summary=$(realpath -m "$summary")
outdir=$(dirname "$summary")
case "$outdir/" in
  "$root/build/"*) ;;
  "$root/"*) die "$summary is inside the source tree; put it under build/ or outside $root" ;;
esac
mkdir -p "$outdir" || die "cannot create $outdir"
for stage in $stages; do
  case $stage in
    echo | wrk | h2load | reset) ;;
    *) die "unknown stage '$stage' in SOAK_STAGES (echo, wrk, h2load, reset)" ;;
  esac
done
for n in echo_connections echo_seconds echo_max_message reset_connections reset_seconds \
         wrk_seconds wrk_connections wrk_threads wrk_warmup h2load_requests h2load_connections \
         h2load_streams h2load_timeout rss_interval settle server_threads rss_slack rss_end_slack; do
  [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number, not '${!n}'"
done
((rss_interval >= 1)) || die "SOAK_RSS_INTERVAL must be at least 1"

# The clients and the servers (which raise their soft limit to the hard one by themselves)
# need one fd per connection.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -n)
[[ $fd_limit != unlimited ]] || fd_limit=1048576

# Every process this script starts is a background job of it (a server, or `timeout` around
# a client). On exit, the ones still running are ended by their PIDs. Only the shell's own job
# table says whether one is still running: a PID that has exited may belong to anyone next.
running() {
  local pid
  for pid in $(jobs -pr); do [[ $pid == "$1" ]] && return 0; done
  return 1
}
cleanup() {
  local left
  left=$(jobs -pr)
  [[ -n $left ]] || return 0
  # shellcheck disable=SC2086  # one PID per word
  kill -TERM $left 2>/dev/null
  sleep 1
  left=$(jobs -pr)
  # shellcheck disable=SC2086
  [[ -z $left ]] || kill -KILL $left 2>/dev/null
}
trap cleanup EXIT
trap 'echo "soak: interrupted" >&2; exit 130' INT TERM

rss_kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null; }
fd_count() { local fds=(/proc/"$1"/fd/*); echo "${#fds[@]}"; }
mib() { awk -v k="${1:-0}" 'BEGIN {printf "%.1f", k / 1024}'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# start_server STAGE PROGRAM [FLAGS...]: sets server_pid, port, server_log.
start_server() {
  local stage=$1 program=$2
  shift 2
  server_log=$outdir/$stage.server.log
  "$build/examples/$program" --port=0 --address=127.0.0.1 --log_level=info \
    --threads="$server_threads" "$@" >"$server_log" 2>&1 &
  server_pid=$!
  port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$server_log" | head -1)
    [[ -n $port ]] && break
    running "$server_pid" || break
    sleep 0.1
  done
  [[ -n $port ]] || { echo "soak: $program did not announce a port (see $server_log)" >&2; return 1; }
  echo "soak: $stage: $program (pid $server_pid) on 127.0.0.1:$port"
}

# stop_server: SIGINT to server_pid, which must exit 0 within 20 s. Sets server_exit.
stop_server() {
  server_exit=0
  if ! running "$server_pid"; then
    wait "$server_pid"
    server_exit=$?
    echo "soak: server $server_pid died during the stage (status $server_exit)" >&2
    server_exit="died ($server_exit)"
    return 1
  fi
  kill -INT "$server_pid"
  for _ in $(seq 200); do running "$server_pid" || break; sleep 0.1; done
  if running "$server_pid"; then
    echo "soak: server $server_pid still running 20 s after SIGINT; killing it" >&2
    kill -KILL "$server_pid"
    wait "$server_pid"
    server_exit="hung"
    return 1
  fi
  wait "$server_pid"
  server_exit=$?
  ((server_exit == 0))
}

# Server log lines at warning level or above (spdlog prints "[warning]", "[error]", ...).
server_log_errors() { grep -cE '\[(warning|error|critical)\]' "$server_log"; }

# run_sampled STAGE TIMEOUT_S CMD...: runs CMD (under `timeout`) in the background with its
# output in STAGE.client.log, and meanwhile samples the server every rss_interval seconds into
# STAGE.rss.csv (elapsed_s,vmrss_kib,fds), and once more as the client exits. Sets client_exit,
# max_fds and last_rss (that last sample). The client's exit status is returned.
run_sampled() {
  local stage=$1 limit=$2
  shift 2
  local csv=$outdir/$stage.rss.csv
  client_log=$outdir/$stage.client.log
  echo "elapsed_s,vmrss_kib,fds" >"$csv"
  timeout --kill-after=10 "$limit" "$@" >"$client_log" 2>&1 &
  local client=$!
  local t0 next=0 elapsed rss fds
  t0=$(now_ms)
  max_fds=0
  last_rss=0
  sleep 0.2  # let the client connect before the first sample
  while running "$client" && running "$server_pid"; do
    # Open sockets every second (for "connections held"), the CSV row every rss_interval.
    fds=$(fd_count "$server_pid")
    ((fds > max_fds)) && max_fds=$fds
    elapsed=$((($(now_ms) - t0) / 1000))
    if ((elapsed >= next)); then
      rss=$(rss_kib "$server_pid" VmRSS)
      echo "$elapsed,$rss,$fds" >>"$csv"
      last_rss=$rss
      next=$((next + rss_interval))
    fi
    sleep 1
  done
  wait "$client"
  client_exit=$?
  # One more sample as the load ends (the client has just closed its connections).
  if running "$server_pid"; then
    rss=$(rss_kib "$server_pid" VmRSS)
    echo "$((($(now_ms) - t0) / 1000)),$rss,$(fd_count "$server_pid")" >>"$csv"
    last_rss=$rss
  fi
  return "$client_exit"
}

rows=()
any_failed=0
# add_row STAGE PASS|FAIL HELD SERVED ERRORS RSS_START RSS_PEAK RSS_END SECONDS DETAILS
add_row() {
  rows+=("| $1 | $2 | $3 | $4 | $5 | $(mib "$6") / $(mib "$7") / $(mib "$8") | $9 s | ${10} |")
  [[ $2 == PASS ]] || any_failed=1
  echo "soak: $1: $2 (held $3, served $4, errors $5, RSS KiB $6 / $7 / $8, $9 s) ${10}"
}

need_fds() {
  if ((fd_limit < $1 + 100)); then
    echo "soak: open-file limit $fd_limit is too low for $1 connections (ulimit -Hn)" >&2
    return 1
  fi
}

# echo_stage STAGE CONNECTIONS SECONDS RESET_PERCENT
echo_stage() {
  local stage=$1 connections=$2 seconds=$3 percent=$4
  local t0 why="" ok=PASS rss_start rss_peak rss_end held=0 messages=0 errors=0 resets=0 log_errors
  t0=$(now_ms)
  need_fds "$connections" || { add_row "$stage" FAIL 0 0 1 0 0 0 0 "fd limit $fd_limit"; return; }
  if ! start_server "$stage" echo_server; then
    add_row "$stage" FAIL 0 0 1 0 0 0 0 "server did not start"
    return
  fi
  rss_start=$(rss_kib "$server_pid" VmRSS)
  local limit=$((seconds + 300))  # connect (120 s) + traffic + drain (60 s) + margin
  run_sampled "$stage" "$limit" "$build/tests/integration/echo_load" 127.0.0.1 "$port" \
    "$connections" "$server_pid" --seconds="$seconds" --max_message="$echo_max_message" \
    --reset_percent="$percent"
  [[ $client_exit == 0 ]] || why+="echo_load exit $client_exit; "
  local result
  result=$(grep '^echo_load: RESULT ' "$client_log" | tail -1)
  if [[ -n $result ]]; then
    held=$(sed -n 's/.* held=\([0-9]*\).*/\1/p' <<<"$result")
    messages=$(sed -n 's/.* messages=\([0-9]*\).*/\1/p' <<<"$result")
    errors=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$result")
    resets=$(sed -n 's/.* resets=\([0-9]*\).*/\1/p' <<<"$result")
  else
    why+="no RESULT line (see $client_log); "
    errors=1
  fi
  ((held == connections)) || why+="held $held of $connections; "
  if ((percent > 0)); then
    # The server survived the resets: a fresh set of clients is served exactly.
    if running "$server_pid" && timeout 120 "$build/tests/integration/echo_load" 127.0.0.1 \
        "$port" 100 >>"$client_log" 2>&1; then
      :
    else
      why+="echo check after the resets failed; "
      errors=$((errors + 1))
    fi
  fi
  sleep "$settle"
  rss_peak=$(rss_kib "$server_pid" VmHWM)
  rss_end=$(rss_kib "$server_pid" VmRSS)
  if ((percent > 0)) && ((${rss_end:-0} > ${rss_start:-0} + rss_end_slack)); then
    why+="RSS at end $rss_end KiB > start $rss_start + $rss_end_slack KiB; "
  fi
  log_errors=$(server_log_errors)
  ((log_errors == 0)) || why+="$log_errors warning/error lines in $stage.server.log; "
  errors=$((errors + log_errors))
  stop_server || why+="server exit: $server_exit; "
  [[ -z $why ]] || ok=FAIL
  local details="$connections conns, ${seconds} s, messages 1..$echo_max_message B"
  ((percent > 0)) && details+=", $resets client resets (${percent}% of messages)"
  add_row "$stage" "$ok" "$held" "$messages msgs" "$errors" "${rss_start:-0}" "${rss_peak:-0}" \
    "${rss_end:-0}" "$((($(now_ms) - t0) / 1000))" "$details${why:+; FAILED: ${why%; }}"
}

wrk_stage() {
  local stage=wrk t0 why="" ok=PASS rss_start rss_peak rss_end requests=0 errors=0 log_errors
  t0=$(now_ms)
  command -v wrk >/dev/null || {
    add_row $stage FAIL 0 0 1 0 0 0 0 "wrk missing: bash third_party/install-deps.sh --soak"
    return
  }
  need_fds "$wrk_connections" || { add_row $stage FAIL 0 0 1 0 0 0 0 "fd limit"; return; }
  start_server $stage http_responder || { add_row $stage FAIL 0 0 1 0 0 0 0 "no server"; return; }
  local fds0
  fds0=$(fd_count "$server_pid")
  rss_start=$(rss_kib "$server_pid" VmRSS)
  run_sampled $stage $((wrk_seconds + 120)) wrk -t "$wrk_threads" -c "$wrk_connections" \
    -d "${wrk_seconds}s" --timeout "$wrk_timeout" --latency "http://127.0.0.1:$port/"
  [[ $client_exit == 0 ]] || why+="wrk exit $client_exit; "
  requests=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$client_log")
  [[ -n $requests ]] || { why+="no request count from wrk; "; requests=0; }
  local socket_errors non2xx
  # "Socket errors: connect 0, read 0, write 0, timeout 0" appears only when one is not 0.
  socket_errors=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$client_log")
  non2xx=$(awk -F': *' '/Non-2xx or 3xx responses/ {print $2}' "$client_log")
  errors=$((${socket_errors:-0} + ${non2xx:-0}))
  ((errors == 0)) || why+="wrk: ${socket_errors:-0} socket errors, ${non2xx:-0} non-2xx; "
  # Flat after warm-up: no sample from the first one at or after wrk_warmup (the base) to the
  # last one, taken as wrk exits, above base * rss_growth or base + rss_slack.
  local base top
  base=$(awk -F, -v w="$wrk_warmup" 'NR > 1 && $1 >= w {print $2; exit}' "$outdir/$stage.rss.csv")
  top=$(awk -F, -v w="$wrk_warmup" 'NR > 1 && $1 >= w && $2 > m {m = $2} END {print m + 0}' \
    "$outdir/$stage.rss.csv")
  if [[ -z $base ]]; then
    why+="no RSS sample after the ${wrk_warmup} s warm-up; "
  elif ! awk -v b="$base" -v t="$top" -v g="$rss_growth" -v s="$rss_slack" \
      'BEGIN {exit !(t <= b * g || t <= b + s)}'; then
    why+="RSS grew from $base KiB after the ${wrk_warmup} s warm-up to $top KiB (limit x$rss_growth or +$rss_slack KiB); "
  fi
  sleep "$settle"
  rss_peak=$(rss_kib "$server_pid" VmHWM)
  rss_end=$(rss_kib "$server_pid" VmRSS)
  log_errors=$(server_log_errors)
  ((log_errors == 0)) || why+="$log_errors warning/error lines in $stage.server.log; "
  errors=$((errors + log_errors))
  stop_server || why+="server exit: $server_exit; "
  local served
  served=$(sed -n 's/.*stopped after [0-9]* connection(s), \([0-9]*\) request(s).*/\1/p' "$server_log")
  [[ $ok == PASS && -z $why ]] || ok=FAIL
  add_row $stage "$ok" $((max_fds - fds0)) "$requests reqs" "$errors" "${rss_start:-0}" \
    "${rss_peak:-0}" "${rss_end:-0}" "$((($(now_ms) - t0) / 1000))" \
    "wrk -t$wrk_threads -c$wrk_connections -d${wrk_seconds}s; server counted ${served:-?} requests; RSS after the ${wrk_warmup} s warm-up ${base:-?} KiB, highest $top KiB, $last_rss KiB as wrk ended (wrk.rss.csv)${why:+; FAILED: ${why%; }}"
}

h2load_stage() {
  local stage=h2load t0 why="" ok=PASS rss_start rss_peak rss_end errors=0 log_errors
  t0=$(now_ms)
  command -v h2load >/dev/null || {
    add_row $stage FAIL 0 0 1 0 0 0 0 "h2load missing: bash third_party/install-deps.sh --soak"
    return
  }
  start_server $stage http_responder || { add_row $stage FAIL 0 0 1 0 0 0 0 "no server"; return; }
  local fds0
  fds0=$(fd_count "$server_pid")
  rss_start=$(rss_kib "$server_pid" VmRSS)
  run_sampled $stage "$h2load_timeout" h2load --h1 -m "$h2load_streams" -c "$h2load_connections" \
    -n "$h2load_requests" "http://127.0.0.1:$port/"
  [[ $client_exit == 0 ]] || why+="h2load exit $client_exit; "
  # requests: 100000 total, 100000 started, 100000 done, 100000 succeeded, 0 failed, 0 errored, 0 timeout
  local line succeeded failed errored timeouts ok2xx
  line=$(grep '^requests: ' "$client_log")
  succeeded=$(sed -n 's/.* \([0-9]*\) succeeded.*/\1/p' <<<"$line")
  failed=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$line")
  errored=$(sed -n 's/.* \([0-9]*\) errored.*/\1/p' <<<"$line")
  timeouts=$(sed -n 's/.* \([0-9]*\) timeout.*/\1/p' <<<"$line")
  ok2xx=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' "$client_log")
  if [[ -z $succeeded ]]; then
    why+="no result line from h2load; "
    errors=1
  else
    errors=$((failed + errored + timeouts))
    ((errors == 0)) || why+="$failed failed, $errored errored, $timeouts timed out; "
    ((succeeded == h2load_requests)) || why+="$succeeded of $h2load_requests succeeded; "
    ((${ok2xx:-0} == h2load_requests)) || why+="${ok2xx:-0} of $h2load_requests were 2xx; "
  fi
  sleep "$settle"
  rss_peak=$(rss_kib "$server_pid" VmHWM)
  rss_end=$(rss_kib "$server_pid" VmRSS)
  log_errors=$(server_log_errors)
  ((log_errors == 0)) || why+="$log_errors warning/error lines in $stage.server.log; "
  errors=$((errors + log_errors))
  stop_server || why+="server exit: $server_exit; "
  local rps
  rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$client_log")
  [[ -z $why ]] || ok=FAIL
  local held=$((max_fds - fds0))
  if ((held <= 0)) && [[ -z $why ]]; then
    # Over before the first sample: every client it spawned completed its requests.
    held=$(sed -n 's/^spawning thread #0: \([0-9]*\) total client.*/\1/p' "$client_log")
  fi
  add_row $stage "$ok" "${held:-0}" "${succeeded:-0} reqs" "$errors" "${rss_start:-0}" \
    "${rss_peak:-0}" "${rss_end:-0}" "$((($(now_ms) - t0) / 1000))" \
    "h2load --h1 -m$h2load_streams -c$h2load_connections -n$h2load_requests, ${rps:-?} req/s${why:+; FAILED: ${why%; }}"
}

for bin in examples/echo_server examples/http_responder tests/integration/echo_load; do
  [[ -x $build/$bin ]] || die "$build/$bin is missing: build it first (make build)"
done

started_at=$(date -u '+%Y-%m-%d %H:%M UTC')
t_all=$(now_ms)
for stage in $stages; do
  case $stage in
    echo) echo_stage echo "$echo_connections" "$echo_seconds" 0 ;;
    wrk) wrk_stage ;;
    h2load) h2load_stage ;;
    reset) echo_stage reset "$reset_connections" "$reset_seconds" "$reset_percent" ;;
    *) die "unknown stage '$stage' (echo, wrk, h2load, reset)" ;;
  esac
done

{
  echo "# Soak run, $started_at"
  echo
  echo "Commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')," \
       "build $build, $(nproc) cores, kernel $(uname -r), open-file limit $fd_limit," \
       "server threads $server_threads; total $((($(now_ms) - t_all) / 1000)) s."
  echo
  echo "| stage | result | connections held | requests/messages served | errors seen | server RSS MiB start / peak / end | duration | details |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Settings: SOAK_STAGES=\"$stages\" SOAK_ECHO_CONNECTIONS=$echo_connections" \
       "SOAK_ECHO_SECONDS=$echo_seconds SOAK_ECHO_MAX_MESSAGE=$echo_max_message" \
       "SOAK_RESET_CONNECTIONS=$reset_connections SOAK_RESET_SECONDS=$reset_seconds" \
       "SOAK_RESET_PERCENT=$reset_percent SOAK_WRK_SECONDS=$wrk_seconds" \
       "SOAK_WRK_CONNECTIONS=$wrk_connections SOAK_WRK_THREADS=$wrk_threads" \
       "SOAK_WRK_WARMUP=$wrk_warmup SOAK_RSS_GROWTH=$rss_growth SOAK_RSS_SLACK_KIB=$rss_slack" \
       "SOAK_H2LOAD_REQUESTS=$h2load_requests SOAK_H2LOAD_CONNECTIONS=$h2load_connections" \
       "SOAK_H2LOAD_STREAMS=$h2load_streams SOAK_RSS_INTERVAL=$rss_interval" \
       "SOAK_RSS_END_SLACK_KIB=$rss_end_slack SOAK_SETTLE_SECONDS=$settle."
  echo "Logs and RSS samples (elapsed_s,vmrss_kib,fds): $outdir/<stage>.{server.log,client.log,rss.csv}."
} >"$summary"
echo
cat "$summary"
echo
if ((any_failed)); then
  echo "soak: FAILED (summary in $summary)"
  exit 1
fi
echo "soak: all stages passed (summary in $summary)"
