#!/usr/bin/env bash
# Holds an example program to its command line: `PROGRAM --help` exits 0 or 1 (absl exits 1
# after printing help) and documents every flag the program's source defines (its ABSL_FLAG
# names, read from SOURCE, so a new flag is checked without an edit here), with the program's
# usage message and none of the flags absl defines in its own modules (those are --helpfull's);
# `PROGRAM --log_level=bogus` exits non-zero, at once, naming the bad level; and a stray
# argument (`echo_server 5000`, meant as --port=5000) is refused with exit status 2, at once,
# naming it, never ignored by a server that would then start on its default port.
#
# Usage: check_example_help.sh PROGRAM SOURCE    (ctest: <example>_help_check)
set -uo pipefail
program="$1"
source="$2"
name="$(basename "${program}")"
failed=0
fail() {
  echo "FAIL ${name}: $*" >&2
  failed=1
}

# ABSL_FLAG(type, name, ...): the type may hold a comma only inside <...>, which no example
# uses, so the name is the identifier after the first comma.
mapfile -t flags < <(tr '\n' ' ' < "${source}" |
  grep -oE 'ABSL_FLAG\([^,]+,[[:space:]]*[A-Za-z_][A-Za-z0-9_]*' |
  sed -E 's/.*,[[:space:]]*//')
if [[ ${#flags[@]} -eq 0 ]]; then
  fail "no ABSL_FLAG in ${source}"
fi
# One string for `grep -qx` to read: `printf ... | grep -q` would fail under pipefail whenever
# grep exits at its match before printf has written the rest (SIGPIPE, status 141), which made
# this check fail now and then on a loaded machine.
flag_list="$(printf '%s\n' "${flags[@]}")"

help="$(timeout 30 "${program}" --help 2>&1)"
status=$?
if [[ ${status} -ne 0 && ${status} -ne 1 ]]; then
  fail "--help exited ${status} (absl exits 0 or 1)"
fi
for flag in "${flags[@]}"; do
  # absl's format: "    --port (TCP port; ...); default: 5000;"
  if ! grep -qE -- "^[[:space:]]+--${flag} \(" <<< "${help}"; then
    fail "--help does not document --${flag}"
  fi
done
if ! grep -q "^${name}: " <<< "${help}"; then
  fail "--help starts without the program's usage message (absl::SetProgramUsageMessage)"
fi
# The flags absl itself defines (flagfile, fromenv, tryfromenv, undefok, helpfull, ...) and any
# a library module might define belong under --helpfull, not in the program's own help.
mapfile -t documented < <(grep -oE -- '^[[:space:]]+--[A-Za-z_][A-Za-z0-9_]* \(' <<< "${help}" |
  sed -E 's/^[[:space:]]+--//; s/ \($//')
for flag in "${documented[@]}"; do
  if ! grep -qx -- "${flag}" <<< "${flag_list}"; then
    fail "--help documents --${flag}, which ${source##*/} does not define"
  fi
done

if grep -qx log_level <<< "${flag_list}"; then
  # A server that accepted the level would start serving (on a kernel-chosen port, so no clash):
  # timeout's 124 is a failure too.
  args=(--log_level=bogus)
  if grep -qx port <<< "${flag_list}"; then args+=(--port=0); fi
  out="$(timeout 30 "${program}" "${args[@]}" 2>&1)"
  status=$?
  if [[ ${status} -eq 0 || ${status} -eq 124 ]]; then
    fail "--log_level=bogus was accepted (exit ${status})"
  elif ! grep -q "bogus" <<< "${out}" || ! grep -qiE "log.level" <<< "${out}"; then
    fail "--log_level=bogus exited ${status} without naming the bad level: ${out}"
  fi
else
  fail "${source##*/} defines no --log_level flag"
fi

# Two stray arguments: one more than any example's positional ones (http_fetch takes a URL).
args=(stray_arg_1 stray_arg_2)
if grep -qx port <<< "${flag_list}"; then args+=(--port=0); fi
out="$(timeout 30 "${program}" "${args[@]}" 2>&1)"
stray_status=$?
if [[ ${stray_status} -ne 2 ]]; then
  fail "stray arguments exited ${stray_status}, not 2 (124: the server started): ${out}"
elif ! grep -q "stray_arg_" <<< "${out}"; then
  fail "stray arguments exited 2 without naming them: ${out}"
fi

if [[ ${failed} -ne 0 ]]; then
  echo "--- ${name} --help:" >&2
  echo "${help}" >&2
  exit 1
fi
echo "${name}: --help documents its ${#flags[@]} flags; --log_level=bogus exits ${status};" \
  "stray arguments exit ${stray_status}"
