#!/usr/bin/env bash
# Builds the libFuzzer targets with the `fuzz` CMake preset (clang, ASan + UBSan) and runs
# each for N seconds (default 60) on a scratch copy of its seed corpus, so the checked-in
# corpus is never modified. Exits non-zero if a fuzzer finds a crash, leak, sanitizer report
# or failed invariant; the reproducer is left in the artifacts directory it prints.
#
# Usage: tests/fuzz/run_fuzzers.sh [seconds]
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${root}"

cmake --preset fuzz
cmake --build --preset fuzz

work="$(mktemp -d "${TMPDIR:-/tmp}/ioloop-fuzz.XXXXXX")"
echo "fuzz work directory: ${work}"
# The fuzzers run side by side (one per core), each for the full time.
pids=()
for name in request_parser http_connection; do
  fuzzer="${root}/build/fuzz/tests/fuzz/${name}_fuzzer"
  corpus="${work}/${name}/corpus"
  artifacts="${work}/${name}/artifacts/"
  mkdir -p "${corpus}" "${artifacts}"
  cp "${root}/tests/fuzz/corpus/${name}/"* "${corpus}/"
  dict=()
  if [[ -f "${root}/tests/fuzz/request_parser.dict" ]]; then
    dict=(-dict="${root}/tests/fuzz/request_parser.dict")
  fi
  echo "== ${name}_fuzzer for ${seconds}s (log: ${work}/${name}.log)"
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    "${fuzzer}" -max_total_time="${seconds}" -max_len=4096 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="${artifacts}" "${dict[@]}" "${corpus}" > "${work}/${name}.log" 2>&1 &
  pids+=("$!")
done
status=0
names=(request_parser http_connection)
for i in "${!pids[@]}"; do
  name="${names[$i]}"
  if wait "${pids[$i]}"; then
    echo "== ${name}_fuzzer: $(grep -E '^(Done|stat::number_of_executed_units)' "${work}/${name}.log" | head -1)"
  else
    echo "FAILED: ${name}_fuzzer; log ${work}/${name}.log, reproducers in ${work}/${name}/artifacts/" >&2
    tail -40 "${work}/${name}.log" >&2
    status=1
  fi
done
exit "${status}"
