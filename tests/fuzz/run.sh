#!/usr/bin/env bash
# Builds the libFuzzer targets in the `asan` CMake preset (clang, ASan + UBSan) and runs every
# tests/fuzz/*_fuzzer.cc target for SECONDS each (default 60), two at a time (one per core), on a
# scratch copy of its seed corpus, so the checked-in corpus is never modified. Exits non-zero if
# a fuzzer finds a crash, leak, sanitizer report or failed invariant; the reproducer is left in
# the artifacts directory it prints, and printed in base64 with the command that replays it (a
# CI machine's files are gone after the run; its log is not). The work directory is removed
# when every fuzzer passed.
#
# FUZZ_SEED fixes libFuzzer's random seed (default: a new one each run). `make test` fixes it:
# the same mutations in the same order, though how many a time-bounded run reaches depends on
# the machine's speed, which is why the failing input itself is printed; `make fuzz` explores.
#
# Usage: [FUZZ_SEED=N] [FUZZ_JOBS=N] tests/fuzz/run.sh [SECONDS]
set -euo pipefail

seconds="${1:-60}"
jobs="${FUZZ_JOBS:-2}"
seed=()
if [[ -n "${FUZZ_SEED:-}" ]]; then seed=(-seed="${FUZZ_SEED}"); fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${root}"

cmake --preset asan
cmake --build --preset asan --target fuzzers

work="$(mktemp -d "${TMPDIR:-/tmp}/ioloop-fuzz.XXXXXX")"
echo "fuzz work directory: ${work}"

names=()
for src in tests/fuzz/*_fuzzer.cc; do
  names+=("$(basename "${src}" _fuzzer.cc)")
done

run_one() {
  local name="$1"
  local fuzzer="${root}/build/asan/tests/fuzz/${name}_fuzzer"
  local corpus="${work}/${name}/corpus" artifacts="${work}/${name}/artifacts/"
  mkdir -p "${corpus}" "${artifacts}"
  cp "${root}/tests/fuzz/corpus/${name}/"* "${corpus}/"
  local dict=()
  if [[ -f "${root}/tests/fuzz/${name}.dict" ]]; then
    dict=(-dict="${root}/tests/fuzz/${name}.dict")
  elif [[ "${name}" == http_client ]]; then
    dict=(-dict="${root}/tests/fuzz/response_parser.dict")  # it writes responses
  elif [[ "${name}" == http* ]]; then
    dict=(-dict="${root}/tests/fuzz/request_parser.dict")
  fi
  echo "== ${name}_fuzzer for ${seconds}s (log: ${work}/${name}.log)"
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    "${fuzzer}" -max_total_time="${seconds}" -max_len=4096 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="${artifacts}" "${seed[@]}" "${dict[@]}" "${corpus}" \
      > "${work}/${name}.log" 2>&1
}

status=0
pids=()
running=()
finish() {  # waits for the oldest running fuzzer and reports it
  local pid="${pids[0]}" name="${running[0]}"
  pids=("${pids[@]:1}")
  running=("${running[@]:1}")
  if wait "${pid}"; then
    echo "== ${name}_fuzzer: $(grep -E '^stat::number_of_executed_units' "${work}/${name}.log" | head -1)"
  else
    echo "FAILED: ${name}_fuzzer; log ${work}/${name}.log, reproducers in ${work}/${name}/artifacts/" >&2
    tail -40 "${work}/${name}.log" >&2
    local artifact
    for artifact in "${work}/${name}/artifacts/"*; do
      [[ -f "${artifact}" ]] || continue
      echo "replay $(basename "${artifact}"): echo '$(base64 -w0 "${artifact}")' | base64 -d" \
        "> /tmp/input && build/asan/tests/fuzz/${name}_fuzzer /tmp/input" >&2
    done
    status=1
  fi
}
for name in "${names[@]}"; do
  if [[ ${#pids[@]} -ge ${jobs} ]]; then finish; fi
  run_one "${name}" &
  pids+=("$!")
  running+=("${name}")
done
while [[ ${#pids[@]} -gt 0 ]]; do finish; done
if [[ "${status}" -eq 0 ]]; then rm -rf "${work}"; fi
exit "${status}"
