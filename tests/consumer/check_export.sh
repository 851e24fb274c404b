#!/usr/bin/env bash
# ctest package_export_settings (tests/cmake/packaging.cmake): what a configure alone decides
# about installing, without building (each step is a configure of the libraries only, a few
# seconds):
#   1. the exported targets' include directory follows CMAKE_INSTALL_INCLUDEDIR, as the
#      headers and the .pc files do (it was always "include": a consumer of a prefix installed
#      with another include directory found no header);
#   2. a parent project that adds ioloop with add_subdirectory() and IOLOOP_INSTALL=ON keeps
#      its own CPack settings (ioloop's packaging.cmake took them over: libioloop-dev, DEB).
#
#   check_export.sh SOURCE_DIR WORK
set -euo pipefail
# shellcheck source=tests/consumer/lib.sh
source "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || { echo "usage: check_export.sh SOURCE_DIR WORK" >&2; exit 2; }
src=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
libraries_only=(-G Ninja -DIOLOOP_BUILD_TESTS=OFF -DIOLOOP_BUILD_EXAMPLES=OFF
  -DIOLOOP_BUILD_BENCHMARKS=OFF -DIOLOOP_INSTALL=ON)

# 1. The install export is generated at configure time, under CMakeFiles/Export/.
"$CMAKE" -S "$src" -B "$work/includedir" "${libraries_only[@]}" \
  -DCMAKE_INSTALL_INCLUDEDIR=include/ioloop-0.1 >"$work/includedir.log" 2>&1 ||
  { cat "$work/includedir.log"; fail "configure with CMAKE_INSTALL_INCLUDEDIR"; }
targets=$(find "$work/includedir/CMakeFiles/Export" -name ioloopTargets.cmake)
[ -n "$targets" ] || fail "no ioloopTargets.cmake under $work/includedir/CMakeFiles/Export"
# shellcheck disable=SC2016  # a literal ${_IMPORT_PREFIX}, as the export file has it
wanted='INTERFACE_INCLUDE_DIRECTORIES "${_IMPORT_PREFIX}/include/ioloop-0.1"'
count=$(grep -cF "$wanted" "$targets" || true)
[ "$count" -eq 4 ] ||
  fail "$count of 4 targets export $wanted: $(grep INTERFACE_INCLUDE_DIRECTORIES "$targets")"
if grep -F 'INTERFACE_INCLUDE_DIRECTORIES' "$targets" | grep -vF "$wanted" | grep -q .; then
  fail "another include directory exported: $(grep INTERFACE_INCLUDE_DIRECTORIES "$targets")"
fi
echo "ok: the exported targets use include/ioloop-0.1"

# 2. A parent with its own package.
mkdir -p "$work/parent"
cat >"$work/parent/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.21)
project(parent_app VERSION 2.3.4 LANGUAGES CXX)
set(CPACK_PACKAGE_NAME parent-app)
set(CPACK_GENERATOR TGZ)
include(CPack)
set(IOLOOP_INSTALL ON CACHE BOOL "")
add_subdirectory("$src" ioloop)
CMAKE
"$CMAKE" -S "$work/parent" -B "$work/parent-build" -G Ninja >"$work/parent.log" 2>&1 ||
  { cat "$work/parent.log"; fail "configure the parent project"; }
if grep -q "already been included" "$work/parent.log"; then
  fail "CPack included twice: $(grep -A2 'already been included' "$work/parent.log")"
fi
config="$work/parent-build/CPackConfig.cmake"
grep -q 'set(CPACK_PACKAGE_NAME "parent-app")' "$config" ||
  fail "the parent's package name was replaced: $(grep 'CPACK_PACKAGE_NAME ' "$config")"
grep -q 'set(CPACK_GENERATOR "TGZ")' "$config" ||
  fail "the parent's generator was replaced: $(grep 'CPACK_GENERATOR ' "$config")"
echo "ok: the parent project keeps its CPack settings"
echo "PASS: export settings"
rm -rf "$work"
