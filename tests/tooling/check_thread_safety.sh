#!/usr/bin/env bash
# Shows that clang's lock-annotation check is live: compiles thread_safety_violation.cc with
# the given clang++ and flags (the library's own: IOLOOP_CLANG_THREAD_SAFETY_FLAGS in the
# top-level CMakeLists.txt) once as is, which must compile, and once with -DIOLOOP_VIOLATE,
# which must fail with a -Wthread-safety error. The first run proves the second fails for the
# annotation, not for a missing header.
#
# Usage: check_thread_safety.sh CLANGXX SOURCE_DIR FLAG...    (ctest: thread_safety_check)
set -uo pipefail
clangxx="$1"
root="$2"
shift 2
flags=("$@")
src="${root}/tests/tooling/thread_safety_violation.cc"
compile=("${clangxx}" -std=c++20 -fsyntax-only "${flags[@]}" -I "${root}/ioloop/include" "${src}")

if ! "${compile[@]}"; then
  echo "check_thread_safety: the correct snippet does not compile: ${compile[*]}" >&2
  exit 1
fi
out="$("${compile[@]}" -DIOLOOP_VIOLATE 2>&1)"
status=$?
echo "${out}"
if [[ ${status} -eq 0 ]]; then
  echo "check_thread_safety: reading a guarded member unlocked compiled; the check is off" >&2
  exit 1
fi
if ! grep -q 'error: reading variable .value_. requires holding mutex .mu_.' <<< "${out}"; then
  echo "check_thread_safety: the compile failed, but not with the thread-safety error" >&2
  exit 1
fi
echo "check_thread_safety: the violation is a compile error (${flags[*]})"
