#!/usr/bin/env bash
# Fails when a C/C++ source under ioloop/, net/, examples/ or tests/ differs from what
# clang-format (the repo's .clang-format) would make of it; prints the offending lines.
# The files are git's tracked ones, so scratch files in a checkout never count; outside a git
# checkout (a source tarball) every *.cc, *.h, *.c under those directories is checked.
#
# Usage: check_format.sh SOURCE_DIR [CLANG_FORMAT]    (ctest: clang_format_check)
set -euo pipefail
root="$1"
clang_format="${2:-clang-format}"
cd "${root}"

files=()
if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  while IFS= read -r -d '' f; do
    [[ -f "${f}" ]] && files+=("${f}")  # a tracked file deleted in the work tree is skipped
  done < <(git ls-files -z -- ':(glob)ioloop/**/*.cc' ':(glob)ioloop/**/*.h' ':(glob)ioloop/**/*.c' \
    ':(glob)net/**/*.cc' ':(glob)net/**/*.h' ':(glob)net/**/*.c' \
    ':(glob)examples/**/*.cc' ':(glob)examples/**/*.h' ':(glob)examples/**/*.c' \
    ':(glob)tests/**/*.cc' ':(glob)tests/**/*.h' ':(glob)tests/**/*.c')
else
  while IFS= read -r -d '' f; do files+=("${f}"); done < <(
    find ioloop net examples tests \( -name '*.cc' -o -name '*.h' -o -name '*.c' \) -type f -print0)
fi

if [[ ${#files[@]} -eq 0 ]]; then
  echo "check_format: no source files found under ${root}" >&2
  exit 1
fi
# --Werror makes every would-be replacement an error; clang-format exits non-zero on the first
# file with one but still reports the others, so one run lists them all.
if ! "${clang_format}" --dry-run --Werror "${files[@]}"; then
  echo "check_format: run clang-format -i on the files above (${clang_format}, .clang-format)" >&2
  exit 1
fi
echo "check_format: ${#files[@]} files clean"
