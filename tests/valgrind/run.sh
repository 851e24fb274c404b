#!/usr/bin/env bash
# Runs every unit-test binary of the default preset (tests/ioloop, tests/net, tests/net/http;
# the build puts them side by side in build/default/tests/)
# under valgrind memcheck: invalid reads/writes, uses of uninitialised memory, leaks ("definitely"
# and "indirectly" lost) and fd leaks fail the run. Not part of `make test` (ASan+UBSan+LSan run
# there and cover the same errors at a tenth of the cost); this is the second opinion, from a
# tool that needs no recompilation and so checks the exact binaries the default preset ships.
#
# Usage: tests/valgrind/run.sh [gtest filter]   (make valgrind)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${root}/build/default/tests"
filter="${1:-*}"
# Tests that cannot run under valgrind, each for a stated reason:
#  - valgrind reserves fds at the top of RLIMIT_NOFILE and lowers the limit it reports, so tests
#    that exhaust fds or place fds past 1024 on purpose measure valgrind, not ioloop;
#  - death tests fork a child that valgrind then reports as a leak when it aborts on purpose.
exclude="*Emfile*:*OutOfFds*:*FdSetsize*:*Fd1100*:*DeathTest*:*Death*"

logs="$(mktemp -d "${TMPDIR:-/tmp}/ioloop-valgrind.XXXXXX")"
echo "valgrind logs: ${logs}"
status=0
for bin in "${build}"/*_test; do
  [[ -x "${bin}" ]] || continue
  name="$(basename "${bin}")"
  if valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
       --errors-for-leak-kinds=definite,indirect --track-fds=no --quiet \
       --log-file="${logs}/${name}.log" \
       "${bin}" --gtest_filter="${filter}-${exclude}" --gtest_brief=1 > "${logs}/${name}.out" 2>&1; then
    echo "ok      ${name}"
  else
    echo "FAILED  ${name} (valgrind: ${logs}/${name}.log, test output: ${logs}/${name}.out)" >&2
    tail -30 "${logs}/${name}.log" "${logs}/${name}.out" >&2
    status=1
  fi
done
exit "${status}"
