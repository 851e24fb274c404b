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
status=0
for name in request_parser http_connection; do
  fuzzer="${root}/build/fuzz/tests/fuzz/${name}_fuzzer"
  corpus="${work}/${name}/corpus"
  artifacts="${work}/${name}/artifacts/"
  mkdir -p "${corpus}" "${artifacts}"
  cp "${root}/tests/fuzz/corpus/${name}/"* "${corpus}/"
  dict=()
  if [[ -f "${root}/tests/fuzz/${name}.dict" ]]; then dict=(-dict="${root}/tests/fuzz/${name}.dict"); fi
  echo "== ${name}_fuzzer for ${seconds}s"
  if ! ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
       UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
       "${fuzzer}" -max_total_time="${seconds}" -max_len=4096 -timeout=10 -print_final_stats=1 \
         -artifact_prefix="${artifacts}" "${dict[@]}" "${corpus}"; then
    echo "FAILED: ${name}_fuzzer; reproducers in ${artifacts}" >&2
    status=1
  fi
done
exit "${status}"
